"""Read a topic from its beginning to its end as it was when the read started (aiokafka only here).

For the operator commands that look at what the fleet published (`responder approvals pending`, and `approve`
or `deny` finding a request's plan digest): no consumer group, no commit, every partition, and a bound, so a
topic that keeps growing does not keep the command reading.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from responder.errors import BrokerUnreachable, UnparsableRecord
from responder.ingest.clients import _start_with_retry, fixed_wait, stop_consumer
from responder.ingest.raw import to_raw
from responder.ingest.unreadable import getmany_past
from responder.models.event import RawRecord

CONNECT_S = 15.0  # seconds a read waits for Kafka at most, whatever its `timeout` (not RESPONDER_KAFKA_CONNECT_TIMEOUT)


async def read_to_end(bootstrap: str, topic: str, *, options: Mapping[str, Any] | None = None,
                      timeout: float = 30.0) -> list[RawRecord]:
    """Every record of `topic` up to the end offsets read at the start, in partition then offset order; an empty
    list when the topic does not exist. BrokerUnreachable when the records cannot be read within `timeout`, or
    Kafka refuses the read (an ACL)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", **(options or {}))
    try:
        async with asyncio.timeout(timeout):  # connecting included: `timeout` bounds the whole read
            connect = min(timeout, CONNECT_S)
            await _start_with_retry(consumer, connect, wait_set_by=fixed_wait("a topic read", connect))
            if topic not in await consumer.topics():  # never created: nothing was published (not auto-created)
                return []
            consumer.subscribe([topic])  # without a group: every partition, assigned once the metadata is in
            while not consumer.assignment():
                await asyncio.sleep(0.05)
            parts = sorted(consumer.assignment(), key=lambda tp: tp.partition)
            ends = await consumer.end_offsets(parts)
            out: dict[int, list[RawRecord]] = {tp.partition: [] for tp in parts}
            left = {tp for tp in parts if await consumer.position(tp) < ends[tp]}
            while left:
                batch = await getmany_past(consumer, *left, timeout_ms=500, max_records=500)
                for tp, msgs in batch.items():  # one the client cannot parse comes as `unreadable` (refused)
                    out[tp.partition] += [to_raw(m) for m in msgs if m.offset < ends[tp]]
                left = {tp for tp in left if await consumer.position(tp) < ends[tp]}
        return [r for p in sorted(out) for r in out[p]]
    except TimeoutError as exc:
        raise BrokerUnreachable(f"could not read {topic} at {bootstrap} to its end within {timeout:g} s") from exc
    except KafkaError as exc:  # not authorised to read the topic, an unknown partition...: one line, no traceback
        raise BrokerUnreachable(f"could not read {topic} at {bootstrap}: {type(exc).__name__}: {exc}") from exc
    except UnparsableRecord as exc:  # not even read again by responder/ingest/unreadable.py
        raise BrokerUnreachable(f"could not read {topic} at {bootstrap}: {exc}") from exc
    finally:
        await stop_consumer(consumer)


"""A 20x flood of poison, forged and oversized records with real alerts interleaved, through the real Service."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from responder.auth import signed_headers
from tests.faults.cloud import direct, effects, marker_service, step_results
from tests.faults.table import FaultRow, record
from tests.findings import envelope_bytes, guardduty_finding
from tests.integration.crash import fake_key
from tests.integration.harness import running, wait_for

pytestmark = pytest.mark.integration
SECRET = b"flood-secret-2026"
MAX_BYTES = 16 * 1024


def _bad(i: int) -> tuple[bytes, list[tuple[str, bytes]]]:
    """The i-th bad record: not JSON, unknown shape, invalid, unsigned, forged or oversized (in turn)."""
    forged_body = envelope_bytes(guardduty_finding(fake_key()))
    kind = i % 6
    if kind == 0:
        junk = b"\x00\xffnot json" + str(i).encode()
        return junk, signed_headers("k", SECRET, junk)
    if kind == 1:
        return orjson.dumps({"hello": i}), signed_headers("k", SECRET, orjson.dumps({"hello": i}))
    if kind == 2:
        body = orjson.dumps({"detail-type": "GuardDuty Finding", "source": "aws.guardduty", "detail": {"id": i}})
        return body, signed_headers("k", SECRET, body)
    if kind == 3:
        return forged_body, []  # unsigned where every source must be signed
    if kind == 4:
        return forged_body, signed_headers("k", b"not-the-secret", forged_body)
    return b"{" + b" " * (MAX_BYTES + 100 + i) + b"}", []


async def _dlq_coordinates(bootstrap: str, topic: str, expect: int, timeout: float = 60.0) -> Counter[tuple[str, str]]:
    """(original partition, offset) of every dead-letter copy, counted."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    seen: Counter[tuple[str, str]] = Counter()
    try:
        async with asyncio.timeout(timeout):
            while sum(seen.values()) < expect:
                for msgs in (await consumer.getmany(timeout_ms=300)).values():
                    for m in msgs:
                        h = {k: v.decode() for k, v in m.headers}
                        seen[(h["dlq.partition"], h["dlq.offset"])] += 1
        await asyncio.sleep(1.0)  # anything extra (a copy sent twice) arrives now
        for msgs in (await consumer.getmany(timeout_ms=500)).values():
            for m in msgs:
                h = {k: v.decode() for k, v in m.headers}
                seen[(h["dlq.partition"], h["dlq.offset"])] += 1
    finally:
        await consumer.stop()
    return seen


async def flood(bootstrap: str, moto, topics: dict[str, str], unique: str, tmp, *, real: int, factor: int = 20
                ) -> FaultRow:
    """Publish `real` signed alerts shuffled into `factor`x as many bad records; count actions and DLQ copies."""
    aws = direct(moto)
    bucket = f"effects-{unique}"
    await aws.call("s3", "create_bucket", Bucket=bucket)
    service = marker_service(bootstrap, aws, topics, unique, tmp, bucket, max_record_bytes=MAX_BYTES,
                             event_signing_keys={"k": SECRET.decode()}, require_signature=["*"])
    keys = [fake_key() for _ in range(real)]
    records = [(envelope_bytes(guardduty_finding(k)), None) for k in keys]
    records = [(body, signed_headers("k", SECRET, body)) for body, _ in records]
    bad = [_bad(i) for i in range(real * factor)]
    mixed = records + bad
    random.Random(unique).shuffle(mixed)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=4 * 1024 * 1024)
    await producer.start()
    async with running(service):
        started = time.monotonic()
        try:
            for value, headers in mixed:
                await producer.send(topics["alerts"], value, headers=headers)
            await producer.flush()
        finally:
            await producer.stop()
        await wait_for(lambda: len(step_results(service, "escalate")) >= real, timeout=120)
        took = time.monotonic() - started
        dlq = await _dlq_coordinates(bootstrap, topics["deadletter"], len(bad))
    seen = await effects(aws, bucket)
    row = record(FaultRow(fault=f"flood: {factor}x poison/forged/oversized ({len(bad)} bad)", events=len(mixed),
                          expected=real, done=sum(seen[k] > 0 for k in keys),
                          duplicates=sum(max(0, seen[k] - 1) for k in keys), lost=sum(seen[k] == 0 for k in keys),
                          recover_s=took, note=f"DLQ {sum(dlq.values())} copies of {len(dlq)} records; "
                          + ", ".join(f"{r} {n}" for r, n in sorted(service.deadlettered.items()))))
    assert len(dlq) == len(bad), "a bad record is missing from the dead-letter topic"
    assert max(dlq.values()) == 1, "a bad record was dead-lettered twice"
    return row


async def test_flood_real_alerts_handled_and_each_bad_record_deadlettered_once(kafka_bootstrap, moto_server, topics,
                                                                               unique, tmp_path):
    """5 real alerts in 100 bad records: each alert acted on once, each bad record in the DLQ exactly once."""
    moto_server.reset()
    row = await flood(kafka_bootstrap, moto_server, topics, unique, tmp_path, real=5)
    assert (row.lost, row.duplicates) == (0, 0), row


@pytest.mark.soak
async def test_flood_long_form(kafka_bootstrap, moto_server, topics, unique, tmp_path):
    """50 real alerts in 1,000 bad records: nothing lost, nothing twice, each bad record dead-lettered once."""
    moto_server.reset()
    row = await flood(kafka_bootstrap, moto_server, topics, unique, tmp_path, real=50)
    assert (row.lost, row.duplicates) == (0, 0), row

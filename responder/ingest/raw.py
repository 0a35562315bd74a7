"""A consumed record as the pipeline's RawRecord: the one conversion the Kafka readers share (the consumer group's
batches in `responder.ingest.kafka`, the approvals reader, the bounded reads of `responder.ingest.reading`).
"""

from __future__ import annotations

from typing import Any

from responder.ingest.unreadable import Unreadable
from responder.models.event import RawRecord, built

_RAW_FIELDS = frozenset(RawRecord.model_fields)


def to_raw(msg: Any) -> RawRecord:
    """An aiokafka ConsumerRecord (or a `Read`) as a RawRecord (aiokafka's types already are the model's: not
    re-validated); an `Unreadable` as a record that says why, with its bytes, for the dead-letter topic."""
    if isinstance(msg, Unreadable):
        return RawRecord(topic=msg.topic, partition=msg.partition, offset=msg.offset, key=msg.key, value=msg.value,
                         headers=msg.headers, timestamp_ms=msg.timestamp, unreadable=msg.error)
    record: RawRecord = built(RawRecord, {
        "topic": msg.topic,
        "partition": msg.partition,
        "offset": msg.offset,
        "key": msg.key,
        "value": msg.value if msg.value is not None else b"",
        "headers": tuple((k, v if v is not None else b"") for k, v in msg.headers) if msg.headers else (),
        "timestamp_ms": msg.timestamp,
        "unreadable": None,
    }, set(_RAW_FIELDS))
    return record

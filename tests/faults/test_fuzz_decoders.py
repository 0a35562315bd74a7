"""Fuzz every decoder through the consumer's own path: arbitrary bytes and mutated real records never crash it,
and every rejection is a dead-letter with a reason that names what was wrong (never `internal`)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from responder.models.event import RawRecord
from responder.normalise import formats
from responder.service import Service
from responder.settings import Settings
from tests.conftest import CORPUS, ROOT

FORMATS = sorted(formats())
DEFAULT_TOPIC = "alerts"  # no forced format: detection by shape
REASONS = {"rejected", "decode", "not_json", "too_large", "unknown_shape", "validation", "authentication"}


def _real_records() -> list[bytes]:
    """Every fixture event and, when ../shared/corpus is there, every corpus record."""
    out: list[bytes] = []
    paths = sorted((ROOT / "tests" / "fixtures" / "events").glob("*.json*"))
    if CORPUS.is_dir():
        paths += sorted(p for p in CORPUS.rglob("*.json*") if p.is_file())
    for path in paths:
        data = path.read_bytes()
        out += [line for line in data.splitlines() if line.strip()] if path.suffix == ".jsonl" else [data]
    return out


REAL = _real_records()


class Consumer:
    """The real Service's per-record path (`_handle_partition`) with its dead-letter producer captured."""

    def __init__(self, tmp: Path) -> None:
        tmp.mkdir(parents=True, exist_ok=True)
        topic_formats = {f"as-{name}": name for name in FORMATS}
        self.service = Service(Settings(
            kafka_bootstrap="127.0.0.1:9", runbooks_dir=ROOT / "runbooks", timeline_path=tmp / "t.jsonl",
            dry_run=True, topic_formats=topic_formats, max_record_bytes=256 * 1024,
        ))
        self.deadlettered: list[tuple[str, str]] = []

        async def capture(record: RawRecord, reason: str, detail: str) -> None:
            self.deadlettered.append((reason, detail))

        self.service.ingest.deadletter = capture  # type: ignore[method-assign]

    async def consume(self, value: bytes, topic: str) -> None:
        """Handle one record as the consumer does; anything escaping here would stop the partition."""
        self.deadlettered.clear()
        await self.service._handle_partition([RawRecord(topic=topic, value=value, timestamp_ms=1764064800000)])
        for reason, detail in self.deadlettered:
            assert reason in REASONS, f"{reason}: {detail}"


@pytest.fixture(name="consumer")
async def _consumer(tmp_path: Path) -> AsyncIterator[Consumer]:
    """One consumer per test, shared by its examples; its Kafka clients are never started, and closed after.

    Not kept in a module-level dict: its two never-closed AIOKafkaConsumers lived until the interpreter exited
    and printed the `Unclosed AIOKafkaConsumer` line at the end of the full test run.
    """
    consumer = Consumer(tmp_path / "fuzz")
    yield consumer
    service = consumer.service
    service.recorder.close()
    await service.close_unstarted()


TOPICS = st.sampled_from([DEFAULT_TOPIC, *(f"as-{name}" for name in FORMATS)])
JSON_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                        st.floats(allow_nan=False), st.text(max_size=40))
JSON = st.recursive(JSON_LEAVES, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                         st.dictionaries(st.text(max_size=12), inner, max_size=4)),
                    max_leaves=12)
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                         HealthCheck.too_slow])


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


def _set(doc: Any, path: tuple[Any, ...], value: Any, delete: bool) -> Any:
    if not path:
        return value
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc


@FUZZ
@given(value=st.binary(max_size=2048), topic=TOPICS)
async def test_arbitrary_bytes_never_crash_the_consumer(consumer, value, topic):
    """Random bytes on any topic (detected or forced to each format) are handled or dead-lettered with a reason."""
    await consumer.consume(value, topic)


@FUZZ
@given(data=st.data(), topic=TOPICS)
async def test_mutated_real_records_never_crash_the_consumer(consumer, data, topic):
    """A real record with one field replaced by any JSON value, or removed, is handled or dead-lettered."""
    raw = data.draw(st.sampled_from(REAL), label="record")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        doc = None
    if doc is not None:
        path = data.draw(st.sampled_from(_paths(doc)), label="path")
        delete = bool(path) and data.draw(st.booleans(), label="delete")
        doc = _set(doc, path, data.draw(JSON, label="value"), delete)
        raw = json.dumps(doc).encode()  # the stdlib: integers beyond 64 bits are valid JSON too
    await consumer.consume(raw, topic)


@FUZZ
@given(data=st.data(), topic=TOPICS)
async def test_byte_flipped_real_records_never_crash_the_consumer(consumer, data, topic):
    """A real record with bytes cut, inserted or changed is handled or dead-lettered with a reason."""
    raw = bytearray(data.draw(st.sampled_from(REAL), label="record"))
    for _ in range(data.draw(st.integers(1, 4), label="edits")):
        at = data.draw(st.integers(0, max(0, len(raw) - 1)), label="at")
        kind = data.draw(st.sampled_from(["cut", "insert", "set"]), label="kind")
        byte = data.draw(st.integers(0, 255), label="byte")
        if kind == "cut":
            del raw[at:at + data.draw(st.integers(1, 16), label="n")]
        elif kind == "insert":
            raw[at:at] = bytes([byte])
        elif raw:
            raw[at] = byte
    await consumer.consume(bytes(raw), topic)


def test_real_records_are_there():
    """The fuzz seeds exist: every fixture event (and the shared corpus when present) was loaded."""
    assert len(REAL) >= 19

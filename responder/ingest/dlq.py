"""The dead-letter copy of a rejected record, built so that it always fits the broker's message limit.

A full copy keeps the original key, value and headers and adds `dlq.*` headers (reason, detail,
coordinates, time, the value's SHA-256, and the original's broker timestamp, `dlq.timestamp`, which replay gives
the re-published record). When the copy would exceed `max_bytes`, original headers
are dropped from the end (`dlq.headers_dropped` counts them), then the value is cut
(`dlq.truncated` gives its original length); the original stays in its topic, and the digest names
it. A key larger than `MAX_KEY` is replaced by its digest. The minimal copy is the last resort when
even a fitting copy cannot be sent: no value, no original headers, only reason, digest and
coordinates, so the partition can move on. `header_text` reads a copy's header back: the one reader of the replay
(`deadletter.py`) and of the time it stamps (`replayage.py`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from responder.models.event import RawRecord

DLQ_MAX_BYTES = 1_000_000  # under the broker's and the producer's 1 MiB defaults, with room for framing
MAX_DETAIL = 2000
MAX_KEY = 4096
RECORD_OVERHEAD = 128  # batch and record framing, per header a few varints


@dataclass(frozen=True)
class DeadLetter:
    """What is sent to the dead-letter topic."""

    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]

    @property
    def size(self) -> int:
        """Bytes of key, value and headers, plus framing: what the producer compares to its limit."""
        return _size(self.key, self.value, self.headers)


def header_text(headers: list[tuple[str, bytes]], name: str) -> str | None:
    """The last header called `name` as text (an undecodable byte replaced by U+FFFD), None when there is none."""
    found = [v for k, v in headers if k == name]
    return found[-1].decode(errors="replace") if found else None


def _size(key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> int:
    return (RECORD_OVERHEAD + len(key or b"") + len(value)
            + sum(len(k.encode()) + len(v) + 8 for k, v in headers))


def _ours(record: RawRecord, reason: str, detail: str, now_ms: int) -> list[tuple[str, bytes]]:
    stamp = [("dlq.timestamp", str(record.timestamp_ms).encode())] if record.stamped() is not None else []
    return [
        ("dlq.reason", reason.encode()),
        ("dlq.detail", detail[:MAX_DETAIL].encode(errors="replace")),
        ("dlq.topic", record.topic.encode()),
        ("dlq.partition", str(record.partition).encode()),
        ("dlq.offset", str(record.offset).encode()),
        ("dlq.time", str(now_ms).encode()),
        ("dlq.sha256", hashlib.sha256(record.value).hexdigest().encode()),
        *stamp,
    ]


def _key(record: RawRecord) -> tuple[bytes | None, list[tuple[str, bytes]]]:
    if record.key is None or len(record.key) <= MAX_KEY:
        return record.key, []
    return hashlib.sha256(record.key).hexdigest().encode(), [("dlq.key_replaced", str(len(record.key)).encode())]


def full_copy(record: RawRecord, reason: str, detail: str, now_ms: int,
              max_bytes: int = DLQ_MAX_BYTES) -> DeadLetter:
    """The record with `dlq.*` headers, cut (headers first, then value) to fit in `max_bytes`."""
    key, key_note = _key(record)
    ours = _ours(record, reason, detail, now_ms) + key_note
    kept = list(record.headers)
    value = record.value
    if _size(key, value, [*kept, *ours]) <= max_bytes:
        return DeadLetter(key, value, [*kept, *ours])
    room_for_headers = max_bytes // 8  # the value is what is usually worth keeping
    dropped = 0
    while kept and _size(key, b"", [*kept, *ours]) > room_for_headers:
        kept.pop()
        dropped += 1
    if dropped:
        ours.append(("dlq.headers_dropped", str(dropped).encode()))
    extra = [("dlq.truncated", str(len(value)).encode())]
    if _size(key, value, [*kept, *ours]) > max_bytes:
        ours += extra
        value = value[: max(0, max_bytes - _size(key, b"", [*kept, *ours]))]
    return DeadLetter(key, value, [*kept, *ours])


def minimal_copy(record: RawRecord, reason: str, detail: str, now_ms: int, error: str) -> DeadLetter:
    """Reason, digest and coordinates only: what is sent when the copy itself cannot be."""
    key, key_note = _key(record)
    headers = _ours(record, reason, detail[:200], now_ms) + key_note
    headers += [("dlq.minimal", error[:200].encode(errors="replace")),
                ("dlq.truncated", str(len(record.value)).encode())]
    return DeadLetter(key, b"", headers)

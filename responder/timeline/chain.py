"""Canonical encoding and the hash chain: the part of the timeline that proves things."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import orjson

from responder.errors import ChainBroken
from responder.models.timeline import GENESIS_HASH, TimelineEntry


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: one byte string per value."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _field(value: bytes) -> bytes:
    return len(value).to_bytes(4, "big") + value


_SEQ_PREFIX = (8).to_bytes(4, "big")


def entry_hash(prev: str, seq: int, writer: str, at: str, kind: str, incident: str | None, body: bytes) -> str:
    """SHA-256 over length-prefixed fields, so no field can bleed into the next."""
    return entry_hasher(writer)(prev, seq, at, kind, incident, body)


def entry_hasher(writer: str) -> Callable[[str, int, str, str, str | None, bytes], str]:
    """`entry_hash` for one writer, its field encoded once (the recorder hashes every entry it appends)."""
    writer_field, sha256 = _field(writer.encode()), hashlib.sha256

    def digest(prev: str, seq: int, at: str, kind: str, incident: str | None, body: bytes) -> str:
        p, a, k, i = prev.encode(), at.encode(), kind.encode(), (incident or "").encode()
        return sha256(b"".join((len(p).to_bytes(4, "big"), p, _SEQ_PREFIX, seq.to_bytes(8, "big"), writer_field,
                                len(a).to_bytes(4, "big"), a, len(k).to_bytes(4, "big"), k,
                                len(i).to_bytes(4, "big"), i, len(body).to_bytes(4, "big"), body))).hexdigest()

    return digest


def seal(
    prev: str, seq: int, writer: str, at: str, kind: str, incident: str | None, body: Mapping[str, Any]
) -> TimelineEntry:
    """Build the entry that follows `prev`, with its hash."""
    digest = entry_hash(prev, seq, writer, at, kind, incident, canonical_json(body))
    # built from values this process just produced: skip re-validating the body tree
    return TimelineEntry.model_construct(
        seq=seq, writer=writer, at=at, kind=kind, incident=incident, body=dict(body), prev=prev, hash=digest
    )


def encode_line(entry: TimelineEntry) -> bytes:
    """One JSON Lines record."""
    return canonical_json(entry.model_dump(mode="json")) + b"\n"


def parse_lines(lines: Iterable[bytes]) -> Iterator[TimelineEntry]:
    """Parse JSON Lines into entries; an unparsable line raises ChainBroken with its line number."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield TimelineEntry.model_validate_json(line)
        except ValueError as exc:
            raise ChainBroken(number, f"line {number} is not a timeline entry: {exc.__class__.__name__}") from exc


def verify_entries(entries: Iterable[TimelineEntry]) -> tuple[int, str]:
    """Check every link; return (count, head hash) or raise ChainBroken at the first bad entry."""
    prev = GENESIS_HASH
    count = 0
    for expected_seq, entry in enumerate(entries):
        if entry.seq != expected_seq:
            raise ChainBroken(entry.seq, f"sequence gap: expected seq {expected_seq}, found {entry.seq}")
        if entry.prev != prev:
            raise ChainBroken(entry.seq, "prev does not match the hash of the entry before it")
        digest = entry_hash(
            entry.prev, entry.seq, entry.writer, entry.at, entry.kind, entry.incident, canonical_json(entry.body)
        )
        if digest != entry.hash:
            raise ChainBroken(entry.seq, "content does not match its hash (edited)")
        prev = entry.hash
        count = expected_seq + 1
    return count, prev

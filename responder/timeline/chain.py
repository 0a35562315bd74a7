"""Canonical encoding and the hash chain: the part of the timeline that proves things."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from hashlib import sha256
from typing import Any

import orjson

from responder.errors import ChainBroken
from responder.models.event import built
from responder.models.timeline import GENESIS_HASH, TimelineEntry

_ENTRY_FIELDS = frozenset(TimelineEntry.model_fields)


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
    """`entry_hash` for one writer, its field encoded once."""
    return Sealer(writer).hash


class Sealer:
    """Seals entries for one writer: the hash and the JSON line from one canonical encoding of the body, the
    writer's and each kind's bytes encoded once (the recorder seals every entry it appends)."""

    def __init__(self, writer: str) -> None:
        self.writer = writer
        self._writer_field, self._writer_json = _field(writer.encode()), orjson.dumps(writer)
        self._kinds: dict[str, tuple[bytes, bytes]] = {}  # kind -> (hash field, JSON)

    def hash(self, prev: str, seq: int, at: str, kind: str, incident: str | None, body: bytes) -> str:
        """`entry_hash` with this writer."""
        return self._digest(prev, seq, at.encode(), _field(kind.encode()), incident, body)

    def _digest(self, prev: str, seq: int, at: bytes, kind: bytes, incident: str | None, body: bytes) -> str:
        p, i = prev.encode(), (incident or "").encode()
        return sha256(b"".join((len(p).to_bytes(4, "big"), p, _SEQ_PREFIX, seq.to_bytes(8, "big"), self._writer_field,
                                len(at).to_bytes(4, "big"), at, kind, len(i).to_bytes(4, "big"), i,
                                len(body).to_bytes(4, "big"), body))).hexdigest()

    def seal(self, prev: str, seq: int, at: str, kind: str, incident: str | None,
             body: dict[str, Any]) -> tuple[TimelineEntry, bytes]:
        """The entry after `prev` (taking `body`, which the caller no longer changes) and its line, which is
        `canonical_json(entry) + b"\\n"`."""
        digest, line = self.line(prev, seq, at, kind, incident, orjson.dumps(body, option=orjson.OPT_SORT_KEYS))
        doc = {"seq": seq, "writer": self.writer, "at": at, "kind": kind, "incident": incident, "body": body,
               "prev": prev, "hash": digest}
        return built(TimelineEntry, doc, set(_ENTRY_FIELDS)), line  # built here, verified by hash

    def line(self, prev: str, seq: int, at: str, kind: str, incident: str | None,
             body_json: bytes) -> tuple[str, bytes]:
        """The hash and the JSON line of the entry after `prev` whose body's canonical encoding is `body_json`: keys
        in sorted order, values as orjson writes them. `at` is ISO 8601 text (nothing to escape)."""
        dumps = orjson.dumps
        known = self._kinds.get(kind)
        if known is None:
            known = (_field(kind.encode()), dumps(kind))
            if len(self._kinds) < 256:  # the vocabulary is small; an open-ended caller must not grow this
                self._kinds[kind] = known
        a = at.encode()
        digest = self._digest(prev, seq, a, known[0], incident, body_json)
        return digest, b"".join((b'{"at":"', a, b'","body":', body_json, b',"hash":"', digest.encode(),
                                 b'","incident":', dumps(incident), b',"kind":', known[1], b',"prev":', dumps(prev),
                                 b',"seq":', b"%d" % seq, b',"writer":', self._writer_json, b"}\n"))


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

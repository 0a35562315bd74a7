"""Canonical encoding and the hash chain: the part of the timeline that proves things."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from hashlib import sha256
from typing import Any

import orjson

from responder.errors import ChainBroken
from responder.models.event import builder
from responder.models.timeline import GENESIS_HASH, TimelineEntry


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: one byte string per value."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _field(value: bytes) -> bytes:
    return len(value).to_bytes(4, "big") + value


_SEQ_PREFIX = (8).to_bytes(4, "big")
_HASH_FIELD = (64).to_bytes(4, "big")  # a hex SHA-256 is 64 characters


def entry_hash(prev: str, seq: int, writer: str, at: str, kind: str, incident: str | None, body: bytes) -> str:
    """SHA-256 over length-prefixed fields, so no field can bleed into the next."""
    return entry_hasher(writer)(prev, seq, at, kind, incident, body)


def entry_hasher(writer: str) -> Callable[[str, int, str, str, str | None, bytes], str]:
    """`entry_hash` for one writer, its field encoded once."""
    return Sealer(writer).hash


class Sealer:
    """Seals entries for one writer: the hash and the JSON line from one canonical encoding of the body, the
    writer's and each kind's bytes encoded once, and the encodings of the last hash it made and of the last
    incident kept for the next entry (the recorder seals every entry it appends, each after the one before)."""

    def __init__(self, writer: str) -> None:
        self.writer = writer
        self._writer_field, self._writer_json = _field(writer.encode()), orjson.dumps(writer)
        self._tail = b',"writer":' + self._writer_json + b"}\n"
        self._kinds: dict[str, tuple[bytes, bytes, str]] = {}  # kind -> (hash field, line piece, plain str)
        self.last = ""
        """The hash of the last entry sealed."""
        self._last_field, self._last_json = _field(b""), b'""'  # its two encodings, for the entry after it
        self._incident: str | None = None
        self._incident_field, self._incident_json = _field(b""), b"null"
        self._build = builder(TimelineEntry)

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
        digest, line, plain = self._line(prev, seq, at, kind, incident, orjson.dumps(body, option=orjson.OPT_SORT_KEYS))
        return self._build({"seq": seq, "writer": self.writer, "at": at, "kind": plain, "incident": incident,
                            "body": body, "prev": prev, "hash": digest}), line  # built here, verified by hash

    def line(self, prev: str, seq: int, at: str, kind: str, incident: str | None,
             body_json: bytes) -> tuple[str, bytes]:
        """The hash and the JSON line of the entry after `prev` whose body's canonical encoding is `body_json`: keys
        in sorted order, values as orjson writes them. `at` is ISO 8601 text (nothing to escape)."""
        digest, line, _ = self._line(prev, seq, at, kind, incident, body_json)
        return digest, line

    def _line(self, prev: str, seq: int, at: str, kind: str, incident: str | None,
              body_json: bytes) -> tuple[str, bytes, str]:
        known = self._kinds.get(kind)
        if known is None:
            plain = str(kind)
            known = (_field(plain.encode()), b',"kind":' + orjson.dumps(plain) + b',"prev":', plain)
            if len(self._kinds) < 256:  # the vocabulary is small; an open-ended caller must not grow this
                self._kinds[kind] = known
        if prev is self.last:
            prev_field, prev_json = self._last_field, self._last_json
        else:
            p = prev.encode()
            prev_field, prev_json = len(p).to_bytes(4, "big") + p, orjson.dumps(prev)
        if incident != self._incident:
            self._incident = incident
            self._incident_field, self._incident_json = _field((incident or "").encode()), orjson.dumps(incident)
        a = at.encode()
        digest = sha256(b"".join((prev_field, _SEQ_PREFIX, seq.to_bytes(8, "big"), self._writer_field,
                                  len(a).to_bytes(4, "big"), a, known[0], self._incident_field,
                                  len(body_json).to_bytes(4, "big"), body_json))).hexdigest()
        d = digest.encode()
        self.last, self._last_field, self._last_json = digest, _HASH_FIELD + d, b'"' + d + b'"'
        return digest, b"".join((b'{"at":"', a, b'","body":', body_json, b',"hash":"', d, b'","incident":',
                                 self._incident_json, known[1], prev_json, b',"seq":', b"%d" % seq,
                                 self._tail)), known[2]


def seal(
    prev: str, seq: int, writer: str, at: str, kind: str, incident: str | None, body: Mapping[str, Any]
) -> TimelineEntry:
    """Build the entry that follows `prev`, with its hash."""
    digest = entry_hash(prev, seq, writer, at, kind, incident, canonical_json(body))
    # built from values this process just produced: skip re-validating the body tree
    return TimelineEntry.model_construct(
        seq=seq, writer=writer, at=at, kind=kind, incident=incident, body=dict(body), prev=prev, hash=digest
    )


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

"""Sealed segments: every run of entries ending in a checkpoint is shipped, unchanged, to a WORM archive.

The archive itself is injected (`S3Archive` lives under responder.actuators.aws, because only actuators
talk to AWS); here are its protocol, an in-memory fake, and the `Archiver` that seals and uploads. Uploads run in
the `archive` thread pool (responder/threadpools.py), apart from the timeline's own writes: a hung archive never
delays durability.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Sequence
from typing import Protocol

import orjson
import structlog

from responder.errors import ChainBroken, TimelineError
from responder.models.timeline import EntryKind, TimelineEntry
from responder.threadpools import ARCHIVE, pool, run_in

log = structlog.get_logger(__name__)

SEGMENT_NAME = re.compile(r"^(\d{12})-(\d{12})\.jsonl$")


def segment_name(first: int, last: int) -> str:
    """`000000000000-000000000999.jsonl`: sortable, and says which seqs it holds."""
    return f"{first:012d}-{last:012d}.jsonl"


class SegmentArchive(Protocol):
    """Write-once storage of named segments (S3 Object Lock in production)."""

    def put(self, name: str, data: bytes) -> None: ...

    def names(self) -> list[str]: ...

    def get(self, name: str) -> bytes: ...


class MemoryArchive:
    """A dict that refuses overwrites: the archive for unit tests."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put(self, name: str, data: bytes) -> None:
        """Store once; a second put of the same name is refused."""
        if name in self.objects:
            raise TimelineError(f"segment {name} already archived")
        self.objects[name] = data

    def names(self) -> list[str]:
        """Every segment name."""
        return sorted(self.objects)

    def get(self, name: str) -> bytes:
        """A segment's bytes."""
        return self.objects[name]


def segments(archive: SegmentArchive) -> list[tuple[int, int, str]]:
    """(first, last, name) of every segment, in order: the prefix's own, not those under a longer prefix (another
    replica's `<prefix><host>/`); a name may start with "/" (an archive named without its prefix's trailing slash)."""
    found = []
    for name in archive.names():
        m = SEGMENT_NAME.match(name.removeprefix("/"))
        if m:
            found.append((int(m.group(1)), int(m.group(2)), name))
    return sorted(found)


def read_archive(archive: SegmentArchive) -> list[bytes]:
    """Every archived line in order; ChainBroken when a segment is missing or does not hold what its name says."""
    lines: list[bytes] = []
    for first, last, name in segments(archive):
        if first != len(lines):
            raise ChainBroken(len(lines), f"archive is missing entries {len(lines)}..{first - 1} (segment {name})")
        got = [ln for ln in archive.get(name).splitlines() if ln.strip()]
        if len(got) != last - first + 1:
            raise ChainBroken(first, f"archived segment {name} holds {len(got)} entries, not {last - first + 1}")
        lines.extend(got)
    return lines


class Archiver:
    """A durable sink: buffers lines, seals a segment at each checkpoint, uploads segments in order."""

    def __init__(self, archive: SegmentArchive, *, retry_delay: float = 1.0) -> None:
        self.archive = archive
        self.retry_delay = retry_delay
        self._first = 0
        self._buf: list[bytes] = []
        self._queue: list[tuple[str, bytes]] = []
        self._wake = asyncio.Event()
        self._closing = False
        self.uploaded = 0

    def catch_up(self, lines: Iterable[bytes]) -> int:
        """Queue what a previous run sealed but did not upload; returns the next seq to archive.

        The last archived segment must be this timeline's own lines: a prefix holding another writer's segments
        (two replicas given one prefix) or an older file's would otherwise leave this one's entries unarchived.
        """
        local = [ln for ln in lines if ln.strip()]
        done = segments(self.archive)
        if done:
            first, last, name = done[-1]
            if self.archive.get(name) != b"".join(ln + b"\n" for ln in local[first:last + 1]):
                raise TimelineError(f"the archive's last segment {name} is not this timeline's entries {first}..{last}:"
                                    " the archive holds another timeline (give each writer its own prefix), or this "
                                    "file was replaced or cut back (`responder timeline verify --archive` compares "
                                    "them)")
        self._first = done[-1][1] + 1 if done else 0
        start = self._first
        for seq, line in enumerate(local):
            if seq >= start:
                self._take(seq, str(orjson.loads(line).get("kind")), line)
        return start

    def accept(self, items: Sequence[tuple[TimelineEntry, bytes]]) -> None:
        """Lines that just became durable (called by the recorder, in seq order)."""
        for entry, line in items:
            self._take(entry.seq, entry.kind, line)

    def _take(self, seq: int, kind: str, line: bytes) -> None:
        if seq < self._first + len(self._buf):
            return  # already seen (catch-up overlapping live lines)
        self._buf.append(line if line.endswith(b"\n") else line + b"\n")
        if kind == EntryKind.CHECKPOINT:
            self._queue.append((segment_name(self._first, seq), b"".join(self._buf)))
            self._first, self._buf = seq + 1, []
            self._wake.set()

    @property
    def backlog(self) -> int:
        """Sealed segments not yet uploaded."""
        return len(self._queue)

    def close(self) -> None:
        """Upload what is queued, then let `run` return."""
        self._closing = True
        self._wake.set()

    async def run(self) -> None:
        """Upload sealed segments in order, retrying failures, until closed and drained."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                name, data = self._queue[0]
                try:
                    await run_in(pool(ARCHIVE), self.archive.put, name, data)
                except Exception as exc:  # noqa: BLE001 - the archive is remote (any client error): keep the segment, retry
                    log.warning("segment_archive_failed", segment=name, error=str(exc))
                    if self._closing:
                        return
                    await asyncio.sleep(self.retry_delay)
                    continue
                self._queue.pop(0)
                self.uploaded += 1
                log.info("segment_archived", segment=name, bytes=len(data))
            if self._closing:
                return

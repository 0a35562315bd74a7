"""The recorder: chains entries and makes them durable with group commit."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from responder.models.timeline import GENESIS_HASH, TimelineEntry
from responder.timeline.chain import encode_line, parse_lines, seal, verify_entries
from responder.timeline.store import TimelineStore


def default_writer_id() -> str:
    """host:pid, so entries from different replicas are told apart."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Recorder:
    """Appends chained entries; `flush()` makes them durable, sharing one fsync between concurrent callers."""

    def __init__(self, store: TimelineStore, writer: str | None = None, linger: float = 0.0) -> None:
        self.store = store
        self.writer = writer or default_writer_id()
        self.linger = linger
        self._pending: list[bytes] = []
        self._next_seq = 0
        self._head = GENESIS_HASH
        self._durable_seq = -1
        self._flushing: asyncio.Task[None] | None = None
        self._resume()

    def _resume(self) -> None:
        last: TimelineEntry | None = None
        for last in parse_lines(self.store.read().splitlines()):  # noqa: B007 - only the last is needed
            pass
        if last is not None:
            self._next_seq = last.seq + 1
            self._head = last.hash
            self._durable_seq = last.seq

    @property
    def head(self) -> str:
        """Hash of the last entry appended."""
        return self._head

    @property
    def next_seq(self) -> int:
        """The seq the next entry will get."""
        return self._next_seq

    def append(self, kind: str, body: Mapping[str, Any], incident: str | None = None) -> TimelineEntry:
        """Chain an entry onto the head; durable only after `flush()`."""
        at = datetime.now(UTC).isoformat(timespec="microseconds")
        entry = seal(self._head, self._next_seq, self.writer, at, kind, incident, body)
        self._pending.append(encode_line(entry))
        self._head = entry.hash
        self._next_seq += 1
        return entry

    async def flush(self) -> None:
        """Return once every entry appended before the call is durable (group commit)."""
        target = self._next_seq - 1
        while self._durable_seq < target:
            if self._flushing is None:
                self._flushing = asyncio.create_task(self._flush_once())
            task = self._flushing
            await asyncio.shield(task)

    async def _flush_once(self) -> None:
        try:
            if self.linger:
                await asyncio.sleep(self.linger)
            batch, upto = self._pending, self._next_seq - 1
            self._pending = []
            if batch:
                await asyncio.to_thread(self._write_sync, b"".join(batch))
            self._durable_seq = upto
        finally:
            self._flushing = None

    def _write_sync(self, data: bytes) -> None:
        self.store.write(data)
        self.store.sync()

    def flush_sync(self) -> None:
        """Synchronous flush for callers outside an event loop (CLI commands)."""
        batch, upto = self._pending, self._next_seq - 1
        self._pending = []
        if batch:
            self._write_sync(b"".join(batch))
        self._durable_seq = upto

    def entries(self) -> Iterator[TimelineEntry]:
        """Every durable entry, in order."""
        return parse_lines(self.store.read().splitlines())

    def verify(self) -> tuple[int, str]:
        """Verify the durable chain; (count, head) or ChainBroken."""
        return verify_entries(self.entries())

    def close(self) -> None:
        """Flush what is pending and close the store."""
        self.flush_sync()
        self.store.close()

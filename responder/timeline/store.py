"""Where timeline lines live: an fsync'd JSON Lines file, or memory for unit tests."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from responder.errors import TimelineError


class TimelineStore(Protocol):
    """Append-only byte storage; `sync` makes everything written so far durable."""

    def read(self) -> bytes: ...

    def write(self, data: bytes) -> None: ...

    def sync(self) -> None: ...

    def close(self) -> None: ...


class FileStore:
    """A JSON Lines file opened for append; one fdatasync per `sync`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.path.open("ab")
        self._repair_torn_tail()

    def _repair_torn_tail(self) -> None:
        """Drop a final line without its newline: a write the crash interrupted, never synced."""
        size = self.path.stat().st_size
        if size == 0:
            return
        with self.path.open("rb") as fh:
            fh.seek(max(0, size - 1))
            if fh.read(1) == b"\n":
                return
            data = self.path.read_bytes()
        cut = data.rfind(b"\n") + 1
        os.truncate(self.path, cut)

    def read(self) -> bytes:
        """Everything on disk."""
        try:
            return self.path.read_bytes()
        except OSError as exc:
            raise TimelineError(f"cannot read {self.path}: {exc}") from exc

    def tail(self, size: int) -> bytes:
        """The last whole lines within the last `size` bytes (everything when the file is smaller)."""
        try:
            with self.path.open("rb") as fh:
                end = fh.seek(0, os.SEEK_END)
                fh.seek(max(0, end - size))
                data = fh.read()
        except OSError as exc:
            raise TimelineError(f"cannot read {self.path}: {exc}") from exc
        return data if end <= size else data[data.find(b"\n") + 1:]

    def write(self, data: bytes) -> None:
        """Append bytes (buffered until `sync`)."""
        self._fh.write(data)

    def sync(self) -> None:
        """Flush and fdatasync."""
        self._fh.flush()
        os.fdatasync(self._fh.fileno())

    def close(self) -> None:
        """Close the file."""
        if not self._fh.closed:
            self._fh.close()


class MemoryStore:
    """In-memory bytes; `synced` shows what would have survived a crash."""

    def __init__(self) -> None:
        self._data = bytearray()
        self.synced = 0
        self.syncs = 0

    def read(self) -> bytes:
        """Everything written."""
        return bytes(self._data)

    def write(self, data: bytes) -> None:
        """Append bytes."""
        self._data += data

    def sync(self) -> None:
        """Mark everything written as durable."""
        self.synced = len(self._data)
        self.syncs += 1

    def close(self) -> None:
        """Nothing to release."""

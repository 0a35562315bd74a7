"""Where timeline lines live: an fsync'd JSON Lines file, or memory for unit tests."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from responder.errors import TimelineError, TimelineLocked

TAIL_WINDOW = 256 * 1024
"""Bytes a start reads back from the end of a file timeline first (doubled while they hold no whole line)."""


class TimelineStore(Protocol):
    """Append-only byte storage; `sync` makes everything written so far durable."""

    def read(self) -> bytes: ...

    def write(self, data: bytes) -> None: ...

    def sync(self) -> None: ...

    def rollback(self) -> None:
        """Drop whatever was written since the last successful `sync` (a failed write may leave a torn tail)."""

    def close(self) -> None: ...


def holder_file(path: Path) -> Path:
    """Beside the timeline: who holds its lock (pid, host, command, since), for the refusal message."""
    return path.with_name(path.name + ".lock")


class FileStore:
    """A JSON Lines file opened for append under an exclusive `flock`; one fdatasync per `sync`.

    A second writer (another process, or a second FileStore in this one) is refused with TimelineLocked
    naming the holder: two writers would each chain from their own head and fork the timeline.
    The kernel drops the lock when the holder exits, crashed or not.
    """

    def __init__(self, path: str | Path, *, repair: bool = True) -> None:
        """Open and lock `path`; `repair`: drop a torn last line (`timeline sign` checks the file first instead)."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.path.open("ab")
        try:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._fh.close()
            raise TimelineLocked(str(self.path), self._holder()) from None
        self._claim()
        if repair:
            self._repair_torn_tail()
        self._synced = self.path.stat().st_size

    def _claim(self) -> None:
        command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:3]]) if sys.argv and sys.argv[0] else "python"
        since = datetime.now(UTC).isoformat(timespec="seconds")
        note = f"pid {os.getpid()} on {socket.gethostname()} ({command}, since {since})"
        with contextlib.suppress(OSError):  # the lock is what matters; the note only makes the refusal friendlier
            holder_file(self.path).write_text(note)

    def _holder(self) -> str:
        try:
            return holder_file(self.path).read_text().strip() or "another process"
        except OSError:
            return "another process"

    def _repair_torn_tail(self) -> None:
        """Drop a final line without its newline: a write the crash interrupted, never synced. Read back from the end
        in doubling windows until a newline, so a start after a crash does not read the whole history."""
        size = self.path.stat().st_size
        if size == 0:
            return
        with self.path.open("rb") as fh:
            fh.seek(size - 1)
            if fh.read(1) == b"\n":
                return
            window = TAIL_WINDOW
            while True:
                start = max(0, size - window)
                fh.seek(start)
                found = fh.read(size - start).rfind(b"\n")
                if found >= 0 or start == 0:
                    break
                window *= 2
        os.truncate(self.path, start + found + 1)  # nothing whole (found -1 at start 0): cut back to empty

    def read(self) -> bytes:
        """Everything on disk."""
        try:
            return self.path.read_bytes()
        except OSError as exc:
            raise TimelineError(f"cannot read {self.path}: {exc}") from exc

    def tail(self, size: int) -> bytes:
        """The last whole lines within the last `size` bytes (everything when the file is smaller), and at least
        the last line however long: a window inside one line is doubled until a line starts in it."""
        size = max(size, 1)  # a window of no bytes would double for ever
        try:
            with self.path.open("rb") as fh:
                end = fh.seek(0, os.SEEK_END)
                while True:
                    start = max(0, end - size)
                    fh.seek(start)
                    data = fh.read()
                    cut = data.find(b"\n") + 1
                    if start == 0 or 0 < cut < len(data):
                        return data if start == 0 else data[cut:]
                    size *= 2
        except OSError as exc:
            raise TimelineError(f"cannot read {self.path}: {exc}") from exc

    def write(self, data: bytes) -> None:
        """Append bytes (buffered until `sync`)."""
        self._fh.write(data)

    def sync(self) -> None:
        """Flush and fdatasync."""
        self._fh.flush()
        os.fdatasync(self._fh.fileno())
        self._synced = self._fh.tell()

    def rollback(self) -> None:
        """Reopen the file cut back to what the last sync made durable.

        After ENOSPC or EIO the buffered writer and the page cache may hold part of a batch; the recorder rewrites
        the whole batch from memory, so nothing that failed is trusted (a later fsync may not report pages the
        kernel already dropped).
        """
        with contextlib.suppress(OSError):
            self._fh.close()
        os.truncate(self.path, self._synced)
        self._fh = self.path.open("ab")

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

    def rollback(self) -> None:
        """Forget what was written after the last sync."""
        del self._data[self.synced:]

    def close(self) -> None:
        """Nothing to release."""

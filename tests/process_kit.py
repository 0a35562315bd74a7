"""Whether a process is still running, told apart from a later one that took its pid (Linux /proc)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path


def started(pid: int) -> int | None:
    """The start time (clock ticks after boot) of the live process `pid`; None when there is none, or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] in ("Z", "X") else int(fields[19])


def running(pid: int, since: int | None = None) -> bool:
    """Whether `pid` is a live (non-zombie) process; with `since`, the one that started then."""
    now = started(pid)
    return now is not None and (since is None or now == since)


def outlived(pid: int, since: int, deadline: float = 60.0) -> bool:
    """Whether process `pid` (started at `since`) is still running after polling for up to `deadline` s for it to
    end; one still running is SIGKILLed before returning, so a failing test leaves no orphan behind."""
    until = time.monotonic() + deadline
    while running(pid, since):
        if time.monotonic() > until:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            return True
        time.sleep(0.05)
    return False

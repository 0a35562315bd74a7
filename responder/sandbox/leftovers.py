"""Temporary files named for the process that made them, and the sweep of those a killed run left behind.

The Tansu broker's log (`tansu-<pid>-XXXXXXXX.log`) and an Apache Kafka cluster's work directory
(`kafka-<pid>-XXXXXXXX`) carry the pid of the process that made them. Their owner's teardown removes them, but a
SIGKILLed process runs none, so `make` first removes the same kind's leftovers in the same temp directory whose
process is gone. Only an entry named exactly so, of the kind's type (a regular file, or a directory; never a
symlink: `lstat`, nothing followed), owned by this uid, whose pid `os.kill(pid, 0)` reports gone is removed: a live
pid's (another run, e.g. CI beside a developer) and an old name without a pid are kept. The sweep never fails a
start: what cannot be removed is logged and left.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Kind:
    """One kind of temporary entry: its name's prefix and suffix, and whether it is a directory."""

    prefix: str
    suffix: str
    directory: bool

    def pattern(self) -> re.Pattern[str]:
        """The name `make` gives: prefix, pid, `-`, tempfile's random part, suffix."""
        return re.compile(rf"{re.escape(self.prefix)}([0-9]+)-[a-z0-9_]+{re.escape(self.suffix)}")


TANSU_LOG = Kind("tansu-", ".log", directory=False)
KAFKA_WORKDIR = Kind("kafka-", "", directory=True)


def make(kind: Kind, *, sweep_first: bool = True) -> Path:
    """A new entry of `kind` in the temp directory, named for this process; the dead runs' ones are swept first."""
    if sweep_first:
        sweep(kind, Path(tempfile.gettempdir()))
    prefix = f"{kind.prefix}{os.getpid()}-"
    if kind.directory:
        return Path(tempfile.mkdtemp(prefix=prefix, suffix=kind.suffix))
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=kind.suffix)
    os.close(fd)
    return Path(name)


def pid_alive(pid: int) -> bool:
    """Whether process `pid` exists; one this user may not signal (PermissionError) exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # PermissionError: someone else's, alive; anything else: not known gone
        return True
    return True


def sweep(kind: Kind, folder: Path) -> int:
    """Remove the entries of `kind` in `folder` that a dead process of this uid left; the number removed."""
    try:
        names = [e.name for e in os.scandir(folder)]
    except OSError as e:
        log.warning("sandbox_leftovers_unlisted", folder=str(folder), error=str(e))
        return 0
    pattern, uid, removed = kind.pattern(), os.getuid(), 0
    for name in names:
        match = pattern.fullmatch(name)
        if match is None or pid_alive(int(match.group(1))):
            continue
        path = folder / name
        try:
            st = path.lstat()
            wanted = stat.S_ISDIR(st.st_mode) if kind.directory else stat.S_ISREG(st.st_mode)
            if not wanted or st.st_uid != uid:
                continue
            if kind.directory:
                shutil.rmtree(path)  # fd-based on Linux: symlinks inside are removed, never followed
            else:
                path.unlink()
        except FileNotFoundError:  # another run's sweep took it first
            continue
        except OSError as e:
            log.warning("sandbox_leftover_not_removed", path=str(path), error=str(e))
            continue
        removed += 1
    if removed:
        log.info("sandbox_leftovers_removed", kind=kind.prefix, folder=str(folder), count=removed)
    return removed

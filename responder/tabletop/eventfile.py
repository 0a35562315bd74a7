"""An inject's event file: read only when it lies inside the playbook's directory (symbolic links resolved), is a
regular file and is at most `MAX_EVENT_BYTES` long; the one read the loader, the decision and expectation checks and
the run's inject all go through, so a refused file (outside, a FIFO, `/dev/zero`) is never read."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from responder.errors import PlaybookError

MAX_EVENT_BYTES = 1024 * 1024  # the shipped playbooks' largest event file is ~2 KiB; an event is one JSON document
ALLOWED = "name a file under the playbook's directory {base} by a relative path (symbolic links resolved)"


def _refused(base: Path, reason: str) -> PlaybookError:
    return PlaybookError(str(base), reason)


def _confined(base: Path, name: str) -> Path:
    """`base / name` resolved, when it stays inside `base`; PlaybookError saying why not."""
    allowed = ALLOWED.format(base=base)
    try:
        if Path(name).is_absolute():
            raise _refused(base, f"event file {name!r} is absolute, outside the playbook's directory: {allowed}")
        path = (base / name).resolve()
        inside = path.is_relative_to(base.resolve())
    except ValueError as exc:  # an embedded NUL byte: no file has that name
        raise _refused(base, f"event file {name!r} cannot name a file ({exc}): {allowed}") from None
    except (OSError, RuntimeError):  # a symbolic link loop
        inside = False
    if not inside:
        raise _refused(base, f"event file {name!r} is outside the playbook's directory: {allowed}")
    return path


def read_event(base: Path, name: str) -> bytes:
    """The bytes of the event file `name` (relative to the playbook's directory `base`); PlaybookError (its `reason`
    one line for the inject's `event`) when it is outside `base`, missing, not a regular file or over the cap. The
    file is opened non-blocking and its type checked on the open descriptor, so a FIFO or device is never read."""
    path = _confined(base, name)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise _refused(base, f"event file {name!r} does not exist (relative to {base})") from None
    except OSError as exc:
        raise _refused(base, f"event file {name!r} cannot be opened: {exc.strerror or exc}") from None
    try:  # the type checked on the descriptor itself: a directory, FIFO or device is never read
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _refused(base, f"event file {name!r} is not a regular file (relative to {base})")
        if info.st_size > MAX_EVENT_BYTES:
            raise _refused(base, f"event file {name!r} is larger than {MAX_EVENT_BYTES} bytes")
        with os.fdopen(fd, "rb", closefd=False) as file:
            data = file.read(MAX_EVENT_BYTES + 1)
    except OSError as exc:
        raise _refused(base, f"event file {name!r} cannot be read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_EVENT_BYTES:  # grew since fstat
        raise _refused(base, f"event file {name!r} is larger than {MAX_EVENT_BYTES} bytes")
    return data


def event_problem(base: Path, name: str) -> str | None:
    """Why the event file `name` cannot be injected, or None when `read_event` reads it."""
    try:
        read_event(base, name)
    except PlaybookError as exc:
        return exc.reason
    return None

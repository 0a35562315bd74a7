"""A serving-pointer read stuck in the kernel and abandoned at a deadline does not hold the process at its exit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from responder.sandbox import lifeline
from tests.playbook_kit import ROOT

SAFETY = 60  # seconds: only so a regression fails instead of hanging the suite
SCRIPT = """
import asyncio, sys
from pathlib import Path
from responder.actuators.model.local import LocalStore

async def undo_read() -> None:
    try:
        async with asyncio.timeout(0.2):  # as the undo bounds its compare-and-set read by the step's deadline
            await LocalStore(Path(sys.argv[1])).serving("fraud")
    except TimeoutError:
        print("read abandoned", flush=True)

asyncio.run(undo_read())  # as `responder undo` runs the undo
print("asyncio.run returned", flush=True)
"""


def test_an_abandoned_pointer_read_on_a_fifo_does_not_hold_asyncio_run_or_the_exit(tmp_path: Path):
    """The pointer a FIFO nobody writes: the read times out, asyncio.run returns and the process exits (as undo's)."""
    (tmp_path / "registry" / "fraud").mkdir(parents=True)
    os.mkfifo(tmp_path / "registry" / "fraud" / "serving")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        done = lifeline.run([sys.executable, "-c", SCRIPT, str(tmp_path / "registry")], capture_output=True,
                              text=True, timeout=SAFETY, env=env, check=False)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"the process did not exit: {exc.stdout!r}") from None
    assert (done.returncode, done.stdout.split("\n")) == (0, ["read abandoned", "asyncio.run returned", ""]), \
        done.stderr


THREADS = """
import asyncio, sys, threading
from pathlib import Path
from responder.actuators.model.local import LocalStore

async def abandoned_reads() -> None:
    for _ in range(20):  # as each new event's drift check reads the pointer of a hung mount
        try:
            async with asyncio.timeout(0.05):
                await LocalStore(Path(sys.argv[1])).serving("fraud")
        except TimeoutError:
            pass
    print(sum(t.name == "responder-model-pointer" for t in threading.enumerate()), flush=True)

asyncio.run(abandoned_reads())
"""


def test_reads_of_a_hung_pointer_share_one_thread_however_many_are_abandoned(tmp_path: Path):
    """Twenty reads of a FIFO pointer, each abandoned at its deadline, leave one reading thread, not twenty."""
    (tmp_path / "registry" / "fraud").mkdir(parents=True)
    os.mkfifo(tmp_path / "registry" / "fraud" / "serving")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = lifeline.run([sys.executable, "-c", THREADS, str(tmp_path / "registry")], capture_output=True,
                          text=True, timeout=SAFETY, env=env, check=False)
    assert (done.returncode, done.stdout) == (0, "1\n"), done.stderr

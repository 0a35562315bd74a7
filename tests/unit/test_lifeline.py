"""responder.sandbox.lifeline: its catches (the forking thread, the parent already gone, what it refuses)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from responder.errors import SandboxError
from responder.sandbox import lifeline

pytestmark = pytest.mark.skipif(lifeline.die_with_parent() is None, reason="Linux only (PR_SET_PDEATHSIG)")
ROOT = Path(__file__).resolve().parents[2]
ECHO = [sys.executable, "-c", "import sys\nfor line in sys.stdin: print(line, end='', flush=True)"]


def _gone(tid: int) -> bool:
    """Whether thread `tid` of this process has ended in the kernel (its child then had its death signal)."""
    deadline = time.monotonic() + 60
    while Path(f"/proc/self/task/{tid}").exists():
        assert time.monotonic() < deadline, f"thread {tid} did not end"
        time.sleep(0.01)
    return True


def test_a_child_popened_on_a_worker_thread_outlives_that_thread():
    """A child lifeline.popen starts on an asyncio.to_thread worker still answers after that thread has ended."""
    tids: list[int] = []

    def spawn() -> subprocess.Popen[bytes]:
        tids.append(threading.get_native_id())
        return lifeline.popen(ECHO, stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    async def on_a_worker_thread() -> subprocess.Popen[bytes]:
        return await asyncio.to_thread(spawn)

    child = asyncio.run(on_a_worker_thread())  # the loop shuts its default executor down: the worker thread ends
    try:
        assert _gone(tids[0])
        try:
            child.stdin.write(b"ping\n")
            child.stdin.flush()
            answer = child.stdout.readline()
        except BrokenPipeError:
            answer = b""
        assert answer == b"ping\n", f"the child ended with the thread that started it (exit {child.wait(30)})"
    finally:
        child.kill()
        child.communicate(timeout=30)


def test_a_child_whose_parent_is_already_gone_when_tied_kills_itself(monkeypatch):
    """A child whose parent is not the pid it was forked for (it died before the tie) SIGKILLs itself before exec."""
    monkeypatch.setattr(lifeline, "die_with_parent", lambda: lifeline.DieWithParent(os.getppid()))
    done = lifeline.run([sys.executable, "-c", "print('exec')"], capture_output=True, timeout=60, check=False)
    assert (done.returncode, done.stdout) == (-signal.SIGKILL, b"")


@pytest.mark.parametrize("refused", ["shell", "preexec_fn"])
def test_a_shell_or_another_preexec_fn_is_refused(refused):
    """lifeline refuses shell=True (argv only) and a preexec_fn of the caller's (it would drop the tie)."""
    with pytest.raises(SandboxError, match=refused):
        lifeline.run(["true"], **{refused: True if refused == "shell" else os.getpid})


def test_where_there_is_neither_prctl_nor_sigkill_lifeline_starts_plain_children():
    """With sys.platform win32 and no signal.SIGKILL (as on Windows), lifeline imports and runs a plain child."""
    windows = ("import asyncio, ctypes, signal, subprocess, sys\ndel signal.SIGKILL\nsys.platform = 'win32'\n"
               "from responder.sandbox import lifeline\nassert lifeline.die_with_parent() is None\n"
               "sys.stdout.write(lifeline.run([sys.executable, '-c', 'print(1)'], capture_output=True, text=True, "
               "check=True).stdout)\n")
    done = lifeline.run([sys.executable, "-c", windows], cwd=ROOT, capture_output=True, text=True, timeout=120,
                        check=False)
    assert (done.returncode, done.stdout) == (0, "1\n"), done.stderr[-2000:]

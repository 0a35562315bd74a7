"""A parent process for tests/integration/test_orphans.py: it starts one child the way the tests and benchmarks do,
writes the child's pid on stdout, then waits to be killed.

Run as `python -m tests.integration.orphan_parent HOW DIR`, HOW one of:

* `crash-worker`: `Workers.spawn` of the crash driver, a standby `tests.integration.crash_worker` waiting for its go
  file, as the soak leaves one behind each kill (it writes its logs under DIR);
* `thread`: `lifeline.popen` on a worker thread (`asyncio.to_thread`), that thread gone with its loop before the kill;
* `async`: `lifeline.exec_async` on the running loop;
* `run`: `lifeline.run` (the caller waits for its child).

Every child but the crash worker sleeps. The parent writes the child's pid (for `thread` once the loop, and with it
the thread that forked the child, has ended), but for `run`, whose child writes its own: `run` returns only when the
child ends.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

from responder.sandbox import lifeline
from tests.integration.crash import ROOT, Workers

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]
SAYING = [sys.executable, "-c", "import os, time; print(os.getpid(), flush=True); time.sleep(600)"]


def crash_worker(tmp: Path) -> None:
    """A standby crash worker: it imports the service and polls for a go file that never comes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESPONDER_")} | {
        "PYTHONPATH": str(ROOT), "RESPONDER_TIMELINE_PATH": str(tmp / "timeline.jsonl"),
        "RESPONDER_RUNBOOKS_DIR": str(tmp / "runbooks")}
    proc, _, _ = Workers(tmp, env).spawn()
    print(proc.pid, flush=True)


async def on_loop(how: str) -> int:
    """Start the sleeper on a worker thread (its pid), or on the loop (its pid written, then wait)."""
    if how == "thread":
        return (await asyncio.to_thread(lifeline.popen, SLEEPER)).pid
    child = await lifeline.exec_async(*SLEEPER)
    print(child.pid, flush=True)
    await asyncio.sleep(600)
    return child.pid


def main(how: str, tmp: Path) -> None:
    """Start the child, then wait (at most 10 minutes) to be killed."""
    if how == "crash-worker":
        crash_worker(tmp)
    elif how == "run":
        lifeline.run(SAYING, check=False)
    else:
        pid = asyncio.run(on_loop(how))  # `thread`: closing the loop ends the worker thread that forked the child
        print(pid, flush=True)
    time.sleep(600)


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))

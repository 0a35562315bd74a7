"""Child processes that never outlive the process that started them (Linux; elsewhere they are plain children).

Every subprocess the sandbox, the tabletop, the tests and the benchmarks start goes through `popen`, `run` or
`exec_async` here (tests/unit/test_spawn_paths.py holds them to it). The kernel SIGKILLs such a child when its
parent dies, however it dies (SIGKILL, a `timeout` wrapper, a cancelled CI job): PR_SET_PDEATHSIG, set in the child
between fork and exec, so it holds for any program (the service, a Kafka JVM, the Tansu broker) and is kept across
the exec. A child in a process group or session of its own (`process_group`, `start_new_session`) dies with its
parent all the same.

Three catches, each handled here:

* The signal follows the *thread* that forked the child, not its process: a child forked on a worker thread
  (`asyncio.to_thread`, an executor) is killed when that thread ends, the process still running, and a pool's
  threads end when it shuts down (`asyncio.run` and pytest-asyncio shut the default executor down with the loop).
  So `popen` called off the main thread forks on one thread of this module that lasts as long as the process.
  `run` forks on the calling thread, which waits for the child; `exec_async` on the thread of the event loop, so
  such a child lives at most as long as the thread that runs its loop (the main thread under pytest).
* The parent can die between the fork and the prctl call: the child then already has another parent, so it
  compares `os.getppid()` with the pid that forked it and SIGKILLs itself.
* `preexec_fn` runs Python in the child of a process with threads, which CPython documents as unsafe in general (a
  lock another thread held at the fork stays held). `DieWithParent` makes three system calls, through functions
  resolved in the parent (no dlopen, no import, no lock). Before it, as for any `preexec_fn`, CPython runs the
  process's `os.register_at_fork(after_in_child=...)` handlers in the child (threading's, logging's, random's, this
  module's `_Forker.reset`): written for a fork, they make new locks rather than take held ones. In the parent it
  takes the import lock and runs the `before` handlers (logging takes its module lock) around the fork, so a fork
  waits while another thread holds one of those; and it forks rather than vforks, copying the parent's page tables.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import queue
import signal
import subprocess  # nosec B404 # the callers' argv, never a shell (`shell=` is refused)
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

from responder.errors import SandboxError

_PR_SET_PDEATHSIG = 1
T = TypeVar("T")
Argv = Sequence[str | os.PathLike[str]]


def _load_prctl() -> Callable[[int, ctypes.c_ulong], int] | None:
    """libc's prctl, looked up now, in the parent; None off Linux or without it."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl: Callable[[int, ctypes.c_ulong], int] = ctypes.CDLL(None).prctl  # this process's libc
    except (OSError, AttributeError):
        return None
    return prctl


_prctl = _load_prctl()
_SIGKILL = ctypes.c_ulong(signal.SIGKILL if _prctl is not None else 0)  # Windows has no signal.SIGKILL


class DieWithParent:
    """A `preexec_fn`: the child gets SIGKILL when `parent` (the process that forks it) dies, or at once if it
    already has: its parent is then another process."""

    def __init__(self, parent: int) -> None:
        self.parent = parent

    def __call__(self) -> None:  # pragma: no cover - runs in the child, between fork and exec
        if _prctl is None:
            return
        _prctl(_PR_SET_PDEATHSIG, _SIGKILL)
        if os.getppid() != self.parent:
            os.kill(os.getpid(), signal.SIGKILL)


def die_with_parent() -> DieWithParent | None:
    """The `preexec_fn` that ties a child to this process (None where the kernel offers no such tie)."""
    return DieWithParent(os.getpid()) if _prctl is not None else None


class _Forker:
    """One daemon thread that forks for the threads other than the main one: it ends only with the process."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """No thread yet (also in a forked child: the parent's thread is not in it)."""
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def call(self, fn: Callable[[], T]) -> T:
        """`fn()` on the forking thread; its result, or its exception raised here."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name="lifeline-fork", daemon=True)
                self._thread.start()
        done: Future[T] = Future()
        self._jobs.put((fn, done))
        return done.result()

    def _serve(self) -> None:
        while True:
            fn, done = self._jobs.get()
            try:
                done.set_result(fn())
            except BaseException as e:  # noqa: BLE001 # raised again in the caller's thread
                done.set_exception(e)


_forker = _Forker()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forker.reset)


def _checked(kwargs: dict[str, Any]) -> dict[str, Any]:
    for refused in ("shell", "preexec_fn"):
        if kwargs.get(refused):
            raise SandboxError(f"a child started by responder.sandbox.lifeline takes no {refused}=")
    return kwargs | {"preexec_fn": die_with_parent()}


def popen(args: Argv, **kwargs: Any) -> subprocess.Popen[Any]:
    """`subprocess.Popen(args, **kwargs)` for a child that dies with this process."""
    kwargs = _checked(kwargs)
    if threading.current_thread() is threading.main_thread():
        return subprocess.Popen(args, **kwargs)  # noqa: S603  # nosec B603 # argv, no shell
    return _forker.call(lambda: subprocess.Popen(args, **kwargs))  # noqa: S603  # nosec B603 # argv, no shell


def run(args: Argv, **kwargs: Any) -> subprocess.CompletedProcess[Any]:
    """`subprocess.run(args, **kwargs)` for a child that dies with this process (the calling thread waits for it,
    so the child ends before that thread can)."""
    return subprocess.run(args, **_checked(kwargs))  # noqa: S603  # nosec B603 # argv, no shell


async def exec_async(program: str | os.PathLike[str], *args: str | os.PathLike[str],
                     **kwargs: Any) -> asyncio.subprocess.Process:
    """`asyncio.create_subprocess_exec(program, *args, **kwargs)` for a child that dies with this process (or with
    the thread running the loop, if that one ends first)."""
    return await asyncio.create_subprocess_exec(program, *args, **_checked(kwargs))

"""Bulkheads: the bounded thread pools responder's blocking calls run in, one per kind of work, so one that hangs
cannot starve another.

`asyncio.to_thread` runs everything in the loop's one default executor (`min(32, cpu_count + 4)` threads: 6 on
2 cores). A hung AWS service (SageMaker slow, a black-holed endpoint) filled it in six calls, and then nothing
else that needs a thread ran: the timeline's write and fsync (so no step acted and no offset was committed), IAM
containment and the fleet guard's DynamoDB reads, the pages to on-call, the MSK IAM token refresh. Here each kind
has its own pool:

* AWS: one pool per service name (`iam`, `sagemaker`, `dynamodb`…), `AWS_THREADS_PER_SERVICE` threads each, as
  many as the connections botocore keeps per client (`AwsSession` sets `max_pool_connections` to the same number),
  so a thread never waits for a connection and a hung service holds only its own threads;
* `timeline`: the durable group commit's write + fsync (responder/timeline/durable.py);
* `archive`: uploads of sealed segments to the WORM archive, and the start's catch-up read of it (S3: apart from
  the disk writes, so a hung archive never delays durability);
* `notify-<host:port>`: webhook notifications (pages to on-call), one pool per receiver, so a hung chat webhook never
  holds up the pages to the paging service; the receivers past the first `NOTIFY_HOSTS` share the `notify` pool;
* `kafka-auth`: the MSK IAM token for Kafka's SASL OAUTHBEARER.

Model actuators' local file work stays on the default executor (their S3 bodies are read in `aws-s3`), and so
does asyncio's `getaddrinfo`, with which aiokafka resolves broker names; the local serving pointer is read in a daemon
thread of its own (`run_detached`), so a read abandoned at a deadline holds no exit. Pools are process-wide, created
on first use and keyed by name (a session, recorder or actuator made per test or per request shares them; no
executor per instance), and their threads are named `responder-<pool>_<n>`. `run_in` and `submit` copy the
caller's contextvars into the thread as `asyncio.to_thread` does (structlog's bound context, the OpenTelemetry
span); a call cancelled while queued holds nothing while it waits for a thread to take it off the queue (`_Job`).
Nothing here imports responder: it sits at the bottom of the import layers.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import os
import threading
import urllib.parse
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from typing import Generic, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

AWS_THREADS_PER_SERVICE = 10
"""Threads per AWS service, and botocore's `max_pool_connections` per client (its default, set explicitly)."""

TIMELINE = "timeline"
ARCHIVE = "archive"
NOTIFY = "notify"
KAFKA_AUTH = "kafka-auth"

THREADS = {
    TIMELINE: 2,  # one group commit runs at a time per recorder; a second recorder (a view, a drill) takes the other
    ARCHIVE: 2,  # the archiver uploads one segment at a time
    NOTIFY: 8,  # the receivers past the first NOTIFY_HOSTS (a post waits up to its `timeout`, 60 s at most)
    KAFKA_AUTH: 2,  # one token for every client, reused until a minute before expiry
}
"""The pools other than AWS's, by name, and their sizes."""

NOTIFY_THREADS_PER_HOST = 8
"""Threads of one webhook receiver's pool: as many pages to it at once as the one `notify` pool allowed before."""
NOTIFY_HOSTS = 64
"""Receivers with a pool of their own at most: a webhook's `url` is a literal of a runbook (never templated), so a
deployment names a few; the bound keeps threads finite whatever the runbooks say, any further receiver posting
through the shared `notify` pool."""

_pools: dict[str, ThreadPoolExecutor] = {}
_lock = threading.Lock()


def _forget_after_fork() -> None:
    """A forked child has none of its parent's threads: it starts with no pools (the parent's would queue forever)."""
    global _lock  # the parent's lock may have been held by a thread the child does not have
    _lock = threading.Lock()
    _pools.clear()


os.register_at_fork(after_in_child=_forget_after_fork)


def _pool(name: str, threads: int) -> ThreadPoolExecutor:
    with _lock:
        executor = _pools.get(name)
        if executor is None:
            executor = _pools[name] = ThreadPoolExecutor(threads, thread_name_prefix=f"responder-{name}")
        return executor


def pool(name: str) -> ThreadPoolExecutor:
    """The process-wide pool `name` (one of `THREADS`), created on first use."""
    return _pool(name, THREADS[name])


def aws_pool(service: str) -> ThreadPoolExecutor:
    """The process-wide pool of one AWS service's calls (`AWS_THREADS_PER_SERVICE` threads)."""
    return _pool(f"aws-{service}", AWS_THREADS_PER_SERVICE)


def notify_pool(url: str) -> ThreadPoolExecutor:
    """The pool of the webhook receiver `url` names (its `host:port`, case-folded): its own among the first
    `NOTIFY_HOSTS` receivers, the shared `notify` pool after them."""
    name = f"notify-{urllib.parse.urlsplit(url).netloc.casefold()}"
    with _lock:
        executor = _pools.get(name)
        if executor is None and sum(n.startswith("notify-") for n in _pools) < NOTIFY_HOSTS:
            executor = _pools[name] = ThreadPoolExecutor(NOTIFY_THREADS_PER_HOST,
                                                         thread_name_prefix=f"responder-{name}")
    return executor or pool(NOTIFY)


class _Job(Generic[R]):
    """What a pool's queue holds for one call: the call in a slot that a cancellation empties.

    `ThreadPoolExecutor` keeps a queued call (its callable and arguments) until a thread takes it off the queue,
    cancelled or not: behind a hung service, every call cancelled by a timeout would keep its arguments (a model's
    body, a policy document) alive for as long as the hang lasts. The future's done-callback empties the slot at
    once instead; a thread only calls a job whose future it has set running, which can no longer be cancelled.
    """

    __slots__ = ("_call",)

    def __init__(self, call: Callable[[], R]) -> None:
        self._call: Callable[[], R] | None = call

    def __call__(self) -> R:
        call = self._call
        if call is None:  # never: the pool does not run a job whose future was cancelled
            raise CancelledError
        return call()

    def drop(self, _future: Future[R]) -> None:
        """The future's done-callback: it is cancelled (never to run) or has finished, so the call is let go."""
        self._call = None


def submit(executor: ThreadPoolExecutor, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Future[R]:
    """Queue `fn(*args, **kwargs)` on `executor` in a copy of the caller's contextvars; `cancel()` drops it queued,
    and its references to `fn` and the arguments with it (`_Job`). Every call to the pools here goes through it."""
    job = _Job(functools.partial(contextvars.copy_context().run, fn, *args, **kwargs))
    future = executor.submit(job)
    future.add_done_callback(job.drop)
    return future


async def run_in(executor: ThreadPoolExecutor, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    """`asyncio.to_thread` on `executor`: run `fn` there with the caller's contextvars and await its result.

    Cancelling the awaiting task cancels the call if it has not started yet (as `to_thread` does).
    """
    return await asyncio.wrap_future(submit(executor, fn, *args, **kwargs))


async def run_detached(name: str, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    """Run `fn` in a daemon thread of its own (`responder-<name>`) with the caller's contextvars; await its result.

    For a short read that may block in the kernel without limit (a model registry's serving pointer on a hung NFS
    mount, or a FIFO): cancelling the awaiting task (a deadline) abandons the thread, and neither `asyncio.run`'s
    shutdown of the default executor nor the interpreter's exit (which joins every pool thread) waits for it.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[R] = loop.create_future()
    call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)

    def work() -> None:
        outcome: Callable[[], None]
        try:
            outcome = functools.partial(future.set_result, call())
        except BaseException as exc:  # noqa: BLE001 - raised again in the awaiting task, as to_thread does
            outcome = functools.partial(future.set_exception, exc)
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(_unless_done, future, outcome)

    threading.Thread(target=work, name=f"responder-{name}", daemon=True).start()
    return await future


def _unless_done(future: asyncio.Future[R], outcome: Callable[[], None]) -> None:
    if not future.done():  # else cancelled (a deadline): nobody waits any more
        outcome()

"""A call cancelled while queued behind a pool's hung threads holds nothing until a thread takes it off the queue.

`ThreadPoolExecutor` keeps a queued call's callable and arguments until a thread takes the call off its queue,
cancelled or not. Each test here holds every thread of a pool on an event, queues a call whose argument is only
reachable through it (watched with a `weakref`), cancels it the way responder does, and checks the argument is
gone while the threads are still held; then releases them and checks the cancelled call never ran.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import gc
import threading
import weakref
from collections.abc import Coroutine, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest

from responder.actuators.aws.session import AwsSession
from responder.errors import TransientActuationError
from responder.threadpools import AWS_THREADS_PER_SERVICE, aws_pool, run_in, submit

DETECT = 15.0  # failure detector only
SERVICE = "cancel-release"  # a pool of its own: no other test's calls queue there
CALLER: contextvars.ContextVar[str] = contextvars.ContextVar("caller")


class Payload:
    """A call's argument (a model's body, a policy document); plain, so a weakref tells when nothing holds it."""


@dataclass
class Held:
    """The blocking calls that hold every thread of a pool until `gate` is set."""

    gate: threading.Event
    blockers: list[Future[bool]]

    def holding(self) -> bool:
        return not self.gate.is_set() and not any(blocker.done() for blocker in self.blockers)


@contextlib.contextmanager
def held(executor: ThreadPoolExecutor, threads: int) -> Iterator[Held]:
    """`threads` calls running in `executor`, each blocked until the block exits (then awaited)."""
    gate = threading.Event()
    entered = threading.Semaphore(0)

    def block() -> bool:
        entered.release()
        return gate.wait(DETECT)

    blockers = [submit(executor, block) for _ in range(threads)]
    try:
        for _ in range(threads):
            assert entered.acquire(timeout=DETECT), "a blocker never started: the pool has fewer threads"
        yield Held(gate, blockers)
    finally:
        gate.set()
        for blocker in blockers:
            blocker.result(DETECT)


@dataclass
class FakeClient:
    """Stands in for a boto3 client of SERVICE; notes the `Key` of each `put_object` that ran."""

    ran: list[str] = field(default_factory=list)

    def put_object(self, *, Key: str, Body: object) -> dict[str, Any]:  # noqa: N803 - boto3's parameter names
        self.ran.append(Key)
        return {"Key": Key}


@pytest.fixture(name="executor")
def _executor() -> Iterator[ThreadPoolExecutor]:
    """A pool of one thread, shut down after the test."""
    executor = ThreadPoolExecutor(1, thread_name_prefix="cancel-release")
    yield executor
    executor.shutdown(wait=True)


@pytest.fixture(name="fake")
def _fake(monkeypatch: pytest.MonkeyPatch) -> FakeClient:
    """Every AwsSession's client is one FakeClient."""
    fake = FakeClient()
    monkeypatch.setattr(AwsSession, "client", lambda _self, _service: fake)
    return fake


async def gone(ref: weakref.ref[Payload]) -> bool:
    """Whether nothing holds the watched argument any more, cycles collected.

    It yields once first: until then the asyncio step that resumed the test holds what woke it (a cancelled task,
    the CancelledError a timeout threw in), whose traceback holds the finished call's frame and its arguments.
    """
    await asyncio.sleep(0)
    gc.collect()
    return ref() is None


async def abandon(call: Coroutine[Any, Any, object]) -> None:
    """Run `call` in a task and cancel the task once the call is submitted (queued behind the held threads)."""
    waiting = asyncio.create_task(call)
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting


async def test_a_job_cancelled_in_the_queue_drops_its_arguments_at_once(executor):
    """`submit`'s future cancelled while queued: its argument is freed while the pool's thread is still held."""
    ran: list[str] = []
    with held(executor, 1) as hold:
        payload = Payload()
        ref = weakref.ref(payload)
        job = submit(executor, lambda body: ran.append(type(body).__name__), payload)
        del payload
        assert job.cancel()
        assert await gone(ref), "the cancelled queued job still holds its argument"
        assert hold.holding()
    assert submit(executor, lambda: "after").result(DETECT) == "after"
    assert job.cancelled()
    assert ran == []


async def test_a_cancelled_awaiter_s_queued_job_drops_its_arguments(executor):
    """A task awaiting `run_in` cancelled while its job is queued: the job's argument is freed at once."""
    ran: list[str] = []
    with held(executor, 1) as hold:
        payload = Payload()
        ref = weakref.ref(payload)
        await abandon(run_in(executor, lambda body: ran.append(type(body).__name__), payload))
        del payload
        assert await gone(ref), "the cancelled caller's queued job still holds its argument"
        assert hold.holding()
    assert await run_in(executor, lambda: "after") == "after"
    assert ran == []


async def test_an_aws_call_that_timed_out_in_the_queue_drops_its_arguments(fake):
    """`AwsSession.call` timing out behind its service's hung threads: the call's Body is freed at once."""
    with held(aws_pool(SERVICE), AWS_THREADS_PER_SERVICE) as hold:
        payload = Payload()
        ref = weakref.ref(payload)
        code = None
        try:
            await AwsSession(call_timeout=0.05).call(SERVICE, "put_object", Key="timed-out", Body=payload)
        except TransientActuationError as exc:
            code = exc.code
        del payload
        assert code == "Timeout"
        assert await gone(ref), "the call that timed out in the queue still holds its Body"
        assert hold.holding()
    assert await AwsSession().call(SERVICE, "put_object", Key="after", Body=b"") == {"Key": "after"}
    assert fake.ran == ["after"]


async def test_an_aws_call_whose_caller_was_cancelled_in_the_queue_drops_its_arguments(fake):
    """`AwsSession.call` cancelled (a step's timeout) behind its service's hung threads: its Body is freed at once."""
    with held(aws_pool(SERVICE), AWS_THREADS_PER_SERVICE) as hold:
        payload = Payload()
        ref = weakref.ref(payload)
        await abandon(AwsSession().call(SERVICE, "put_object", Key="abandoned", Body=payload))
        del payload
        assert await gone(ref), "the cancelled caller's queued call still holds its Body"
        assert hold.holding()
    assert await AwsSession().call(SERVICE, "put_object", Key="after", Body=b"") == {"Key": "after"}
    assert fake.ran == ["after"]


async def test_a_job_that_runs_keeps_its_result_exception_and_context(executor):
    """Jobs not cancelled in the queue: results, exceptions and the caller's contextvars reach the caller as before."""
    CALLER.set("step-9")
    assert await run_in(executor, lambda suffix: CALLER.get() + suffix, "!") == "step-9!"
    assert submit(executor, CALLER.get).result(DETECT) == "step-9"
    with pytest.raises(KeyError, match="missing"):
        await run_in(executor, {}.__getitem__, "missing")
    with pytest.raises(KeyError, match="missing"):
        submit(executor, {}.__getitem__, "missing").result(DETECT)


async def test_a_running_job_is_not_affected_by_a_cancel(executor):
    """`cancel()` on a job already running returns False; the job keeps its argument and returns its result."""
    started, go = threading.Event(), threading.Event()

    def work(body: Payload) -> str:
        started.set()
        go.wait(DETECT)
        return type(body).__name__

    payload = Payload()
    ref = weakref.ref(payload)
    job = submit(executor, work, payload)
    del payload
    assert started.wait(DETECT)
    assert not job.cancel()
    assert not await gone(ref), "the running job lost its argument"
    go.set()
    assert job.result(DETECT) == "Payload"

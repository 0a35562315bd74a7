"""Bulkheads: SageMaker calls hung past any default pool starve no other service, the timeline, pages or Kafka auth.

A fake boto3 client (`AwsSession.client` patched) blocks its `list_endpoints` calls named `hung-*` on an event the
test releases at its end; every other call returns at once and notes the thread and context it ran in.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import multiprocessing
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import pytest
import structlog
from opentelemetry import context as otel_context

from responder.actuators import registry
from responder.actuators.aws.session import AwsSession
from responder.actuators.base import ActuationContext
from responder.errors import TransientActuationError
from responder.threadpools import AWS_THREADS_PER_SERVICE, NOTIFY, pool, run_in
from responder.timeline.recorder import Recorder
from responder.timeline.store import FileStore

T = TypeVar("T")
HUNG = 40  # more than the default executor has threads (min(32, cpu_count + 4)) and more than one service's pool
STARTED = min(32, (os.cpu_count() or 1) + 4, AWS_THREADS_PER_SERVICE)  # hung calls running before a probe goes
DETECT = 15.0  # failure detector only: what waits behind the hung calls never finishes while they hang
CALLER: contextvars.ContextVar[str] = contextvars.ContextVar("caller")


@dataclass
class FakeClient:
    """Stands in for every boto3 client; `hung-*` endpoint listings block until `gate` is set."""

    gate: threading.Event = field(default_factory=threading.Event)
    entered: list[str] = field(default_factory=list)

    def list_endpoints(self, *, NameContains: str) -> dict[str, Any]:  # noqa: N803 - boto3's parameter name
        self.entered.append(NameContains)
        if NameContains.startswith("hung"):
            self.gate.wait()
        return {"Endpoints": [], "NameContains": NameContains}

    def list_users(self) -> dict[str, Any]:
        return {"Users": [], "thread": threading.current_thread().name, "caller": CALLER.get(None),
                "bound": structlog.contextvars.get_contextvars(), "otel": otel_context.get_value("probe")}


@dataclass
class Hung:
    """The hung SageMaker calls; `hanging()` is true while none of them has returned."""

    aws: AwsSession
    fake: FakeClient
    tasks: list[asyncio.Task[dict[str, Any]]]

    def hanging(self) -> bool:
        return not self.fake.gate.is_set() and not any(task.done() for task in self.tasks)


@contextlib.asynccontextmanager
async def hung_sagemaker(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Hung]:
    """HUNG SageMaker calls in flight (the first ones running, blocked); released and awaited on exit."""
    fake = FakeClient()
    monkeypatch.setattr(AwsSession, "client", lambda _self, _service: fake)
    aws = AwsSession(call_timeout=60)
    tasks = [asyncio.create_task(aws.call("sagemaker", "list_endpoints", NameContains=f"hung-{n}"))
             for n in range(HUNG)]
    try:
        async with asyncio.timeout(DETECT):
            while len(fake.entered) < STARTED:
                await asyncio.sleep(0.01)
        yield Hung(aws, fake, tasks)
    finally:
        fake.gate.set()
        await asyncio.gather(*tasks, return_exceptions=True)


async def within(aw: Awaitable[T], what: str) -> T:
    """`aw`'s result, or a test failure naming `what` if it is still waiting after DETECT seconds."""
    try:
        return await asyncio.wait_for(aw, DETECT)
    except TimeoutError:
        pytest.fail(f"{what} waited behind the hung SageMaker calls")


@pytest.fixture(name="hook_url")
def _hook_url() -> Iterator[str]:
    """A 127.0.0.1 webhook receiver that answers 200."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks/security"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


async def test_a_call_to_another_service_completes_while_one_service_hangs(monkeypatch):
    """An IAM call returns while more SageMaker calls hang than any default pool holds."""
    async with hung_sagemaker(monkeypatch) as hung:
        result = await within(hung.aws.call("iam", "list_users"), "an IAM call")
        assert result["Users"] == []
        assert hung.hanging()


async def test_the_timeline_becomes_durable_while_aws_hangs(monkeypatch, tmp_path: Path):
    """A recorder's group commit (write + fsync) completes while SageMaker calls hang."""
    recorder = Recorder(FileStore(tmp_path / "timeline.jsonl"), writer="bulkhead")
    try:
        async with hung_sagemaker(monkeypatch) as hung:
            recorder.append("step.intent", {"step": "contain"}, "inc-1")
            await within(recorder.flush(), "the timeline's flush")
            assert recorder.syncs == 1
            assert b'"step.intent"' in (tmp_path / "timeline.jsonl").read_bytes()
            assert hung.hanging()
    finally:
        recorder.close()


async def test_a_page_is_posted_while_aws_hangs(monkeypatch, hook_url, unique):
    """A webhook notification reaches its receiver while SageMaker calls hang."""
    actuator = registry.get("notify.webhook.post_message")
    params = actuator.params.model_validate({"url": hook_url, "key_id": "oncall", "title": "key contained"})
    ctx = ActuationContext(aws=None, incident="inc-1", key=f"bulkhead-{unique}", webhook_keys={"oncall": b"s" * 32})  # type: ignore[arg-type]
    async with hung_sagemaker(monkeypatch) as hung:
        result = await within(actuator.apply(params, ctx), "the webhook post")
        assert result.outputs == {"status": 200}
        assert hung.hanging()


async def test_the_msk_token_is_refreshed_while_aws_hangs(monkeypatch):
    """The MSK IAM token (a fake signer) is generated while SageMaker calls hang."""
    pytest.importorskip("aws_msk_iam_sasl_signer")
    from responder.ingest.security import MskIamTokenProvider

    class Signer:
        @staticmethod
        def generate_auth_token(region: str) -> tuple[str, int]:
            return f"token-{region}", int((time.time() + 900) * 1000)

    provider = MskIamTokenProvider("eu-west-1")
    provider._signer = Signer  # type: ignore[assignment]
    async with hung_sagemaker(monkeypatch) as hung:
        assert await within(provider.token(), "the MSK token refresh") == "token-eu-west-1"
        assert hung.hanging()


async def test_a_call_that_timed_out_while_queued_never_runs(monkeypatch):
    """A SageMaker call queued behind a full pool times out (Timeout) at once and is never run afterwards."""
    async with hung_sagemaker(monkeypatch) as hung:
        impatient = AwsSession(call_timeout=0.05)
        with pytest.raises(TransientActuationError) as info:
            await within(impatient.call("sagemaker", "list_endpoints", NameContains="queued"), "the timed-out call")
        assert info.value.code == "Timeout"
        assert hung.hanging()
    await hung.aws.call("sagemaker", "list_endpoints", NameContains="after")  # queued after it: it ran first if ever
    assert "queued" not in hung.fake.entered, "the call that timed out in the queue ran after its timeout"
    assert "before it started" in str(info.value)


async def test_a_cancelled_caller_s_queued_call_never_runs(monkeypatch):
    """A SageMaker call still queued when its caller is cancelled (a step's timeout) is never run afterwards."""
    async with hung_sagemaker(monkeypatch) as hung:
        waiting = asyncio.create_task(hung.aws.call("sagemaker", "list_endpoints", NameContains="abandoned"))
        await asyncio.sleep(0)  # its call is submitted, behind the hung ones
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
    await hung.aws.call("sagemaker", "list_endpoints", NameContains="after")
    assert "abandoned" not in hung.fake.entered, "the cancelled caller's call ran after all"


async def test_the_caller_s_context_reaches_the_thread(monkeypatch):
    """contextvars, structlog's bound context and the OpenTelemetry context set by the caller are seen in the thread."""
    fake = FakeClient()
    monkeypatch.setattr(AwsSession, "client", lambda _self, _service: fake)
    CALLER.set("step-7")
    structlog.contextvars.bind_contextvars(incident="inc-7")
    token = otel_context.attach(otel_context.set_value("probe", "span-7"))
    try:
        seen = await AwsSession().call("iam", "list_users")
        direct = await run_in(pool(NOTIFY), fake.list_users)
    finally:
        otel_context.detach(token)
        structlog.contextvars.clear_contextvars()
    for got in (seen, direct):
        assert (got["caller"], got["bound"], got["otel"]) == ("step-7", {"incident": "inc-7"}, "span-7")
    assert seen["thread"].startswith("responder-aws-iam_")
    assert direct["thread"].startswith("responder-notify_")


def _use_the_pool_in_a_forked_child() -> None:
    assert pool(NOTIFY).submit(threading.current_thread).result(timeout=DETECT).name.startswith("responder-notify_")


def test_a_forked_child_gets_pools_of_its_own():
    """After a fork the child's pools have threads (the parent's idle ones do not exist there): its calls run."""
    assert pool(NOTIFY).submit(lambda: 1).result(timeout=DETECT) == 1  # the parent has an idle thread in it
    child = multiprocessing.get_context("fork").Process(target=_use_the_pool_in_a_forked_child)
    child.start()
    child.join(DETECT)
    exitcode = child.exitcode
    if exitcode is None:
        child.kill()
        child.join()
    assert exitcode == 0

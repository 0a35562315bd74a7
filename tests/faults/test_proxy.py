"""The fault proxy and the AWS session under it: what each fault looks like to responder, call by call."""

from __future__ import annotations

import asyncio

import pytest

from responder.actuators.aws.session import AwsSession
from responder.errors import PermanentActuationError, TransientActuationError
from responder.sandbox import SANDBOX_CREDENTIALS
from responder.sandbox.faults import FaultProxy

pytestmark = pytest.mark.integration


@pytest.fixture
def proxy(moto_server):
    """A proxy in front of the session's moto server."""
    moto_server.reset()
    with FaultProxy(moto_server.endpoint_url) as p:
        yield p


def _session(proxy: FaultProxy, timeout: float = 5.0) -> AwsSession:
    return AwsSession(endpoint_url=proxy.endpoint_url, credentials=SANDBOX_CREDENTIALS, call_timeout=timeout)


async def test_a_dropped_reply_is_applied_once_and_transient(proxy):
    """A call applied by moto whose reply is reset reaches moto once (no hidden botocore retry) and is transient."""
    aws = _session(proxy)
    await aws.call("s3", "create_bucket", Bucket="proxy-drop")
    proxy.drops(1)
    with pytest.raises(TransientActuationError):
        await aws.call("s3", "put_object", Bucket="proxy-drop", Key="k", Body=b"x")
    assert proxy.forwarded["s3:PutObject"] == 1
    assert (await aws.call("s3", "list_objects_v2", Bucket="proxy-drop"))["KeyCount"] == 1


@pytest.mark.parametrize(("arm", "code"), [
    (lambda p: p.throttle(5, 1.0), "Throttling"),
    (lambda p: p.errors(1), "InternalError"),
    (lambda p: p.resets(1), "ConnectionClosedError"),
])
async def test_throttling_5xx_and_resets_are_transient(proxy, arm, code):
    """Each is a TransientActuationError with the code AWS (or the connection) gives, and never reaches moto."""
    aws = _session(proxy)
    arm(proxy)
    with pytest.raises(TransientActuationError) as info:
        await aws.call("iam", "create_user", UserName="proxy-user")
    assert info.value.code == code
    assert proxy.forwarded["iam:CreateUser"] == 0


async def test_access_denied_is_permanent(proxy):
    """AccessDenied maps to a PermanentActuationError."""
    proxy.deny(1)
    with pytest.raises(PermanentActuationError):
        await _session(proxy).call("iam", "create_user", UserName="proxy-denied")


async def test_a_timed_out_call_has_landed_before_the_error(proxy):
    """When the call timeout fires, the slow call still applies; the session returns only after it has landed."""
    aws = _session(proxy, timeout=0.5)
    await aws.call("s3", "create_bucket", Bucket="proxy-slow")
    proxy.latency(1.5, 1)
    with pytest.raises(TransientActuationError):
        await aws.call("s3", "put_object", Bucket="proxy-slow", Key="k", Body=b"x")
    assert proxy.forwarded["s3:PutObject"] == 1  # already applied: a verify() now sees it


async def test_a_held_call_waits_until_released_then_reaches_moto(proxy):
    """hold(): the call waits at the proxy (moto has not seen it) until release(), then is applied once."""
    aws = _session(proxy, timeout=30)
    proxy.hold()
    task = asyncio.create_task(aws.call("iam", "create_user", UserName="proxy-held"))
    async with asyncio.timeout(20):  # failure detector only
        while not proxy.injected["hold"]:
            await asyncio.sleep(0.01)
    assert not task.done()
    assert proxy.forwarded["iam:CreateUser"] == 0
    proxy.release()
    await asyncio.wait_for(task, 20)
    assert proxy.forwarded["iam:CreateUser"] == 1


async def test_stopping_the_proxy_releases_held_calls(moto_server):
    """stop() lets a held call go instead of leaving its handler thread waiting forever."""
    proxy = FaultProxy(moto_server.endpoint_url)
    proxy.start()
    aws = _session(proxy, timeout=30)
    proxy.hold()
    task = asyncio.create_task(aws.call("iam", "list_users"))
    try:
        async with asyncio.timeout(20):
            while not proxy.injected["hold"]:
                await asyncio.sleep(0.01)
    finally:
        await asyncio.to_thread(proxy.stop)
    await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 20)  # it went on (or failed): not stuck

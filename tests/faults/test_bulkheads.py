"""Bulkheads on the moto server: SageMaker calls hung at the fault proxy do not hold up the same session's IAM calls."""

from __future__ import annotations

import asyncio
import os

import pytest

from responder.actuators.aws.session import AwsSession
from responder.sandbox import SANDBOX_CREDENTIALS
from responder.sandbox.aws import AwsSandbox
from responder.sandbox.faults import FaultProxy
from tests.faults.cloud import direct

pytestmark = pytest.mark.integration

OLD_POOL = min(32, (os.cpu_count() or 1) + 4)  # asyncio's default executor, which every AWS call shared before
HELD = OLD_POOL + 4
DETECT = 30.0  # failure detector only


async def test_an_iam_call_lands_in_moto_while_sagemaker_calls_hang(moto_server: AwsSandbox, unique: str):
    """More SageMaker calls held at the proxy than the old shared pool had threads: an IAM user is created first."""
    with FaultProxy(moto_server.endpoint_url, matches=lambda call: call.operation == "ListEndpoints") as proxy:
        aws = AwsSession(endpoint_url=proxy.endpoint_url, credentials=SANDBOX_CREDENTIALS, call_timeout=60)
        proxy.hold()
        held = [asyncio.create_task(aws.call("sagemaker", "list_endpoints")) for _ in range(HELD)]
        try:
            async with asyncio.timeout(DETECT):
                while proxy.injected["hold"] < OLD_POOL:  # the old pool's worth of calls wait at the proxy
                    await asyncio.sleep(0.02)
            user = f"bulkhead-{unique}"
            try:
                await asyncio.wait_for(aws.call("iam", "create_user", UserName=user), DETECT)
            except TimeoutError:
                pytest.fail("the IAM call waited behind the held SageMaker calls")
            assert (await direct(moto_server).call("iam", "get_user", UserName=user))["User"]["UserName"] == user
            assert not any(task.done() for task in held)
            assert proxy.forwarded["ListEndpoints"] == 0
        finally:
            proxy.release()
            results = await asyncio.gather(*held, return_exceptions=True)
    assert [r for r in results if not isinstance(r, dict)] == []  # released, every held call reached moto

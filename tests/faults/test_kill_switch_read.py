"""The fleet's kill switch read through the fault proxy to moto: a table that answers late costs a poll one bounded
read, the last value read stands meanwhile, and the switch is read again once the table answers."""

from __future__ import annotations

import asyncio

import pytest

from responder.actuators.aws.session import AwsSession
from responder.engine import fleetguard
from responder.engine.fleetguard import FleetGuard
from responder.sandbox import SANDBOX_CREDENTIALS
from responder.sandbox.faults import FaultProxy

pytestmark = pytest.mark.integration
ANSWERED_S = 10.0  # a read moto answers may take longer than 0.2 s on a loaded machine (CI 2026-12-07: the first)


async def test_a_late_table_holds_a_poll_for_one_bounded_read_then_the_switch_is_read_again(moto_server, unique,
                                                                                           monkeypatch):
    """A late kill-switch table makes `refresh` return the last value read, start no second read, then read again."""
    monkeypatch.setattr(fleetguard, "SWITCH_READ_S", ANSWERED_S)  # the reads the table answers: never late here
    monkeypatch.setattr(fleetguard, "SWITCH_RETRY_S", 0.2)
    table = f"guards-{unique}"
    with FaultProxy(moto_server.endpoint_url) as proxy:
        aws = AwsSession(endpoint_url=proxy.endpoint_url, credentials=SANDBOX_CREDENTIALS, call_timeout=10.0)
        guard = FleetGuard(aws, table, [])
        await guard.ensure_table()
        assert await guard.refresh() is False  # no item: off
        monkeypatch.setattr(fleetguard, "SWITCH_READ_S", 0.2)  # the late read's bound
        direct = AwsSession(endpoint_url=moto_server.endpoint_url, credentials=SANDBOX_CREDENTIALS)
        await direct.call("dynamodb", "describe_table", TableName=table)  # its client built before the late read
        proxy.latency(3.0, 1)
        assert await guard.refresh() is False  # the last value read
        assert proxy.forwarded["GetItem"] == 1  # returned while the late read was still held by the proxy
        await direct.call("dynamodb", "put_item", TableName=table,
                          Item={"pk": {"S": "kill-switch"}, "on": {"BOOL": True}})
        await asyncio.sleep(0.3)  # past the pause after a failed read
        assert await guard.refresh() is False  # not read: the late read has not ended
        assert proxy.forwarded["GetItem"] == 1
        while proxy.forwarded["GetItem"] < 2:  # the late read reaches moto, then ends
            await asyncio.sleep(0.05)
        while guard._reading is not None:
            await asyncio.sleep(0.05)
        monkeypatch.setattr(fleetguard, "SWITCH_READ_S", ANSWERED_S)
        assert await guard.refresh() is True
        assert proxy.forwarded["GetItem"] == 3

"""A replica whose partition's transactional producer dies (aiokafka 0.14's sender routine ends when its group
coordinator lookup loses the connection, as to a killed broker) rejoins in-process and goes on serving, each alert
acted on once (Apache Kafka; CI 2026-12-06: the 3-broker leader-kill test's replica exited 1 instead)."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError

from responder.actuators.aws.session import AwsSession
from responder.ingest.transactions import Transactions
from responder.sandbox.fixtures import on_apache_kafka
from responder.timeline.verify import verify_lines
from tests.integration.crash import effects
from tests.integration.rejoin_kit import one_replica, rejoined_once

kafka_bootstrap = on_apache_kafka()


def _lose_one_coordinator_lookup(monkeypatch: pytest.MonkeyPatch, lookups: list[str]) -> None:
    """The first transactional producer any service initialises gets one KafkaConnectionError from its next coordinator
    lookup (its first offsets' commit looks up the group coordinator): aiokafka's `Sender._find_coordinator` does not
    retry it, and its sender routine dies with "Unexpected error during batch delivery", as in the CI run."""
    assign = Transactions.assign

    async def assigning(self: Transactions, partitions: Any, deadline: float = 30.0) -> None:
        await assign(self, partitions, deadline)
        if lookups or not self.producers:
            return
        client = next(iter(self.producers.values())).client
        lookup = client.coordinator_lookup

        async def lost(*args: Any, **kwargs: Any) -> Any:
            client.coordinator_lookup = lookup  # once
            lookups.append(" ".join(str(getattr(arg, "name", arg)) for arg in args))
            raise KafkaConnectionError("Connection at 127.0.0.1 closed (reset by the killed broker)")

        client.coordinator_lookup = lost
        lookups.append("armed")

    monkeypatch.setattr(Transactions, "assign", assigning)


@pytest.mark.timeout(240)
async def test_a_dead_transactional_producer_rejoins_and_every_alert_acts_once(transactional, aws: AwsSession,
                                                                             unique, tmp_path, monkeypatch):
    """A dead transactional producer makes the replica rejoin with a new service, every alert acting once."""
    settings = await one_replica(transactional, aws, unique, tmp_path, kafka_transactions="on")
    lookups: list[str] = []
    _lose_one_coordinator_lookup(monkeypatch, lookups)
    logs, built, first, later = await rejoined_once(settings, aws, f"effects-{unique}",
                                                    acted=lambda key: bool(_results(tmp_path, key)))
    assert lookups == ["armed", f"GROUP {settings.group_id}"], lookups  # once, the group coordinator's lookup
    rejoining = [e for e in logs if e["event"] == "replica_rejoining"]
    assert [(e["reason"], e["rejoin"]) for e in rejoining] == [("transaction_failed", 1)], rejoining
    assert "Unexpected error during batch delivery" in rejoining[0]["error"]
    assert len(built) == 2
    counted = await effects(aws, f"effects-{unique}")
    assert (counted[first], counted[later]) == (1, 1), counted
    # the first alert, its offsets' commit aborted, came again to the new service: its step, whose intent was
    # committed before acting and whose result was aborted, was resolved by verify(), not acted on again
    assert [b'"recovered":true' in line for line in _results(tmp_path, first)] == [False, True]
    lines = (tmp_path / "timeline.jsonl").read_bytes().splitlines()
    assert verify_lines(lines).entries == len(lines)  # both services wrote one chain


def _results(tmp_path: Any, key: str) -> list[bytes]:
    """The timeline's put-marker results for `key`."""
    return [line for line in (tmp_path / "timeline.jsonl").read_bytes().splitlines()
            if b'"step.result"' in line and b"put-marker" in line and key.encode() in line]

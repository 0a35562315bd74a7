"""Two `responder run` replicas in one consumer group without RESPONDER_CHANGELOG_TOPIC (the chart's and compose's
default before 2026-12-07) on the test broker: each says it shares its group outside fleet mode (the gauge
`responder_group_shared_without_fleet`, a `/readyz` warning), and the one left alone stops saying so."""

from __future__ import annotations

import contextlib

import pytest

from responder.service import Service
from tests.http import http_request
from tests.integration.harness import make_settings, running, wait_for

pytestmark = pytest.mark.integration
GAUGE = "responder_group_shared_without_fleet"


def _shared(service: Service) -> bool:
    return service.metrics.value(GAUGE) == 1


async def test_two_replicas_outside_a_fleet_in_one_group_each_report_it(kafka_bootstrap, aws, topics, unique, tmp_path,
                                                                        runbooks_dir) -> None:
    """Both non-fleet members of one group set the gauge and warn on /readyz; alone again, the survivor clears it."""
    first, second = (Service(make_settings(kafka_bootstrap, aws, topics, unique, tmp_path / f"t{n}.jsonl", runbooks_dir,
                                           metrics_host="127.0.0.1", metrics_port=0)) for n in (1, 2))
    async with running(first):
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(running(second))
            await wait_for(lambda: _shared(first) and _shared(second), 60,
                           what="two non-fleet members of one group did not both report it")
            assert first.metrics_server is not None
            status, body = await http_request(first.metrics_server.port, "/readyz")
            assert status == 200  # reported, not unready: readiness does not stop a replica from consuming
            assert body.startswith("ready\nwarning: ")
            assert "RESPONDER_CHANGELOG_TOPIC is unset" in body
        # the second left the group: the first is given every partition and says nothing more
        await wait_for(lambda: not _shared(first) and "RESPONDER_CHANGELOG_TOPIC" not in (first.warning() or ""), 60,
                       what="the replica left alone still reports a shared group")
        assert {tp.partition for tp in first.ingest.assigned()} == {0, 1, 2}

"""The service's metrics after a real alert: steps, matches, outcomes, alert → dispatch, fsync, lag."""

from __future__ import annotations

import pytest

from responder.ingest.kafka import publish
from responder.service import Service
from tests.findings import envelope_bytes, guardduty_finding
from tests.integration.harness import make_settings, running, send_to_partition, wait_for

pytestmark = pytest.mark.integration


async def test_metrics_follow_an_alert_to_its_action(kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir):
    """One finding → a step counted by actuator and outcome, a dispatch latency, fsyncs timed, lag 0."""
    await aws.call("iam", "create_user", UserName="ml-training")
    key = (await aws.call("iam", "create_access_key", UserName="ml-training"))["AccessKey"]["AccessKeyId"]
    service = Service(make_settings(kafka_bootstrap, aws, topics, unique, tmp_path / "t.jsonl", runbooks_dir))
    m = service.metrics
    async with running(service):
        await publish(kafka_bootstrap, topics["alerts"], [envelope_bytes(guardduty_finding(key))], key=key.encode())
        await wait_for(lambda: m.value("responder_steps_total", runbook="iam-credential-compromise",
                                       actuator="aws.iam.deactivate_access_key", outcome="ok") == 1)
        await wait_for(lambda: any(s.name == "responder_consumer_lag" for f in m.registry.collect()
                                   for s in f.samples))
    assert m.value("responder_alert_to_dispatch_seconds_count") >= 1
    assert m.value("responder_timeline_fsync_seconds_count") >= 1
    assert m.value("responder_event_outcomes_total", source="guardduty", outcome="matched") == 1
    assert sum(s.value for f in m.registry.collect() for s in f.samples
               if s.name == "responder_runbook_matches_total") >= 1
    lags = [s.value for f in m.registry.collect() for s in f.samples if s.name == "responder_consumer_lag"]
    assert lags == [0.0] * len(lags)
    assert m.value("responder_approvals_parked") == 0


def _lagged(service: Service) -> set[int]:
    """The partitions `service` exports a consumer lag for."""
    return {int(s.labels["partition"]) for f in service.metrics.registry.collect() for s in f.samples
            if s.name == "responder_consumer_lag"}


async def test_a_partition_moved_to_another_replica_leaves_no_lag_series_on_its_old_owner(
        kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir):
    """A replica that loses partitions to a second one of its group exports a lag only for those it still owns."""
    first, second = (Service(make_settings(kafka_bootstrap, aws, topics, unique, tmp_path / f"{name}.jsonl",
                                           runbooks_dir)) for name in ("first", "second"))
    async with running(first):
        for partition in range(3):
            await send_to_partition(kafka_bootstrap, topics["alerts"], partition, b'{"x": 1}', [])
        await wait_for(lambda: _lagged(first) == {0, 1, 2})
        async with running(second):
            await wait_for(lambda: bool(second.ingest.assigned()) and first.ingest.assigned().isdisjoint(
                second.ingest.assigned()) and _lagged(first) <= {tp.partition for tp in first.ingest.assigned()},
                           what="the first replica still exports a lag for a partition the second one owns")
            assert len(first.ingest.assigned()) < 3

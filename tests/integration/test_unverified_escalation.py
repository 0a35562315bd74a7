"""A containment step that applies but does not take effect, run by the engine against moto: on-call hears of it;
one whose read-back only lags the change (IAM is eventually consistent) is read again and pages nobody."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from responder.actuators import registry
from responder.actuators.retry import VerifySettle
from responder.catalog import load_runbooks
from responder.models import RawRecord
from responder.pipeline import Pipeline
from tests.fakes import Lagging, Waits
from tests.integration.actuator_cases import _instance
from tests.integration.example_kit import (
    EXAMPLE_INSTANCE,
    EXAMPLE_KEY,
    EXAMPLES,
    ROOT,
    RecordingPublisher,
    example_engine,
    example_user_key,
)

pytestmark = pytest.mark.integration
RUNBOOK = "compromised-inference-host"


async def _run(aws: Any, instance: str) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]], RecordingPublisher]:
    """The shipped runbook on its example naming `instance`: step results by step, step.escalated bodies, publisher."""
    books = [b for b in load_runbooks(ROOT / "runbooks", registry) if b.id == RUNBOOK]
    engine, publisher = example_engine(aws)
    raw = (EXAMPLES / f"{RUNBOOK}.json").read_text().replace(EXAMPLE_INSTANCE, instance)
    await Pipeline(books, engine).handle(RawRecord(topic="alerts", value=raw.encode()))
    await engine.recorder.flush()
    entries = list(engine.recorder.entries())
    return ({e.body["step"]: e.body for e in entries if e.kind == "step.result"},
            [e.body for e in entries if e.kind == "step.escalated"], publisher)


async def test_a_snapshot_of_a_host_whose_volumes_were_detached_escalates(aws):
    """The evidence moved off the host before the alert: the snapshot is ok but unverified, and on-call is paged."""
    instance = (await _instance(aws))["instance_id"]
    attached = [{"Name": "attachment.instance-id", "Values": [instance]}]
    volumes = await aws.call("ec2", "describe_volumes", Filters=attached)
    for volume in volumes["Volumes"]:
        await aws.call("ec2", "detach_volume", VolumeId=volume["VolumeId"], InstanceId=instance, Force=True)
    results, escalated, publisher = await _run(aws, instance)
    assert (results["isolate-host"]["status"], results["isolate-host"]["verified"]) == ("ok", True)
    assert (results["snapshot-volumes"]["status"], results["snapshot-volumes"]["verified"]) == ("ok", False)
    assert [(b["step"], b["status"], b["code"]) for b in escalated] == [
        ("snapshot-volumes", "unverified", "Unverified")]
    pages = [body for _, body in publisher.sent if body["title"].startswith("containment failed")]
    assert [(p["fields"]["step"], p["fields"]["status"]) for p in pages] == [("snapshot-volumes", "unverified")]
    assert results["notify-oncall"]["status"] == "ok"  # the run went on


async def test_a_host_contained_and_snapshotted_escalates_nothing(aws):
    """The same runbook on an intact host: every step verifies and nobody is paged about a failure."""
    instance = (await _instance(aws))["instance_id"]
    results, escalated, publisher = await _run(aws, instance)
    assert [r["verified"] for r in results.values()] == [True, True, True]
    assert escalated == []
    assert not any(body["title"].startswith("containment failed") for _, body in publisher.sent)


async def _deactivate_lagging(aws: Any, stale: int, findings: int = 1) -> tuple[dict[str, Any], list[dict[str, Any]],
                                                                            Waits, Lagging]:
    """The shipped iam-credential-compromise runbook on a moto key whose status IAM reads back as before its
    deactivation for `stale` reads after it, for `findings` distinct findings: the deactivate step's last result,
    step.escalated bodies, waits, lag."""
    user_key = await example_user_key(aws)
    books = [b for b in load_runbooks(ROOT / "runbooks", registry) if b.id == "iam-credential-compromise"]
    lag, waits = Lagging(aws.call, stale=stale), Waits()
    engine, _ = example_engine(lag, verify_settle=VerifySettle(5.0, sleep=waits.sleep, clock=waits.clock))
    raw = (EXAMPLES / "iam-credential-compromise.json").read_text().replace(EXAMPLE_KEY, user_key[EXAMPLE_KEY])
    pipeline = Pipeline(books, engine)
    for n in range(findings):
        distinct = raw.replace("iamkey3b7e", f"iamkey{n}b7e").replace("12:00:00.000Z", f"12:0{n}:00.000Z")
        await pipeline.handle(RawRecord(topic="alerts", value=distinct.encode()))
    await engine.recorder.flush()
    entries = list(engine.recorder.entries())
    results = [e.body for e in entries if e.kind == "step.result" and e.body["step"] == "deactivate-key"]
    assert len(results) == findings
    return results[-1], [e.body for e in entries if e.kind == "step.escalated"], waits, lag


async def test_a_key_deactivation_iam_reads_back_late_is_verified_and_pages_nobody(aws):
    """IAM reads the key Active twice after deactivating it: verified on the 3rd read, no unverified page."""
    result, escalated, waits, lag = await _deactivate_lagging(aws, stale=2)
    assert (result["status"], result["verified"], result["verify_reads"]) == ("ok", True, 3)
    assert (lag.stale_answers, waits.waited, escalated) == (2, [0.5, 1.0], [])
    [key] = (await aws.call("iam", "list_access_keys", UserName="ml-training"))["AccessKeyMetadata"]
    assert key["Status"] == "Inactive"


async def test_a_key_deactivation_that_never_reads_back_is_escalated_after_the_settle(aws):
    """A read-back still stale once the settle is over: unverified after 5 reads, escalated once."""
    result, escalated, waits, _ = await _deactivate_lagging(aws, stale=99)
    assert (result["status"], result["verified"], result["verify_reads"]) == ("ok", False, 5)
    assert sum(waits.waited) == 5.0
    assert [(b["step"], b["status"]) for b in escalated] == [("deactivate-key", "unverified")]


async def test_a_key_re_enabled_as_fast_as_it_is_disabled_settles_once_then_reads_once(aws):
    """A second finding re-applying a step already unverified after its settle reads once: no second 5 s wait."""
    result, escalated, waits, _ = await _deactivate_lagging(aws, stale=99, findings=2)
    assert (result["verified"], "verify_reads" in result, sum(waits.waited)) == (False, False, 5.0)
    assert [(b["step"], b["status"]) for b in escalated] == [("deactivate-key", "unverified")] * 2


def _deny_read_back(aws: Any, code: str = "AccessDenied", status: int = 403,
                    message: str = "not authorized to perform: iam:ListAccessKeys") -> list[str]:
    """Make IAM answer `code` (AccessDenied: the responder's role lost `iam:ListAccessKeys`) to `ListAccessKeys` once
    `UpdateAccessKey` has been called: a real error response parsed by botocore, classified by the session. Returns
    the operations refused."""
    client, denied, updated = aws.client("iam"), [], [False]

    def update(**_: Any) -> None:
        updated[0] = True

    def deny(model: Any, **_: Any) -> tuple[Any, dict[str, Any]] | None:
        if not updated[0]:
            return None
        denied.append(model.name)
        error = {"Code": code, "Message": message}
        return AWSResponse("", status, {}, None), {"Error": error, "ResponseMetadata": {"HTTPStatusCode": status}}

    client.meta.events.register("before-call.iam.UpdateAccessKey", update)
    client.meta.events.register("before-call.iam.ListAccessKeys", deny)
    return denied


async def test_a_key_deactivation_whose_read_back_is_denied_pages_at_once_with_the_error(aws):
    """A denied read-back of a deactivated key leaves the step ok but unverified, escalated once naming the error."""
    denied = _deny_read_back(aws)
    result, escalated, waits, _ = await _deactivate_lagging(aws, stale=0)
    assert (result["status"], result["verified"], "verify_reads" in result, waits.waited) == ("ok", False, False, [])
    assert result["verify_error"] == "AccessDenied: not authorized to perform: iam:ListAccessKeys"
    assert denied == ["ListAccessKeys"]
    assert [(b["step"], b["status"]) for b in escalated] == [("deactivate-key", "unverified")]
    assert "reading it failed: AccessDenied: not authorized" in escalated[0]["error"]


async def test_a_key_deactivation_whose_read_back_is_throttled_to_the_end_pages_with_the_last_error(aws):
    """A key read-back throttled throughout the settle ends unverified after 5 reads, paging the last read's error."""
    denied = _deny_read_back(aws, "Throttling", 400, "Rate exceeded")
    result, escalated, waits, _ = await _deactivate_lagging(aws, stale=0)
    assert (result["status"], result["verified"], result["verify_reads"]) == ("ok", False, 5)
    assert result["verify_error"] == "Throttling: Rate exceeded"
    assert (sum(waits.waited), len(denied)) == (5.0, 5)
    assert [(b["step"], b["status"]) for b in escalated] == [("deactivate-key", "unverified")]
    assert "reading it failed: Throttling: Rate exceeded" in escalated[0]["error"]

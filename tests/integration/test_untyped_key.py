"""Against moto: an untyped SIEM key alert contains the key of the user it names, and only if IAM says it is theirs."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from responder.actuators import registry
from responder.catalog import load_runbooks
from responder.models import RawRecord
from responder.pipeline import Pipeline
from tests.integration.example_kit import (
    EXAMPLES,
    LEAKED_KEY,
    ROOT,
    RecordingPublisher,
    example_engine,
    inline_policy_names,
    key_inactive,
    leaked_example_key,
)

pytestmark = pytest.mark.integration


def _untyped(key: str, user: str) -> bytes:
    """The shipped Splunk exposed-key alert without `user_type`, naming `key` and `user`."""
    doc: dict[str, Any] = orjson.loads((EXAMPLES / "access-key-compromise.json").read_bytes())
    doc["result"].pop("user_type")
    doc["result"] |= {"affectedEntities{}.entityValue": key, "user_name": user}
    return orjson.dumps(doc)


async def _run(aws: Any, raw: bytes) -> tuple[dict[str, dict[str, Any]], RecordingPublisher]:
    engine, publisher = example_engine(aws)
    await Pipeline(load_runbooks(ROOT / "runbooks", registry), engine).handle(RawRecord(topic="alerts", value=raw))
    await engine.recorder.flush()
    return {e.body["step"]: e.body for e in engine.recorder.entries() if e.kind == "step.result"}, publisher


async def test_an_untyped_alert_deactivates_the_named_user_s_key_and_revokes_their_sessions(aws):
    """Splunk, no user_type, the key's real owner named: the key is Inactive and the owner's sessions revoked."""
    key = (await leaked_example_key(aws))[LEAKED_KEY]
    results, publisher = await _run(aws, _untyped(key, "ml-training"))
    assert [(s, r["status"]) for s, r in results.items()] == [
        ("deactivate-key", "ok"), ("revoke-sessions", "ok"), ("notify-oncall", "ok")]
    assert await key_inactive(aws, "ml-training", key)
    assert await inline_policy_names(aws, "ml-training") == ["responder-revoke-older-sessions"]
    assert [body["title"] for _, body in publisher.sent] == ["leaked IAM access key deactivated and sessions revoked"]


async def test_an_untyped_alert_naming_a_namesake_touches_nobody_and_pages(aws):
    """An untyped Splunk alert naming a key with a namesake user fails deactivate-key, revokes nothing, and pages."""
    key = (await leaked_example_key(aws))[LEAKED_KEY]
    await aws.call("iam", "create_user", UserName="alice")
    results, publisher = await _run(aws, _untyped(key, "alice"))
    assert [(s, r["status"]) for s, r in results.items()] == [
        ("deactivate-key", "failed"), ("escalate-oncall.deactivate-key", "ok")]
    assert await inline_policy_names(aws, "alice") == []
    keys = (await aws.call("iam", "list_access_keys", UserName="ml-training"))["AccessKeyMetadata"]
    assert [k["Status"] for k in keys] == ["Active"]
    [(_, page)] = publisher.sent
    assert (page["severity"], page["fields"]["target"], page["fields"]["status"]) == ("critical", key, "failed")

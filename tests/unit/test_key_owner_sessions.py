"""A later alert naming a contained key with another user's name never acts on that other user."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from responder.engine.approvals import MemoryPublisher
from responder.models import RawRecord
from responder.timeline import MemoryStore
from tests.fakes import FakeIam, test_registry
from tests.kit import KEY, Clock, Kit

ROOT = Path(__file__).resolve().parents[2]
OWNER, NAMESAKE = "ml-training", "admin"  # the key's real owner; a real IAM user an alert may name instead


def _kit(tmp_path: Path, runbook: str) -> Kit:
    books = tmp_path / "runbooks"
    books.mkdir()
    shutil.copy(ROOT / "runbooks" / f"{runbook}.yaml", books)
    reg, echo, wipe = test_registry()
    iam = FakeIam()
    iam.add_key(OWNER, KEY)
    iam.add_key(NAMESAKE, "AKIAADMINKEY00000000")
    kit = Kit(MemoryStore(), iam, echo, wipe, MemoryPublisher(), Clock(), books, reg)
    kit.start()
    return kit


@pytest.mark.parametrize("first", [OWNER, NAMESAKE])
async def test_a_key_named_with_another_user_revokes_no_session_of_that_user(tmp_path: Path, first: str) -> None:
    """A key named with another real user's name fails on the key and pages, never revoking that user's sessions."""
    kit = _kit(tmp_path, "iam-credential-compromise")
    other = NAMESAKE if first == OWNER else OWNER
    await kit.send(user=first, finding_id="f1", updated="2026-11-25T10:00:00.000Z")
    await kit.send(user=other, finding_id="f2", updated="2026-11-25T10:10:00.000Z")
    assert sorted(user for user, _ in kit.iam.user_policies) == [OWNER]
    assert kit.iam.keys[KEY]["Status"] == "Inactive"
    failed = [r for r in kit.entries("step.result") if r["status"] != "ok"]
    assert [(r["step"], r["target"]) for r in failed if r["step"] == "deactivate-key"] == [("deactivate-key", KEY)]



def _splunk(user: str, n: int) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads((ROOT / "runbooks/examples/access-key-compromise.json").read_bytes())
    doc["sid"] = f"{doc.get('sid')}-{n}"
    doc["result"] |= {"affectedEntities{}.entityValue": KEY, "user_name": user, "_time": str(1764039990 + n)}
    return doc


def _cloudtrail(user: str, n: int) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads((ROOT / "runbooks/examples/llmjacking.json").read_bytes())
    doc["eventID"] = f"{doc.get('eventID')}-{n}"
    doc["userIdentity"] |= {"accessKeyId": KEY, "userName": user, "arn": f"arn:aws:iam::123456789012:user/{user}"}
    return doc


@pytest.mark.parametrize(("runbook", "build", "principal_step"), [
    ("access-key-compromise", _splunk, "revoke-sessions"),
    ("llmjacking", _cloudtrail, "deny-bedrock"),
])
async def test_no_runbook_acts_on_a_name_its_key_step_did_not_vouch_for(
        tmp_path: Path, runbook: str, build: Callable[[str, int], dict[str, Any]], principal_step: str) -> None:
    """No runbook revokes sessions or denies Bedrock to another user named with an already contained key."""
    kit = _kit(tmp_path, runbook)
    assert kit.pipeline is not None
    for n, user in enumerate([OWNER, NAMESAKE]):
        await kit.pipeline.handle(RawRecord(topic="t", value=orjson.dumps(build(user, n))))
        await kit.engine.recorder.flush()
    done = [(r["step"], r["target"]) for r in kit.entries("step.result") if r["status"] == "ok"]
    assert (principal_step, f"user/{OWNER}") in done
    assert not [t for s, t in done if s == principal_step and NAMESAKE in t]
    assert sorted(user for user, _ in kit.iam.user_policies) == [OWNER]

"""Undo through the engine's own timeline against moto: reverse order, recorded, once; and the `undo` command."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from responder.actuators import registry
from responder.catalog import load_runbooks
from responder.cli import app
from responder.engine import Engine
from responder.engine.undo import Undoer
from responder.models import RawRecord
from responder.pipeline import Pipeline
from responder.sandbox import SANDBOX_CREDENTIALS, lifeline
from responder.timeline import MemoryStore, Recorder
from responder.timeline.chain import parse_lines, verify_entries
from responder.timeline.store import FileStore
from tests.findings import envelope_bytes, guardduty_finding
from tests.integration.actuator_cases import throttle
from tests.kit import HEADER, deactivate_key_step

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]

RUNBOOK = HEADER.format(id="contain-user") + "steps:\n" + deactivate_key_step("RETRIES") + """\
  - id: revoke-sessions
    actuator: aws.iam.revoke_sessions
    with: {principal_type: user, principal_name: "${event.resource.iam_user.name}"}
"""


async def _seed(aws) -> str:
    await aws.call("iam", "create_user", UserName="ml-training")
    return str((await aws.call("iam", "create_access_key", UserName="ml-training"))["AccessKey"]["AccessKeyId"])


async def _contain(aws, store, tmp_path, retries: int = 3) -> tuple[Recorder, str, str]:
    key = await _seed(aws)
    (tmp_path / "rb").mkdir(exist_ok=True)
    (tmp_path / "rb" / "contain-user.yaml").write_text(RUNBOOK.replace("RETRIES", str(retries)))
    engine = Engine(Recorder(store), registry, aws)
    pipeline = Pipeline(load_runbooks(tmp_path / "rb", registry), engine)
    [incident] = await pipeline.handle(RawRecord(topic="t", value=envelope_bytes(guardduty_finding(key))))
    await engine.recorder.flush()
    return engine.recorder, incident.id, key


async def _status(aws, key: str) -> str:
    keys = (await aws.call("iam", "list_access_keys", UserName="ml-training"))["AccessKeyMetadata"]
    return next(k["Status"] for k in keys if k["AccessKeyId"] == key)


async def test_undo_reverses_steps_newest_first(aws, tmp_path):
    """Undo lifts the session revocation, then re-activates the key, recording intent and result for each."""
    recorder, incident, key = await _contain(aws, MemoryStore(), tmp_path)
    assert await _status(aws, key) == "Inactive"
    outcomes = await Undoer(recorder, registry, aws).undo(incident)
    assert [(o["step"], o["reverse"], o["status"]) for o in outcomes] == [
        ("revoke-sessions", "aws.iam.restore_inline_policy", "ok"),
        ("deactivate-key", "aws.iam.activate_access_key", "ok"),
    ]
    assert await _status(aws, key) == "Active"
    policies = await aws.call("iam", "list_user_policies", UserName="ml-training")
    assert policies["PolicyNames"] == []
    undo_kinds = [e.kind for e in recorder.entries() if e.kind.startswith("undo.")]
    assert undo_kinds == ["undo.intent", "undo.result", "undo.intent", "undo.result"]
    assert verify_entries(recorder.entries())[0] == len(list(recorder.entries()))


async def test_undo_of_one_step_leaves_the_others(aws, tmp_path):
    """--step undoes only that step; undoing it again is refused as nothing is left to undo."""
    recorder, incident, key = await _contain(aws, MemoryStore(), tmp_path)
    [outcome] = await Undoer(recorder, registry, aws).undo(incident, step="deactivate-key")
    assert outcome["status"] == "ok"
    assert await _status(aws, key) == "Active"
    policies = await aws.call("iam", "list_user_policies", UserName="ml-training")
    assert policies["PolicyNames"] == ["responder-revoke-older-sessions"]
    from responder.errors import ConfigError

    with pytest.raises(ConfigError, match="deactivate-key"):
        await Undoer(recorder, registry, aws).undo(incident, step="deactivate-key")


async def test_exhausted_retries_are_recorded_as_a_failed_step(aws, tmp_path):
    """Throttling on every IAM call exhausts the step's retries: a failed, non-permanent step.result is recorded."""
    store = MemoryStore()
    key = await _seed(aws)
    failed = throttle(aws, "iam", 1000)
    (tmp_path / "rb").mkdir()
    (tmp_path / "rb" / "contain-user.yaml").write_text(RUNBOOK.replace("RETRIES", "1"))
    engine = Engine(Recorder(store), registry, aws)
    pipeline = Pipeline(load_runbooks(tmp_path / "rb", registry), engine)
    await pipeline.handle(RawRecord(topic="t", value=envelope_bytes(guardduty_finding(key))))
    await engine.recorder.flush()
    results = [e.body for e in Recorder(store).entries() if e.kind == "step.result"]
    assert len(results) == 1
    assert (results[0]["status"], results[0]["code"], results[0]["permanent"]) == ("failed", "ThrottlingException",
                                                                                   False)
    assert len(failed) == 3  # the before-state read once, then 1 + 1 retry attempts


def _contained_in_file(aws, moto_server, tmp_path) -> tuple[Path, str, str, dict[str, str]]:
    """The key contained by a runbook run on a timeline file: its path, the incident, the key, and the environment
    a command needs to reach moto."""
    path = tmp_path / "timeline.jsonl"
    store = FileStore(path)
    _, incident, key = asyncio.run(_contain(aws, store, tmp_path))
    store.close()
    env = {"RESPONDER_AWS_ENDPOINT_URL": moto_server.endpoint_url,
           "RESPONDER_AWS_ACCESS_KEY_ID": SANDBOX_CREDENTIALS["aws_access_key_id"],
           "RESPONDER_AWS_SECRET_ACCESS_KEY": SANDBOX_CREDENTIALS["aws_secret_access_key"]}
    return path, incident, key, env


def test_undo_command_restores_and_records(aws, moto_server, tmp_path):
    """`responder undo INCIDENT --timeline PATH --json` re-activates the key and the timeline still verifies."""
    path, incident, key, env = _contained_in_file(aws, moto_server, tmp_path)
    result = CliRunner().invoke(app, ["undo", incident, "--timeline", str(path), "--json"], env=env)
    assert result.exit_code == 0, result.output
    summary = orjson.loads(result.stdout.splitlines()[-1])
    assert summary["ok"] is True
    assert [s["step"] for s in summary["steps"]] == ["revoke-sessions", "deactivate-key"]
    assert asyncio.run(_status(aws, key)) == "Active"
    entries = list(parse_lines(path.read_bytes().splitlines()))
    assert verify_entries(entries)[0] == len(entries)
    again = CliRunner().invoke(app, ["undo", incident, "--timeline", str(path), "--step", "deactivate-key"], env=env)
    assert again.exit_code == 3


async def test_destructive_reverse_needs_explicit_permission(aws):
    """Undoing a start (whose reverse is the destructive stop) is skipped unless allow_destructive is set."""
    from responder.actuators.base import ActuationContext
    from responder.models.timeline import EntryKind
    from tests.integration.actuator_cases import _instance, _state

    params = await _instance(aws)
    await aws.call("ec2", "stop_instances", InstanceIds=[params["instance_id"]])
    actuator = registry.get("aws.ec2.start_instance")
    p = actuator.params.model_validate(params)
    result = await actuator.apply(p, ActuationContext(aws=aws, incident="inc", key="k" * 32))
    recorder = Recorder(MemoryStore())
    head = {"step": "start", "actuator": actuator.name, "target": result.target, "key": "k" * 32}
    recorder.append(EntryKind.STEP_INTENT, {**head, "params": params}, "inc")
    recorder.append(EntryKind.STEP_RESULT, {**head, "status": "ok", "changed": True, "prior": result.prior,
                                            "after": result.after, "outputs": {}}, "inc")
    [skipped] = await Undoer(recorder, registry, aws).undo("inc")
    assert skipped["status"] == "skipped"
    assert "destructive" in skipped["reason"]
    [done] = await Undoer(recorder, registry, aws, allow_destructive=True).undo("inc")
    assert done["status"] == "ok"
    assert await _state(aws, params) in ("stopping", "stopped")


async def test_undo_via_kafka_is_executed_and_recorded_by_the_running_service(kafka_bootstrap, aws, topics, unique,
                                                                              tmp_path):
    """`undo --via kafka` to a running service: key active again, recorded by the service alone, chain intact."""
    import os
    import sys

    from responder.ingest.kafka import publish
    from responder.service import Service
    from responder.timeline.checkpoint import generate_keypair
    from tests.integration.harness import make_settings, running, wait_for

    key = await _seed(aws)
    (tmp_path / "rb").mkdir()
    (tmp_path / "rb" / "contain-user.yaml").write_text(RUNBOOK.replace("RETRIES", "3"))
    path = tmp_path / "timeline.jsonl"
    ops = {"operator_requests_topic": f"opreq-{unique}", "operator_replies_topic": f"oprep-{unique}"}
    private, public = generate_keypair()
    settings = make_settings(kafka_bootstrap, aws, topics, unique, path, tmp_path / "rb",
                             approval_keys={"ops": "operator-secret"}, timeline_signing_key=private,
                             operator_permissions={"ops": ["undo"]}, **ops)
    service = Service(settings)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RESPONDER_", "AWS_"))}
    env |= {"RESPONDER_KAFKA_BOOTSTRAP": kafka_bootstrap, "RESPONDER_APPROVAL_KEYS": '{"ops": "operator-secret"}',
            "RESPONDER_APPROVAL_KEY_ID": "ops", "RESPONDER_OPERATOR_REQUESTS_TOPIC": ops["operator_requests_topic"],
            "RESPONDER_OPERATOR_REPLIES_TOPIC": ops["operator_replies_topic"], "RESPONDER_TIMELINE_VERIFY_KEY": public,
            "RESPONDER_TIMELINE_PATH": str(tmp_path / "not-the-service-timeline.jsonl")}
    async with running(service):
        await publish(kafka_bootstrap, topics["alerts"], [envelope_bytes(guardduty_finding(key))], key=key.encode())
        await wait_for(lambda: len(service.engine.state.results()) == 2, timeout=60)
        assert await _status(aws, key) == "Inactive"
        [incident] = {e.incident for e in service.recorder.entries() if e.kind == "incident.opened"}
        forced = await lifeline.exec_async(  # `ops` may undo, not force one (operator_permissions)
            sys.executable, "-m", "responder", "undo", str(incident), "--via", "kafka", "--by", "alice", "--force",
            cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        _, refused = await asyncio.wait_for(forced.communicate(), 120)
        assert forced.returncode == 1, refused.decode()
        assert "may not send undo.force" in refused.decode()
        proc = await lifeline.exec_async(
            sys.executable, "-m", "responder", "undo", str(incident), "--via", "kafka", "--by", "alice", "--json",
            cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 120)
        assert proc.returncode == 0, err.decode()
        assert "UNVERIFIED" not in err.decode()
    summary = orjson.loads(out.splitlines()[-1])
    assert summary["ok"] is True
    assert [s["step"] for s in summary["steps"]] == ["revoke-sessions", "deactivate-key"]
    assert await _status(aws, key) == "Active"
    entries = list(parse_lines(path.read_bytes().splitlines()))
    assert verify_entries(entries)[0] == len(entries)
    assert len({e.writer for e in entries}) == 1  # the service was the only writer
    kinds = [e.kind for e in entries]
    assert kinds.count("undo.intent") == kinds.count("undo.result") == 2
    [requested] = [e.body for e in entries if e.kind == "operator.requested"]
    assert (requested["action"], requested["by"], requested["key_id"]) == ("undo", "alice", "ops")
    assert all(e.body.get("operator") == "alice" for e in entries if e.kind == "undo.intent")
    [refusal] = [e.body for e in entries if e.kind == "operator.refused"]  # not granted: refused, not completed
    [completed] = [e.body for e in entries if e.kind == "operator.completed"]
    assert "may not send undo.force" in refusal["reason"]
    assert completed["ok"] is True
    assert not (tmp_path / "not-the-service-timeline.jsonl").exists()

"""`responder iam-policy` and `responder actuators list --json` (the generated actuator table: test_docs_cli)."""

from __future__ import annotations

from pathlib import Path

import orjson
from typer.testing import CliRunner

from responder.actuators import registry
from responder.catalog import load_runbooks
from responder.cli import app

ROOT = Path(__file__).resolve().parents[2]


def test_iam_policy_covers_the_runbooks_without_wildcards(runbooks_dir):
    """Every AWS actuator a runbook uses (and its reverse) has its exact actions in the policy; none is a wildcard."""
    result = CliRunner().invoke(app, ["actuators", "iam-policy", str(runbooks_dir)])
    assert result.exit_code == 0, result.output
    doc = orjson.loads(result.stdout)
    actions = {a for st in doc["Statement"] for a in st["Action"]}
    assert all("*" not in a for a in actions)
    used = {s.actuator for rb in load_runbooks(runbooks_dir, registry) for s in rb.steps}
    for name in used | {registry.get(n).reverse for n in used if registry.get(n).reverse}:
        assert set(registry.get(name).permissions) <= actions, name  # type: ignore[arg-type]


def test_iam_policy_without_undo_is_smaller(tmp_path):
    """--no-undo leaves out the reverse actuator's actions (activate needs nothing deactivate lacks, KMS does)."""
    (tmp_path / "kms.yaml").write_text(
        "id: kms\ntrigger: {source: guardduty}\nsteps:\n  - id: disable\n    actuator: aws.kms.disable_key\n"
        "    with: {key_id: 1234abcd-12ab-34cd-56ef-1234567890ab}\n")
    full = orjson.loads(CliRunner().invoke(app, ["actuators", "iam-policy", str(tmp_path)]).stdout)
    bare = orjson.loads(CliRunner().invoke(app, ["actuators", "iam-policy", str(tmp_path), "--no-undo"]).stdout)
    assert [a for st in bare["Statement"] for a in st["Action"]] == ["kms:DescribeKey", "kms:DisableKey",
                                                                     "kms:ListResourceTags", "kms:ListAliases"]
    assert "kms:EnableKey" in {a for st in full["Statement"] for a in st["Action"]}


def test_iam_policy_on_a_bad_directory_exits_3(tmp_path):
    """A missing runbook directory is a configuration error."""
    assert CliRunner().invoke(app, ["actuators", "iam-policy", str(tmp_path / "nope")]).exit_code == 3


def test_actuators_list_json_has_the_contract():
    """One JSON document; each actuator carries permissions, destructive, reverse or why none, and examples."""
    result = CliRunner().invoke(app, ["actuators", "list", "--json"])
    rows = {r["name"]: r for r in orjson.loads(result.stdout)["actuators"]}
    assert set(rows) == set(registry.names())
    assert rows["aws.kms.disable_key"]["destructive"] is True
    assert rows["aws.ec2.snapshot_volumes"]["reverse"] is None
    assert rows["aws.ec2.snapshot_volumes"]["irreversible"]
    assert rows["aws.ec2.isolate_instance"]["examples"][0]["actuator"] == "aws.ec2.isolate_instance"


def test_actuators_list_shows_parameters():
    """The human listing names each actuator's parameters, required ones starred."""
    out = CliRunner().invoke(app, ["actuators", "list"]).stdout
    assert "params: instance_id*: string" in out


def test_iam_policy_denies_responder_acting_on_itself(runbooks_dir, monkeypatch):
    """With its own role, policy, timeline bucket and KMS key configured, the policy denies touching them."""
    role, policy = "arn:aws:iam::123456789012:role/ResponderRole", "arn:aws:iam::123456789012:policy/responder"
    key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    monkeypatch.setenv("RESPONDER_SELF_PRINCIPAL_ARNS", orjson.dumps([role]).decode())
    monkeypatch.setenv("RESPONDER_SELF_POLICY_ARNS", orjson.dumps([policy]).decode())
    monkeypatch.setenv("RESPONDER_SELF_KMS_KEY_ARNS", orjson.dumps([key]).decode())
    monkeypatch.setenv("RESPONDER_TIMELINE_ARCHIVE", "s3://acme-responder-timeline/prod/")
    monkeypatch.setenv("RESPONDER_AWS_ACCOUNT_ID", "123456789012")
    result = CliRunner().invoke(app, ["iam-policy", str(runbooks_dir)])
    assert result.exit_code == 0, result.output
    statements = orjson.loads(result.stdout)["Statement"]
    denies = {st["Sid"]: st for st in statements if st["Effect"] == "Deny"}
    assert denies["DenyResponderSelfIam"]["Resource"] == sorted([role, policy])
    assert {"iam:Put*", "iam:Update*", "iam:Delete*", "iam:Create*"} <= set(denies["DenyResponderSelfIam"]["Action"])
    assert denies["DenyResponderTimelineBucket"]["Resource"] == ["arn:*:s3:::acme-responder-timeline",
                                                                 "arn:*:s3:::acme-responder-timeline/*"]
    assert "s3:PutObject" not in denies["DenyResponderTimelineBucket"]["Action"]  # the archiver still writes
    assert denies["DenyResponderKmsKeys"]["Resource"] == [key]
    iam_allows = [st for st in statements if st["Effect"] == "Allow" and st["Action"][0].startswith("iam:")]
    assert iam_allows
    assert all(st["Resource"] == ["arn:aws:iam::123456789012:user/*", "arn:aws:iam::123456789012:role/*"]
               for st in iam_allows)


def test_iam_policy_deny_covers_every_iam_write_it_allows(runbooks_dir, monkeypatch):
    """Each IAM action the allows grant that is not a read is matched by the self-protection deny."""
    from fnmatch import fnmatchcase

    monkeypatch.setenv("RESPONDER_SELF_PRINCIPAL_ARNS", '["arn:aws:iam::1:role/R"]')
    statements = orjson.loads(CliRunner().invoke(app, ["iam-policy", str(runbooks_dir)]).stdout)["Statement"]
    [deny] = [st for st in statements if st["Effect"] == "Deny"]
    writes = {a for st in statements if st["Effect"] == "Allow" for a in st["Action"]
              if a.startswith("iam:") and not a.split(":")[1].startswith(("Get", "List"))}
    assert writes
    assert all(any(fnmatchcase(a, p) for p in deny["Action"]) for a in writes)


def _contained_timeline(path: Path) -> None:
    """A timeline holding one ok, changed key deactivation of incident inc1."""
    from responder.models.step import StepIntent, StepResult, StepStatus
    from responder.timeline import Recorder
    from responder.timeline.store import FileStore

    head = {"step": "deactivate-key", "actuator": "aws.iam.deactivate_access_key", "target": "AKIAABCDEFGHIJKLMNOP",
            "key": "k1"}
    recorder = Recorder(FileStore(path))
    recorder.append("step.intent", StepIntent(**head, params={"user_name": "u", "access_key_id": head["target"]})
                    .body(), "inc1")
    recorder.append("step.result", StepResult(**head, status=StepStatus.OK, changed=True, prior={"status": "Active"},
                                              after={"status": "Inactive"}).body(), "inc1")
    recorder.close()


def _no_aws_credentials(monkeypatch, tmp_path: Path) -> None:
    import os

    for name in list(os.environ):
        if name.startswith(("RESPONDER_", "AWS_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("RESPONDER_AWS_ENDPOINT_URL", "http://127.0.0.1:9")


def test_undo_without_credentials_is_one_line_exit_3_and_writes_nothing(monkeypatch, tmp_path):
    """`responder undo` with no AWS credentials prints one line naming the settings, exits 3, leaves no undo.intent."""
    _no_aws_credentials(monkeypatch, tmp_path)
    path = tmp_path / "t.jsonl"
    _contained_timeline(path)
    before = path.read_bytes()
    result = CliRunner().invoke(app, ["undo", "inc1", "--timeline", str(path)])
    assert result.exit_code == 3
    assert result.exception is None or isinstance(result.exception, SystemExit)
    [line] = result.stderr.strip().splitlines()
    assert "no AWS credentials" in line
    assert "RESPONDER_AWS_ACCESS_KEY_ID" in line
    assert path.read_bytes() == before


async def test_an_undo_intent_without_credentials_gets_a_failed_result(monkeypatch, tmp_path):
    """Past the CLI's check, a call without credentials is a permanent failure: every undo.intent gets its result."""
    from responder.actuators.aws.session import AwsSession
    from responder.engine.undo import Undoer
    from responder.timeline import Recorder
    from responder.timeline.store import FileStore

    _no_aws_credentials(monkeypatch, tmp_path)
    path = tmp_path / "t.jsonl"
    _contained_timeline(path)
    recorder = Recorder(FileStore(path))
    [outcome] = await Undoer(recorder, registry, AwsSession(endpoint_url="http://127.0.0.1:9"), force=True,
                             attempts=1).undo("inc1")
    recorder.close()
    assert (outcome["status"], outcome["code"]) == ("failed", "NoCredentials")
    kinds = [e.kind for e in Recorder(FileStore(path)).entries()]
    assert kinds.count("undo.intent") == kinds.count("undo.result") == 1

"""Tabletop loader: expectation and inject fields that could never be graded or sent as written are refused at load."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from responder.cli import app

ROOT = Path(__file__).resolve().parents[2]

HEAD = """\
id: pb
title: t
objectives: [o]
world:
  users:
    - name: alice
      keys: [main]
  models:
    - name: scorer
      versions: [{version: v1, state: signed}, {version: v2, state: signed}]
      serving: v2
injects:
  - id: finding
    event: event.json
expectations:
"""


def _refused(tmp_path: Path, tail: str, where: str, message: str) -> None:
    (tmp_path / "event.json").write_text('{"detail": {}}')
    path = tmp_path / "pb.yaml"
    path.write_text(HEAD + tail)
    result = CliRunner().invoke(app, ["tabletop", "validate", "--runbooks", str(ROOT / "runbooks"), str(path)])
    out = result.output.replace("\n", "")
    assert (result.exit_code, f"{path}:{where}" in out, message in out) == (3, True, True), out


def test_step_not_done_naming_no_step_is_refused(tmp_path):
    """A `step_not_done` whose step no runbook has (it could never fail) is refused at its line, with the choices."""
    _refused(tmp_path, "  - id: quiet\n    kind: step_not_done\n    step: escalate\n", "18:11",
             "step 'escalate' is in no loaded runbook")


def test_step_of_another_runbook_is_refused(tmp_path):
    """A step named with a `runbook` must be one of that runbook's steps or escalations; the valid ones are listed."""
    tail = "  - id: quiet\n    kind: step_not_done\n    runbook: access-key-compromise\n    step: quarantine-user\n"
    _refused(tmp_path, tail, "19:11", "choose from ['deactivate-key', 'escalate-oncall', 'escalate-oncall.")


def test_runbook_matched_needs_a_runbook(tmp_path):
    """A `runbook_matched` with no `runbook` (it could only ever FAIL, or PASS with count 0) is refused."""
    _refused(tmp_path, "  - id: matched\n    kind: runbook_matched\n", "16:5", "needs `runbook`")


def test_model_check_needs_a_known_version(tmp_path):
    """`endpoint_serving` / `version_quarantined` name one of the model's versions (no version passed when idle)."""
    tail = "  - id: serving\n    kind: state\n    check: endpoint_serving\n    resource: scorer\n    version: v9\n"
    _refused(tmp_path, tail, "20:14", "model 'scorer' has no version 'v9'; choose from ['v1', 'v2']")


def test_signed_kafka_inject_needs_a_signing_key(tmp_path):
    """A Kafka inject `signed`/`forged` with no `settings.event_signing_keys` would go out unsigned: refused."""
    text = "    signature: signed\n" + "expectations:\n  - id: v\n    kind: timeline_verifies\n"
    (tmp_path / "event.json").write_text("{}")
    path = tmp_path / "pb.yaml"
    path.write_text(HEAD.replace("expectations:\n", text))
    result = CliRunner().invoke(app, ["tabletop", "validate", "--runbooks", str(ROOT / "runbooks"), str(path)])
    out = result.output.replace("\n", "")
    assert (result.exit_code, f"{path}:15:16" in out, "settings.event_signing_keys is empty" in out) == \
        (3, True, True), out


def test_step_both_a_step_and_an_escalation_needs_its_runbook(tmp_path):
    """A bare `step` that one runbook runs and another escalates with is ambiguous: refused unless `runbook` says."""
    books = tmp_path / "runbooks"
    books.mkdir()
    text = (ROOT / "runbooks" / "access-key-compromise.yaml").read_text()
    (books / "access-key-compromise.yaml").write_text(text)
    paging = text.replace("id: access-key-compromise", "id: paging").replace("id: notify-oncall",
                                                                               "id: escalate-oncall")
    (books / "paging.yaml").write_text(paging[:paging.index("on_failure:   #")])
    (tmp_path / "event.json").write_text("{}")
    path = tmp_path / "pb.yaml"
    for scope, refused in (("", True), ("    runbook: access-key-compromise\n", False)):
        path.write_text(HEAD + f"  - id: quiet\n    kind: step_not_done\n{scope}    step: escalate-oncall\n")
        result = CliRunner().invoke(app, ["tabletop", "validate", "--runbooks", str(books), str(path)])
        out = result.output.replace("\n", "")
        assert (result.exit_code, "name `runbook` to say which" in out) == ((3, True) if refused else (0, False)), out


def test_params_on_a_refused_step_are_refused(tmp_path):
    """`params` on a protected trip or a refused step could never match (none are recorded for it): refused."""
    tail = "  - id: kept\n    kind: guard_tripped\n    reason: protected\n    params: {access_key_id: main}\n"
    _refused(tmp_path, tail, "19:13", "`params` cannot be checked on a refused step")
    tail = ("  - id: kept\n    kind: step_done\n    actuator: aws.iam.deactivate_access_key\n    status: refused\n"
            "    params: {access_key_id: main}\n")
    _refused(tmp_path, tail, "20:13", "`params` cannot be checked on a refused step")


def test_params_on_an_account_trip_are_refused(tmp_path):
    """`params` on an `account` trip (a hard trip, as `protected`) could never match: refused."""
    tail = "  - id: kept\n    kind: guard_tripped\n    reason: account\n    params: {access_key_id: main}\n"
    _refused(tmp_path, tail, "19:13", "`params` cannot be checked on a refused step")


def test_a_playbook_that_is_not_utf8_is_one_line(tmp_path):
    """`tabletop validate` on a Latin-1 playbook was a UnicodeDecodeError traceback (a runbook was one line)."""
    path = tmp_path / "pb.yaml"
    path.write_bytes(HEAD.replace("title: t", "title: caf\xe9").encode("latin-1"))
    result = CliRunner().invoke(app, ["tabletop", "validate", "--runbooks", str(ROOT / "runbooks"), str(path)])
    assert (result.exit_code, result.exception is None or isinstance(result.exception, SystemExit)) == (3, True)
    assert "not UTF-8" in result.output


def test_a_boolean_duration_in_a_playbook_is_refused(tmp_path):
    """`within: true` was read as 1 virtual second (pydantic's lax float); playbook durations refuse booleans too."""
    tail = "  - id: matched\n    kind: runbook_matched\n    runbook: access-key-compromise\n    within: true\n"
    _refused(tmp_path, tail, "19:13", "not a duration: true")


def test_an_event_signing_key_named_as_the_default_approval_key_is_refused_at_its_line(tmp_path):
    """An event signing key id `tabletop` (the default approval key's) is refused by validate, not mid-drill."""
    settings = "settings:\n  event_signing_keys: {tabletop: event-secret}\n"
    (tmp_path / "event.json").write_text('{"detail": {}}')
    path = tmp_path / "pb.yaml"
    path.write_text(HEAD.replace("world:\n", settings + "world:\n", 1) + "  - id: v\n    kind: timeline_verifies\n")
    result = CliRunner().invoke(app, ["tabletop", "validate", "--runbooks", str(ROOT / "runbooks"), str(path)])
    out = result.output.replace("\n", "")
    assert (result.exit_code, f"{path}:5:23" in out) == (3, True), out
    assert "would refuse settings.approval_keys (unset: its default): key id 'tabletop' is also a key of " \
        "event_signing_keys" in out
    assert "RESPONDER_" not in out

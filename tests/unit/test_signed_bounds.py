"""A decision or operator request signed with a valid key but refused is recorded bounded: a stolen key cannot write
megabyte timeline entries through its incident, step or args, nor through a value padded past any real one."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from typer.testing import CliRunner

from responder.actuators import registry
from responder.auth import signed_headers
from responder.catalog import check_directory
from responder.cli import app
from responder.engine.operator import OPERATOR_REJECTED
from responder.fleet import FleetState
from responder.models.approval import ApprovalDecision
from responder.models.operator import ARGS_MAX_BYTES, OperatorRequest
from responder.models.signed import NAME_MAX, SIGNED_MAX_BYTES, STEP_ID_MAX, too_large
from responder.timeline import Recorder
from tests.kit import SECRET, WIPE, Kit, decision, make_kit
from tests.operator_kit import SECRET as OPERATOR_SECRET
from tests.operator_kit import channel_operator, operator_request

HUGE = 1_000_000
LONG = 6000
"""Characters of a name far over NAME_MAX, in a value under SIGNED_MAX_BYTES (so its fields are read)."""
BOUNDED = 4 * 1024
"""More than any refusal's entry takes, less than what the sender wrote."""


def _signed(body: dict[str, Any], *, pad: int = 0) -> tuple[bytes, str, str]:
    """`body` as a record value (with `pad` spaces before its closing brace), signed with the kit's key `k1`."""
    value = orjson.dumps(body)[:-1] + b" " * pad + b"}"
    [(_, key_id), (_, signature)] = signed_headers("k1", SECRET, value)
    return value, key_id.decode(), signature.decode()


def _decision_body(kit: Kit, incident: str, step: str) -> dict[str, Any]:
    """A decision by alice (the key's identity) for `incident`/`step`, answering its parking if there is one."""
    return orjson.loads(decision(kit, kit.engine.state.parked_steps()[0].incident, "wipe")[0]) | {
        "incident": incident, "step": step}


def _largest_entry(kit: Kit) -> int:
    """Bytes of the largest durable entry, as the timeline stores it."""
    return max(len(e.model_dump_json()) for e in Recorder(kit.store).entries())


async def test_a_signed_decision_naming_a_long_incident_and_step_is_refused_and_recorded_bounded(tmp_path):
    """A validly signed decision with a 6,000-character incident and step is refused as malformed, its entry bounded."""
    kit = make_kit(tmp_path, {"rb": WIPE % "deny"})
    await kit.send()
    value, key_id, signature = _signed(_decision_body(kit, "i" * LONG, "s" * LONG))
    assert not await kit.engine.decide(value, key_id, signature)
    await kit.engine.recorder.flush()
    [rejected] = kit.entries("approval.rejected")
    assert rejected["reason"].startswith("malformed decision: incident: ")
    assert f"at most {NAME_MAX} characters" in rejected["reason"]
    assert rejected["key_id"] == "k1"
    assert _largest_entry(kit) < BOUNDED
    assert kit.engine.state.parked_steps()  # still waiting for a decision it can read


async def test_a_fleet_member_refuses_and_records_a_long_incident_instead_of_holding_it(tmp_path):
    """A member not owning a 6,000-character incident records its signed decision refused, bounded, holds nothing."""
    kit = make_kit(tmp_path, {"rb": WIPE % "deny"})
    fleet = FleetState(kit.engine, changelog=None)  # type: ignore[arg-type]  # no partition moves here
    await kit.send()
    await fleet.decide(*_signed(_decision_body(kit, "i" * LONG, "wipe")))
    await kit.engine.recorder.flush()
    [rejected] = kit.entries("approval.rejected")
    assert rejected["reason"].startswith("malformed decision: incident: ")
    assert not fleet._held
    assert _largest_entry(kit) < BOUNDED


async def test_a_signed_decision_padded_past_the_cap_is_refused_for_its_size_and_recorded(tmp_path):
    """A decision otherwise valid but padded past SIGNED_MAX_BYTES is refused, recorded with its size; nothing runs."""
    kit = make_kit(tmp_path, {"rb": WIPE % "deny"})
    await kit.send()
    [parked] = kit.engine.state.parked_steps()
    value, key_id, signature = _signed(_decision_body(kit, parked.incident, "wipe"), pad=HUGE)
    assert not await kit.engine.decide(value, key_id, signature)
    await kit.engine.recorder.flush()
    [rejected] = kit.entries("approval.rejected")
    assert rejected["reason"] == (f"malformed decision: {len(value)} bytes, more than a decision or operator request "
                                  f"may take ({SIGNED_MAX_BYTES})")
    assert not kit.wipe.applied
    assert kit.engine.state.parked(parked.incident, "wipe") is not None
    assert _largest_entry(kit) < BOUNDED


async def test_a_fleet_member_refuses_a_padded_decision_for_an_incident_owned_elsewhere(tmp_path):
    """A member not owning the incident records a validly signed, oversized decision refused and holds nothing."""
    kit = make_kit(tmp_path, {"rb": WIPE % "deny"})
    fleet = FleetState(kit.engine, changelog=None)  # type: ignore[arg-type]
    await kit.send()
    await fleet.decide(*_signed(_decision_body(kit, "elsewhere", "wipe"), pad=HUGE))
    await kit.engine.recorder.flush()
    [rejected] = kit.entries("approval.rejected")
    assert "bytes, more than a decision or operator request may take" in rejected["reason"]
    assert not fleet._held


def _request(pad: int = 0, **kw: object) -> tuple[bytes, str, str]:
    """An undo request by alice for inc1 with `kw` (not checked here), padded with `pad` spaces, signed by `ops`."""
    value = orjson.dumps(orjson.loads(operator_request()[0]) | kw)[:-1] + b" " * pad + b"}"
    [(_, key_id), (_, signature)] = signed_headers("ops", OPERATOR_SECRET, value)
    return value, key_id.decode(), signature.decode()


async def test_a_signed_undo_naming_a_long_step_is_rejected_bounded_not_recorded_in_full():
    """A granted key's undo whose args name a 6,000-character step is rejected as malformed; no entry holds them."""
    op = await channel_operator()
    assert await op.handle(*_request(args={"step": "s" * LONG})) is None
    await op.recorder.flush()
    entries = list(op.recorder.entries())
    [rejected] = [e.body for e in entries if e.kind == OPERATOR_REJECTED]
    assert rejected["reason"].startswith("not an operator request: args: ")
    assert rejected["reason"].endswith("bytes as JSON, more than 4096")
    assert rejected["key_id"] == "ops"
    assert all(e.kind not in ("operator.requested", "operator.completed") for e in entries)
    assert max(len(e.model_dump_json()) for e in entries) < BOUNDED


async def test_a_signed_operator_request_padded_past_the_cap_is_rejected_for_its_size():
    """A granted key's otherwise valid request padded past SIGNED_MAX_BYTES is rejected, recorded with its size."""
    op = await channel_operator()
    value, key_id, signature = _request(pad=HUGE)
    assert await op.handle(value, key_id, signature) is None
    await op.recorder.flush()
    [rejected] = [e.body for e in op.recorder.entries() if e.kind == OPERATOR_REJECTED]
    assert rejected["reason"] == (f"not an operator request: {len(value)} bytes, more than a decision or operator "
                                  f"request may take ({SIGNED_MAX_BYTES})")
    assert all(e.kind != "operator.requested" for e in op.recorder.entries())


async def test_a_decision_naming_an_incident_and_step_at_the_cap_is_read_not_refused_as_malformed(tmp_path):
    """Names of exactly NAME_MAX characters are no malformed decision: refused only as pending nowhere."""
    kit = make_kit(tmp_path, {"rb": WIPE % "deny"})
    await kit.send()
    await kit.engine.decide(*_signed(_decision_body(kit, "i" * NAME_MAX, "s" * NAME_MAX)))
    await kit.engine.recorder.flush()
    [rejected] = kit.entries("approval.rejected")
    assert rejected["reason"] == "no approval is pending for this incident and step"
    assert rejected["step"] == "s" * NAME_MAX


def test_a_runbook_step_id_longer_than_a_decision_may_name_is_refused_at_load(tmp_path):
    """A step id over STEP_ID_MAX characters fails at load with file:line (a decision could not name its escalation)."""
    body = ("id: rb\nversion: 1\ntrigger: {{source: guardduty, category: credential_compromise}}\nsteps:\n"
            "  - id: {step}\n    actuator: notify.kafka.publish_message\n"
            "    with: {{topic: responder.notifications, title: t}}\n")
    (tmp_path / "rb.yaml").write_text(body.format(step="s" * STEP_ID_MAX))
    assert check_directory(tmp_path, registry)[1] == []
    (tmp_path / "rb.yaml").write_text(body.format(step="s" * (STEP_ID_MAX + 1)))
    [error] = check_directory(tmp_path, registry)[1]
    assert error.line == 5
    assert f"at most {STEP_ID_MAX} characters" in str(error)
    assert NAME_MAX >= 2 * STEP_ID_MAX + 1  # `<escalation id>.<failed step id>`, the longest step a decision names


async def test_a_signed_request_whose_args_hold_an_integer_over_64_bits_is_refused_and_recorded():
    """Args with an int JSON cannot hold in 64 bits are refused as malformed and recorded, not a crash of handle()."""
    op = await channel_operator()
    value = _request(args={"step": "wipe", "n": 12345})[0].replace(b'"n":12345', b'"n":18446744073709551616')
    [(_, key_id), (_, signature)] = signed_headers("ops", OPERATOR_SECRET, value)
    assert await op.handle(value, key_id.decode(), signature.decode()) is None
    await op.recorder.flush()
    [rejected] = [e.body for e in op.recorder.entries() if e.kind == OPERATOR_REJECTED]
    assert rejected["reason"] == "not an operator request: args: Value error, args cannot be written as JSON"
    assert rejected["key_id"] == "ops"


def _escaped(value: object) -> bytes:
    """`value` as JSON, every character of every string a `\\uXXXX` escape (a pair past the BMP): the longest form."""
    if isinstance(value, str):
        units = value.encode("utf-16-be")
        return b'"' + b"".join(b"\\u%02x%02x" % (units[i], units[i + 1]) for i in range(0, len(units), 2)) + b'"'
    if isinstance(value, dict):
        return b"{" + b",".join(_escaped(k) + b":" + _escaped(v) for k, v in value.items()) + b"}"
    return orjson.dumps(value)


def test_a_decision_at_every_field_limit_fits_the_cap_however_its_producer_escapes_it():
    """A decision the model accepts, emoji at every limit, fits SIGNED_MAX_BYTES as json.dumps or in \\u escapes."""
    now = datetime.now(UTC)
    d = ApprovalDecision(incident="\U0001F6A8" * NAME_MAX, step="\U0001F6A8" * NAME_MAX, decision="approve",
                         by="\U0001F464" * 200, reason="\U0001F6A8" * 2000, digest="0" * 64, issued_at=now,
                         expires_at=now + timedelta(minutes=10), request_id="0" * 32)
    body = d.model_dump(mode="json", exclude_none=True)
    for value in (json.dumps(body, sort_keys=True).encode(), _escaped(body)):
        assert too_large(value) is None, len(value)
        assert ApprovalDecision.model_validate_json(value) == d


def test_an_operator_request_at_every_field_limit_fits_the_cap_however_its_producer_escapes_it():
    """An operator request with 4 KiB of args and emoji `by` and incident fits SIGNED_MAX_BYTES in \\u escapes."""
    now = datetime.now(UTC)
    r = OperatorRequest(id="0" * 32, action="undo", by="\U0001F464" * 200, incident="\U0001F6A8" * 200,
                        args={"step": "s" * (ARGS_MAX_BYTES - 12)}, issued_at=now,
                        expires_at=now + timedelta(minutes=10))
    value = _escaped(r.model_dump(mode="json"))
    assert too_large(value) is None, len(value)
    assert OperatorRequest.model_validate_json(value) == r


def test_a_kafka_operator_command_whose_args_are_over_the_cap_exits_3_naming_the_field(monkeypatch):
    """`models quarantine --via kafka` with a 5,000-character reason is one line naming args, exit 3, no traceback."""
    for name, value in (("KAFKA_BOOTSTRAP", "127.0.0.1:1"), ("APPROVAL_KEYS", '{"ops": "s"}'),
                        ("APPROVAL_KEY_ID", "ops"), ("OPERATOR_UNVERIFIED_REPLIES", "true")):
        monkeypatch.setenv(f"RESPONDER_{name}", value)
    result = CliRunner().invoke(app, ["models", "quarantine", "fraud", "v1", "--reason", "x" * 5000, "--via", "kafka"])
    assert result.exit_code == 3, result.output
    [line] = result.stderr.strip().splitlines()
    assert "args: Value error, 5044 bytes as JSON, more than 4096" in line


def test_approve_naming_a_step_over_the_cap_exits_3_naming_the_field(monkeypatch, tmp_path):
    """`responder approve` for a 300-character step is one line naming step, exit 3, no pydantic traceback."""
    monkeypatch.setenv("RESPONDER_KAFKA_BOOTSTRAP", "127.0.0.1:1")
    monkeypatch.setenv("RESPONDER_APPROVAL_KEYS", '{"k1": "s"}')
    monkeypatch.setattr("responder.cli.approvals.resolve", lambda *_: ("inc1", "0" * 64, None, None))  # no Kafka read
    result = CliRunner().invoke(app, ["approve", "inc1", "s" * 300, "--by", "alice", "--digest", "0" * 64,
                                      "--timeline", str(tmp_path / "none.jsonl")])
    assert result.exit_code == 3, result.output
    [line] = result.stderr.strip().splitlines()
    assert "step: String should have at most 201 characters" in line

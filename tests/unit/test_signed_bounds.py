"""A decision or operator request signed with a valid key but refused is recorded bounded: a stolen key cannot write
megabyte timeline entries through its incident, step or args, nor through a value padded past any real one."""

from __future__ import annotations

from typing import Any

import orjson

from responder.actuators import registry
from responder.auth import signed_headers
from responder.catalog import check_directory
from responder.engine.operator import OPERATOR_REJECTED
from responder.fleet import FleetState
from responder.models.signed import NAME_MAX, SIGNED_MAX_BYTES, STEP_ID_MAX
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

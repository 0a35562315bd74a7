"""Operator requests in the owning service: signed, recorded with the operator, run once, refused when stale."""

from __future__ import annotations

import pytest

from responder.actuators import registry as actuators
from responder.actuators.model.local import LocalStore
from responder.auth import KeyRing
from responder.engine.operator import Operator
from responder.ingest.operator import ReplyFilter
from responder.models.operator import OperatorReply, OperatorRequest
from responder.timeline import MemoryStore, Recorder
from tests.fakes import Killed
from tests.modelkit import NoAws, context, make_keys, publish
from tests.operator_kit import ALL, NOW, SECRET, operator_request, operator_with_all


async def test_a_request_is_recorded_with_its_operator_and_run_once():
    """A signed request is recorded as operator.requested/completed; its redelivery is answered, not re-run."""
    op = operator_with_all()
    op.recorder.append("incident.opened", {"runbook": "rb"}, "inc1")
    await op.recorder.flush()
    value, key_id, sig = operator_request()
    first = await op.handle(value, key_id, sig)
    again = await op.handle(value, key_id, sig)
    assert first is not None
    assert first.ok
    assert again == first
    kinds = [e.kind for e in op.recorder.entries()]
    assert kinds == ["incident.opened", "operator.requested", "operator.completed"]
    requested = list(op.recorder.entries())[1].body
    assert (requested["by"], requested["key_id"]) == ("alice", "ops")


async def test_unsigned_and_expired_requests_are_refused_and_recorded():
    """A badly signed request is recorded as operator.rejected and an expired one as operator.refused; nothing runs."""
    op = operator_with_all()
    value, key_id, _ = operator_request()
    assert await op.handle(value, key_id, "00" * 32) is None
    stale, key_id, sig = operator_request(ttl=-1)
    reply = await op.handle(stale, key_id, sig)
    assert reply is not None
    assert not reply.ok
    assert "expired" in str(reply.error)
    assert [e.kind for e in op.recorder.entries()] == ["operator.rejected", "operator.refused"]


async def test_model_args_outside_the_params_schema_are_refused_and_recorded():
    """A rollback whose args break the params schema completes not ok with the reason, before calling the registry."""
    op = operator_with_all()
    for registry in (5, ["s3://x"]):
        value, key_id, sig = operator_request(action="models.rollback", incident=None,
                                              args={"model": "fraud-scorer", "registry": registry})
        reply = await op.handle(value, key_id, sig)
        assert reply is not None
        assert not reply.ok
        assert "invalid parameters" in str(reply.error)
    assert [e.kind for e in op.recorder.entries()][-1] == "operator.completed"


def test_a_reply_record_that_is_not_a_reply_is_skipped_while_waiting():
    """A record keyed by the request id that is not its reply is skipped while waiting; the later reply answers."""
    value, _, _ = operator_request()
    request = OperatorRequest.model_validate_json(value)
    rid = request.id
    good = OperatorReply(id=rid, action="undo", ok=True).model_dump_json().encode()
    other = OperatorReply(id="b" * 32, action="undo", ok=True).model_dump_json().encode()
    records = [(rid.encode(), v, []) for v in (b"not json", b'{"id": 1}', other, good)]
    assert ReplyFilter(request, None).first(records) == OperatorReply(id=rid, action="undo", ok=True)
    assert ReplyFilter(request, None).first(records[:3]) is None


async def test_an_undo_for_an_incident_not_on_the_timeline_is_refused_not_answered_ok():
    """An undo for an incident not on this service's timeline is refused, not answered ok with 'nothing to undo'."""
    op = operator_with_all()
    op.recorder.append("incident.opened", {"runbook": "rb"}, "inc-full-id")
    await op.recorder.flush()
    value, key_id, sig = operator_request(incident="inc-full")
    reply = await op.handle(value, key_id, sig)
    assert reply is not None
    assert not reply.ok
    assert "inc-full" in str(reply.error)
    assert [e.kind for e in op.recorder.entries()][-1] == "operator.completed"


def test_undo_outcomes_are_printed_as_text_not_markup(capsys):
    """An undo outcome's target or reason is printed as plain text; rich markup in it neither fails nor styles it."""
    from responder.cli.undo import _report

    _report([{"step": "s", "actuator": "a", "target": "[/red]AKIA1", "status": "skipped",
              "reason": "[link=https://evil.example]ok[/link]"}], json=False)
    out = capsys.readouterr().out
    assert "[/red]AKIA1" in out
    assert "[link=https://evil.example]ok[/link]" in out


async def test_a_rollback_cut_short_after_its_switch_is_not_rolled_back_again_when_redelivered(tmp_path, monkeypatch):
    """A rollback rerun after a crash keeps the version first pinned, so a redelivery does not roll back twice."""
    keys = make_keys(tmp_path / "keys")
    store = LocalStore(tmp_path / "registry")
    for v in ("v1", "v2", "v3"):
        await publish(store, tmp_path / "work", "fraud", v, keys.private)
    await store.set_serving("fraud", (await store.versions("fraud"))[-1])
    recorder = Recorder(MemoryStore())
    op = Operator(recorder, actuators, context(NoAws(), str(store.root), keys), keys=KeyRing({"ops": SECRET}),
                  clock=lambda: NOW, permissions=ALL)
    value, key_id, sig = operator_request(action="models.rollback", incident=None,
                                          args={"model": "fraud", "registry": str(store.root)})
    rollback = type(actuators.get("model.rollback_to_last_signed"))

    async def killed(self: object, *args: object) -> bool:
        raise Killed  # the process died after the switch, before the result

    monkeypatch.setattr(rollback, "verify", killed)
    with pytest.raises(Killed):
        await op.handle(value, key_id, sig)
    assert await store.serving("fraud") == "v2"
    monkeypatch.undo()
    again = Operator(Recorder(recorder.store), actuators, op.context, keys=KeyRing({"ops": SECRET}), clock=lambda: NOW,
                     permissions=ALL)
    again.recover(again.recorder.entries())
    reply = await again.handle(value, key_id, sig)
    assert reply is not None
    assert reply.ok
    assert await store.serving("fraud") == "v2"


async def test_a_long_forged_key_id_is_cut_in_the_rejection_record():
    """A key id the sender chose is copied into `operator.rejected` (and its reason) cut to a fixed length, marked."""
    op = operator_with_all()
    value = operator_request()[0]
    await op.handle(value, "k" * 10_000, "00" * 32)
    await op.recorder.flush()  # a refusal is durable with the next group commit, not alone
    [rejected] = [e.body for e in op.recorder.entries() if e.kind == "operator.rejected"]
    assert rejected["key_id"] == "k" * 64 + "…[+9936 chars]"
    assert len(rejected["reason"]) < 200


async def test_an_undo_sent_again_for_an_incident_not_on_the_timeline_is_refused_again():
    """A second undo for the same unknown incident is refused too; the first one's own entries do not make it known."""
    op = operator_with_all()
    op.recorder.append("incident.opened", {"runbook": "rb"}, "inc-full-id")
    await op.recorder.flush()
    for _ in range(2):
        value, key_id, sig = operator_request(incident="inc-full")
        reply = await op.handle(value, key_id, sig)
        assert reply is not None
        assert not reply.ok
        assert "is not on this service's timeline" in str(reply.error)

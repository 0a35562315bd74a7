"""The operator channel's trust: replies signed by the replica and checked by the CLI, requests authorised per key."""

from __future__ import annotations

import pytest

from responder.auth import signed_headers
from responder.engine.operator import Operator
from responder.errors import ConfigError
from responder.ingest.operator import ReplyFilter
from responder.models.operator import REPLY_SIGNATURE_HEADER, OperatorReply, OperatorRequest
from responder.settings import Settings
from responder.settings_errors import SettingsInvalid
from responder.timeline import Recorder
from responder.timeline.checkpoint import Checker, Signer, generate_keypair
from tests.operator_kit import ALL, NOW, SECRET, channel_operator, claiming_request, operator_request

PRIVATE, PUBLIC = generate_keypair()


def _record(op: Operator, reply: OperatorReply, request: bytes) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    value, headers = op.publication(reply, request)
    return reply.id.encode(), value, headers


async def test_a_signed_reply_verifies_and_forged_or_replayed_ones_are_refused():
    """The CLI accepts the signed reply to its request and refuses unsigned, tampered, wrong-key or replayed ones."""
    op = await channel_operator(signer=Signer.from_text(PRIVATE))
    value, key_id, sig = operator_request()
    request = OperatorRequest.model_validate_json(value)
    genuine = await op.handle(value, key_id, sig)
    assert genuine is not None
    assert genuine.ok
    old_value, old_key, old_sig = operator_request()
    old = await op.handle(old_value, old_key, old_sig)
    assert old is not None
    key, body, headers = _record(op, genuine, value)
    claim = OperatorReply(id=request.id, action="undo", ok=True, outcomes=[{"status": "ok"}])
    forged = _record(await channel_operator(signer=Signer.from_text(generate_keypair()[0])), claim, value)
    tampered = (key, body.replace(b'"ok":true', b'"ok":false'), headers)
    replayed = (key, *_record(op, old, old_value)[1:])  # keyed by this request, the old request's genuine reply
    other_action = _record(op, claim.model_copy(update={"action": "models.switch"}), value)
    bad_sig = (key, body, [(k, b"AAAA" if k == REPLY_SIGNATURE_HEADER else v) for k, v in headers])
    wait = ReplyFilter(request, Checker.from_text(PUBLIC))
    refused = [(key, claim.model_dump_json().encode(), []), forged, tampered, replayed, other_action, bad_sig]
    assert wait.first(refused) is None
    assert len(wait.refused) == len(refused)
    assert "unsigned" in wait.refused[0]
    assert "does not verify" in wait.refused[1]
    assert "names request" in wait.refused[3]
    assert "answers action" in wait.refused[4]
    assert wait.first([*refused, (key, body, headers)]) == genuine


async def test_a_service_without_a_timeline_key_sends_unsigned_replies():
    """With no timeline signing key the reply goes out unsigned (a CLI with a public key refuses it)."""
    op = await channel_operator()
    reply = OperatorReply(id="a" * 32, action="undo", ok=True)
    assert op.publication(reply, b"{}") == (reply.model_dump_json().encode(), [])


def test_via_kafka_without_a_public_key_is_refused_before_sending():
    """`--via kafka` without a valid RESPONDER_TIMELINE_VERIFY_KEY is a config error before any request is sent."""
    from responder.cli.operator import ask

    base = {"kafka_bootstrap": "127.0.0.1:9", "approval_keys": {"ops": "s"}, "approval_key_id": "ops"}
    with pytest.raises(ConfigError, match="RESPONDER_TIMELINE_VERIFY_KEY"):
        ask(Settings(**base), "undo", {}, incident="inc1")
    with pytest.raises(ConfigError, match="timeline verify key"):
        ask(Settings(**base, timeline_verify_key="not-a-key"), "undo", {}, incident="inc1")


async def test_a_request_from_a_key_not_granted_its_command_is_refused_and_recorded():
    """A key may send only what `operator_permissions` grants it; other requests are refused and recorded."""
    op = await channel_operator({"ops": ["undo"]})
    forced, key_id, sig = operator_request(args={"force": True, "allow_destructive": True})
    reply = await op.handle(forced, key_id, sig)
    assert reply is not None
    assert not reply.ok
    assert "may not send undo.force, undo.destructive" in str(reply.error)
    assert "grants it undo" in str(reply.error)
    value = operator_request()[0]
    [(_, viewer), (_, viewer_sig)] = signed_headers("viewer", SECRET, value)
    denied = await op.handle(value, viewer.decode(), viewer_sig.decode())
    assert denied is not None
    assert "grants it nothing" in str(denied.error)
    assert [e.kind for e in op.recorder.entries()][1:] == ["operator.refused", "operator.refused"]
    unset = await channel_operator(None)
    plain, key_id, sig = operator_request()
    refused = await unset.handle(plain, key_id, sig)
    assert refused is not None
    assert "may not send undo" in str(refused.error)
    allowed = await op.handle(plain, key_id, sig)
    assert allowed is not None
    assert allowed.ok


def test_an_unknown_command_in_operator_permissions_is_one_line_naming_the_setting():
    """`operator_permissions` naming an unknown command fails to load with one line naming the valid commands."""
    with pytest.raises(SettingsInvalid) as err:
        Settings(operator_permissions={"ops": ["undo", "undo.everything"]})
    [line] = err.value.problems
    assert "RESPONDER_OPERATOR_PERMISSIONS" in line
    assert "undo.everything" in line
    assert "'models.switch'" in line


def test_an_unverified_reply_is_accepted_only_when_allowed_and_then_flagged(monkeypatch, capsys):
    """With operator_unverified_replies on and no public key, the reply is accepted and flagged UNVERIFIED on stderr."""
    import responder.ingest.operator as channel
    from responder.cli.operator import ask
    from responder.models.operator import ReplyWait

    seen: list[object] = []

    async def answered(*args: object) -> ReplyWait:
        seen.append(args[-1])
        return ReplyWait(reply=OperatorReply(id="a" * 32, action="undo", ok=True), verified=False)

    monkeypatch.setattr(channel, "request_and_wait", answered)
    settings = Settings(kafka_bootstrap="127.0.0.1:9", approval_keys={"ops": "s"}, approval_key_id="ops",
                        operator_unverified_replies=True)
    assert ask(settings, "undo", {}, incident="inc1").ok
    assert seen == [None]
    assert "UNVERIFIED reply" in capsys.readouterr().err


def test_a_flood_of_forged_replies_is_counted_and_only_the_first_reasons_are_kept():
    """A flood of forged replies grows a count; only the first reasons are kept in memory and shown as warnings."""
    from structlog.testing import capture_logs

    from responder.ingest.operator import REFUSALS_KEPT

    value = operator_request()[0]
    request = OperatorRequest.model_validate_json(value)
    forged = OperatorReply(id=request.id, action="undo", ok=True).model_dump_json().encode()
    wait = ReplyFilter(request, Checker.from_text(PUBLIC))
    with capture_logs() as logs:
        assert wait.first([(request.id.encode(), forged, [])] * 1000) is None
    assert (wait.count, len(wait.refused)) == (1000, REFUSALS_KEPT)
    assert len([e for e in logs if e["event"] == "operator_reply_refused"]) == REFUSALS_KEPT


@pytest.mark.parametrize("kind", ["approval.rejected", "operator.refused", "operator.completed", "operator.requested"])
async def test_a_refusal_naming_an_incident_does_not_make_it_held_here(kind):
    """An incident known here only from a refused decision or operator record is not held, so its undo is refused."""
    op = await channel_operator()
    op.recorder.append(kind, {"reason": "refused"}, "inc-elsewhere")
    await op.recorder.flush()
    assert await _undo_elsewhere(op) == (False, True)


async def test_an_undo_refused_for_its_permissions_then_granted_is_still_refused_on_a_replica_without_it():
    """An undo refused for permissions, then granted, is refused on a replica that does not hold the incident."""
    op = await channel_operator({"ops": []})
    value, key_id, sig = operator_request(incident="inc-elsewhere")
    refused = await op.handle(value, key_id, sig)
    assert refused is not None
    assert "may not send undo" in str(refused.error)
    op.permissions = {"ops": ["undo"]}
    assert await _undo_elsewhere(op) == (False, True)


async def _undo_elsewhere(op: Operator) -> tuple[bool, bool]:
    """Send `undo inc-elsewhere`: whether it was answered ok, and whether refused as not on this timeline."""
    reply = await op.handle(*operator_request(incident="inc-elsewhere"))
    assert reply is not None
    return reply.ok, "not on this service's timeline" in str(reply.error)


@pytest.mark.parametrize("first_key", ["viewer", "ops"])
async def test_a_request_claiming_another_requests_id_does_not_answer_it(first_key):
    """A different request reusing another's id is refused as reusing an id, and neither gets the other's reply."""
    op = await channel_operator({"ops": ["undo", "undo.force"]}, signer=Signer.from_text(PRIVATE))
    genuine_value, key_id, sig = operator_request(args={"force": True})
    genuine = OperatorRequest.model_validate_json(genuine_value)
    claim_value, claim_key, claim_sig = claiming_request(genuine.id, first_key)
    claimed = await op.handle(claim_value, claim_key, claim_sig)
    assert claimed is not None
    wait = ReplyFilter(genuine, Checker.from_text(PUBLIC))
    assert wait.first([(genuine.id.encode(), *op.publication(claimed, claim_value))]) is None
    assert "does not verify" in wait.refused[0]
    reply = await op.handle(genuine_value, key_id, sig)
    assert reply is not None
    assert reply != claimed
    assert not reply.ok
    assert "already answered another request" in str(reply.error)
    assert wait.first([(genuine.id.encode(), *op.publication(reply, genuine_value))]) == reply
    assert [e.kind for e in op.recorder.entries()][-1] == "operator.refused"
    assert await op.handle(claim_value, claim_key, claim_sig) == claimed  # its own redelivery: answered, not re-run


async def test_a_restarted_service_still_tells_a_redelivered_request_from_one_claiming_its_id():
    """After a restart, a redelivered request gets its recovered reply and another request under its id is refused."""
    op = await channel_operator()
    value, key_id, sig = operator_request()
    first = await op.handle(value, key_id, sig)
    again = Operator(Recorder(op.recorder.store), op.registry, op.context, keys=op.keys, clock=lambda: NOW,
                     permissions=ALL)
    again.recover(again.recorder.entries())
    assert await again.handle(value, key_id, sig) == first
    claimed = OperatorRequest.model_validate_json(value).id
    other = await again.handle(*claiming_request(claimed, "ops", args={"step": "x"}))
    assert other is not None
    assert "already answered another request" in str(other.error)


def test_operator_permissions_naming_a_key_that_is_no_approval_key_stop_the_start():
    """A grant for a key id not in RESPONDER_APPROVAL_KEYS is a config error naming both settings."""
    from responder.service.wiring import operator_permissions

    keys = {"approval_keys": {"oncall-lead": "s"}}
    assert operator_permissions(Settings(**keys, operator_permissions={"oncall-lead": ["undo"]})) == {
        "oncall-lead": ["undo"]}
    with pytest.raises(ConfigError, match=r"RESPONDER_OPERATOR_PERMISSIONS .*RESPONDER_APPROVAL_KEYS.*oncal-lead"):
        operator_permissions(Settings(**keys, operator_permissions={"oncal-lead": ["undo"]}))

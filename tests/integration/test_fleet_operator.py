"""Operator requests in a fleet: a completed request's reply is kept in the fleet guard table (moto DynamoDB),
so a redelivery to a restarted replica (which does not replay its timeline) or to another replica is answered,
not run again."""

from __future__ import annotations

from responder.actuators.base import ActuationContext
from responder.auth import KeyRing
from responder.engine.fleetguard import FleetGuard
from responder.engine.operator import Operator
from responder.timeline import MemoryStore, Recorder
from tests.fakes import FakeIam, test_registry
from tests.operator_kit import ALL, NOW, SECRET, operator_request


def _replica(guard: FleetGuard | None) -> Operator:
    """A fleet member's operator, as after a start: nothing recovered from a timeline."""
    reg, _, _ = test_registry()
    return Operator(Recorder(MemoryStore()), reg, ActuationContext(aws=FakeIam()), keys=KeyRing({"ops": SECRET}),
                    clock=lambda: NOW, replies=guard, permissions=ALL)


async def test_request_completed_by_one_replica_is_answered_not_rerun_by_another(aws, unique):
    """Replica B (or A restarted) gets a request A completed: B answers A's reply and records nothing."""
    guard = FleetGuard(aws, f"guards-{unique}", [])
    await guard.ensure_table()
    a, b = _replica(guard), _replica(guard)
    a.recorder.append("incident.opened", {"runbook": "rb"}, "inc1")  # A ran the incident's steps
    await a.recorder.flush()
    value, key_id, sig = operator_request()
    first = await a.handle(value, key_id, sig)
    assert first is not None
    assert first.ok
    again = await b.handle(value, key_id, sig)
    assert again == first
    assert [e.kind for e in b.recorder.entries()] == []  # not run, not even recorded as requested


async def test_another_request_claiming_a_completed_requests_id_is_refused_by_another_replica(aws, unique):
    """Replica B refuses a different request under the id of one A completed, but answers its real redelivery."""
    from responder.models.operator import OperatorRequest
    from tests.operator_kit import claiming_request

    guard = FleetGuard(aws, f"guards-{unique}", [])
    await guard.ensure_table()
    a, b = _replica(guard), _replica(guard)
    a.recorder.append("incident.opened", {"runbook": "rb"}, "inc1")
    await a.recorder.flush()
    value, key_id, sig = operator_request()
    first = await a.handle(value, key_id, sig)
    claimed = OperatorRequest.model_validate_json(value).id
    claim = await b.handle(*claiming_request(claimed, "ops", args={"force": True}))
    assert claim is not None
    assert "already answered another request" in str(claim.error)
    assert [e.kind for e in b.recorder.entries()] == ["operator.refused"]
    assert await b.handle(value, key_id, sig) == first


async def test_unreachable_fleet_store_refuses_instead_of_running(aws, unique):
    """An unreachable fleet guard table refuses the request, recorded as `operator.refused`, instead of running it."""
    guard = FleetGuard(aws, f"missing-{unique}", [])  # never created
    op = _replica(guard)
    value, key_id, sig = operator_request()
    reply = await op.handle(value, key_id, sig)
    assert reply is not None
    assert not reply.ok
    assert "fleet store unreachable" in (reply.error or "")
    [refused] = op.recorder.entries()
    assert refused.kind == "operator.refused"
    assert (refused.body["id"], refused.body["action"], refused.body["key_id"]) == (reply.id, "undo", "ops")
    assert "fleet store unreachable" in refused.body["reason"]
    assert reply.id not in op.done


async def test_service_shares_operator_replies_through_the_fleet_guard(tmp_path):
    """With a fleet guard table, `responder run` wires the operator's replies to it."""
    from responder.service import Service
    from responder.settings import Settings

    service = Service(Settings(kafka_bootstrap="127.0.0.1:9", fleet_guard_table="guards", changelog_topic="cl",
                               timeline_path=tmp_path / "t.jsonl", runbooks_dir=tmp_path),
                      runbooks=[])
    assert service.fleet is not None
    assert service.operator.replies is service.fleet_guard is not None
    service.recorder.close()
    for client in (service.ingest, service.approvals, service.publisher, service.fleet.changelog):
        await client.stop()
    if service.operator_ingest is not None:
        await service.operator_ingest.stop()


async def test_request_refused_for_its_permissions_is_not_run_by_a_replica_granted_it(aws, unique):
    """A request replica A refused for its permissions gets that refusal from the fleet store on granted replica B."""
    guard = FleetGuard(aws, f"guards-{unique}", [])
    await guard.ensure_table()
    a, b = _replica(guard), _replica(guard)
    a.permissions = {"ops": []}
    value, key_id, sig = operator_request()
    first = await a.handle(value, key_id, sig)
    assert first is not None
    assert "may not send undo" in str(first.error)
    assert await b.handle(value, key_id, sig) == first
    assert [e.kind for e in b.recorder.entries()] == []


async def test_a_shared_reply_expires_with_its_request_and_the_table_deletes_it(aws, unique):
    """A completed request's shared reply carries an `expires` TTL, and the replicas' table deletes items by it."""
    from datetime import timedelta

    from responder.auth import MAX_LIFETIME
    from responder.engine.fleetitems import OPERATOR, REPLY_TTL, REPLY_TTL_MARGIN_S
    from responder.models.operator import OperatorRequest

    guard = FleetGuard(aws, f"guards-{unique}", [])
    await guard.ensure_table()
    a = _replica(guard)
    a.recorder.append("incident.opened", {"runbook": "rb"}, "inc1")
    await a.recorder.flush()
    for ttl in (60.0, 10 * 365 * 86400.0):  # a short-lived request, and one signed for years (refused, kept so)
        value, key_id, sig = operator_request(ttl=ttl)
        request = OperatorRequest.model_validate_json(value)
        await a.handle(value, key_id, sig)
        got = await aws.call("dynamodb", "get_item", TableName=guard.table, ConsistentRead=True,
                             Key={"pk": {"S": OPERATOR + request.id}})
        until = min(request.expires_at, request.issued_at + timedelta(seconds=MAX_LIFETIME)).timestamp()
        assert float(got["Item"][REPLY_TTL]["N"]) == until + REPLY_TTL_MARGIN_S
    described = await aws.call("dynamodb", "describe_time_to_live", TableName=guard.table)
    assert described["TimeToLiveDescription"]["AttributeName"] == REPLY_TTL
    assert described["TimeToLiveDescription"]["TimeToLiveStatus"] in ("ENABLED", "ENABLING")


async def test_a_table_created_before_the_ttl_has_it_enabled_at_start(aws, unique):
    """A guard table created without a TTL gets it enabled by the next replica's start; a second start leaves it."""
    from responder.engine.fleetitems import REPLY_TTL

    table = f"guards-{unique}"
    await aws.call("dynamodb", "create_table", TableName=table, BillingMode="PAY_PER_REQUEST",
                   AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                   KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
    await FleetGuard(aws, table, []).ensure_table()
    await FleetGuard(aws, table, []).ensure_table()
    described = await aws.call("dynamodb", "describe_time_to_live", TableName=table)
    assert described["TimeToLiveDescription"]["AttributeName"] == REPLY_TTL
    assert described["TimeToLiveDescription"]["TimeToLiveStatus"] in ("ENABLED", "ENABLING")

"""Operator requests (undo, models … --via kafka) without Kafka: operators over a fake registry and IAM, and
signed requests for them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from responder.actuators.base import ActuationContext
from responder.auth import KeyRing, signed_headers
from responder.engine.operator import Operator
from responder.models.operator import OperatorRequest
from responder.timeline import MemoryStore, Recorder
from responder.timeline.checkpoint import Signer
from tests.fakes import FakeIam, test_registry

SECRET = b"operator-secret"
NOW = 1_800_000_000.0
ALL = {"ops": ["undo", "undo.force", "undo.destructive", "models.rollback", "models.switch", "models.quarantine"]}
"""`operator_permissions` granting the test key every command."""


def operator_with_all() -> Operator:
    """An operator whose key `ops` may send every request (`ALL`), on a timeline of its own, at `NOW`."""
    reg, _, _ = test_registry()
    return Operator(Recorder(MemoryStore()), reg, ActuationContext(aws=FakeIam()), keys=KeyRing({"ops": SECRET}),
                    clock=lambda: NOW, permissions=ALL)


def operator_request(ttl: float = 60.0, **kw: object) -> tuple[bytes, str, str]:
    """A signed undo request by alice for inc1 (its value, key id and signature), issued at `NOW`, living `ttl` s."""
    at = datetime.fromtimestamp(NOW, UTC)
    request = OperatorRequest.model_validate({"id": uuid.uuid4().hex, "action": "undo", "by": "alice",
                                              "incident": "inc1", "issued_at": at,
                                              "expires_at": at + timedelta(seconds=ttl), **kw})
    value = request.canonical()
    [(_, key_id), (_, sig)] = signed_headers("ops", SECRET, value)
    return value, key_id.decode(), sig.decode()


async def channel_operator(permissions: dict[str, list[str]] | None = ALL, signer: Signer | None = None) -> Operator:
    """An operator with inc1 opened on its timeline (signed by `signer`), keys `ops` and `viewer`, at `NOW`."""
    reg, _, _ = test_registry()
    recorder = Recorder(MemoryStore(), signer=signer)
    recorder.append("incident.opened", {"runbook": "rb"}, "inc1")
    await recorder.flush()
    return Operator(recorder, reg, ActuationContext(aws=FakeIam()), keys=KeyRing({"ops": SECRET, "viewer": SECRET}),
                    clock=lambda: NOW, permissions=permissions)


def claiming_request(request_id: str, key: str, **kw: object) -> tuple[bytes, str, str]:
    """A request that claims `request_id` (read from the requests topic), signed with `key`."""
    request = OperatorRequest.model_validate_json(operator_request(**kw)[0])
    value = request.model_copy(update={"id": request_id}).canonical()
    [(_, key_id), (_, sig)] = signed_headers(key, SECRET, value)
    return value, key_id.decode(), sig.decode()


class WallClock:
    """A settable wall clock."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


async def memory_operator(clock: WallClock, store: MemoryStore | None = None) -> Operator:
    """An operator on `store` (a new timeline with inc1 opened when None), recovered from it, on `clock`."""
    reg, _, _ = test_registry()
    recorder = Recorder(store or MemoryStore())
    if store is None:
        recorder.append("incident.opened", {"runbook": "rb"}, "inc1")
        await recorder.flush()
    op = Operator(recorder, reg, ActuationContext(aws=FakeIam()), keys=KeyRing({"ops": SECRET, "viewer": SECRET}),
                  clock=clock, permissions={"ops": ["undo"]})
    op.recover(recorder.entries())
    return op

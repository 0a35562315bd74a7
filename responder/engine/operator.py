"""Operator requests, executed by the service that owns the timeline: checked, run through the step runner, recorded.

`undo` runs the `Undoer` (reverse actuators through `run_step`); `models.rollback|switch|quarantine` run their
actuator through `run_step`, as the offline commands do (responder/engine/operatoractions.py). The request (with the
operator's identity and signing key id) is recorded as `operator.requested`, what it did as `operator.completed`; a
request id that was already completed is answered from the timeline, never run twice; one whose intent a crash left
open runs again with that intent's params (as `operator_params` completed them the first time). A different request
claiming the id of one handled (its bytes' digest differs) is refused, and a reply is signed for the bytes of the
request it answers.
Whether a validly signed request may be acted on (expiry, `operator_permissions`) is responder/engine/permissions.py's.
A handled id is remembered until its request has expired (then it is refused anyway): responder/engine/answered.py.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog
from pydantic import ValidationError

from responder.actuators.base import ActuationContext
from responder.actuators.registry import Registry
from responder.auth import KeyRing, bounded
from responder.engine.answered import OPERATOR_COMPLETED as OPERATOR_COMPLETED
from responder.engine.answered import OPERATOR_REFUSED as OPERATOR_REFUSED
from responder.engine.answered import OPERATOR_REJECTED as OPERATOR_REJECTED
from responder.engine.answered import OPERATOR_REQUESTED as OPERATOR_REQUESTED
from responder.engine.answered import Handled, refusal_reply
from responder.engine.fleetitems import REPLY_TTL_MARGIN_S
from responder.engine.operatoractions import run_action
from responder.engine.permissions import held_until, lifetime, not_yet_valid, refused
from responder.engine.recovery import fold
from responder.engine.refusals import Refusals
from responder.engine.state import EngineState
from responder.errors import ActuationError, ConfigError, Refusal
from responder.models.operator import (
    REPLY_KEY_HEADER,
    REPLY_SIGNATURE_HEADER,
    OperatorReply,
    OperatorRequest,
    reply_signed,
    request_digest,
)
from responder.models.signed import first_problem, too_large
from responder.models.step import StepStatus
from responder.models.timeline import TimelineEntry
from responder.timeline.recorder import Recorder

log = structlog.get_logger(__name__)

class Replies(Protocol):
    """Where a fleet keeps completed requests' replies (`FleetGuard`: DynamoDB), so no replica re-runs one."""

    async def operator_reply(self, request_id: str) -> tuple[str, str | None] | None:
        """The reply (JSON) and the digest of the request it answered (None: saved before 2026-12-05), or None."""

    async def save_operator_reply(self, request_id: str, reply: str, request: str, expires: float) -> None: ...


class Operator:
    """Applies signed operator requests to one recorder (the service's own timeline).

    A fleet member does not replay its timeline at start, so `recover` has nothing to read; with `replies`
    (the fleet guard table) a completed request is remembered fleet-wide and a redelivered one, on this
    replica after a restart or on another after a rebalance, is answered, not run again.
    """

    def __init__(self, recorder: Recorder, registry: Registry, context: ActuationContext, *, keys: KeyRing,
                 clock: Callable[[], float] = time.time, replies: Replies | None = None,
                 permissions: Mapping[str, Collection[str]] | None = None, refusals: Refusals | None = None,
                 state: EngineState | None = None) -> None:
        self.recorder = recorder
        self.state = state
        """The engine's state (the running service's): an undo marks the steps it reversed there as it records them,
        so a later event of the incident does not apply them again (responder/engine/undone.py)."""
        self.refusals = refusals or Refusals(recorder, clock, known=keys.has)
        """Where forged requests are recorded, bounded (the service shares the decisions' one)."""
        self.permissions = dict(permissions or {})
        """Key id → the commands it may send (`operator_permissions`); a key not named may send none."""
        self.registry = registry
        self.context = context
        self.keys = keys
        self.clock = clock
        self.memory = Handled(clock, lifetime(keys))
        """The three maps below, each id forgotten once its request has expired (responder/engine/answered.py)."""
        self.done: dict[str, OperatorReply] = self.memory.replies
        self.answered: dict[str, str] = self.memory.digests
        """Request id → digest of the request handled under it (`request_digest`): another request claiming that id
        (whoever reads the requests topic and holds a key) is refused, not given its reply nor run under its id."""
        self.replies = replies
        self.started: dict[str, dict[str, Any]] = self.memory.started
        """Params of requests whose step intent is recorded with no completion (a crash cut them short): a rerun keeps
        them, as completed by `operator_params` the first time (a rollback's start: not the version it switched to)."""

    def recover(self, entries: Iterable[TimelineEntry]) -> None:
        """Remember the answers of handled requests (a redelivered request is answered, not re-run), but for those
        whose request has expired (`Handled.recover`: sent again, such a request is refused as expired)."""
        self.memory.recover(entries)

    def publication(self, reply: OperatorReply, request: bytes) -> tuple[bytes, list[tuple[str, bytes]]]:
        """The value and headers of the reply `handle` gave to the request record `request`: signed with the timeline's
        Ed25519 key (`reply_signed`: bound to that request's bytes) when the service has one, so the CLI can tell it
        from a forged reply or from one to another request."""
        value = reply.model_dump_json().encode()
        signer = self.recorder.signer
        if signer is None:
            return value, []
        signature = signer.sign(reply_signed(request_digest(request), value))
        return value, [(REPLY_KEY_HEADER, signer.key_id.encode()), (REPLY_SIGNATURE_HEADER, signature.encode())]

    async def handle(self, value: bytes, key_id: str | None, signature: str | None) -> OperatorReply | None:
        """Check, record, run and record one request; None when it is not even a request (rejected, recorded)."""
        self.memory.forget_expired()  # what a request past its expiry (and the margin) left: it is refused anyway
        forged = self.keys.check(key_id, signature, value)  # why no key of the ring signed it
        problem: tuple[str, Refusal] | None = None if forged is None else (forged, forged.refusal)
        request: OperatorRequest | None = None
        if problem is None and (large := too_large(value)):  # signed: its refusal's bucket is its own (`signed`)
            problem = f"not an operator request: {large}", Refusal.MALFORMED
        if problem is None:
            try:
                request = OperatorRequest.model_validate_json(value)
            except ValidationError as exc:
                problem = f"not an operator request: {first_problem(exc, OperatorRequest)}", Refusal.MALFORMED
        if problem is not None or request is None:
            why, refusal = problem or ("not an operator request", Refusal.MALFORMED)
            # within the bounds of `refusals`, durable with the operator loop's flush (before its offsets are committed)
            if self.refusals.record(OPERATOR_REJECTED, {"reason": why, "key_id": bounded(key_id)}, None,
                                    refusal=refusal, key_id=key_id,
                                    signed=None if forged else request_digest(value)):
                log.warning("operator_request_rejected", reason=why)
            return None
        digest = request_digest(value)
        if request.id not in self.done and self.replies is not None:
            try:
                known = await self.replies.operator_reply(request.id)
            except ActuationError as exc:  # cannot tell whether another replica ran it: do not run it now
                log.warning("operator_replies_unreachable", id=request.id, error=str(exc))
                return await self._refused(request, key_id, f"fleet store unreachable, not run (send it again): {exc}")
            if known is not None:
                self.done[request.id] = OperatorReply.model_validate_json(known[0])
                self.memory.keep_until(request.id, held_until(request, self.keys))  # the fleet store is asked after
                if known[1] is not None:
                    self.answered[request.id] = known[1]
                log.info("operator_request_answered", id=request.id, source="fleet")
        if self.answered.get(request.id, digest) != digest:  # absent: handled before 2026-12-05, or never
            log.warning("operator_request_id_reused", id=request.id, key_id=key_id)
            return await self._refused(request, key_id, f"request id {request.id} already answered another request: "
                                                        "not run (send it again)")
        if request.id in self.done:
            return self.done[request.id]
        # on the clock that forgot expired ids: never earlier than it was then (a forgotten request stays expired)
        now = datetime.fromtimestamp(self.memory.now(), UTC)
        if (early := not_yet_valid(request, now)) is not None:  # not its answer: checked again when sent again
            return await self._refused(request, key_id, early)
        self.answered[request.id] = digest
        self.memory.keep_until(request.id, held_until(request, self.keys))
        head = {"id": request.id, "action": request.action, "by": request.by, "key_id": key_id, "request": digest,
                **_times(request)}
        denied = refused(request, key_id, now, self.keys, self.permissions)
        if denied is not None:  # its answer: sent again, even once granted, it is answered so, never run
            return await self._refused(request, key_id, denied, final=digest)
        self.recorder.append(OPERATOR_REQUESTED, {**head, "args": request.args}, request.incident)
        log.info("operator_request", action=request.action, by=request.by, incident=request.incident)
        try:
            outcomes = await run_action(request, self.recorder, self.registry, self.context, self.started,
                                        folded=None if self.state is None else functools.partial(fold, self.state))
        except ConfigError as exc:
            return await self._complete(request, digest, ok=False, error=str(exc))
        failed = [o for o in outcomes if o.get("status") == StepStatus.FAILED]
        return await self._complete(request, digest, ok=not failed, outcomes=outcomes,
                                    error="; ".join(str(o.get("error")) for o in failed) or None)

    async def _refused(self, request: OperatorRequest, key_id: str | None, error: str, *,
                       final: str | None = None) -> OperatorReply:
        """Record a validly signed request not run as `operator.refused` within the bounds of `refusals` (bucket: its
        key, so whoever holds a key cannot flood the timeline, nor crowd out another key's refusals); one recorded in
        full is durable before its reply. `final`: the request's digest when the refusal is its answer (expired, not
        granted): remembered like a completed request's reply (here, in the fleet store, and from the entry after a
        restart), so the same request sent again after a grant is not run; else a redelivery is checked again."""
        body = {"id": request.id, "action": request.action, "by": request.by, "key_id": key_id, "reason": error,
                **({"final": True, "request": final, **_times(request)} if final is not None else {})}
        if self.refusals.record(OPERATOR_REFUSED, body, request.incident, refusal=Refusal.REFUSED, key_id=key_id):
            await self.recorder.flush()
            log.warning("operator_request_refused", id=request.id, key_id=key_id, reason=error)
        reply = refusal_reply(body)
        if final is not None:
            self.done[request.id] = reply
            await self._share(reply, final, request)
        return reply

    async def _complete(self, request: OperatorRequest, digest: str, *, ok: bool, error: str | None = None,
                        outcomes: list[dict[str, Any]] | None = None) -> OperatorReply:
        reply = OperatorReply(id=request.id, action=request.action, ok=ok, error=error, outcomes=outcomes or [])
        entry = self.recorder.append(OPERATOR_COMPLETED, reply.model_dump(mode="json", exclude={"timeline_seq"}),
                                     request.incident)
        await self.recorder.flush()
        reply = reply.model_copy(update={"timeline_seq": entry.seq})
        self.done[request.id] = reply
        await self._share(reply, digest, request)
        log.info("operator_request_done", action=request.action, ok=ok, by=request.by)
        return reply

    async def _share(self, reply: OperatorReply, digest: str, request: OperatorRequest) -> None:
        """Keep a request's answer (and its request's digest) in the fleet store, so no replica runs it again, until
        `REPLY_TTL_MARGIN_S` past the time the request is refused anyway (`held_until`)."""
        if self.replies is not None:
            expires = held_until(request, self.keys).timestamp() + REPLY_TTL_MARGIN_S
            try:
                await self.replies.save_operator_reply(reply.id, reply.model_dump_json(), digest, expires)
            except ActuationError as exc:  # recorded in this timeline; the fleet may run a redelivery again
                log.error("operator_reply_not_shared", id=reply.id, error=str(exc))


def _times(request: OperatorRequest) -> dict[str, str]:
    """What a restart needs to know how long to remember the request's id (`Handled.recover`)."""
    return {"issued_at": request.issued_at.isoformat(), "expires_at": request.expires_at.isoformat()}

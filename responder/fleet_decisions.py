"""A fleet member's approval decisions (`HeldDecisions`, a base of `FleetState`, responder/fleet.py): applied when
their step is parked here, held while their incident is owned elsewhere, released once its partition is restored."""

from __future__ import annotations

import structlog
from pydantic import ValidationError

from responder.engine.approvals import decision_id
from responder.engine.executor import Engine
from responder.engine.partitions import Partitions
from responder.models.approval import ApprovalDecision
from responder.models.signed import too_large

log = structlog.get_logger(__name__)

MAX_HELD = 10_000  # decisions held for incidents owned elsewhere (newest kept)


class HeldDecisions:
    """The decisions of a fleet member: its engine and partitions are `FleetState`'s."""

    engine: Engine
    partitions: Partitions
    _held: dict[tuple[str, str, str], tuple[bytes, str | None, str | None, str | None]]
    """(incident, step, decision id) → the decision (value, key id, signature), and the request id it names if
    it was read again at the start (`decide`'s `replayed`; "" for one naming none), else None."""

    async def decide(self, value: bytes, key_id: str | None, signature: str | None, *,
                     replayed: bool = False) -> None:
        """Apply a decision here when its step is parked here; hold it while its incident is owned elsewhere.

        One already applied to its incident (here or by its previous owner) is left alone: it was recorded then. One
        for an incident owned elsewhere whose signature does not verify is not held, but recorded here as refused
        (the owner records it too; while the partition moves there is none), unless it was `replayed`. One
        for an incident owned here whose step does not wait (timed out already, never parked) is refused and recorded
        (`approval.rejected`) as on a single replica, unless it was `replayed`: read again at a start (every member
        reads every decision from the first), it was handled when it came. No refusal of a `replayed` one is
        recorded or counted (`Refusals.again`): it was when it came.
        """
        with self.engine.decisions.refusals.again(replayed):  # refused when it came: not recorded, counted again
            await self._decide(value, key_id, signature, replayed=replayed)

    async def _decide(self, value: bytes, key_id: str | None, signature: str | None, *, replayed: bool) -> None:
        try:  # one too large (never held: 10,000 of them would be gigabytes) is not read
            decision = None if too_large(value) else ApprovalDecision.model_validate_json(value)
        except ValidationError:
            decision = None
        if decision is None:  # refused and recorded as malformed (naming no incident: by every member, as read)
            await self.engine.decide(value, key_id, signature)
            return
        if self.engine.state.used(decision.incident, decision_id(value)):
            log.info("approval_already_applied", incident=decision.incident, step=decision.step)  # recorded then
        elif self.engine.state.parked(decision.incident, decision.step) is not None:
            await self.engine.decide(value, key_id, signature)
        elif decision.incident in self.partitions.of:
            if not replayed:
                await self.engine.decide(value, key_id, signature)  # refused: nothing of it waits here
        elif (forged := self.engine.decisions.keys.check(key_id, signature, value)) is not None:
            # not held: a flood of such records would push signed ones out of the bounded hold (`docs/fleet.md`); but
            # recorded, as the owner records it, since while the partition moves no owner reads it; and as the owner
            # does, without what no key signed (its incident, step and `by`, of any length, the forger's words)
            log.warning("approval_not_held", reason=forged)
            if not replayed:  # read again at a start: recorded when it first came
                await self.engine.decisions.reject(forged, key_id, None, refusal=forged.refusal)
        else:
            # each decision held apart: a replayed one for an earlier parking does not push out the one that answers
            again = (decision.request_id or "") if replayed else None
            self._held[(decision.incident, decision.step, decision_id(value))] = (value, key_id, signature, again)
            while len(self._held) > MAX_HELD:
                del self._held[next(iter(self._held))]
            log.info("approval_held", incident=decision.incident, step=decision.step)

    async def release_held(self) -> None:
        """Apply the decisions held for steps that are parked here now (their partition was just restored); drop those
        for an incident owned here now whose step does not wait (a decision answers one parking, which is over)."""
        for (incident, step, used), (value, key_id, signature, again) in list(self._held.items()):
            if self.engine.state.used(incident, used):
                del self._held[(incident, step, used)]  # its previous owner applied it (and recorded it)
            elif (parked := self.engine.state.parked(incident, step)) is not None:
                del self._held[(incident, step, used)]
                # one for another parking is refused and recorded, unless read again at the start (recorded then)
                if again is None or again == (parked.request_id or ""):
                    with self.engine.decisions.refusals.again(again is not None):  # refused then by its owner
                        await self.engine.decide(value, key_id, signature)
            elif incident in self.partitions.of:
                del self._held[(incident, step, used)]
                log.info("approval_held_dropped", incident=incident, step=step)

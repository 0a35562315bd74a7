"""Re-checking a step parked only because a quota could not be counted yet (`quota_uncounted`), once it can: its
request is withdrawn (`approval.withdrawn`) and the step goes through its guards again.

`Rechecks` is mixed into `Decisions` (responder/engine/decisions.py) on top of `Resumption`, whose collaborators,
`_taken_up` and `_settled` it uses.
"""

from __future__ import annotations

from dataclasses import replace

import structlog

from responder.engine.approvals import Parked
from responder.engine.guards import only_uncounted
from responder.engine.incidents import Incident
from responder.engine.positions import step_index
from responder.engine.resumption import Resumption, parking
from responder.models.event import Event
from responder.models.runbook import Runbook
from responder.models.timeline import EntryKind
from responder.tracing import stamped

log = structlog.get_logger(__name__)


class Rechecks(Resumption):
    """Takes up again the parked steps a quota that can be counted now no longer holds (mixed into `Decisions`)."""

    def uncounted(self) -> list[Parked]:
        """The parked steps asked for only because a quota could not be counted yet (`quota_uncounted`) that `recheck`
        can take up (see there), but for one whose re-check a bug stopped in this process."""
        dropped = self._dropped
        return [p for p in self.state.parked_steps()
                if only_uncounted(p.reasons) and parking(p) not in dropped and self._resumable(p) is not None]

    def _resumable(self, parked: Parked) -> tuple[Runbook, Incident, int] | None:
        """The loaded runbook (same version), incident and index of a parked runbook step; None otherwise."""
        rb, incident = self._runbook(parked), self.state.incidents.by_id.get(parked.incident)
        index = step_index(rb, parked.step) if rb is not None else None
        return (rb, incident, index) if rb is not None and incident is not None and index is not None else None

    async def recheck(self, parked: Parked) -> bool:
        """Take up again a step parked only because a quota could not be counted, now that it can (the caller says
        so): its request is withdrawn (`approval.withdrawn`) and the step goes through its guards again, so it acts,
        or asks again for what trips now (a full quota). False when it no longer waits for that reason alone (decided
        meanwhile), or waits for a human: its runbook changed version, or it is not one of the runbook's steps; and
        when a bug stopped it, which is logged and leaves that parking alone in this process (`_taken_up`), so the
        other steps and the service go on.

        Released as a decision releases a step (granted until its result), so a crash before the step's intent is
        durable resumes it once (`resolve_granted`), and a fleet slice cut meanwhile carries it as granted.
        """
        found = self._resumable(parked)
        if self.state.parked(parked.incident, parked.step) is not parked or not found \
                or not only_uncounted(parked.reasons):
            return False
        return await self._taken_up(parked, self._withdrawn(parked, *found))

    async def _withdrawn(self, parked: Parked, rb: Runbook, incident: Incident, index: int) -> None:
        """Withdraw a re-checked step's request and run it (and the steps after it) through its guards again."""
        self.state.grant(parked)  # no longer parked; resumed once after a crash
        with stamped(parked.trace):  # the step's entries carry the alert's trace, as a decision's would
            self.recorder.append(EntryKind.APPROVAL_WITHDRAWN, {
                "step": parked.step, "reason": "every quota it was asked for can be counted now: its guards are "
                                               "checked again", "settles": True}, parked.incident)
            log.info("approval_withdrawn", step=parked.step)
            # a step whose runbook's approval was given goes on under it; any other is asked for it as usual
            await self.resume(rb, incident, Event.model_validate(parked.event), index,
                              replace(parked, unattended=True) if parked.waived else None)
        self._settled(parked)  # the run was not cut short (done, skipped or parked again)
        await self.recorder.flush()

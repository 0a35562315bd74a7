"""The steps a human decides, in the engine's state: parked (waiting for a decision), granted (released to run, their
result not recorded yet) and continuing (decided and past, their run's end not recorded yet).

`EngineState` (responder/engine/state.py) is a `DecidedSteps`: these methods are part of its one API, and
`recovery.fold` calls them as the executor and the decisions module do.
"""

from __future__ import annotations

from dataclasses import replace

from responder.engine.approvals import Parked


class DecidedSteps:
    """Parked, granted and continuing steps, each by (incident, step)."""

    def __init__(self) -> None:
        self._parked: dict[tuple[str, str], Parked] = {}
        self._granted: dict[tuple[str, str], Parked] = {}
        self._continuing: dict[tuple[str, str], tuple[Parked, bool, bool]] = {}

    # reading

    def parked(self, incident: str, step: str) -> Parked | None:
        """The parked step, if it waits for a decision."""
        return self._parked.get((incident, step))

    def parked_steps(self) -> list[Parked]:
        """Every parked step."""
        return list(self._parked.values())

    def granted(self) -> list[Parked]:
        """Steps released to run whose result is not recorded yet (while they run, or cut short by a crash)."""
        return list(self._granted.values())

    def continuing(self) -> list[tuple[Parked, bool, bool]]:
        """Released (or denied) steps that are past, with whether they passed (ok or skipped) and whether their failure
        was escalated (`step.escalated`), whose run has not recorded its end (`approval.settled`): the steps after
        them are taken up once the service is back."""
        return list(self._continuing.values())

    def continues(self, incident: str, step: str) -> bool:
        """Whether a decided step past still waits for its run's end (`continuing`)."""
        return (incident, step) in self._continuing

    def escalated(self, incident: str, step: str) -> bool:
        """Whether the failure of a decided step past was escalated in its run (`step.escalated` recorded)."""
        found = self._continuing.get((incident, step))
        return found is not None and found[2]

    def waits(self, incident: str, step: str) -> bool:
        """Whether a step waits for a human, or runs under a release (parked or granted)."""
        return (incident, step) in self._parked or (incident, step) in self._granted

    def waiting(self, incident: str, runbook: str) -> bool:
        """Whether a step of this incident's run of `runbook` (ref) waits for a human."""
        parked = self._parked
        return bool(parked) and any(p.incident == incident and p.runbook == runbook for p in parked.values())

    def deciding(self) -> set[str]:
        """The incidents with a step parked, granted or continuing (an eviction keeps them)."""
        busy = {p.incident for p in (*self._parked.values(), *self._granted.values())}
        return busy | {incident for incident, _ in self._continuing}

    # changing

    def park(self, parked: Parked) -> None:
        """A step waits for a decision (again: a new parking replaces the run an earlier decision began)."""
        self._granted.pop((parked.incident, parked.step), None)
        self._continuing.pop((parked.incident, parked.step), None)
        self._parked[(parked.incident, parked.step)] = parked

    def grant(self, parked: Parked, *, settles: bool = True) -> None:
        """A parked step was released to run: remembered until its result, so a crash inside it is resolved; with
        `settles` (`Parked.settles`), then until its run's end, so a crash before that takes up the steps after it."""
        self._parked.pop((parked.incident, parked.step), None)
        self._granted[(parked.incident, parked.step)] = \
            parked if parked.settles is settles else replace(parked, settles=settles)

    def passed(self, incident: str, step: str, *, ok: bool = True) -> None:
        """A released step has its result (or was skipped): its run goes on to the steps after it."""
        granted = self._granted.pop((incident, step), None)
        if granted is not None and granted.settles:
            self._continuing[(incident, step)] = (granted, ok, False)

    def escalate_failure(self, incident: str, step: str) -> None:
        """A step's failure was escalated (`step.escalated`): noted on its decided run, if one goes on past it."""
        found = self._continuing.get((incident, step))
        if found is not None:
            self._continuing[(incident, step)] = (found[0], found[1], True)

    def deny(self, parked: Parked, *, settles: bool = True) -> None:
        """A parked step was denied: its run goes on to the steps after it that may run (a `continue` step's), and
        with `settles` a crash before that run's end takes them up."""
        if settles:
            self._continuing[(parked.incident, parked.step)] = (replace(parked, settles=True), False, False)

    def settle(self, incident: str, step: str) -> bool:
        """The run a decision (or timeout) began has ended (`approval.settled`); whether it went past the step."""
        self._granted.pop((incident, step), None)
        return self._continuing.pop((incident, step), None) is not None

    def unpark(self, incident: str, step: str) -> Parked | None:
        """The step no longer waits (decided, expired or resumed); returns what was parked."""
        return self._parked.pop((incident, step), None)

    def escalate(self, incident: str, step: str, deadline: float) -> None:
        """The parked step's request was re-published once, with a new deadline."""
        found = self._parked.get((incident, step))
        if found is not None:
            found.escalated, found.deadline = True, deadline

    # as a value

    def load_decided(self, parked: list[Parked], granted: list[Parked],
                     continuing: list[tuple[Parked, bool, bool]]) -> None:
        """Replace the decided steps with a snapshot's."""
        self._parked = {(p.incident, p.step): p for p in parked}
        self._granted = {(p.incident, p.step): p for p in granted}
        self._continuing = {(p.incident, p.step): (p, ok, esc) for p, ok, esc in continuing}

"""Match events to runbooks: the trigger index narrows, the compiled predicates decide."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any, Final, Literal

from responder.models.event import Event
from responder.models.runbook import Runbook
from responder.rules.index import MEMO, TriggerIndex

ACCEPTED: Final = False
"""`verdict`'s answer for a key some candidate reading only the key's fields accepts: no head can rule it out."""


@dataclass(frozen=True)
class Match:
    """A runbook that accepts an event."""

    runbook: Runbook
    event: Event


class Matcher:
    """Runbooks behind a TriggerIndex; `match` returns every accepting runbook in load order."""

    def __init__(self, runbooks: Iterable[Runbook]) -> None:
        self.runbooks = list(runbooks)
        self.index = TriggerIndex(self.runbooks)
        self._readable: dict[frozenset[str], tuple[bool, frozenset[int]]] = {}  # see `_within`
        self._verdicts: dict[Callable[[Any], Event], dict[Hashable, Event | Literal[False] | None]] = {}  # `verdict`

    def _within(self, known: frozenset[str]) -> tuple[bool, frozenset[int]]:
        """Whether the index probes only `known` fields, and the runbooks (by order) whose triggers read only them
        (computed once per set of fields: a format's head always names the same set)."""
        found = self._readable.get(known)
        if found is None:
            found = self._readable[known] = (self.index.probes <= known,
                                             frozenset(c.order for c in self.index.compiled if c.reads <= known))
        return found

    def candidates(self, event: Event) -> list[Runbook]:
        """Runbooks the index says may accept the event."""
        return [c.runbook for c in self.index.candidates({"event": event})]

    def rejects(self, head: Event, known: frozenset[str]) -> bool:
        """Whether `head`, an event of which only the `known` fields are filled in, provably matches no runbook.

        True only when the index probes nothing but known fields (so the candidates are those of the full event)
        and every candidate reads only known fields and refuses the head. Otherwise False: decode it all.
        """
        probed, readable = self._within(known)
        if not probed:
            return False
        scope = {"event": head}
        for c in self.index.candidates(scope):  # noqa: SIM110 - reads better as a loop
            if c.order not in readable or c.accepts(scope):
                return False
        return True

    def verdict(self, build: Callable[[Any], Event], key: Hashable,
                known: frozenset[str]) -> Event | Literal[False] | None:
        """What the keyed head says of `build(key)`: the partial event when `rejects(build(key), known)`; ACCEPTED
        when the index probes only `known` fields and a candidate reading only them accepts it (a head holding
        those fields cannot rule it out either, so it need not be built: only the full decode decides); else None
        (also when `build` raises): the whole head decides.

        Remembered per (build, key), at most `MEMO` keys per build: `build` must read nothing but `key`, equal keys
        giving events no condition tells apart (a format's keyed head, `normalise.registry.keyed_head`)."""
        memo = self._verdicts.get(build)
        if memo is None:
            memo = self._verdicts[build] = {}
        try:
            return memo[key]
        except KeyError:
            pass
        verdict: Event | Literal[False] | None
        try:
            partial = build(key)
            verdict = partial if self.rejects(partial, known) else ACCEPTED if self._accepts(partial, known) else None
        except Exception:  # noqa: BLE001 - what the head cannot build is left to the full decoder
            verdict = None
        if len(memo) >= MEMO:
            memo.clear()
        memo[key] = verdict
        return verdict

    def _accepts(self, partial: Event, known: frozenset[str]) -> bool:
        """Whether some candidate of `partial` that reads only `known` fields accepts it, the index probing only
        them (so any event with the same `known` fields has that candidate and is accepted by it)."""
        probed, readable = self._within(known)
        if not probed:
            return False
        scope = {"event": partial}
        return any(c.order in readable and c.accepts(scope) for c in self.index.candidates(scope))

    def match(self, event: Event) -> list[Match]:
        """Every runbook that accepts the event, in load order."""
        scope = {"event": event}
        return [Match(c.runbook, event) for c in self.index.candidates(scope) if c.accepts(scope)]

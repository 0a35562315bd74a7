"""Match events to runbooks: an index on source and type, then conditions."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from responder.models.event import Event
from responder.models.runbook import Runbook
from responder.rules.conditions import first_failure


@dataclass(frozen=True)
class Match:
    """A runbook that accepts an event."""

    runbook: Runbook
    event: Event


class Matcher:
    """Runbooks indexed by exact source; type globs checked only within that bucket."""

    def __init__(self, runbooks: Iterable[Runbook]) -> None:
        self.runbooks = list(runbooks)
        self._by_source: dict[str, list[Runbook]] = {}
        for rb in self.runbooks:
            self._by_source.setdefault(rb.trigger.source, []).append(rb)

    def candidates(self, event: Event) -> list[Runbook]:
        """Runbooks whose source fits the event (exact, then wildcard)."""
        return self._by_source.get(event.source, []) + self._by_source.get("*", [])

    def match(self, event: Event, view: dict[str, Any] | None = None) -> list[Match]:
        """Every runbook that accepts the event, in load order."""
        out: list[Match] = []
        data: dict[str, Any] | None = view
        for rb in self.candidates(event):
            if not fnmatch.fnmatchcase(event.type, rb.trigger.type):
                continue
            if rb.trigger.conditions:
                data = data if data is not None else {"event": event.view()}
                if first_failure(rb.trigger.conditions, data) is not None:
                    continue
            out.append(Match(rb, event))
        return out

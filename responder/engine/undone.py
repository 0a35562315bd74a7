"""Steps an operator undid (`responder undo`): the mark a step key's result carries once an `undo.result` reverses it.

The step path (responder/engine/steps.py) does not apply an undone step again when a later event joins its incident:
the operator's decision stands for that incident. The mark is read from the `undo.result` entry (its timeline seq,
time and the operator who asked), folded into the engine state by the replay (responder/engine/recovery.py) and, in a
running service, by the operator request that ran the undo; it is carried with the step's result in snapshots and a
fleet's changelog slices (`DoneStep.undone`), and dropped when the step key records a new result or its incident is
evicted.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from responder.models.timeline import TimelineEntry

UNDO_INTENT = "undo.intent"
UNDO_RESULT = "undo.result"
UNDO_SKIPPED = "undo.skipped"
UNDONE_CODE = "Undone"
"""The code of the failure an undone step is escalated with (`${failure.code}`)."""


class Undone(BaseModel):
    """Who undid a step, when, and the `undo.result` that records it (seq on its writer's timeline)."""

    model_config = ConfigDict(frozen=True)

    seq: int
    at: str
    by: str | None = None
    """The operator of a request (`responder undo --via kafka --by NAME`); None for an offline `responder undo`."""
    writer: str | None = None

    def body(self) -> dict[str, str | int | None]:
        """The fields a `step.skipped` of the undone step carries."""
        return {"undone_by": self.by, "undone_seq": self.seq, "undone_at": self.at, "undone_writer": self.writer}

    def says(self, event: str) -> str:
        """Why the step was not applied again, for the human told (`${failure.error}`)."""
        who = self.by or "an offline `responder undo`"
        return (f"not applied again: undone by {who} at timeline seq {self.seq} ({self.at}); event {event} joined "
                "the incident since. The undo stands for this incident: contain it by hand if it must be")


def undone_by(entry: TimelineEntry) -> tuple[str, Undone] | None:
    """The step key an ok `undo.result` entry reversed, with its mark; None for any other entry."""
    if entry.kind != UNDO_RESULT or entry.body.get("status") != "ok":
        return None
    key, by = entry.body.get("undoes"), entry.body.get("operator")
    if not isinstance(key, str) or not key:
        return None
    return key, Undone(seq=entry.seq, at=entry.at, by=by if isinstance(by, str) else None, writer=entry.writer)

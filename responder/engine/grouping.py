"""The incident an event belongs to under its runbook's `group_by`, and the fallback when the event lacks a field."""

from __future__ import annotations

from responder.engine.templating import render
from responder.errors import TemplateError
from responder.models.event import Event

UNGROUPED = "ungrouped:"
"""The group key of an event its runbook's `group_by` cannot group: `ungrouped:<event id>`, its own incident."""


def group_key(group_by: str, event: Event) -> tuple[str, str | None]:
    """The event's group key under `group_by`, and None; or, when a field it names is missing from the event (or the
    key it renders has the fallback's form), `ungrouped:<event id>` and why. A matched alert is never dropped for
    a field the runbook groups by: it opens its own incident (never merged with an unrelated event; a redelivery of
    it is still a repeat), and a step whose parameters need the field fails as invalid parameters and escalates."""
    try:
        key = str(render(group_by, {"event": event.view()}))
    except TemplateError as exc:
        return UNGROUPED + event.id, f"group_by {group_by}: {exc}"
    if key.startswith(UNGROUPED):  # a key an event's own values rendered must not name another event's incident
        return UNGROUPED + event.id, f"group_by {group_by} rendered a key of the fallback's form"
    return key, None

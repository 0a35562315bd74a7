"""Which plan `responder approve|deny` signs: the step's request on the local timeline and on the fleet's requests
topic (`approval_requests_topic`), which must name one plan.

A decision binds a plan digest, and the engine acts only on the plan it parked. Two plans for one step happen
when the partition moved and the replica that took it over re-planned the step, and also when someone who may
write to the topic published a request, or replayed an old signed one (a signature covers the request, not when
it was published). Neither the order of records nor their timestamps tell those apart, so the command signs a
plan only when the step has no other (unexpired) one; otherwise it exits 3 listing them all, for the operator to
choose with `--digest`. Everything printed that came from Kafka goes through `plain` (no markup, no escapes).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import typer

from responder.cli.options import fail
from responder.cli.output import EXIT_CONFIG, err_console, plain
from responder.cli.pending import FleetRequest, origin
from responder.engine.pending import Published
from responder.models.approval import ApprovalRequest
from responder.models.timeline import EntryKind
from responder.timeline.chain import parse_lines


class LocalRequest(NamedTuple):
    """The timeline's latest approval request for a step: its plan digest, when, and what it would run."""

    digest: str
    at: str
    actuator: str
    target: str


def timeline_request(timeline: Path, incident: str, step: str) -> LocalRequest | None:
    """The latest approval request for (incident, step) on the timeline."""
    if not timeline.exists():
        return None
    found = None
    for entry in parse_lines(timeline.read_bytes().splitlines()):
        if entry.kind == EntryKind.APPROVAL_REQUESTED and entry.incident == incident and entry.body["step"] == step:
            found = LocalRequest(str(entry.body["digest"]), entry.at, str(entry.body.get("actuator", "?")),
                                 str(entry.body.get("target", "?")))
    return found


def _several(incident: str, step: str, mine: LocalRequest | None, fleet: FleetRequest, topic: str,
             live: list[Published]) -> typer.Exit:
    """Exit 3 listing every plan waiting for the step; nothing is signed."""
    lines = [f"✗ {len({p.request.digest for p in live} | ({mine.digest} if mine else set()))} plans for "
             f"{plain(incident)}/{plain(step)}; none is signed without --digest:"]
    if mine is not None:
        lines.append(f"  timeline: {mine.digest}: {plain(mine.actuator)} on {plain(mine.target)} "
                     f"(requested at {mine.at})")
    for p in live:
        r = p.request
        lines.append(f"  {topic}: {r.digest}: {plain(r.actuator)} on {plain(r.target)}, params "
                     f"{plain(dict(r.params))}; {origin(p, fleet.verified)}; expires {r.expires_at.isoformat()}")
    if len({p.partition for p in live}) > 1:
        lines.append("! requests on several partitions: a replica publishes a step's requests on its incident's "
                     "partition, so not all of them are a replica's")
    lines.append("a later offset on one partition was published later, but a signed request can be replayed: "
                 "choose the plan to decide with --digest (`responder approvals pending` shows the fleet's latest)")
    err_console.print("\n".join(lines), markup=False, style="red")
    return typer.Exit(EXIT_CONFIG)


def choose(incident: str, step: str, mine: LocalRequest | None, fleet: FleetRequest, topic: str,
           now: datetime) -> tuple[str | None, ApprovalRequest | None]:
    """The digest to sign and the fleet's request for it (for the success line): the one plan the timeline and the
    topic's unexpired requests name, else exit 3 listing them (`_several`). One line on stderr when the topic was
    not read and the timeline's request is used as it is, or when the topic's request is not verified."""
    if mine is not None and fleet.unread is not None:  # the timeline has it: a single replica's operator goes on
        err_console.print(f"! the fleet's requests topic {topic} was not read ({plain(fleet.unread)}): signing the "
                          f"timeline's request {mine.digest[:12]}… ({mine.at}); if another replica has re-planned "
                          "the step since, the engine refuses it as for another plan", markup=False)
        return mine.digest, None
    live = [p for p in fleet.plans if p.request.expires_at > now]
    if mine is None and not live and fleet.plans:
        raise fail(f"the request(s) for {plain(incident)}/{plain(step)} on {topic} expired (the latest at "
                   f"{fleet.plans[-1].request.expires_at.isoformat()}): the step no longer waits for a decision "
                   "(`responder approvals pending --all`)", EXIT_CONFIG)
    digests = {p.request.digest for p in live} | ({mine.digest} if mine is not None else set())
    if len(digests) > 1:
        raise _several(incident, step, mine, fleet, topic, live)
    chosen = next(iter(digests), None)
    plan = next((p for p in live if p.request.digest == chosen), None)
    if plan is not None and not fleet.verified:
        err_console.print(f"! the request on {topic} is not a replica's verified request ({origin(plan, False)}): "
                          "what it says of the plan is unchecked, and its digest may match no parked plan, so "
                          "the decision may do nothing", markup=False)
    return chosen, plan.request if plan is not None else None

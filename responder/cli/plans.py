"""Which plan `responder approve|deny` signs: the step's request on the local timeline and on the fleet's requests
topic (`approval_requests_topic`), which must name one plan.

A decision binds a plan digest, and the engine acts only on the plan it parked. Two plans for one step happen
when the partition moved and the replica that took it over re-planned the step, and also when someone who may
write to the topic published a request, or replayed an old signed one (a signature covers the request, not when
it was published). Neither the order of records nor their timestamps tell those apart, so the command signs a
plan only when the step has no other (unexpired) one; otherwise it exits 3 listing them all, for the operator to
choose with `--digest`. Everything printed that came from Kafka goes through `plain` (no markup, no escapes).

A decision also names the request it answers (each parking of a step has its own id, which the engine checks):
the id of the topic's latest request for the signed plan, else the timeline's (`request_id`).
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import typer

from responder.cli.options import fail, incident_ids
from responder.cli.output import EXIT_CONFIG, err_console
from responder.cli.pending import FleetRequest, fleet_request, origin
from responder.engine.pending import Published
from responder.escapes import plain
from responder.models.approval import REQUEST_ID, ApprovalRequest
from responder.models.timeline import EntryKind
from responder.settings import Settings
from responder.timeline.chain import parse_lines


class LocalRequest(NamedTuple):
    """The timeline's latest approval request for a step: its plan digest, when, what it would run, until when
    it waits (epoch seconds; None when the entry does not say), and its request id (None before requests had ids)."""

    digest: str
    at: str
    actuator: str
    target: str
    deadline: float | None
    request_id: str | None = None


def timeline_request(timeline: Path, incident: str, step: str) -> LocalRequest | None:
    """The latest approval request for (incident, step) on the timeline."""
    if not timeline.exists():
        return None
    found = None
    for entry in parse_lines(timeline.read_bytes().splitlines()):
        if entry.kind == EntryKind.APPROVAL_REQUESTED and entry.incident == incident and entry.body["step"] == step:
            deadline, request_id = entry.body.get("deadline"), entry.body.get("request_id")
            found = LocalRequest(str(entry.body["digest"]), entry.at, str(entry.body.get("actuator", "?")),
                                 str(entry.body.get("target", "?")),
                                 float(deadline) if isinstance(deadline, int | float) else None,
                                 request_id if isinstance(request_id, str) and re.fullmatch(REQUEST_ID, request_id)
                                 else None)
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


class Resolved(NamedTuple):
    """What `approve` signs: the incident's full id, the plan digest, the fleet's request for it (if read), and the
    id of the request the decision answers (None: a request published before requests had ids)."""

    incident: str
    digest: str
    request: ApprovalRequest | None
    request_id: str | None = None


def resolve(settings: Settings, given: str, step: str, timeline: Path, digest: str | None,
            now: datetime) -> Resolved:
    """The incident `given` names (an id or a unique prefix, on the timeline and the requests topic together) and
    the plan to decide: `digest` (or a unique prefix of a plan's) when given, which a request must name when the
    topic was read; else the one plan the requests name (`choose`). Exit 3 with what is known otherwise. The
    request id is that of the plan's request (`request_id`)."""
    local = incident_ids(timeline) if timeline.is_file() else []
    close = [i for i in local if i.startswith(given)]
    local_id = given if given in local else (close[0] if len(close) == 1 else None)
    fleet = fleet_request(settings, given, step, local, tolerate=local_id is not None)
    topic = settings.approval_requests_topic
    if fleet.unread is not None:  # only when the timeline resolved the id: a single replica's operator goes on
        incident = str(local_id)
        err_console.print(f"! the fleet's requests topic {topic} was not read ({plain(fleet.unread)}): using the "
                          "timeline alone; if another replica has re-planned the step since, the engine refuses "
                          "the decision as for another plan", markup=False)
    else:
        incident = fleet.incident
    mine = timeline_request(timeline, incident, step) if incident in local else None
    if digest is not None:
        named = _named(digest, incident, step, mine, fleet, topic)
        return Resolved(incident, named, fleet.plan(named), request_id(named, mine, fleet, topic))
    chosen, request = choose(incident, step, mine, fleet, topic, now)
    if chosen is None:
        raise fail(f"no approval request for incident {incident} step {step} on {timeline} or {fleet.where}; "
                   "pass --digest", EXIT_CONFIG)
    return Resolved(incident, chosen, request, request_id(chosen, mine, fleet, topic))


def request_id(digest: str, mine: LocalRequest | None, fleet: FleetRequest, topic: str) -> str | None:
    """The id of the request a decision for plan `digest` answers: the topic's latest request for the plan when the
    topic was read and holds one, else the timeline's latest request when it is for the plan; None when neither
    has one (published before requests had ids). One line on stderr when the two differ: the topic's is used."""
    local = mine.request_id if mine is not None and mine.digest == digest else None
    published = fleet.plan(digest) if fleet.unread is None else None
    if published is None:
        return local
    if mine is not None and mine.digest == digest and published.request_id != local:
        err_console.print(plain(f"! {topic}'s latest request for plan {digest[:12]}… is request "
                                f"{_short(published.request_id)}, the timeline's is {_short(local)}: the decision "
                                "names the topic's (the engine refuses a decision for another parking of the step; "
                                "`responder approvals pending` shows the fleet's latest)"), markup=False)
    return published.request_id


def _short(request: str | None) -> str:
    return f"{request[:12]}…" if request else "none (published before requests had ids)"


def _named(digest: str, incident: str, step: str, mine: LocalRequest | None, fleet: FleetRequest,
           topic: str) -> str:
    """The full digest the operator named (or a unique prefix of a known plan's): exit 3 when the topic was read
    and no request for the step names it, since the engine would refuse the decision."""
    known = list(dict.fromkeys([*([mine.digest] if mine else []), *(p.request.digest for p in fleet.plans)]))
    wanted = digest.strip().lower()
    if len(wanted) < 64:
        matches = [d for d in known if d.startswith(wanted)] if wanted else []
        if len(matches) != 1:
            raise fail(f"--digest {digest!r} is not 64 hex characters and is the prefix of "
                       f"{'no' if not matches else 'more than one'} plan requested for {incident}/"
                       f"{step}{': ' + ', '.join(known) if known else ''}", EXIT_CONFIG)
        wanted = matches[0]
    if not (len(wanted) == 64 and all(c in "0123456789abcdef" for c in wanted)):
        raise fail(f"--digest {digest!r} is not a plan digest (64 hex characters)", EXIT_CONFIG)
    if fleet.unread is None and wanted not in known:
        raise fail(f"no request for {incident}/{step} names --digest {wanted}: the engine refuses a "
                   "decision for a plan it did not park; requested: " + (", ".join(known) or "none"), EXIT_CONFIG)
    if mine is not None and mine.digest != wanted:
        err_console.print(f"! --digest {wanted[:12]}… is not the timeline's request {mine.digest[:12]}…: the "
                          "engine acts on the plan it parked", markup=False)
    return wanted


def _unbacked(incident: str, step: str, mine: LocalRequest, fleet: FleetRequest, topic: str, now: datetime,
              others: bool) -> None:
    """The topic was read and holds no unexpired request for the timeline's plan: exit 3 when the timeline's
    deadline has passed too (the step no longer waits); else one line saying the topic does not back it."""
    if mine.deadline is not None and mine.deadline <= now.timestamp() and not others:
        raise fail(f"the timeline's request for {incident}/{step} expired at "
                   f"{datetime.fromtimestamp(mine.deadline, now.tzinfo).isoformat()} and {topic} holds no "
                   "unexpired one: the step no longer waits for a decision", EXIT_CONFIG)
    if not others:
        err_console.print(plain(f"! {topic} holds no unexpired request for the timeline's plan {mine.digest[:12]}… "
                                f"({len(fleet.plans)} plan(s) there): the step may no longer wait"), markup=False)


def choose(incident: str, step: str, mine: LocalRequest | None, fleet: FleetRequest, topic: str,
           now: datetime) -> tuple[str | None, ApprovalRequest | None]:
    """The digest to sign and the fleet's request for it (for the success line): the one plan the timeline and the
    topic's unexpired requests name, else exit 3 listing them (`_several`). One line on stderr when the topic's
    request is not verified, or does not back the timeline's."""
    if fleet.unread is not None:  # the timeline's alone (`resolve` said so)
        return (mine.digest if mine is not None else None), None
    live = [p for p in fleet.plans if p.request.expires_at > now]
    if mine is not None and not any(p.request.digest == mine.digest for p in live):
        _unbacked(incident, step, mine, fleet, topic, now, bool(live))
    if mine is None and not live and fleet.plans:
        raise fail(f"the request(s) for {incident}/{step} on {topic} expired (the latest at "
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

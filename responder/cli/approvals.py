"""`responder approve|deny INCIDENT STEP --by NAME`: publish a signed decision to the approvals topic."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, NamedTuple

import typer

from responder.cli.options import JsonOpt, TimelineOpt, fail, incident_ids
from responder.cli.output import EXIT_CONFIG, console, emit_json, err_console
from responder.cli.pending import FleetRequest, fleet_request
from responder.errors import ConfigError
from responder.models.approval import ApprovalDecision, ApprovalRequest
from responder.models.timeline import EntryKind
from responder.settings import Settings
from responder.timeline.chain import parse_lines

By = Annotated[str, typer.Option("--by", help="who decides (must be a listed approver, if the step lists any)")]
Reason = Annotated[str, typer.Option("--reason", help="why, for the timeline")]
Digest = Annotated[str | None, typer.Option(help="plan digest (default: the request's, on the timeline and "
                                                 "approval_requests_topic, which must agree; with --digest Kafka "
                                                 "is not read)")]
app = typer.Typer()


class LocalRequest(NamedTuple):
    """The timeline's latest approval request for a step: its plan digest, and when it was recorded."""

    digest: str
    at: str


def timeline_request(timeline: Path, incident: str, step: str) -> LocalRequest | None:
    """The latest approval request for (incident, step) on the timeline."""
    if not timeline.exists():
        return None
    found = None
    for entry in parse_lines(timeline.read_bytes().splitlines()):
        if entry.kind == EntryKind.APPROVAL_REQUESTED and entry.incident == incident and entry.body["step"] == step:
            found = LocalRequest(str(entry.body["digest"]), entry.at)
    return found


def _two_plans(incident: str, step: str, mine: LocalRequest, theirs: ApprovalRequest, fleet: FleetRequest,
               topic: str) -> typer.Exit:
    """Exit 3 showing both plans: the timeline names one, the fleet's latest request another. Neither is signed
    by default: the later one may be a re-plan by the replica that took the partition over, or a record someone
    else published; only the operator, who sees both, may choose it (`--digest`)."""
    earlier = fleet.placed.get(mine.digest)
    latest = fleet.placed.get(theirs.digest)
    order = (f"published after the timeline's plan on the same partition (offset {latest[1]} > {earlier[1]})"
             if earlier is not None and latest is not None and earlier[0] == latest[0] else
             "the timeline's plan is not on the topic, so the two cannot be ordered")
    err_console.print(f"✗ two plans wait for {incident}/{step}:\n"  # no markup: the request's text is data
                      f"  timeline: {mine.digest} (requested at {mine.at})\n"
                      f"  {topic}: {theirs.digest} ({theirs.actuator} on {theirs.target}, params "
                      f"{dict(theirs.params)}; {fleet.origin}; {order})\n"
                      "the engine acts only on the plan it parked: pass --digest with the one to decide "
                      "(`responder approvals pending` shows what the fleet waits on)", markup=False, style="red")
    return typer.Exit(EXIT_CONFIG)


def newest(incident: str, step: str, mine: LocalRequest | None, fleet: FleetRequest,
           topic: str) -> tuple[str | None, ApprovalRequest | None]:
    """The digest to sign and the fleet's request it is (for the success line): the timeline's and the fleet's
    request must name the same plan; when they differ nothing is signed (`_two_plans`). One line on stderr when
    the topic was not read and the timeline's is used as it is, or when the fleet's request is unverified."""
    theirs = fleet.request
    if mine is not None and fleet.unread is not None:  # the timeline has it: a single replica's operator goes on
        err_console.print(f"! the fleet's requests topic {topic} was not read ({fleet.unread}): signing the "
                          f"timeline's request {mine.digest[:12]}… ({mine.at}); if another replica has re-planned "
                          "the step since, the engine refuses it as for another plan", markup=False)
        return mine.digest, None
    if theirs is not None and not fleet.verified and (mine is None or theirs.digest == mine.digest):
        err_console.print(f"! the request on {topic} ({fleet.origin}) is not a replica's verified request: what it "
                          "says of the plan is unchecked; the digest binds the plan the engine parked",
                          markup=False)
    if mine is None:
        return (theirs.digest if theirs is not None else None), theirs
    if theirs is None or theirs.digest == mine.digest:
        return mine.digest, theirs
    raise _two_plans(incident, step, mine, theirs, fleet, topic)


def _send(verdict: str, incident: str, step: str, by: str, reason: str, digest: str | None,
          timeline: Path | None, json: bool) -> None:
    from responder.ingest.approvals import send_decision
    from responder.ingest.security import kafka_client_options

    settings = Settings()
    key_id = settings.approval_key_id or next(iter(sorted(settings.approval_keys)), None)
    if not settings.kafka_bootstrap or key_id is None or key_id not in settings.approval_keys:
        err_console.print("✗ set RESPONDER_KAFKA_BOOTSTRAP, RESPONDER_APPROVAL_KEYS='{\"id\": \"secret\"}' and "
                          "RESPONDER_APPROVAL_KEY_ID to sign and send decisions", markup=False)
        raise typer.Exit(EXIT_CONFIG)
    identity = settings.approver_identities.get(key_id)
    if identity is not None and by != identity:
        err_console.print(f"✗ approval key {key_id} belongs to {identity!r}: --by must be {identity!r}", markup=False)
        raise typer.Exit(EXIT_CONFIG)
    path = timeline or settings.timeline_path
    local = incident_ids(path) if path.is_file() else []
    request, where = None, "the timeline"
    if digest is not None:  # the operator names the plan: nothing is read from Kafka
        close = [i for i in local if i.startswith(incident)]  # a plan's digest binds its incident: a wrong one
        incident = close[0] if incident not in local and len(close) == 1 else incident  # is refused, not run
        mine = timeline_request(path, incident, step) if incident in local else None
        found = mine.digest if mine is not None else None
    else:  # the timeline's request and the fleet's must agree: another replica may have re-planned the step
        mine = timeline_request(path, incident, step) if incident in local else None
        fleet = fleet_request(settings, incident, step, local, tolerate=mine is not None)
        if fleet.incident != incident:  # a prefix
            incident = fleet.incident
            mine = timeline_request(path, incident, step) if incident in local else None
        found, request = newest(incident, step, mine, fleet, settings.approval_requests_topic)
        where = fleet.where
    if digest is not None and found not in (None, digest):
        err_console.print(f"! --digest {digest[:12]}… is not the request's {found[:12]}…: the engine refuses a "
                          "decision for another plan", markup=False)
    digest = digest or found
    if digest is None:
        raise fail(f"no approval request for incident {incident} step {step} on {path} or {where}; pass --digest",
                   EXIT_CONFIG)
    now = datetime.now(UTC)
    decision = ApprovalDecision(incident=incident, step=step, decision=verdict, by=by,
                                reason=reason, digest=digest, issued_at=now,
                                expires_at=now + timedelta(seconds=settings.approval_decision_ttl))
    secret = settings.approval_keys[key_id].get_secret_value().encode()
    try:
        asyncio.run(send_decision(settings.kafka_bootstrap, settings.approvals_topic, decision, key_id, secret,
                                  options=kafka_client_options(settings)))
    except ConfigError as exc:  # a TLS / SASL failure or an unreadable secret file
        err_console.print(f"✗ {exc}", markup=False)
        raise typer.Exit(EXIT_CONFIG) from exc
    if json:
        emit_json({"ok": True, "sent": decision.model_dump(mode="json"), "key_id": key_id})
    else:
        what = f" ({request.actuator} on {request.target})" if request is not None else ""
        console.print(f"✓ {verdict} of {incident}/{step}{what} by {by} sent to {settings.approvals_topic} "
                      f"(digest {digest[:12]}…, signed with key {key_id})", markup=False)


@app.command()
def approve(incident: str, step: str, by: By, reason: Reason = "", digest: Digest = None,
            timeline: TimelineOpt = None, json: JsonOpt = False) -> None:
    """Approve a parked step: publish a signed decision bound to its plan digest."""
    _send("approve", incident, step, by, reason, digest, timeline, json)


@app.command()
def deny(incident: str, step: str, by: By, reason: Reason = "", digest: Digest = None,
         timeline: TimelineOpt = None, json: JsonOpt = False) -> None:
    """Deny a parked step: publish a signed decision bound to its plan digest."""
    _send("deny", incident, step, by, reason, digest, timeline, json)

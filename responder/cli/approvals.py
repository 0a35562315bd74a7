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
Digest = Annotated[str | None, typer.Option(help="plan digest (default: the newest request's, on the timeline or "
                                                 "approval_requests_topic; with --digest Kafka is not read)")]
app = typer.Typer()


class LocalRequest(NamedTuple):
    """The timeline's latest approval request for a step: its plan digest, and when that plan was first requested
    (since the step last had another)."""

    digest: str
    at: datetime | None  # None: an `at` that does not parse


def timeline_request(timeline: Path, incident: str, step: str) -> LocalRequest | None:
    """The latest approval request for (incident, step) on the timeline, dated as the fleet's are
    (`Requests.since`): by its plan's first request since the step last had another plan, so that the same plan
    requested again (an escalation) does not look newer than a re-plan elsewhere in between."""
    if not timeline.exists():
        return None
    found = None
    for entry in parse_lines(timeline.read_bytes().splitlines()):
        if entry.kind == EntryKind.APPROVAL_REQUESTED and entry.incident == incident and entry.body["step"] == step:
            found = entry if found is None or found.body["digest"] != entry.body["digest"] else found
    if found is None:
        return None
    try:
        at: datetime | None = datetime.fromisoformat(found.at)
    except ValueError:
        at = None
    if at is not None and at.tzinfo is None:
        at = at.replace(tzinfo=UTC)  # the recorder writes UTC without an offset
    return LocalRequest(str(found.body["digest"]), at)


def _time(when: datetime | None) -> str:
    return when.isoformat(timespec="milliseconds") if when is not None else "no time"


def newest(mine: LocalRequest | None, fleet: FleetRequest, topic: str) -> tuple[str | None, ApprovalRequest | None]:
    """The digest to sign and the fleet's request it is (for the success line): the newer of the timeline's request
    and the fleet's (another replica may have re-planned the step since). One line on stderr when they differ, or
    when the topic was not read and the timeline's is used as it is."""
    theirs = fleet.request
    if mine is not None and fleet.unread is not None:  # the timeline has it: a single replica's operator goes on
        err_console.print(f"! the fleet's requests topic {topic} was not read ({fleet.unread}): signing the "
                          f"timeline's request {mine.digest[:12]}… ({_time(mine.at)}); if another replica has "
                          "re-planned the step since, the engine refuses it as for another plan", markup=False)
        return mine.digest, None
    if mine is None:
        return (theirs.digest if theirs is not None else None), theirs
    if theirs is None or theirs.digest == mine.digest:
        return mine.digest, theirs
    ours, other = f"{mine.digest[:12]}… ({_time(mine.at)})", f"{topic} ({fleet.origin}, {_time(fleet.published)})"
    if fleet.published is not None and mine.at is not None and fleet.published > mine.at:
        err_console.print(f"! a newer request on {other} supersedes the timeline's {ours}: signing "
                          f"{theirs.digest[:12]}…", markup=False)
        return theirs.digest, theirs
    why = "is newer than" if fleet.published is not None and mine.at is not None else "cannot be dated against"
    err_console.print(f"! the timeline's request {ours} {why} the request for another plan ({theirs.digest[:12]}…) "
                      f"on {other}: signing the timeline's; pass --digest to sign the other", markup=False)
    return mine.digest, None


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
    mine = timeline_request(path, incident, step) if incident in local else None
    request, where = None, "the timeline"
    if digest is not None:  # the operator names the plan: nothing is read from Kafka
        close = [i for i in local if i.startswith(incident)]  # a plan's digest binds its incident: a wrong one
        incident = close[0] if incident not in local and len(close) == 1 else incident  # is refused, not run
        found = mine.digest if mine is not None else None
    else:  # the newest request wins: in a fleet, another replica may have re-planned the step since the timeline's
        fleet = fleet_request(settings, incident, step, local, tolerate=mine is not None)
        if fleet.incident != incident:  # a prefix
            incident = fleet.incident
            mine = timeline_request(path, incident, step) if incident in local else None
        found, request = newest(mine, fleet, settings.approval_requests_topic)
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

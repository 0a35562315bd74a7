"""`responder approve|deny INCIDENT STEP --by NAME`: publish a signed decision to the approvals topic."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from responder.cli.options import JsonOpt, TimelineOpt, fail, incident_ids
from responder.cli.output import EXIT_CONFIG, console, emit_json, err_console, plain
from responder.cli.pending import fleet_request
from responder.cli.plans import choose, timeline_request
from responder.errors import ConfigError
from responder.models.approval import ApprovalDecision
from responder.settings import Settings

By = Annotated[str, typer.Option("--by", help="who decides (must be a listed approver, if the step lists any)")]
Reason = Annotated[str, typer.Option("--reason", help="why, for the timeline")]
Digest = Annotated[str | None, typer.Option(help="plan digest (default: the one plan the timeline and "
                                                 "approval_requests_topic name for the step; when they name several, "
                                                 "choose one here)")]
app = typer.Typer()


def _fleet_id(settings: Settings, given: str, step: str, local: list[str], digest: str) -> tuple[str, str | None]:
    """With --digest, an incident the timeline does not have: (its full id, resolved on the requests topic, and
    `digest` if a request there names it, else the latest's, for the warning); as given when the topic cannot be
    read, with a warning."""
    fleet = fleet_request(settings, given, step, local, tolerate=True)
    if fleet.unread is not None:
        err_console.print(f"! {settings.approval_requests_topic} was not read ({plain(fleet.unread)}): the decision "
                          f"is for the incident id exactly as given, {plain(given)!r}", markup=False)
        return given, None
    named = [p.request.digest for p in fleet.plans]
    return fleet.incident, (digest if digest in named else (named[-1] if named else None))


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
    mine = timeline_request(path, incident, step) if incident in local else None
    if digest is not None:  # the operator names the plan: Kafka is read only to resolve an id the timeline lacks
        close = [i for i in local if i.startswith(incident)]  # a plan's digest binds its incident: a wrong one
        incident = close[0] if incident not in local and len(close) == 1 else incident  # is refused, not run
        mine = timeline_request(path, incident, step) if incident in local else None
        found = mine.digest if mine is not None else None
        if incident not in local:
            incident, found = _fleet_id(settings, incident, step, local, digest)
    else:  # the timeline's request and the fleet's must name one plan: another replica may have re-planned it
        fleet = fleet_request(settings, incident, step, local, tolerate=mine is not None)
        if fleet.incident != incident:  # a prefix
            incident = fleet.incident
            mine = timeline_request(path, incident, step) if incident in local else None
        found, request = choose(incident, step, mine, fleet, settings.approval_requests_topic, datetime.now(UTC))
        where = fleet.where
    if digest is not None and found not in (None, digest):
        err_console.print(f"! --digest {digest[:12]}… is not the request's {found[:12]}…: the engine refuses a "
                          "decision for another plan", markup=False)  # found: the timeline's, or the topic's
    digest = digest or found
    if digest is None:
        raise fail(plain(f"no approval request for incident {incident} step {step} on {path} or {where}; pass "
                         "--digest"), EXIT_CONFIG)
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
        what = plain(f" ({request.actuator} on {request.target})") if request is not None else ""
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

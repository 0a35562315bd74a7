"""`responder approve|deny INCIDENT STEP --by NAME`: publish a signed decision to the approvals topic, naming the plan
digest and the request it answers (responder/cli/plans.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from responder.cli.operator import decision_ttl
from responder.cli.options import JsonOpt, TimelineOpt
from responder.cli.output import EXIT_CONFIG, console, emit_json, err_console, print_error
from responder.cli.plans import resolve
from responder.errors import ConfigError
from responder.escapes import plain
from responder.models.approval import ApprovalDecision
from responder.models.signed import first_problem
from responder.settings import Settings

By = Annotated[str, typer.Option("--by", help="who decides (must be a listed approver, if the step lists any)")]
Reason = Annotated[str, typer.Option("--reason", help="why, for the timeline")]
Digest = Annotated[str | None, typer.Option(help="plan digest (default: the one plan the timeline and "
                                                 "approval_requests_topic name for the step; when they name several, "
                                                 "choose one here)")]
app = typer.Typer()


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
        print_error(f"approval key {key_id} belongs to {identity!r}: --by must be {identity!r}")
        raise typer.Exit(EXIT_CONFIG)
    try:
        ttl = decision_ttl(settings)
    except ConfigError as exc:
        print_error(exc)
        raise typer.Exit(EXIT_CONFIG) from exc
    now = datetime.now(UTC)
    incident, digest, request, request_id = resolve(settings, incident, step, timeline or settings.timeline_path,
                                                    digest, now)
    try:
        decision = ApprovalDecision(incident=incident, step=step, decision=verdict, by=by,
                                    reason=reason, digest=digest, issued_at=now, request_id=request_id,
                                    expires_at=now + timedelta(seconds=ttl))
    except ValidationError as exc:  # a step over NAME_MAX, a `by` or reason too long: the service would refuse it
        print_error(f"not a decision: {first_problem(exc, ApprovalDecision)}")
        raise typer.Exit(EXIT_CONFIG) from None
    secret = settings.approval_keys[key_id].get_secret_value().encode()
    try:
        asyncio.run(send_decision(settings.kafka_bootstrap, settings.approvals_topic, decision, key_id, secret,
                                  options=kafka_client_options(settings)))
    except ConfigError as exc:  # a TLS / SASL failure or an unreadable secret file
        print_error(exc)
        raise typer.Exit(EXIT_CONFIG) from exc
    if json:
        emit_json({"ok": True, "sent": decision.model_dump(mode="json"), "key_id": key_id})
    else:
        what = f" ({request.actuator} on {request.target})" if request is not None else ""  # the signed plan's
        answers = f"request {request_id[:12]}…" if request_id else "no request id (a request from before ids)"
        console.print(plain(f"✓ {verdict} of {incident}/{step}{what} by {by} sent to {settings.approvals_topic} "
                            f"(digest {digest[:12]}…, {answers}, signed with key {key_id})"), markup=False)


@app.command()
def approve(incident: str, step: str, by: By, reason: Reason = "", digest: Digest = None,
            timeline: TimelineOpt = None, json: JsonOpt = False) -> None:
    """Approve a parked step: publish a signed decision bound to its plan digest and request."""
    _send("approve", incident, step, by, reason, digest, timeline, json)


@app.command()
def deny(incident: str, step: str, by: By, reason: Reason = "", digest: Digest = None,
         timeline: TimelineOpt = None, json: JsonOpt = False) -> None:
    """Deny a parked step: publish a signed decision bound to its plan digest and request."""
    _send("deny", incident, step, by, reason, digest, timeline, json)

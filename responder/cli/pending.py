"""`responder approvals pending`: the parked steps a fleet waits on, read from Kafka, not from a timeline file.

In a fleet the request of a parked step is on one replica's timeline, which the on-call engineer rarely has. Every
request is also published to `approval_requests_topic`, and every decision to `approvals_topic`, so this command
reads both and lists the requests no decision answers yet (responder/engine/pending.py). `approve` and `deny` use
the same requests to find an incident by its id prefix and the plan digest to sign (`request_on_kafka`).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

import typer

from responder.auth import ApproverKeys
from responder.cli.options import BootstrapOpt, JsonOpt, fail, kafka_server, load_settings
from responder.cli.output import EXIT_CONFIG, console, emit_json
from responder.engine.pending import Pending, latest_requests, pending
from responder.errors import BrokerUnreachable, ConfigError
from responder.models.approval import ApprovalRequest
from responder.models.event import RawRecord
from responder.settings import Settings

app = typer.Typer(help="Approvals across the fleet, read from Kafka.")


def _read(settings: Settings, server: str, topics: list[str]) -> list[list[RawRecord]]:
    from responder.ingest.reading import read_to_end
    from responder.ingest.security import kafka_client_options

    options = kafka_client_options(settings)

    async def read() -> list[list[RawRecord]]:
        return list(await asyncio.gather(*(read_to_end(server, t, options=options) for t in topics)))

    try:
        return asyncio.run(read())
    except (BrokerUnreachable, ConfigError) as exc:  # no broker, a TLS / SASL failure
        raise fail(str(exc), EXIT_CONFIG) from exc


def _keys(settings: Settings) -> ApproverKeys | None:
    return ApproverKeys({k: v.get_secret_value() for k, v in settings.approval_keys.items()}) \
        if settings.approval_keys else None


def request_on_kafka(settings: Settings, incident: str, step: str) -> ApprovalRequest:
    """The latest request for `step` of the incident `incident` names (its id, or a unique prefix of it), from
    `approval_requests_topic`, among those a replica signed with one of the approval keys; exit 3 naming the
    candidates when there is none or the prefix is ambiguous."""
    topic = settings.approval_requests_topic
    (records,) = _read(settings, kafka_server(settings, None), [topic])
    read = latest_requests(records, _keys(settings))
    latest = read.latest
    ids = list(dict.fromkeys(i for i, _ in latest))
    matches = [incident] if incident in ids else [i for i in ids if i.startswith(incident)]
    if len(matches) > 1:
        raise fail(f"incident {incident!r} is ambiguous on {topic}; candidates: {', '.join(matches)}", EXIT_CONFIG)
    found = latest.get((matches[0], step)) if matches else None
    if found is None:
        steps = ", ".join(f"{i} {s}" for i, s in list(latest)[-10:]) or "none"
        refused = f" ({read.refused} record(s) refused: not signed by an approval key)" if read.refused else ""
        raise fail(f"no approval request for incident {incident} step {step} on {topic}{refused}; latest requests: "
                   f"{steps}", EXIT_CONFIG)
    return found


def _print(items: list[Pending], now: datetime) -> None:
    if not items:
        console.print("no approval is waiting", markup=False)
        return
    for item in items:
        r = item.request
        left = int((r.expires_at - now).total_seconds())
        when = f"expired {-left} s ago" if item.expired else f"{left} s left, then {r.on_timeout}"
        answer = item.answer
        state = "waiting" if answer is None else (
            f"{answer.decision} by {answer.by}" + ("" if answer.verified else " (signature not checked)"))
        console.print(f"{r.incident} {r.step}: {r.actuator} on {r.target} [{state}; {when}]"
                      + (" escalated" if r.escalated else ""), markup=False)
        console.print(f"    runbook {r.runbook}, digest {r.digest[:12]}…, approvers {', '.join(r.approvers) or 'any'}; "
                      f"why: {'; '.join(r.reasons)}", markup=False)
        if item.forged:
            console.print(f"    ! {item.forged} decision(s) for this plan did not verify and were ignored",
                          markup=False)


@app.command("pending")
def pending_cmd(
    all_: Annotated[bool, typer.Option("--all", help="also requests already answered or expired")] = False,
    bootstrap: BootstrapOpt = None,
    json: JsonOpt = False,
) -> None:
    """Parked steps waiting for a decision, fleet-wide: the requests no verified decision answers yet."""
    settings = load_settings()
    server = kafka_server(settings, bootstrap)
    requests, decisions = _read(settings, server, [settings.approval_requests_topic, settings.approvals_topic])
    keys = _keys(settings)
    now = datetime.now(UTC)
    items = pending(requests, decisions, keys, now, include_answered=all_, include_expired=all_)
    refused = latest_requests(requests, keys).refused
    if json:
        emit_json({"pending": [i.model_dump(mode="json") for i in items], "signatures_checked": keys is not None,
                   "requests_refused": refused})
        return
    _print(items, now)
    if keys is None:
        console.print("! RESPONDER_APPROVAL_KEYS is not set: requests and decisions are shown unverified",
                      markup=False)
    if refused:
        console.print(f"! {refused} record(s) on {settings.approval_requests_topic} refused: not a request signed "
                      "by an approval key (forged, or from a replica without keys)", markup=False)

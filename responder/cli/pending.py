"""`responder approvals pending`: the parked steps a fleet waits on, read from Kafka, not from a timeline file.

In a fleet the request of a parked step is on one replica's timeline, which the on-call engineer rarely has. Every
request is also published to `approval_requests_topic`, and every decision to `approvals_topic`, so this command
reads both and lists the requests no decision answers yet (responder/engine/pending.py). `approve` and `deny` use
the same requests to find an incident by its id prefix, the plan digest to sign and the request id to name
(`fleet_request`); it must agree with the timeline's request (another replica may have re-planned the step after
its partition moved).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated

import typer

from responder.cli.options import BootstrapOpt, JsonOpt, fail, kafka_server, load_settings
from responder.cli.output import EXIT_CONFIG, console, emit_json
from responder.engine.pending import Pending, Published, latest_requests, pending
from responder.errors import ConfigError
from responder.escapes import plain
from responder.models.approval import ApprovalRequest
from responder.models.event import RawRecord
from responder.service.wiring import approver_keys
from responder.settings import Settings
from responder.timeline.checkpoint import Checker

app = typer.Typer(help="Approvals across the fleet, read from Kafka.")


def _read(settings: Settings, server: str, topics: list[str], timeout: float = 30.0) -> list[list[RawRecord]]:
    """Each topic's records to its end; BrokerUnreachable or ConfigError (a TLS / SASL failure) when not read."""
    from responder.ingest.reading import read_to_end
    from responder.ingest.security import kafka_client_options

    options = kafka_client_options(settings)

    async def read() -> list[list[RawRecord]]:
        return list(await asyncio.gather(*(read_to_end(server, t, options=options, timeout=timeout) for t in topics)))

    return asyncio.run(read())


@dataclass(frozen=True)
class FleetRequest:
    """What `fleet_request` found on the requests topic for one step."""

    incident: str  # the incident `given` names: itself, or the one its prefix names
    where: str  # the topic, and how many records there were refused
    verified: bool = False  # a replica's timeline key signed them (checked with RESPONDER_TIMELINE_VERIFY_KEY)
    plans: list[Published] = field(default_factory=list)  # every plan requested for the step, in the order read
    unread: str | None = None  # why the topic could not be read; None: it was

    @property
    def request(self) -> ApprovalRequest | None:
        """The latest trusted request for the step; None: none there, or not read."""
        return self.plans[-1].request if self.plans else None

    def plan(self, digest: str) -> ApprovalRequest | None:
        """The request for the plan `digest`, if one was read."""
        return next((p.request for p in self.plans if p.request.digest == digest), None)


def origin(plan: Published, checked: bool) -> str:
    """Where a plan's request is, and whether its signature was verified, for the operator."""
    signed = f"signature verified (replica key {plain(plan.key_id)})" if checked else \
        ("NOT verified (RESPONDER_TIMELINE_VERIFY_KEY unset; "
         + (f"claims key {plain(plan.key_id)})" if plan.key_id else "unsigned)"))
    return f"partition {plan.partition} offset {plan.offset}, {signed}"


def fleet_request(settings: Settings, given: str, step: str, local: list[str], *,
                  tolerate: bool = False) -> FleetRequest:
    """The incident `given` names, as an id or a unique prefix among this timeline's ids (`local`) and the fleet's
    requests together, with the trusted requests for `step` on Kafka; exit 3 listing the candidates when it
    names several. Not found anywhere: `given`, no request. A topic that cannot be read exits 3, or with
    `tolerate` (the timeline has the request; the read is then given 10 s) is returned as `unread`."""
    topic = settings.approval_requests_topic
    try:
        (records,) = _read(settings, kafka_server(settings, None), [topic], timeout=10.0 if tolerate else 30.0)
    except ConfigError as exc:  # no broker (BrokerUnreachable), a TLS / SASL failure, an ACL, a slow topic
        if not tolerate:
            raise fail(str(exc), EXIT_CONFIG) from exc
        return FleetRequest(given, topic, unread=str(exc))
    read = latest_requests(records, Checker.from_setting(settings.timeline_verify_key))
    remote = list(dict.fromkeys(i for i, _ in read.latest))
    matches = [given] if given in local or given in remote else \
        sorted({i for i in (*local, *remote) if i.startswith(given)})
    if len(matches) > 1:
        raise fail(f"incident {given!r} is ambiguous on the timeline and {topic}; candidates: "
                   f"{', '.join(matches)}", EXIT_CONFIG)
    refused = f" ({read.refused} record(s) there refused: not a replica's request)" if read.refused else ""
    incident = matches[0] if matches else given
    return FleetRequest(incident, f"{topic}{refused}", read.checked,
                        list(read.plans.get((incident, step), {}).values()))


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
            f"{answer.decision} by {answer.by}" + ("" if answer.verified else " (signature not checked)")
            + (", expired by now: if the step still waits, decide again" if answer.lapsed else ""))
        console.print(plain(f"{r.incident} {r.step}: {r.actuator} on {r.target} [{state}; {when}]"
                            + (" escalated" if r.escalated else "")), markup=False)  # what Kafka said: no markup,
        asked = f"request {r.request_id[:12]}…, " if r.request_id else ""
        console.print(plain(f"    runbook {r.runbook}, digest {r.digest[:12]}…, {asked}approvers "  # no control chars
                            f"{', '.join(r.approvers) or 'any'}; why: {'; '.join(r.reasons)}"), markup=False)
        for why in item.refused:
            console.print(plain(f"    ! a decision that answers nothing: {why}"), markup=False)


@app.command("pending")
def pending_cmd(
    all_: Annotated[bool, typer.Option("--all", help="also requests already answered or expired")] = False,
    bootstrap: BootstrapOpt = None,
    json: JsonOpt = False,
) -> None:
    """Parked steps waiting for a decision, fleet-wide: the requests no verified decision answers yet."""
    settings = load_settings()
    server = kafka_server(settings, bootstrap)
    try:
        requests, decisions = _read(settings, server, [settings.approval_requests_topic, settings.approvals_topic])
    except ConfigError as exc:  # no broker (BrokerUnreachable), a TLS / SASL failure
        raise fail(str(exc), EXIT_CONFIG) from exc
    keys = approver_keys(settings) if settings.approval_keys else None
    checker = Checker.from_setting(settings.timeline_verify_key)
    now = datetime.now(UTC)
    read = latest_requests(requests, checker)
    items = pending(read, decisions, keys, now, include_answered=all_, include_expired=all_)
    refused = read.refused
    if json:
        emit_json({"pending": [i.model_dump(mode="json") for i in items], "decisions_checked": keys is not None,
                   "requests_checked": checker is not None, "requests_refused": refused})
        return
    _print(items, now)
    if checker is None:
        console.print("! RESPONDER_TIMELINE_VERIFY_KEY is not set: requests are shown as published, unverified",
                      markup=False)
    if keys is None:
        console.print("! RESPONDER_APPROVAL_KEYS is not set: decisions are shown unverified", markup=False)
    else:
        console.print("decisions are judged with this machine's RESPONDER_APPROVAL_KEYS, RESPONDER_APPROVER_IDENTITIES"
                      " and RESPONDER_APPROVAL_DECISION_MAX_LIFETIME: set them as the replicas have them", markup=False)
    if refused:
        console.print(f"! {refused} record(s) on {settings.approval_requests_topic} refused: not a request signed "
                      "by a replica's timeline key", markup=False)

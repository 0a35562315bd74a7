"""`responder fleet status|kill-switch`: the guards every replica of a fleet shares (RESPONDER_FLEET_GUARD_TABLE).

The kill switch is the fleet's emergency brake: while it is on, every replica holds each unattended step for a
human approval, from its next poll (docs/fleet.md). These commands read and write the same DynamoDB items the
replicas do, with the operator's AWS credentials; they refuse a table that does not exist, so that a mistyped name
never looks like a fleet that was stopped.
"""

from __future__ import annotations

import asyncio
import getpass
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated

import typer

from responder.cli.options import JsonOpt, load_settings
from responder.cli.output import EXIT_CONFIG, EXIT_USAGE, console, emit_json, err_console
from responder.engine.fleetguard import FleetGuard
from responder.engine.fleetstatus import FleetStatus, read_status, require_table
from responder.errors import ActuationError
from responder.settings import Settings

app = typer.Typer(help="The fleet's shared guards: the kill switch, the runbook digest, global quota slots.")
STATES = ("on", "off")


def _guard(settings: Settings) -> FleetGuard:
    from responder.actuators.aws.session import AwsSession
    from responder.service.wiring import guards_from

    if not settings.fleet_guard_table:
        err_console.print("✗ no fleet guard table: set RESPONDER_FLEET_GUARD_TABLE to the table the fleet's "
                          "replicas use", markup=False)
        raise typer.Exit(EXIT_CONFIG)
    return FleetGuard(AwsSession.from_settings(settings), settings.fleet_guard_table,
                      guards_from(settings).policy.quotas)


def _status_after(guard: FleetGuard, change: Callable[[], Awaitable[None]] | None, doing: str) -> FleetStatus:
    """The table's state, read back (consistently) after `change`; exit 3 naming the table when it does not exist
    (ConfigError, at the root) or AWS refuses or cannot be reached."""
    async def run() -> FleetStatus:
        await require_table(guard)
        if change is not None:
            await change()
        return await read_status(guard, time.time())

    try:
        return asyncio.run(run())
    except ActuationError as exc:
        err_console.print(f"✗ cannot {doing} the fleet guard table {guard.table}: {exc}", markup=False)
        raise typer.Exit(EXIT_CONFIG) from exc


def _print(status: FleetStatus) -> None:
    ks = status.kill_switch
    state = "[bold red]ON[/]" if ks.on else "[green]off[/]"
    console.print(f"fleet guard table {status.table}")
    console.print(f"  kill switch  {state}" + (f"  (by {ks.by}, {ks.at}: {ks.reason})" if ks.by else "  (never set)"))
    console.print(f"  digest       {status.digest or '-'}" + (f"  (set by {status.digest_set_by})"
                                                              if status.digest_set_by else ""))
    for q in status.quotas:  # the quotas as RESPONDER_GUARD_QUOTAS is set where this runs: the slots are shared
        console.print(f"  quota        {q.actuator}: {len(q.taken)} of {q.max} taken in the last {q.window_s:g} s "
                      "(as RESPONDER_GUARD_QUOTAS is set here)", markup=False)
        for slot in q.taken:
            console.print(f"                 slot {slot.slot}: {slot.key} ({slot.age_s:g} s ago)", markup=False)
    if not status.quotas:
        console.print("  quota        none (RESPONDER_GUARD_QUOTAS)")


@app.command("status")
def status_cmd(json: JsonOpt = False) -> None:
    """The kill switch (who set it, why, when), the fleet's runbook digest and the global quota slots in use (for the
    quotas RESPONDER_GUARD_QUOTAS names here: set it as the fleet's replicas have it)."""
    status = _status_after(_guard(load_settings()), None, "read")
    if json:
        emit_json(status.model_dump(mode="json"))
    else:
        _print(status)


@app.command("kill-switch")
def kill_switch(
    state: Annotated[str, typer.Argument(help="on: every replica holds unattended steps for approval; off: resume")],
    reason: Annotated[str, typer.Option("--reason", help="why, kept with the switch and logged by every replica")],
    by: Annotated[str | None, typer.Option("--by", help="who (default: user@host)")] = None,
    json: JsonOpt = False,
) -> None:
    """Turn the fleet-wide kill switch on or off; every replica follows it from its next poll."""
    if state not in STATES:
        err_console.print(f"✗ kill-switch {state!r}: valid choices: {', '.join(STATES)}", markup=False)
        raise typer.Exit(EXIT_USAGE)
    if not reason.strip():
        err_console.print("✗ --reason must say why (it is kept with the switch)", markup=False)
        raise typer.Exit(EXIT_USAGE)
    guard = _guard(load_settings())
    who = by or f"{getpass.getuser()}@{socket.gethostname()}"
    at = datetime.now(UTC).isoformat(timespec="seconds")

    status = _status_after(guard, lambda: guard.set_kill_switch(state == "on", who, reason.strip(), at), "write")
    if json:
        emit_json(status.model_dump(mode="json"))
        return
    ks = status.kill_switch
    if ks.on:
        console.print(f"✓ fleet kill switch ON in {guard.table} (by {ks.by}): every replica holds unattended steps "
                      "for a human approval from its next poll", markup=False)
    else:
        console.print(f"✓ fleet kill switch off in {guard.table} (by {ks.by}): replicas act unattended again from "
                      "their next poll", markup=False)

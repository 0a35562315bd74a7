"""`responder fleet status|kill-switch`: the guards every replica of a fleet shares (RESPONDER_FLEET_GUARD_TABLE).

The kill switch is the fleet's emergency brake: while it is on, every replica holds each unattended step for a
human approval, from its next poll (docs/fleet.md). These commands read and write the same DynamoDB items the
replicas do, with the operator's AWS credentials; they refuse a table that does not exist, so that a mistyped name
never looks like a fleet that was stopped. `kill-switch` writes only if the switch is still what it read (a
conditional PutItem): when two operators change it at once, the second is told what the first did (exit 3), instead
of silently undoing it.
"""

from __future__ import annotations

import asyncio
import getpass
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, TypeVar

import typer
from rich.markup import escape

from responder.cli.options import JsonOpt, load_settings
from responder.cli.output import EXIT_CONFIG, EXIT_USAGE, console, emit_json, err_console, print_error
from responder.engine.fleetguard import FleetGuard
from responder.engine.fleetstatus import FleetStatus, KillSwitch, SwitchChange, read_status, require_table, set_switch
from responder.errors import ActuationError
from responder.escapes import plain
from responder.settings import Settings

app = typer.Typer(help="The fleet's shared guards: the kill switch, the runbook digest, global quota slots.")
STATES = ("on", "off")
T = TypeVar("T")


def _guard(settings: Settings) -> FleetGuard:
    from responder.actuators.aws.session import AwsSession
    from responder.service.wiring import guards_from

    if not settings.fleet_guard_table:
        err_console.print("✗ no fleet guard table: set RESPONDER_FLEET_GUARD_TABLE to the table the fleet's "
                          "replicas use", markup=False)
        raise typer.Exit(EXIT_CONFIG)
    return FleetGuard(AwsSession.from_settings(settings), settings.fleet_guard_table,
                      guards_from(settings).policy.quotas)


def _on_table(guard: FleetGuard, work: Callable[[], Awaitable[T]], doing: str) -> T:
    """`work`'s result once the table is known to exist; exit 3 naming the table when it does not exist
    (ConfigError, at the root) or AWS refuses or cannot be reached."""
    async def run() -> T:
        await require_table(guard)
        return await work()

    try:
        return asyncio.run(run())
    except ActuationError as exc:
        print_error(f"cannot {doing} the fleet guard table {guard.table}: {exc}")
        raise typer.Exit(EXIT_CONFIG) from exc


def _described(ks: KillSwitch) -> str:
    """The switch in a few words: its state, who set it so, when and why."""
    state = "ON" if ks.on else "off"
    if not ks.by:
        return f"{state} (never set)"
    return plain(f"{state} (set by {ks.by} at {ks.at or '?'}: {ks.reason or 'no reason given'})")


def _print(status: FleetStatus) -> None:
    ks = status.kill_switch
    state = "[bold red]ON[/]" if ks.on else "[green]off[/]"
    console.print(f"fleet guard table {status.table}")
    said = escape(plain(f"  (by {ks.by}, {ks.at}: {ks.reason})")) if ks.by else "  (never set)"  # an operator's
    console.print(f"  kill switch  {state}{said}")  # words, not markup
    console.print(plain(f"  digest       {status.digest or '-'}" + (f"  (set by {status.digest_set_by})"
                                                                    if status.digest_set_by else "")), markup=False)
    for q in status.quotas:  # the quotas as RESPONDER_GUARD_QUOTAS is set where this runs: the slots are shared
        console.print(f"  quota        {q.actuator}: {len(q.taken)} of {q.max} taken in the last {q.window_s:g} s "
                      "(as RESPONDER_GUARD_QUOTAS is set here)", markup=False)
        for slot in q.taken:
            console.print(plain(f"                 slot {slot.slot}: {slot.key} ({slot.age_s:g} s ago)"), markup=False)
    if not status.quotas:
        console.print("  quota        none (RESPONDER_GUARD_QUOTAS)")


@app.command("status")
def status_cmd(json: JsonOpt = False) -> None:
    """The kill switch (who set it, why, when), the fleet's runbook digest and the global quota slots in use (for the
    quotas RESPONDER_GUARD_QUOTAS names here: set it as the fleet's replicas have it)."""
    guard = _guard(load_settings())
    status = _on_table(guard, lambda: read_status(guard, time.time()), "read")
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
    """Turn the fleet-wide kill switch on or off; every replica follows it from its next poll. Exits 3, writing
    nothing, if another operator turned the switch the other way meanwhile; `off` when it is off writes nothing."""
    if state not in STATES:
        print_error(f"kill-switch {state!r}: valid choices: {', '.join(STATES)}")
        raise typer.Exit(EXIT_USAGE)
    if not reason.strip():
        err_console.print("✗ --reason must say why (it is kept with the switch)", markup=False)
        raise typer.Exit(EXIT_USAGE)
    guard = _guard(load_settings())
    who = by or f"{getpass.getuser()}@{socket.gethostname()}"
    at = datetime.now(UTC).isoformat(timespec="seconds")
    wanted = KillSwitch(on=state == "on", by=who, reason=reason.strip(), at=at)

    async def change() -> tuple[SwitchChange, FleetStatus | None, str | None]:
        done = await set_switch(guard, wanted)  # conditional: refused if another operator changed it meanwhile
        if done.outcome == "conflict":
            return done, None, None
        try:
            return done, await read_status(guard, time.time()), None
        except ActuationError as exc:  # written: a read-back refused (no BatchGetItem right) does not undo that
            return done, None, str(exc)

    done, status, unread = _on_table(guard, change, "write")
    if done.outcome == "conflict" and done.now.on != wanted.on:
        print_error(f"the fleet kill switch in {guard.table} changed after it was read: it is now "
                    f"{_described(done.now)}; nothing written. Read it (responder fleet status), then run "
                    "the command again if it is still needed")  # another operator's reason: anyone's text
        raise typer.Exit(EXIT_CONFIG)
    if unread is not None:
        err_console.print(f"! the switch is written, but the table could not be read back: {unread}", markup=False)
    if json:  # the status read back, with what the command did: written, unchanged (already so), or conflict
        shown = status.model_dump(mode="json") if status is not None else \
            {"table": guard.table, "kill_switch": done.now.model_dump(mode="json")}
        emit_json(shown | {"outcome": done.outcome, "read_back_error": unread})
        return
    ks, before = done.now, done.before
    if done.outcome != "written":  # already off, or another operator set it as wanted meanwhile
        console.print(f"✓ fleet kill switch already {'ON' if ks.on else 'off'} in {guard.table}: {_described(ks)}; "
                      "nothing written", markup=False)
    elif ks.on:
        console.print(f"✓ fleet kill switch ON in {guard.table} (by {ks.by}): every replica holds unattended steps "
                      "for a human approval from its next poll", markup=False)
        if before.on:
            console.print(f"  it was already on; replaced: {_described(before)}", markup=False)
    else:
        console.print(f"✓ fleet kill switch off in {guard.table} (by {ks.by}): replicas act unattended again from "
                      "their next poll", markup=False)
        console.print(f"  cleared: {_described(before)}", markup=False)

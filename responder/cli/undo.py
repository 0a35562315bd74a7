"""`responder undo INCIDENT`: run the reverse actuators of an incident's steps."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from responder.actuators import registry
from responder.cli.operator import ByOpt, Via, ViaOpt, ask, note_unsigned, open_offline, refuse_past_cadence
from responder.cli.options import JsonOpt, resolve_incident
from responder.cli.output import EXIT_CONFIG, EXIT_FAILED, console, emit_json, print_error
from responder.errors import ConfigError
from responder.escapes import plain
from responder.models.step import StepStatus
from responder.settings import Settings

app = typer.Typer()


@app.command()
def undo(
    incident: Annotated[str, typer.Argument(help="incident id or a unique prefix (see `responder timeline show`)")],
    step: Annotated[str | None, typer.Option("--step", help="undo only this step id")] = None,
    timeline: Annotated[Path | None, typer.Option(help="timeline file (default: settings' timeline_path)")] = None,
    allow_destructive: Annotated[bool, typer.Option("--allow-destructive",
                                                    help="also run reverse actuators that are destructive")] = False,
    force: Annotated[bool, typer.Option("--force", help="undo even when the target changed since the step")] = False,
    json: JsonOpt = False,
    via: ViaOpt = Via.OFFLINE,
    by: ByOpt = None,
) -> None:
    """Run the reverse actuators of an incident's steps, newest first, recording each on the timeline.

    `--via kafka` asks the running service to do it on its own timeline and prints its answer.
    """
    from responder.actuators.aws.session import AwsSession
    from responder.actuators.context import context_from
    from responder.engine.undo import Undoer, held, undoable
    from responder.timeline.chain import parse_lines

    try:
        settings = Settings()
        if via is Via.KAFKA:
            reply = ask(settings, "undo", {"step": step, "force": force, "allow_destructive": allow_destructive},
                        incident=incident, by=by)
            outcomes = reply.outcomes
            _report(outcomes, json)
            if not reply.ok:
                raise typer.Exit(EXIT_FAILED)
            return
        path = timeline or settings.timeline_path
        if not path.is_file():
            raise ConfigError(f"timeline {path} does not exist")
        incident = resolve_incident(path, incident)
        recorder = open_offline(path, settings)  # the lock first: a running service's file is refused as is
        refuse_past_cadence(recorder, path)
        try:
            context = context_from(settings)
            entries = list(parse_lines(path.read_bytes().splitlines()))
            if not held(entries, incident):  # named only by a refused decision or an operator request's records
                raise ConfigError(f"incident {incident!r} is only named in {path} by refused decisions or operator "
                                  "requests: another replica's timeline holds its steps")
            pending = undoable(entries, incident, step)
            if isinstance(context.aws, AwsSession) and any(d.result.actuator.startswith("aws.") for d in pending):
                context.aws.require_credentials()  # one line and exit 3, before anything is written
            undoer = Undoer(recorder, registry, context.aws, context=context, allow_destructive=allow_destructive,
                            force=force)
            outcomes = asyncio.run(undoer.undo(incident, step))
        finally:
            recorder.close()  # with the signing key: a checkpoint over what it added
        note_unsigned(recorder, path)
    except ConfigError as exc:
        print_error(exc)
        raise typer.Exit(EXIT_CONFIG) from exc
    _report(outcomes, json)
    if any(o["status"] == StepStatus.FAILED for o in outcomes):
        raise typer.Exit(EXIT_FAILED)


def _report(outcomes: list[dict[str, Any]], json: bool) -> None:
    if json:
        emit_json({"ok": not any(o["status"] == StepStatus.FAILED for o in outcomes), "steps": outcomes})
        return
    if not outcomes:
        console.print("nothing to undo")
    for o in outcomes:  # as text: a target or an error may hold anything (an alert's, the replies topic's)
        marks = {StepStatus.OK: ("✓", "green"), StepStatus.FAILED: ("✗", "red")}
        mark, style = marks.get(o["status"], ("-", "yellow"))
        detail = o.get("reverse") or o.get("reason") or ""
        if o["status"] == StepStatus.FAILED:
            detail = f"{detail}: {o.get('error')}"
        line = plain(f"{o['step']} ({o['actuator']} on {o.get('target')}): {o['status']} {detail}")
        console.print(Text.assemble((mark, style), " ", line))

"""`responder runbooks validate` and `responder actuators list`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from responder.actuators import registry
from responder.actuators.contract import examples
from responder.catalog import check_directory, directory_warnings, load_runbooks
from responder.cli.output import EXIT_CONFIG, EXIT_FAILED, EXIT_USAGE, console, emit_json, err_console
from responder.errors import ConfigError, EventRejected

runbooks_app = typer.Typer(help="Write, check and explain runbooks.", no_args_is_help=True)
actuators_app = typer.Typer(help="The registered actuators.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def register(app: typer.Typer) -> None:
    """Add the runbook and actuator groups to `app`."""
    app.add_typer(runbooks_app, name="runbooks")
    app.add_typer(actuators_app, name="actuators")
    app.command("schema")(schema)


def schema(playbook: Annotated[bool, typer.Option("--playbook", help="the tabletop playbook schema instead")]
           = False) -> None:
    """Print the runbook JSON Schema (runbooks/runbook.schema.json), or with --playbook the playbook schema."""
    from responder.schema import runbook_schema_text
    from responder.tabletop.schema import playbook_schema_text

    typer.echo(playbook_schema_text() if playbook else runbook_schema_text(), nl=False)


@runbooks_app.command()
def validate(directory: Annotated[Path, typer.Argument()] = Path("runbooks"), json: JsonOpt = False) -> None:
    """Load every runbook: schema, actuators, parameters, template paths, duplicate ids; all problems listed."""
    errors: list[ConfigError]
    warnings: list[ConfigError] = []
    try:
        books, found = check_directory(directory, registry)
        errors = list(found)
        warnings = list(directory_warnings(directory, registry))
    except ConfigError as problem:
        errors, books = [problem], []
    if json:
        emit_json({"ok": not errors, "runbooks": [rb.ref for rb in books], "errors": _listed(errors),
                   "warnings": _listed(warnings)})
    else:
        for rb in books:
            console.print(f"[green]✓[/green] {rb.ref}  {len(rb.steps)} step(s)  mode={rb.mode.value}")
        for exc in warnings:
            err_console.print(f"⚠ {exc}", style="yellow", highlight=False, markup=False)
        for exc in errors:
            err_console.print(f"✗ {exc}", style="red", highlight=False, markup=False)
    if errors:
        raise typer.Exit(EXIT_CONFIG)


def _listed(problems: list[ConfigError]) -> list[dict[str, object]]:
    return [{"path": getattr(e, "path", None), "line": getattr(e, "line", None),
             "column": getattr(e, "column", None), "reason": getattr(e, "reason", str(e))} for e in problems]


@runbooks_app.command()
def explain(
    event_file: Annotated[Path, typer.Argument(help="a raw record in any format the normaliser decodes",
                                               exists=True, dir_okay=False)],
    runbooks: Annotated[Path, typer.Option(help="runbook directory")] = Path("runbooks"),
    fmt: Annotated[str | None, typer.Option("--format", help="force a decoder instead of detecting")] = None,
    json: JsonOpt = False,
) -> None:
    """Which runbooks match the event in EVENT_FILE and, for each other one, the first test that failed."""
    from responder.normalise import normalise
    from responder.rules.explain import explain as explain_event

    try:
        books = load_runbooks(runbooks, registry)
        events = normalise(event_file.read_bytes(), fmt=fmt)
    except ConfigError as exc:
        err_console.print(f"✗ {exc}", style="red", markup=False)
        raise typer.Exit(EXIT_CONFIG) from exc
    except EventRejected as exc:
        err_console.print(f"✗ {event_file}: not a decodable event: {exc}", style="red", markup=False)
        raise typer.Exit(EXIT_USAGE) from exc
    any_match = False
    for event in events:
        verdicts = explain_event(books, event)
        any_match |= any(v.matched for v in verdicts)
        if json:
            emit_json({"event": {"id": event.id, "source": event.source, "type": event.type},
                       "verdicts": [v.model_dump(mode="json") for v in verdicts]})
            continue
        console.print(f"event {event.id}  source={event.source}  type={event.type}", markup=False)
        for v in verdicts:
            if v.matched:
                console.print(f"  [green]✓ {v.runbook}[/green] matches")
            else:
                console.print(f"  ✗ {v.runbook}: {v.check} failed: {v.failed} "
                              f"(expected {v.expected!r}, actual {v.actual!r})", markup=False)
    if not any_match:
        raise typer.Exit(EXIT_FAILED)


@actuators_app.command("list")
def list_actuators(json: JsonOpt = False) -> None:
    """Every registered actuator with its permissions, destructiveness and reverse."""
    for a in registry:
        row = {"name": a.name, "permissions": list(a.permissions), "destructive": a.destructive,
               "reverse": a.reverse, "irreversible": a.irreversible or None,
               "params": a.params.model_json_schema(), "examples": examples(a)}
        if json:
            emit_json(row)
        else:
            flag = " [red]destructive[/red]" if a.destructive else ""
            console.print(f"{a.name}{flag}  reverse={a.reverse or '-'}  "
                          f"permissions={', '.join(a.permissions) or '-'}")

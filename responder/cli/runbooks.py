"""`responder runbooks validate|explain|schema`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from responder.actuators import registry
from responder.catalog import check_directory, load_runbooks, runbook_warnings
from responder.catalog.defaults import defaulted
from responder.cli.options import JsonOpt, configured_default_on_failure, readable
from responder.cli.output import EXIT_CONFIG, EXIT_FAILED, console, emit_json, print_error, print_ok
from responder.errors import ConfigError, EventRejected
from responder.escapes import plain

app = typer.Typer(help="Write, check and explain runbooks.", no_args_is_help=True)


@app.command()
def schema(playbook: Annotated[bool, typer.Option("--playbook", help="the tabletop playbook schema instead")]
           = False) -> None:
    """Print the runbook JSON Schema (runbooks/runbook.schema.json), or with --playbook the playbook schema."""
    from responder.schema import runbook_schema_text
    from responder.tabletop.schema import playbook_schema_text

    typer.echo(playbook_schema_text() if playbook else runbook_schema_text(), nl=False)


@app.command()
def validate(directory: Annotated[Path, typer.Argument()] = Path("runbooks"), json: JsonOpt = False) -> None:
    """Load every runbook: schema, actuators, parameters, template paths, duplicate ids; all problems listed.

    Warnings (`!`, exit 0): a runbook with containment steps but no `on_failure` escalation, unless the service's
    `default_on_failure` setting (read as `responder run` reads it) gives it one; that default is checked against
    every such runbook, as at start-up, and each runbook it escalates for is listed (`defaulted`).
    """
    errors: list[ConfigError] = []
    warnings: list[ConfigError] = []
    default: list[dict[str, Any]] = []
    given: set[str] = set()
    try:
        books, found = check_directory(directory, registry)
        errors = list(found)
        if not books and not errors:
            errors = [ConfigError(f"{directory}: no runbooks (*.yaml) found")]
        default = configured_default_on_failure()
        given = set(defaulted(books, default, registry)[1])  # a bad default: what stops `responder run` at start-up
        warnings = list(runbook_warnings(directory, registry, default_escalation=bool(default)))
    except ConfigError as problem:
        errors, books = [*errors, problem], []
    if json:
        emit_json({"ok": not errors, "runbooks": [rb.ref for rb in books], "errors": _rows(errors),
                   "warnings": _rows(warnings), "defaulted": [rb.ref for rb in books if rb.id in given]})
    else:
        steps = ", ".join(str(step.get("id")) for step in default)
        for rb in books:
            print_ok(f"{rb.ref}  {len(rb.steps)} step(s)  mode={rb.mode.value}"
                     + (f"  on_failure: default_on_failure ({steps})" if rb.id in given else ""))
        for exc in warnings:
            print_error(exc, "!", "yellow")
        for exc in errors:
            print_error(exc)
    if errors:
        raise typer.Exit(EXIT_CONFIG)


def _rows(errors: list[ConfigError]) -> list[dict[str, object]]:
    return [{"path": getattr(e, "path", None), "line": getattr(e, "line", None),
             "column": getattr(e, "column", None), "reason": getattr(e, "reason", str(e))} for e in errors]


@app.command()
def explain(
    event_files: Annotated[list[Path], typer.Argument(help="raw records in any format the normaliser decodes",
                                                      callback=readable("event file"))],
    runbooks: Annotated[Path, typer.Option(help="runbook directory")] = Path("runbooks"),
    fmt: Annotated[str | None, typer.Option("--format", help="force a decoder instead of detecting")] = None,
    json: JsonOpt = False,
) -> None:
    """Which runbooks match each event in EVENT_FILES and, for each other one, the first test that failed.

    Exit 1 when no event matches any runbook; 3 when a file is not a decodable event or the runbooks are invalid.
    """
    from responder.normalise import normalise
    from responder.rules.explain import explain as explain_event

    try:
        books = load_runbooks(runbooks, registry)
    except ConfigError as exc:
        print_error(exc)
        raise typer.Exit(EXIT_CONFIG) from exc
    any_match, undecodable = False, 0
    results: list[dict[str, Any]] = []
    for event_file in event_files:
        try:
            events = normalise(event_file.read_bytes(), fmt=fmt)
        except (EventRejected, OSError) as exc:
            undecodable += 1
            print_error(f"{event_file}: not a decodable event: {exc}")
            continue
        for event in events:
            verdicts = explain_event(books, event)
            any_match |= any(v.matched for v in verdicts)
            if json:
                results.append({"path": str(event_file),
                                "event": {"id": event.id, "source": event.source, "type": event.type},
                                "verdicts": [v.model_dump(mode="json") for v in verdicts]})
                continue
            console.print(plain(f"{event_file.name}: event {event.id}  source={event.source}  type={event.type}"),
                          markup=False)  # an alert's: no escape sequences
            for v in verdicts:
                if v.matched:
                    console.print(f"  [green]✓ {v.runbook}[/green] matches")
                else:
                    console.print(plain(f"  ✗ {v.runbook}: {v.check} failed: {v.failed} "  # the event's value
                                        f"(expected {v.expected!r}, actual {v.actual!r})"), markup=False)
    if json:
        emit_json({"matched": any_match, "undecodable": undecodable, "events": results})
    if undecodable:
        raise typer.Exit(EXIT_CONFIG)
    if not any_match:
        raise typer.Exit(EXIT_FAILED)

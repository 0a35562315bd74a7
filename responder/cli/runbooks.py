"""`responder runbooks validate` and `responder actuators list`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from responder.actuators import registry
from responder.catalog import load_runbooks
from responder.cli.output import EXIT_CONFIG, console, emit_json, err_console
from responder.errors import ConfigError

runbooks_app = typer.Typer(help="Write, check and explain runbooks.", no_args_is_help=True)
actuators_app = typer.Typer(help="The registered actuators.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def register(app: typer.Typer) -> None:
    """Add the runbook and actuator groups to `app`."""
    app.add_typer(runbooks_app, name="runbooks")
    app.add_typer(actuators_app, name="actuators")


@runbooks_app.command()
def validate(directory: Annotated[Path, typer.Argument()] = Path("runbooks"), json: JsonOpt = False) -> None:
    """Load every runbook: schema, actuators, parameters, template paths, duplicate ids."""
    try:
        books = load_runbooks(directory, registry)
    except ConfigError as exc:
        if json:
            emit_json({"ok": False, "error": str(exc)})
        else:
            err_console.print(f"[red]✗ {exc}")
        raise typer.Exit(EXIT_CONFIG) from exc
    if json:
        emit_json({"ok": True, "runbooks": [rb.ref for rb in books]})
    else:
        for rb in books:
            console.print(f"[green]✓[/green] {rb.ref}  {len(rb.steps)} step(s)  mode={rb.mode.value}")


@actuators_app.command("list")
def list_actuators(json: JsonOpt = False) -> None:
    """Every registered actuator with its permissions, destructiveness and reverse."""
    for a in registry:
        row = {"name": a.name, "permissions": list(a.permissions), "destructive": a.destructive,
               "reverse": a.reverse, "params": a.params.model_json_schema()}
        if json:
            emit_json(row)
        else:
            flag = " [red]destructive[/red]" if a.destructive else ""
            console.print(f"{a.name}{flag}  reverse={a.reverse or '-'}  permissions={', '.join(a.permissions)}")

"""`responder timeline verify|show`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from responder.cli.output import EXIT_FAILED, console, emit_json, err_console, timeline_table
from responder.errors import ChainBroken, TimelineError
from responder.timeline.chain import parse_lines, verify_entries

app = typer.Typer(help="Verify and show the hash-chained timeline.", no_args_is_help=True)

PathArg = Annotated[Path, typer.Argument(help="timeline JSON Lines file", exists=True, dir_okay=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]


@app.command()
def verify(path: PathArg, json: JsonOpt = False) -> None:
    """Check every link of the chain; exit 1 naming the first bad entry."""
    try:
        count, head = verify_entries(parse_lines(path.read_bytes().splitlines()))
    except ChainBroken as exc:
        if json:
            emit_json({"ok": False, "path": str(path), "first_bad_seq": exc.seq, "reason": exc.reason})
        else:
            err_console.print(f"[red]✗ {path}: timeline does NOT verify at entry {exc.seq}: {exc.reason}")
        raise typer.Exit(EXIT_FAILED) from exc
    except (OSError, TimelineError) as exc:
        err_console.print(f"[red]✗ cannot read {path}: {exc}")
        raise typer.Exit(EXIT_FAILED) from exc
    if json:
        emit_json({"ok": True, "path": str(path), "entries": count, "head": head})
    else:
        console.print(f"[green]✓ {path}: {count} entries verify; head {head}")


@app.command()
def show(
    path: PathArg,
    incident: Annotated[str | None, typer.Option(help="only this incident's entries")] = None,
    json: JsonOpt = False,
) -> None:
    """Render the timeline (or one incident's part of it)."""
    entries = [e for e in parse_lines(path.read_bytes().splitlines()) if incident is None or e.incident == incident]
    if json:
        for e in entries:
            emit_json(e.model_dump(mode="json"))
        return
    console.print(timeline_table(entries, title=f"{path}" + (f" — incident {incident}" if incident else "")))

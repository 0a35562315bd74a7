"""Shared CLI output: rich for humans (errors through `print_error`), one JSON document per command for machines."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table
from rich.text import Text

from responder.escapes import plain
from responder.models.timeline import TimelineEntry

console = Console(width=None if sys.stdout.isatty() else 120, emoji=False)
err_console = Console(stderr=True, soft_wrap=True, emoji=False)  # an error stays one line, whatever the terminal width

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_UNSIGNED = 4  # `timeline verify`/`export`: links hold, unproven (no public key, a tail past cadence/interval)
EXIT_WITHHELD = 5  # `deadletter replay`: no send failed, but dead letters too old for their destination were not sent
EXIT_TEMPFAIL = 75  # sysexits' EX_TEMPFAIL: try again later (a replica out of rejoins: its supervisor restarts it)


def print_error(message: object, mark: str = "✗", style: str = "red") -> None:
    """`✗ message` on stderr, a line of it each (a setting's problems are one a line): through `plain` and printed
    as text, not markup, since it may quote a file, a playbook, a baseline, an alert or Kafka."""
    for line in str(message).split("\n"):
        err_console.print(plain(f"{mark} {line}"), style=style, markup=False, highlight=False)


def print_ok(message: object) -> None:
    """`✓ message` in green on stdout, through `plain` and as text (a path, a model's signer, a registry's version)."""
    console.print(plain(f"✓ {message}"), style="green", markup=False, highlight=False)


def emit_json(value: Any) -> None:
    """Write one JSON value, compact on one line, and a newline to stdout: a command's `--json` calls it once, with
    its whole result (docs/commands.md, "Conventions")."""
    sys.stdout.write(orjson.dumps(value, default=str).decode() + "\n")


def summarize(entry: TimelineEntry) -> str:
    """A one-line human summary of an entry's body."""
    b = entry.body
    parts = []
    for key in ("type", "runbook", "step", "actuator", "target", "status", "reason", "changed", "verified",
                "verify_reads", "settle_ms", "verify_error", "summary", "error", "duration_ms"):
        if key in b and b[key] not in (None, ""):
            parts.append(f"{key}={b[key]}")
    return " ".join(parts)


def timeline_table(entries: Iterable[TimelineEntry], title: str = "timeline", incident: bool = True) -> Table:
    """Entries as a rich table; a `trace` column (the first 8 hex digits) when entries carry trace ids."""
    entries = list(entries)
    traced = any("trace_id" in e.body for e in entries)
    table = Table(title=Text(plain(title)), show_lines=False)
    cols = ["seq", "time", "kind", *(["incident"] if incident else []), "detail", *(["trace"] if traced else []),
            "hash"]
    for col in cols:
        table.add_column(col, overflow="fold", no_wrap=col in ("seq", "time", "kind", "trace", "hash"))
    for e in entries:
        row = [str(e.seq), e.at[11:23], e.kind, *([e.incident or ""] if incident else []), summarize(e),
               *([_trace_cell(e)] if traced else []), e.hash[:8]]
        table.add_row(*(Text(plain(cell)) for cell in row))  # alert text: no markup, no escape sequences
    return table


def _trace_cell(entry: TimelineEntry) -> str:
    """The entry's trace id (shortened); a decision's entries add the alert's: `decision←alert`."""
    ids = [str(entry.body[k])[:8] for k in ("trace_id", "event_trace_id") if entry.body.get(k)]
    return "←".join(ids)

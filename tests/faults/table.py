"""The fault table: one row per fault run, printed at the end of the session and written to a file."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROWS: list[FaultRow] = []
REPORT = Path(os.environ.get("RESPONDER_FAULT_REPORT", ".responder/fault-report.md"))


@dataclass
class FaultRow:
    """What one fault run sent, expected and saw (actions are counted in moto, not in responder's records)."""

    fault: str
    events: int
    expected: int
    done: int
    duplicates: int
    lost: int
    recover_s: float | None = None  # fault over (or restart) → first action after it
    note: str = ""


def record(row: FaultRow) -> FaultRow:
    """Add a row to the session's table."""
    ROWS.append(row)
    return row


def rows_out() -> list[dict[str, Any]]:
    """This process's rows as plain dicts: what a pytest-xdist worker hands its controller."""
    return [asdict(r) for r in ROWS]


def rows_in(rows: list[dict[str, Any]]) -> None:
    """Add rows a worker handed over (`rows_out`) to this process's table."""
    ROWS.extend(FaultRow(**r) for r in rows)


def render(rows: list[FaultRow]) -> str:
    """The table as Markdown."""
    head = ("| fault | events sent | actions expected | actions done | duplicates | lost | time to recover | note |\n"
            "|---|---:|---:|---:|---:|---:|---:|---|\n")
    body = "".join(
        f"| {r.fault} | {r.events} | {r.expected} | {r.done} | {r.duplicates} | {r.lost} | "
        f"{'-' if r.recover_s is None else f'{r.recover_s:.2f} s'} | {r.note} |\n"
        for r in rows
    )
    return head + body


def write_report() -> str | None:
    """Write the table to REPORT; returns the text (None when no fault test ran)."""
    if not ROWS:
        return None
    # sorted by fault (then its numbers): under pytest-xdist the rows arrive in the order the workers finish
    text = "# Fault table\n\n" + render(sorted(ROWS, key=lambda r: (r.fault, r.events, r.expected, r.note)))
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(text, encoding="utf-8")
    return text

"""Tabletop progress: a live display on a terminal, plain lines on stderr otherwise (CI logs).

On a TTY a rich progress bar counts playbooks and shows the current one's latest step (clock, inject,
decision, fault, expectation), and each finished scenario leaves one line with its expectations.
Elsewhere each event except clock ticks is one plain line on stderr, so stdout stays the scorecard
(or the `--json` document).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from responder.cli.output import console, err_console
from responder.escapes import plain

Report = Callable[[str, str, str], None]
MARKS = {"PASS": "[green]✓[/green]", "FAIL": "[red]✗[/red]", "PARTIAL": "[yellow]~[/yellow]"}  # nosec B105 # grade marks


@contextlib.contextmanager
def progress_for(total: int, *, tty: bool) -> Iterator[Report]:
    """A `progress(playbook, kind, text)` callback for `run_suite`, live on a TTY, plain lines otherwise."""
    if not tty:
        def lines(playbook: str, kind: str, text: str) -> None:
            if kind != "clock":
                err_console.print(plain(f"{playbook} {kind} {text}"), highlight=False, markup=False, soft_wrap=True)
        yield lines
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("starting the sandbox", total=total)
        expectations: dict[str, list[str]] = {}

        def live(playbook: str, kind: str, text: str) -> None:
            status, _, rest = text.partition(" ")
            if kind == "expect" and status in MARKS:  # a grade: "PASS id" or "FAIL id: what happened instead"
                expectations.setdefault(playbook, []).append(f"{MARKS[status]} {_shown(rest.split(':')[0])}")
            elif kind == "done":
                mark = MARKS.get(text.split(" ", 1)[0], "")
                grades = " ".join(expectations.pop(playbook, []))
                bar.console.print(f"{mark} [bold]{_shown(playbook)}[/bold] {_shown(text)}  {grades}", highlight=False)
                bar.advance(task)
                return
            bar.update(task, description=f"[bold]{_shown(playbook)}[/bold] [dim]{_shown(kind)}[/dim] {_shown(text)}")
        yield live


def _shown(text: str) -> str:
    """Playbook or sandbox text inside the live display's markup: printable, and no markup of its own."""
    return escape(plain(text))

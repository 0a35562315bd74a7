"""The typer app: every command module has one `typer.Typer` named `app`, added here and only here.

Groups (`responder timeline …`) are added under their name; modules of top-level commands (`run`, `undo`, …)
are added without one, which merges their commands into the root.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from responder import __version__, log
from responder.cli import (
    actuators,
    approvals,
    coverage,
    deadletter,
    docs,
    events,
    fleet,
    intake,
    model_ops,
    models,
    pending,
    runbooks,
    service,
    tabletop,
    timeline,
    undo,
)
from responder.cli.options import JSON_HELP
from responder.cli.output import EXIT_CONFIG, print_error
from responder.errors import ConfigError, TimelineError
from responder.errors_kafka import ChangelogError
from responder.exception_groups import only


def _plain_metavars(cmd: Any) -> None:
    """Help without typer's `<bool>` on flags or `<list[Path]>` on repeatable parameters: flags show no type,
    a repeatable option or argument its item type (PATH, TEXT), as click did."""
    help_option = cmd.get_help_option(typer.Context(cmd))
    for param in [*cmd.params, *([help_option] if help_option is not None else [])]:
        if getattr(param, "is_flag", False):
            param.metavar = ""
        elif getattr(param, "multiple", False) or param.nargs != 1:
            label = {"Path": "PATH", "str": "TEXT"}.get(param.bare_type()[5:-1], "VALUE")
            if param.param_type_name == "argument":  # typer shows an argument's type, never its metavar
                param.display_type_rich = lambda ctx, label=label: f"{label}..."
            elif param.metavar is None:
                param.metavar = label
    for sub in getattr(cmd, "commands", {}).values():
        _plain_metavars(sub)


ONE_LINE = (ConfigError, TimelineError, ChangelogError)
"""What no command handled ends as one red line each and exit 3: a setting, a runbook, a locked or broken timeline,
and a changelog write that failed where no barrier made it a TimelineError (a chunk's offsets commit, an eviction's
tombstones: refused for good, or revoked while it waited). A fence, a failed transaction or a write past its
deadline alone, also ChangelogErrors, never come this far: `responder run` rejoins on them and exits 75 when they come
too often; beside another error they are printed with it."""


class Responder(TyperGroup):
    """The root command: an error of `ONE_LINE` no command handled is one red line and exit 3, no trace."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _plain_metavars(self)

    def invoke(self, ctx: Any) -> Any:
        """Run the command; turn an unhandled error of `ONE_LINE` into its message and exit 3."""
        try:
            return super().invoke(ctx)
        except ONE_LINE as exc:
            _config_exit([exc])
        except BaseExceptionGroup as group:  # from a TaskGroup: report its ConfigErrors like any other
            found = only(group, ONE_LINE, deciding=True)  # a drain's end decides (Drained)
            if found is None:
                raise
            _config_exit(found)


def _config_exit(errors: Sequence[BaseException]) -> NoReturn:
    for exc in errors:
        print_error(exc)  # a line each, escaped: a setting's or a file's text
    raise typer.Exit(EXIT_CONFIG) from None

app = typer.Typer(
    name="responder",
    cls=Responder,
    help="Event-driven incident response for AI workloads: Kafka alerts in, YAML runbooks, AWS actions, "
    f"a verifiable timeline. --json on any command: {JSON_HELP}. Exit codes: 0 ok, 1 negative result, "
    "2 usage, 3 bad input or configuration, 75 (run) a replica fenced or failed by its changelog "
    "transactions, cut off from Kafka once reached, or a consumer rebuilt, too often: start it again.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
models.app.add_typer(model_ops.app)

for commands in (service.app, intake.app, approvals.app, undo.app, docs.app, coverage.app, tabletop.top):
    app.add_typer(commands)
for name, group in (("runbooks", runbooks.app), ("actuators", actuators.app), ("events", events.app),
                    ("deadletter", deadletter.app), ("timeline", timeline.app), ("models", models.app),
                    ("tabletop", tabletop.app), ("fleet", fleet.app), ("approvals", pending.app)):
    app.add_typer(group, name=name)
# the names these commands had before they joined their groups
app.command("schema", hidden=True)(runbooks.schema)
app.command("iam-policy", hidden=True)(actuators.iam_policy)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"responder {__version__}")
        raise typer.Exit


@app.callback()
def main(
    version: Annotated[bool | None, typer.Option("--version", callback=_version, is_eager=True,
                                                 help="print the version and exit")] = None,
) -> None:
    """Global options; logs go to stderr (console, warnings and up) unless a command configures them otherwise."""
    log.configure("console", "warning")  # structlog's default would print to stdout, into a --json document

"""The typer app and its command groups."""

from __future__ import annotations

from typing import Annotated

import typer

from responder import __version__
from responder.cli import actuation, approvals, events, models, runbooks, service, timeline

app = typer.Typer(
    name="responder",
    help="Event-driven incident response for AI workloads: Kafka alerts in, YAML runbooks, AWS actions, "
    "a verifiable timeline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
service.register(app)
runbooks.register(app)
approvals.register(app)
app.add_typer(timeline.app, name="timeline")
events.register(app)
actuation.register(app)
app.add_typer(models.app, name="models")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"responder {__version__}")
        raise typer.Exit


@app.callback()
def main(
    version: Annotated[bool | None, typer.Option("--version", callback=_version, is_eager=True,
                                                 help="print the version and exit")] = None,
) -> None:
    """Event-driven incident response for AI workloads: Kafka alerts in, YAML runbooks, AWS actions, a verifiable
    timeline."""

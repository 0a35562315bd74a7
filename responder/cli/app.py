"""The typer app and its command groups."""

from __future__ import annotations

import typer

from responder.cli import actuation, approvals, coverage, docs, events, intake, models, runbooks, service, timeline

app = typer.Typer(
    name="responder",
    help="Event-driven incident response for AI workloads: Kafka alerts in, YAML runbooks, AWS actions, "
    "a verifiable timeline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
service.register(app)
intake.register(app)
runbooks.register(app)
approvals.register(app)
app.add_typer(timeline.app, name="timeline")
events.register(app)
actuation.register(app)
app.add_typer(models.app, name="models")
docs.register(app)
coverage.register(app)

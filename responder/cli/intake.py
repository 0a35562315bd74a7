"""`responder intake`: the HTTP front door for SIEM webhooks (docs/intake.md)."""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, Annotated

import orjson
import typer

from responder import log, tracing
from responder.cli.output import EXIT_CONFIG, print_error
from responder.errors import ConfigError
from responder.ingest.producer import AckedProducer
from responder.ingest.security import kafka_client_options
from responder.settings import Settings

if TYPE_CHECKING:
    from responder.intake import Intake


app = typer.Typer()


def build(settings: Settings) -> Intake:
    """The intake wired to an acknowledged Kafka producer (responder.ingest.producer); ConfigError when incomplete."""
    from responder.intake import Intake

    if not settings.kafka_bootstrap:
        raise ConfigError("kafka_bootstrap: the intake needs Kafka (RESPONDER_KAFKA_BOOTSTRAP)")
    return Intake(settings, AckedProducer(settings.kafka_bootstrap, send_timeout=settings.intake_send_timeout_s,
                                          options=kafka_client_options(settings),
                                          max_value_bytes=settings.intake_max_body_bytes))


@app.command()
def intake(
    host: Annotated[str | None, typer.Option(help="interface (default: intake_host)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default: intake_port)")] = None,
    openapi: Annotated[bool, typer.Option("--openapi", help="print the OpenAPI document and exit")] = False,
) -> None:
    """Accept SIEM webhooks on POST /v1/events/{source} and produce them to Kafka (202 after the broker's ack)."""
    from responder.intake.openapi import openapi_document
    from responder.intake.server import server

    if openapi:
        sys.stdout.write(orjson.dumps(openapi_document(), option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    overrides: dict[str, object] = {}
    if host is not None:
        overrides["intake_host"] = host
    if port is not None:
        overrides["intake_port"] = port
    settings = Settings(**overrides)  # invalid: one line, exit 3 (cli/app.py)
    log.configure(settings.log_format, settings.log_level)
    tracing.configure(settings.otel_exporter_otlp_endpoint, "responder-intake")
    try:
        built = build(settings)
    except ConfigError as exc:
        print_error(exc)
        raise typer.Exit(EXIT_CONFIG) from exc
    asyncio.run(server(built, settings.intake_host, settings.intake_port).serve())

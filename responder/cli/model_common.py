"""What the `models` commands share: settings, the actuation context, option types, failure exit."""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import ValidationError

from responder import log
from responder.actuators.base import ActuationContext
from responder.actuators.context import context_from
from responder.cli.output import EXIT_CONFIG, EXIT_FAILED, err_console
from responder.settings import Settings

RegistryOpt = Annotated[str | None, typer.Option("--registry", help="registry: a directory, s3://… or "
                                                  "sagemaker+s3://… (default: the model_registry setting)")]
ModelArg = Annotated[str, typer.Argument(help="model name")]


def fail(message: str, code: int = EXIT_FAILED) -> typer.Exit:
    """Print `message` in red on stderr; the Exit to raise."""
    err_console.print(f"[red]✗ {message}")
    return typer.Exit(code)


def load_settings() -> Settings:
    """Settings (exit 3 when invalid), with console logging at warning level."""
    log.configure("console", "warning")
    try:
        return Settings()
    except ValidationError as exc:
        raise fail(f"invalid settings: {exc}", EXIT_CONFIG) from exc


def context(settings: Settings) -> ActuationContext:
    """An actuation context with an AWS session and the model config from `settings`."""
    return context_from(settings)

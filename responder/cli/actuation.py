"""`responder undo` and `responder iam-policy`."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from pydantic import ValidationError

from responder.actuators import registry
from responder.actuators.policy import PolicyScope, actuators_used, minimal_policy
from responder.catalog import load_runbooks
from responder.cli.output import EXIT_CONFIG, EXIT_FAILED, console, emit_json, err_console
from responder.errors import ConfigError
from responder.models.step import StepStatus
from responder.settings import Settings

JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def register(app: typer.Typer) -> None:
    """Add `undo` and `iam-policy` to `app`."""
    app.command()(undo)
    app.command("iam-policy")(iam_policy)


def undo(
    incident: Annotated[str, typer.Argument(help="incident id (see `responder timeline show`)")],
    step: Annotated[str | None, typer.Option("--step", help="undo only this step id")] = None,
    timeline: Annotated[Path | None, typer.Option(help="timeline file (default: settings' timeline_path)")] = None,
    allow_destructive: Annotated[bool, typer.Option("--allow-destructive",
                                                    help="also run reverse actuators that are destructive")] = False,
    force: Annotated[bool, typer.Option("--force", help="undo even when the target changed since the step")] = False,
    json: JsonOpt = False,
) -> None:
    """Run the reverse actuators of an incident's steps, newest first, recording each on the timeline."""
    from responder.actuators.context import context_from
    from responder.engine.undo import Undoer
    from responder.timeline.recorder import Recorder
    from responder.timeline.store import FileStore

    try:
        settings = Settings()
        path = timeline or settings.timeline_path
        if not path.is_file():
            raise ConfigError(f"timeline {path} does not exist")
        recorder = Recorder(FileStore(path))
        context = context_from(settings)
        undoer = Undoer(recorder, registry, context.aws, context=context, allow_destructive=allow_destructive,
                        force=force)
        try:
            outcomes = asyncio.run(undoer.undo(incident, step))
        finally:
            recorder.close()
    except ConfigError as exc:
        err_console.print(f"[red]✗ {exc}")
        raise typer.Exit(EXIT_CONFIG) from exc
    _report(outcomes, json)
    if any(o["status"] == StepStatus.FAILED for o in outcomes):
        raise typer.Exit(EXIT_FAILED)


def _report(outcomes: list[dict[str, Any]], json: bool) -> None:
    if json:
        emit_json({"ok": not any(o["status"] == StepStatus.FAILED for o in outcomes), "steps": outcomes})
        return
    if not outcomes:
        console.print("nothing to undo")
    for o in outcomes:
        marks = {StepStatus.OK: "[green]✓[/green]", StepStatus.FAILED: "[red]✗[/red]"}
        mark = marks.get(o["status"], "[yellow]-[/yellow]")
        detail = o.get("reverse") or o.get("reason") or ""
        if o["status"] == StepStatus.FAILED:
            detail = f"{detail}: {o.get('error')}"
        console.print(f"{mark} {o['step']} ({o['actuator']} on {o.get('target')}): {o['status']} {detail}")


def _bucket(url: str | None) -> tuple[str | None, str]:
    """`s3://bucket/prefix` (or `sagemaker+s3://…`) → (bucket, prefix); (None, "") for anything else."""
    if not url:
        return None, ""
    url = url.removeprefix("sagemaker+")
    if not url.startswith("s3://"):
        return None, ""
    bucket, _, prefix = url[5:].partition("/")
    return bucket or None, prefix


def scope_from(settings: Settings) -> PolicyScope:
    """What the generated policy is scoped to, and what it protects, from the settings."""
    model_bucket, model_prefix = _bucket(settings.model_registry)
    return PolicyScope(
        account=settings.aws_account_id or "*", region=settings.aws_region, ssm_prefix=settings.model_ssm_prefix,
        model_bucket=model_bucket, model_prefix=model_prefix, self_principals=settings.self_principal_arns,
        self_policies=settings.self_policy_arns, timeline_bucket=_bucket(settings.timeline_archive)[0],
        self_kms_keys=settings.self_kms_key_arns,
    )


def iam_policy(
    directory: Annotated[Path, typer.Argument(help="runbook directory")] = Path("runbooks"),
    no_undo: Annotated[bool, typer.Option("--no-undo", help="leave out the reverse actuators' permissions")] = False,
) -> None:
    """Print the least-privilege IAM policy (JSON) for the actuators the runbooks use; no wildcard actions."""
    try:
        books = load_runbooks(directory, registry)
    except ConfigError as exc:
        err_console.print(f"[red]✗ {exc}")
        raise typer.Exit(EXIT_CONFIG) from exc
    try:
        scope = scope_from(Settings())
    except ValidationError as exc:
        err_console.print(f"[red]✗ settings: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}")
        raise typer.Exit(EXIT_CONFIG) from exc
    doc = minimal_policy(actuators_used(books, registry, with_reverse=not no_undo), registry, scope)
    sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")

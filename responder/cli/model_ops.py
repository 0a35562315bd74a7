"""`responder models rollback|switch|quarantine`: the registered actuators, run by an operator.

Each command runs the same actuator a runbook step runs and records `step.intent` / `step.result`
(with `source: cli` and the operator's user name) on the timeline.
"""

from __future__ import annotations

import asyncio
import getpass
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from responder.actuators import registry
from responder.cli.model_common import ModelArg, RegistryOpt, context, fail, load_settings
from responder.cli.output import EXIT_CONFIG, console, emit_json
from responder.errors import ActuationError
from responder.models.timeline import EntryKind
from responder.timeline.recorder import Recorder
from responder.timeline.store import FileStore

JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]
TimelineOpt = Annotated[Path | None, typer.Option(help="timeline file (default: the timeline_path setting)")]


def register(app: typer.Typer) -> None:
    """Add the operator commands to the `models` group."""
    app.command()(rollback)
    app.command()(switch)
    app.command()(quarantine)


def _operate(actuator_name: str, params: dict[str, Any], timeline: Path | None, json: bool) -> None:
    """Run one actuator as an operator would a step: intent, apply, verify, result, all on the timeline."""
    settings = load_settings()
    actuator = registry.get(actuator_name)
    try:
        p = actuator.params.model_validate({k: v for k, v in params.items() if v is not None})
    except ValidationError as exc:
        raise fail(f"invalid parameters: {exc}", EXIT_CONFIG) from exc
    ctx = context(settings)
    recorder = Recorder(FileStore(timeline or settings.timeline_path))
    target = actuator.target(p)
    head = {"step": "operator", "actuator": actuator_name, "target": target, "key": f"operator-{uuid.uuid4().hex}",
            "source": "cli", "operator": getpass.getuser()}
    recorder.append(EntryKind.STEP_INTENT, {**head, "params": p.model_dump(mode="json"),
                                            "destructive": actuator.destructive})
    recorder.flush_sync()

    async def act() -> tuple[Any, bool]:
        result = await actuator.apply(p, ctx)
        return result, await actuator.verify(p, ctx)

    try:
        result, verified = asyncio.run(act())
    except ActuationError as exc:
        recorder.append(EntryKind.STEP_RESULT, {**head, "status": "failed", "error": str(exc), "code": exc.code,
                                                "permanent": True})
        recorder.close()
        if json:
            emit_json({"ok": False, "actuator": actuator_name, "error": str(exc), "code": exc.code})
        raise fail(str(exc)) from exc
    body = {**head, "status": "ok", "changed": result.changed, "verified": verified, "prior": result.prior,
            "after": result.after, "outputs": result.outputs}
    entry = recorder.append(EntryKind.STEP_RESULT, body)
    recorder.close()
    if json:
        emit_json({"ok": True, **body, "timeline_seq": entry.seq})
        return
    for r in result.outputs.get("rejected") or []:
        console.print(f"  skipped {r['version']}: {r['reason']} {r['detail']}")
    console.print(f"[green]✓[/green] {actuator_name} {target}: changed={result.changed} verified={verified} "
                  f"prior={result.prior} after={result.after}  (timeline seq {entry.seq})")


def rollback(
    model: ModelArg,
    from_version: Annotated[str | None, typer.Option("--from", help="the bad version (default: serving)")] = None,
    registry_url: RegistryOpt = None,
    timeline: TimelineOpt = None,
    json: JsonOpt = False,
) -> None:
    """Serve the newest older version that verifies against a trusted key; refuse (exit 1) when none does."""
    _operate("model.rollback_to_last_signed",
             {"model": model, "from_version": from_version, "registry": registry_url}, timeline, json)


def switch(model: ModelArg, version: Annotated[str, typer.Argument()], registry_url: RegistryOpt = None,
           timeline: TimelineOpt = None, json: JsonOpt = False) -> None:
    """Serve one named version (the undo of a rollback; not for quarantined versions)."""
    _operate("model.switch_version", {"model": model, "version": version, "registry": registry_url,
                                      "reason": "operator"}, timeline, json)


def quarantine(model: ModelArg, version: Annotated[str, typer.Argument()],
               reason: Annotated[str, typer.Option(help="why")] = "", registry_url: RegistryOpt = None,
               timeline: TimelineOpt = None, json: JsonOpt = False) -> None:
    """Mark VERSION never to be served again (idempotent)."""
    _operate("model.quarantine_version", {"model": model, "version": version, "reason": reason,
                                          "registry": registry_url}, timeline, json)

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
from rich.table import Table
from rich.text import Text

from responder.actuators import registry
from responder.cli.model_common import context
from responder.cli.operator import ByOpt, Via, ViaOpt, ask, note_unsigned, open_offline, refuse_past_cadence
from responder.cli.options import JsonOpt, ModelArg, RegistryOpt, TimelineOpt, fail, load_settings
from responder.cli.output import EXIT_CONFIG, console, emit_json
from responder.cli.timeline_files import read_timeline
from responder.engine.operatoractions import check_given
from responder.engine.readback import StepCall
from responder.engine.runner import run_step
from responder.errors import ConfigError
from responder.escapes import plain
from responder.models.operator import MODEL_ACTUATORS
from responder.models.runbook import Step
from responder.models.step import StepIntent, StepResult, StepStatus
from responder.models.timeline import EntryKind, TimelineEntry

app = typer.Typer()


def _operate(actuator_name: str, params: dict[str, Any], timeline: Path | None, json: bool,
             via: Via = Via.OFFLINE, by: str | None = None) -> None:
    """Run one actuator as an operator would a step: intent, apply (retries, timeout), verify, result, all on the
    timeline (`--via kafka`: the running service does it on its own timeline)."""
    settings = load_settings()
    if via is Via.KAFKA:
        action = next(a for a, name in MODEL_ACTUATORS.items() if name == actuator_name)
        try:
            reply = ask(settings, action, {k: v for k, v in params.items() if v is not None}, by=by)
        except ConfigError as exc:
            raise fail(str(exc), EXIT_CONFIG) from exc
        _show(actuator_name, StepResult.read(reply.outcomes[0]), reply.timeline_seq, json)
        return
    actuator = registry.get(actuator_name)
    ctx = context(settings)
    path = timeline or settings.timeline_path
    raw = {k: v for k, v in params.items() if v is not None}
    try:  # what the operator gave, before a registry is read from it or the timeline opened (created, locked)
        check_given(actuator.params, raw)
        # the file's lock (another writer, an unopenable path: exit 3); with the signing key, a checkpoint on close
        recorder = open_offline(path, settings)
        refuse_past_cadence(recorder, path)
    except ConfigError as exc:
        raise fail(str(exc), EXIT_CONFIG) from exc
    try:  # under the lock: no other writer switches the model between this read and the step
        raw = asyncio.run(actuator.operator_params(raw, ctx))  # rollback without --from: the version served now
        p = actuator.params.model_validate(raw)
    except BaseException as exc:
        recorder.release()  # the lock released, nothing written (no checkpoint either)
        if isinstance(exc, ConfigError | ValidationError):
            raise fail(str(exc) if isinstance(exc, ConfigError) else f"invalid parameters: {exc}", EXIT_CONFIG) \
                from exc
        raise
    defaults = Step(id="operator", actuator=actuator_name)
    call = StepCall(actuator, p, ctx, attempts=defaults.retries + 1, timeout=defaults.timeout)
    results: list[int] = []  # the step.result's seq (a checkpoint may follow it when one is due)
    recorder.observers.append(lambda e: results.append(e.seq) if e.kind == EntryKind.STEP_RESULT else None)
    target = actuator.target(p)
    intent = StepIntent(step="operator", actuator=actuator_name, target=target, key=f"operator-{uuid.uuid4().hex}",
                        source="cli", operator=getpass.getuser(), params=p.model_dump(mode="json"),
                        destructive=actuator.destructive)

    async def act() -> StepResult:
        try:
            return await run_step(recorder, call, intent)
        finally:
            await recorder.flush()

    try:
        result = asyncio.run(act())
        seq = results[-1] if results else None
    finally:
        recorder.close()
    note_unsigned(recorder, path)
    _show(actuator_name, result, seq, json)


def _show(actuator_name: str, result: StepResult, seq: int | None, json: bool) -> None:
    target = result.target
    if not result.ok:
        if json:
            emit_json({"ok": False, "actuator": actuator_name, "error": result.error, "code": result.code})
        raise fail(str(result.error))
    if json:
        emit_json({"ok": True, **result.body(), "timeline_seq": seq})
        return
    rejected: Any = (result.outputs or {}).get("rejected") or []
    for r in rejected:
        console.print(f"  skipped {r['version']}: {r['reason']} {r['detail']}", markup=False)
    read = "".join(f" {k}={v}" for k, v in (("verify_reads", result.verify_reads),
                                            ("verify_error", result.verify_error)) if v is not None)
    line = (f"{actuator_name} {target}: changed={result.changed} verified={result.verified}{read} "
            f"prior={result.prior} after={result.after}  (timeline seq {seq})")
    if result.verified is False:  # it acted, but the read-back did not show it: the operator checks by hand
        console.print(Text("! ", style="yellow") + Text(plain(line)) +
                      Text("\n  not verified: the change was made but reading it back "
                           + ("failed" if result.verify_error else "did not show it") + "; check the model by hand",
                           style="yellow"), soft_wrap=True)
        return
    console.print(Text("✓ ", style="green") + Text(plain(line)), soft_wrap=True)


@app.command()
def rollback(
    model: ModelArg,
    from_version: Annotated[str | None, typer.Option("--from", help="the bad version (default: served now)")] = None,
    registry_url: RegistryOpt = None,
    timeline: TimelineOpt = None,
    json: JsonOpt = False,
    via: ViaOpt = Via.OFFLINE,
    by: ByOpt = None,
) -> None:
    """Serve the newest older version that verifies against a trusted key; refuse (exit 1) when none does."""
    _operate("model.rollback_to_last_signed",
             {"model": model, "from_version": from_version, "registry": registry_url}, timeline, json, via, by)


@app.command()
def switch(model: ModelArg, version: Annotated[str, typer.Argument()], registry_url: RegistryOpt = None,
           timeline: TimelineOpt = None, json: JsonOpt = False, via: ViaOpt = Via.OFFLINE, by: ByOpt = None) -> None:
    """Serve one named version (the undo of a rollback; not for quarantined versions)."""
    _operate("model.switch_version", {"model": model, "version": version, "registry": registry_url,
                                      "reason": "operator"}, timeline, json, via, by)


@app.command()
def quarantine(model: ModelArg, version: Annotated[str, typer.Argument()],
               reason: Annotated[str, typer.Option(help="why")] = "", registry_url: RegistryOpt = None,
               timeline: TimelineOpt = None, json: JsonOpt = False, via: ViaOpt = Via.OFFLINE,
               by: ByOpt = None) -> None:
    """Mark VERSION never to be served again (idempotent)."""
    _operate("model.quarantine_version", {"model": model, "version": version, "reason": reason,
                                          "registry": registry_url}, timeline, json, via, by)


POINTER_ACTUATORS = ("model.rollback_to_last_signed", "model.switch_version")


def _pointer_change(e: TimelineEntry, model: str) -> dict[str, Any] | None:
    """The pointer change an entry records for `model`: a step's or operator's result, or an undo's; ok, or failed
    with `changed: true` (the pointer moved, then its read-back failed: `status: failed` and its `error`, since
    2026-12-07)."""
    b = e.body
    if not b.get("changed") or b.get("status") not in (StepStatus.OK, StepStatus.FAILED):
        return None
    head = {"seq": e.seq, "at": e.at, "incident": e.incident, "status": b["status"],
            **({"error": b.get("error")} if b["status"] == StepStatus.FAILED else {})}
    out, prior, after = b.get("outputs"), b.get("prior"), b.get("after")
    if e.kind == EntryKind.STEP_RESULT and b.get("actuator") in POINTER_ACTUATORS and isinstance(out, dict) \
            and out.get("model") == model:
        return {**head, "actuator": b["actuator"], "from": out.get("from"), "to": out.get("to"),
                "digest": out.get("digest"), "by": b.get("operator") or b.get("step")}
    if not isinstance(prior, dict) or not isinstance(after, dict) or b.get("target") != f"model/{model}":
        return None
    if e.kind == EntryKind.STEP_RESULT and b.get("actuator") in POINTER_ACTUATORS:  # failed: no outputs
        return {**head, "actuator": b["actuator"], "from": prior.get("serving"), "to": after.get("serving"),
                "digest": None, "by": b.get("operator") or b.get("step")}
    if e.kind == "undo.result" and b.get("reverse") in POINTER_ACTUATORS:
        return {**head, "actuator": b["reverse"], "from": prior.get("serving"), "to": after.get("serving"),
                "digest": None, "by": f"undo of {b.get('step')}"}
    return None


@app.command()
def history(model: ModelArg, timeline: TimelineOpt = None, json: JsonOpt = False) -> None:
    """Every serving-pointer change of MODEL on the timeline (runbook steps and operators), oldest first; a change
    whose step then failed (its read-back) is listed with status `failed`."""
    path = timeline or load_settings().timeline_path
    # one the user named must be there (exit 3, as `timeline show`); the configured one may not exist yet: no changes
    entries = read_timeline(path) if timeline is not None or path.exists() else []
    rows: list[dict[str, Any]] = []
    for e in entries:
        row = _pointer_change(e, model)
        if row is not None:
            rows.append(row)
    if json:
        emit_json({"model": model, "changes": rows})
        return
    table = Table(title=Text(plain(f"{model}: serving pointer changes in {path}")))
    for col in ("seq", "at", "from", "to", "by", "incident", "digest", "status"):
        table.add_column(col, overflow="fold")
    for r in rows:  # a failed one moved the pointer, then failed (its read-back): `failed`, as in --json
        cells = (r["seq"], r["at"][:19], r["from"], r["to"], r["by"], r["incident"] or "-",
                 str(r["digest"] or "-")[:23], r["status"])
        # the pointer's text (whoever can write the registry wrote it) and an alert's incident key: no markup, no
        # escape sequences
        table.add_row(*(Text(plain(cell)) for cell in cells))
    console.print(table)

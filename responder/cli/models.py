"""`responder models keygen|sign|verify|publish|list|rollback|switch|quarantine`.

Operator commands (rollback, switch, quarantine) run the registered actuator itself, the same code
path a runbook step takes, and record `step.intent` / `step.result` on the timeline.
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

from responder import log
from responder.actuators import registry
from responder.actuators.aws.session import AwsSession
from responder.actuators.base import ActuationContext
from responder.actuators.model import config_from, open_store, signing
from responder.actuators.model.backends import CONFIG_EXTRA
from responder.actuators.model.selection import check
from responder.cli.output import EXIT_CONFIG, EXIT_FAILED, console, emit_json, err_console
from responder.errors import ActuationError, ConfigError
from responder.models.timeline import EntryKind
from responder.settings import Settings
from responder.timeline.recorder import Recorder
from responder.timeline.store import FileStore

app = typer.Typer(help="Sign, verify, list, roll back and quarantine model versions.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]
RegistryOpt = Annotated[str | None, typer.Option("--registry", help="registry: a directory, s3://… or sagemaker+s3://… "
                                                  "(default: the model_registry setting)")]
TimelineOpt = Annotated[Path | None, typer.Option(help="timeline file (default: the timeline_path setting)")]
ModelArg = Annotated[str, typer.Argument(help="model name")]
DirArg = Annotated[Path, typer.Argument(help="model directory", exists=True, file_okay=False)]
SigOpt = Annotated[Path | None, typer.Option("--signature", help="bundle path (default: MODEL_DIR.sig beside it)")]


def _fail(message: str, code: int = EXIT_FAILED) -> typer.Exit:
    err_console.print(f"[red]✗ {message}")
    return typer.Exit(code)


def _sig(model_dir: Path, signature: Path | None) -> Path:
    return signature or model_dir.with_name(model_dir.name + ".sig")


def _settings() -> Settings:
    log.configure("console", "warning")
    try:
        return Settings()
    except ValidationError as exc:
        raise _fail(f"invalid settings: {exc}", EXIT_CONFIG) from exc


def _context(settings: Settings) -> ActuationContext:
    aws = AwsSession(region=settings.aws_region, endpoint_url=settings.aws_endpoint_url,
                     call_timeout=settings.aws_call_timeout, credentials=settings.aws_credentials())
    return ActuationContext(aws=aws, incident="", key="", extras={CONFIG_EXTRA: config_from(settings)})


@app.command()
def keygen(
    private_key: Annotated[Path, typer.Option("--private", help="where to write the private key (PEM, mode 0600)")],
    public_key: Annotated[Path, typer.Option("--public", help="where to write the public key (PEM)")],
) -> None:
    """Create an ECDSA P-256 key pair for model signing (model-signing does not accept Ed25519)."""
    try:
        kid = signing.generate_key(private_key, public_key)
    except FileExistsError as exc:
        raise _fail(f"{private_key} exists; not overwriting a key") from exc
    console.print(f"✓ key {kid[:16]}…: private {private_key}, public {public_key} (add it to model_trusted_keys)")


@app.command()
def sign(
    model_dir: DirArg,
    key: Annotated[Path, typer.Option(help="ECDSA private key (PEM)", exists=True, dir_okay=False)],
    signature: SigOpt = None,
    hash_name: Annotated[str, typer.Option("--hash", help="sha256 or blake3")] = "sha256",
    json: JsonOpt = False,
) -> None:
    """Sign every file of MODEL_DIR with a local key, offline (OpenSSF model-signing)."""
    out = _sig(model_dir, signature)
    try:
        digest = signing.sign(model_dir, key, out, hash_name=hash_name)
    except ConfigError as exc:
        raise _fail(str(exc), EXIT_CONFIG) from exc
    if json:
        emit_json({"ok": True, "model_dir": str(model_dir), "signature": str(out), "digest": digest})
    else:
        console.print(f"✓ signed {model_dir} → {out}  {digest}")


@app.command()
def verify(
    model_dir: DirArg,
    signature: SigOpt = None,
    key: Annotated[list[Path] | None, typer.Option(help="trusted public key (repeatable; default: settings)")] = None,
    json: JsonOpt = False,
) -> None:
    """Check MODEL_DIR against its bundle and the trusted keys; exit 1 saying why when it does not verify."""
    keys = key or _settings().model_trusted_keys
    verdict = signing.verify(model_dir, _sig(model_dir, signature), keys)
    if json:
        emit_json({"ok": verdict.ok, "reason": verdict.reason, "detail": verdict.detail, "key": verdict.key,
                   "digest": verdict.digest})
    elif verdict.ok:
        console.print(f"[green]✓ {model_dir} verifies: {verdict.digest}, key {str(verdict.key)[:16]}…")
    if not verdict.ok:
        if not json:
            err_console.print(f"[red]✗ {model_dir} does not verify: {verdict.reason}: {verdict.detail}")
        raise typer.Exit(EXIT_FAILED)


@app.command()
def publish(
    model_dir: DirArg,
    model: Annotated[str, typer.Option(help="model name")],
    version: Annotated[str, typer.Option(help="new version name")],
    signature: SigOpt = None,
    registry_url: RegistryOpt = None,
) -> None:
    """Copy MODEL_DIR (and its bundle, when there is one) into the registry as a new version."""
    settings = _settings()
    ctx = _context(settings)
    store = open_store(registry_url or settings.model_registry, ctx.aws, config_from(settings))
    sig = _sig(model_dir, signature)
    try:
        got = asyncio.run(store.publish(model, version, model_dir, sig if sig.is_file() else None))
    except ActuationError as exc:
        raise _fail(str(exc)) from exc
    console.print(f"✓ {model} {version} → {got.location}  signed={got.signature is not None}")


@app.command("list")
def list_versions(
    model: ModelArg,
    registry_url: RegistryOpt = None,
    check_signatures: Annotated[bool, typer.Option("--verify", help="verify every version (reads all files)")] = False,
    json: JsonOpt = False,
) -> None:
    """Versions oldest first, with the serving one, quarantine marks and (with --verify) each verdict."""
    settings = _settings()
    ctx = _context(settings)
    config = config_from(settings)
    store = open_store(registry_url or settings.model_registry, ctx.aws, config)

    async def gather() -> tuple[str | None, list[dict[str, Any]]]:
        serving, quarantined = await store.serving(model), await store.quarantined(model)
        rows = []
        for v in await store.versions(model):
            row: dict[str, Any] = {**v.view(v.version in quarantined), "serving": v.version == serving}
            if check_signatures:
                verdict = await check(store, v, config.trusted_keys, quarantined)
                row["verified"] = verdict.ok
                row["reason"] = verdict.reason.value if verdict.reason else None
            rows.append(row)
        return serving, rows

    try:
        serving, rows = asyncio.run(gather())
    except ActuationError as exc:
        raise _fail(str(exc)) from exc
    if json:
        emit_json({"model": model, "backend": store.kind, "serving": serving, "versions": rows})
        return
    table = Table(title=f"{model} ({store.kind}); serving {serving or '-'}")
    for col in ("version", "created", "signed", "digest", "state", *(["verify"] if check_signatures else [])):
        table.add_column(col, overflow="fold")
    for r in reversed(rows):
        state = " ".join(s for s, on in (("serving", r["serving"]), ("quarantined", r["quarantined"])) if on)
        verdict = ["✓" if r.get("verified") else f"✗ {r.get('reason')}"] if check_signatures else []
        table.add_row(r["version"], r["created"][:19], "yes" if r["signature"] else "no",
                      str(r["digest"] or "-")[:23], state, *verdict)
    console.print(table)


def _operate(actuator_name: str, params: dict[str, Any], timeline: Path | None, json: bool) -> None:
    """Run one actuator as an operator would a step: intent, apply, verify, result, all on the timeline."""
    settings = _settings()
    actuator = registry.get(actuator_name)
    try:
        p = actuator.params.model_validate({k: v for k, v in params.items() if v is not None})
    except ValidationError as exc:
        raise _fail(f"invalid parameters: {exc}", EXIT_CONFIG) from exc
    ctx = _context(settings)
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
        raise _fail(str(exc)) from exc
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


@app.command()
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


@app.command()
def switch(model: ModelArg, version: Annotated[str, typer.Argument()], registry_url: RegistryOpt = None,
           timeline: TimelineOpt = None, json: JsonOpt = False) -> None:
    """Serve one named version (the undo of a rollback; not for quarantined versions)."""
    _operate("model.switch_version", {"model": model, "version": version, "registry": registry_url,
                                      "reason": "operator"}, timeline, json)


@app.command()
def quarantine(model: ModelArg, version: Annotated[str, typer.Argument()],
               reason: Annotated[str, typer.Option(help="why")] = "", registry_url: RegistryOpt = None,
               timeline: TimelineOpt = None, json: JsonOpt = False) -> None:
    """Mark VERSION never to be served again (idempotent)."""
    _operate("model.quarantine_version", {"model": model, "version": version, "reason": reason,
                                          "registry": registry_url}, timeline, json)

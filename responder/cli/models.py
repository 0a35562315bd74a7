"""`responder models keygen|sign|verify|publish|list|check` (operator actions: `model_ops.py`)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from responder.actuators.model import config_from, migrate, open_store, signing
from responder.actuators.model.local import LocalStore
from responder.actuators.model.release import AFTER_MIGRATION, MIGRATE, RELEASE_NAME, parse_release
from responder.actuators.model.selection import check as check_version
from responder.actuators.model.signing import Reason
from responder.cli.model_common import context
from responder.cli.options import JsonOpt, ModelArg, RegistryOpt, fail, load_settings, openable, readable
from responder.cli.output import EXIT_CONFIG, EXIT_FAILED, console, emit_json, err_console, print_error, print_ok
from responder.errors import ActuationError, ConfigError
from responder.escapes import plain

app = typer.Typer(help="Sign, verify, list, roll back and quarantine model versions.", no_args_is_help=True)

DirArg = Annotated[Path, typer.Argument(help="model directory", callback=readable("model directory", directory=True))]
SigOpt = Annotated[Path | None, typer.Option("--signature", help="bundle path (default: MODEL_DIR.sig beside it)")]
# a bundle that is read: one named that cannot be is exit 3 naming it, not `unsigned` (verify) or an unsigned publish
SigIn = Annotated[Path | None, typer.Option("--signature", help="bundle path (default: MODEL_DIR.sig beside it)",
                                            callback=readable("--signature"))]


def _sig(model_dir: Path, signature: Path | None) -> Path:
    return signature or model_dir.with_name(model_dir.name + ".sig")


@app.command()
def keygen(
    private_key: Annotated[Path, typer.Option("--private", help="where to write the private key (PEM, mode 0600)")],
    public_key: Annotated[Path, typer.Option("--public", help="where to write the public key (PEM)")],
) -> None:
    """Create an ECDSA P-256 key pair for model signing (model-signing does not accept Ed25519)."""
    try:
        kid = signing.generate_key(private_key, public_key)
    except FileExistsError as exc:
        raise fail(f"{private_key} exists; not overwriting a key") from exc
    console.print(f"✓ key {kid[:16]}…: private {private_key}, public {public_key} (add it to model_trusted_keys)")


KeyOpt = Annotated[Path, typer.Option(help="ECDSA private key (PEM)", callback=readable("--key"))]


@app.command()
def sign(
    model_dir: DirArg,
    key: KeyOpt,
    model: Annotated[str, typer.Option(help="the model name it is released as (signed with it)")],
    version: Annotated[str, typer.Option(help="the version it is released as (signed with it)")],
    signature: SigOpt = None,
    hash_name: Annotated[str, typer.Option("--hash", help="sha256 or blake3")] = "sha256",
    json: JsonOpt = False,
) -> None:
    """Write MODEL_DIR/responder-release.json (model, version, now), then sign every file with a local key, offline."""
    out = _sig(model_dir, signature)
    try:
        digest = signing.sign(model_dir, key, out, model=model, version=version, hash_name=hash_name)
    except ConfigError as exc:
        raise fail(str(exc), EXIT_CONFIG) from exc
    if json:
        emit_json({"ok": True, "model_dir": str(model_dir), "signature": str(out), "digest": digest,
                   "model": model, "version": version})
    else:
        console.print(f"✓ signed {model_dir} as {model} {version} → {out}  {digest}")


@app.command()
def resign(
    model: ModelArg,
    version: Annotated[str, typer.Argument(help="the version signed without a release statement")],
    key: KeyOpt,
    registry_url: RegistryOpt = None,
) -> None:
    """Migrate a version signed before release statements: check its old signature, then sign it as MODEL VERSION."""
    settings = load_settings()
    store = open_store(registry_url or settings.model_registry, context(settings).aws, config_from(settings))
    try:
        verdict = asyncio.run(migrate.resign(store, model, version, key, settings.model_trusted_keys))
    except ConfigError as exc:
        raise fail(str(exc), EXIT_CONFIG) from exc
    except ActuationError as exc:
        raise fail(str(exc)) from exc
    console.print(f"✓ {model} {version} re-signed with its release statement ({verdict.digest})")


@app.command()
def verify(
    model_dir: DirArg,
    signature: SigIn = None,
    key: Annotated[list[Path] | None, typer.Option(help="trusted public key (repeatable; default: settings)",
                                                   callback=readable("--key"))] = None,
    json: JsonOpt = False,
) -> None:
    """Check MODEL_DIR against its bundle and the trusted keys; exit 1 saying why when it does not verify."""
    keys = key or load_settings().model_trusted_keys
    verdict = signing.verify(model_dir, _sig(model_dir, signature), keys)
    signed_as = f"{verdict.release.model} {verdict.release.version}" if verdict.release else "no model/version (legacy)"
    if json:
        emit_json({"ok": verdict.ok, "reason": verdict.reason, "detail": verdict.detail, "key": verdict.key,
                   "digest": verdict.digest, "model": verdict.release.model if verdict.release else None,
                   "version": verdict.release.version if verdict.release else None})
    elif verdict.ok:
        print_ok(f"{model_dir} verifies: signed as {signed_as}, {verdict.digest}, key {str(verdict.key)[:16]}…")
    if not verdict.ok:
        if not json:
            err_console.print(plain(f"✗ {model_dir} does not verify: {verdict.reason}: {verdict.detail}"), style="red",
                              markup=False, highlight=False)  # the detail names the model's own files: anyone's
        raise typer.Exit(EXIT_FAILED)


@app.command()
def publish(
    model_dir: DirArg,
    model: Annotated[str, typer.Option(help="model name")],
    version: Annotated[str, typer.Option(help="new version name")],
    signature: SigIn = None,
    registry_url: RegistryOpt = None,
) -> None:
    """Copy MODEL_DIR (and its bundle, when there is one) into the registry as a new version."""
    settings = load_settings()
    ctx = context(settings)
    store = open_store(registry_url or settings.model_registry, ctx.aws, config_from(settings))
    sig = _sig(model_dir, signature)
    statement = model_dir / RELEASE_NAME
    release = parse_release(statement.read_bytes() if statement.is_file() else None)
    if sig.is_file() and (release is None or (release.model, release.version) != (model, version)):
        named = f"is signed as {release.model} {release.version}" if release else "names no model and version"
        raise fail(f"{model_dir} {named}: sign it with `responder models sign {model_dir} --model {model} "
                   f"--version {version} --key KEY` before publishing it as {model} {version}", EXIT_CONFIG)
    try:
        got = asyncio.run(store.publish(model, version, model_dir, sig if sig.is_file() else None))
    except ActuationError as exc:
        raise fail(str(exc)) from exc
    console.print(f"✓ {model} {version} → {got.location}  signed={got.signature is not None}")


@app.command("list")
def list_versions(
    model: ModelArg,
    registry_url: RegistryOpt = None,
    check_signatures: Annotated[bool, typer.Option("--verify", help="verify every version (reads all files)")] = False,
    json: JsonOpt = False,
) -> None:
    """Versions oldest first, with the serving one, quarantine marks and (with --verify) each verdict."""
    settings = load_settings()
    ctx = context(settings)
    config = config_from(settings)
    store = open_store(registry_url or settings.model_registry, ctx.aws, config)
    if isinstance(store, LocalStore):  # a mistyped directory is not a registry without versions (an empty table)
        try:
            openable(store.root, "model registry", directory=True)
        except ConfigError as exc:
            raise fail(str(exc), EXIT_CONFIG) from exc

    async def gather() -> tuple[str | None, list[dict[str, Any]]]:
        serving, quarantined = await store.serving(model), await store.quarantined(model)
        rows = []
        for v in await store.versions(model):
            row: dict[str, Any] = {**v.view(v.version in quarantined), "serving": v.version == serving}
            if check_signatures:
                verdict = await check_version(store, v, config.trusted_keys, quarantined)  # legacy ones: reported
                row["verified"] = verdict.ok
                row["reason"] = verdict.reason.value if verdict.reason else None
            rows.append(row)
        return serving, rows

    try:
        serving, rows = asyncio.run(gather())
    except ActuationError as exc:
        raise fail(str(exc)) from exc
    if json:
        emit_json({"model": model, "backend": store.kind, "serving": serving, "versions": rows})
        return
    # the pointer's text and the version names are whoever can write the registry's: no markup, no escape sequences
    table = Table(title=Text(plain(f"{model} ({store.kind}); serving {serving or '-'}")))
    for col in ("version", "created", "signed", "digest", "state", *(["verify"] if check_signatures else [])):
        table.add_column(col, overflow="fold")
    for r in reversed(rows):
        state = " ".join(s for s, on in (("serving", r["serving"]), ("quarantined", r["quarantined"])) if on)
        verdict = ["✓" if r.get("verified") else f"✗ {r.get('reason')}"] if check_signatures else []
        cells = (r["version"], r["created"][:19], "yes" if r["signature"] else "no", str(r["digest"] or "-")[:23],
                 state, *verdict)
        table.add_row(*(Text(plain(cell)) for cell in cells))
    console.print(table)


@app.command()
def check(model: ModelArg, registry_url: RegistryOpt = None, json: JsonOpt = False) -> None:
    """Verify the version being served now (for a scheduled integrity check); exit 1 saying why it fails."""
    settings = load_settings()
    config = config_from(settings)
    store = open_store(registry_url or settings.model_registry, context(settings).aws, config)

    async def run() -> tuple[str | None, Any]:
        serving = await store.serving(model)
        found = [v for v in await store.versions(model) if v.version == serving]
        if not found:
            return serving, None
        # an intact legacy signature is no integrity failure (it would page and isolate after an upgrade), until
        # model_refuse_legacy_signatures ends the migration
        return serving, await check_version(store, found[0], config.trusted_keys, await store.quarantined(model),
                                            legacy=not config.refuse_legacy)

    try:
        serving, verdict = asyncio.run(run())
    except ActuationError as exc:
        raise fail(str(exc)) from exc
    ok = verdict is not None and verdict.ok
    legacy = ok and verdict.release is None
    reason = "unregistered" if verdict is None else (verdict.reason.value if verdict.reason else None)
    if legacy:
        reason = Reason.LEGACY_SIGNATURE.value
    detail = f"{serving}: {MIGRATE}" if legacy else "" if verdict is None else verdict.detail
    if reason == Reason.LEGACY_SIGNATURE.value and not ok:
        detail = f"{serving}: {AFTER_MIGRATION}"
    if json:
        emit_json({"ok": ok, "model": model, "serving": serving, "reason": reason, "detail": detail})
    elif ok:
        print_ok(f"{model} serves {serving}, which verifies ({verdict.digest})")
        if legacy:
            print_error(f"{serving} is signed without a release statement and is no rollback "
                        f"target: {MIGRATE.replace('MODEL VERSION', f'{model} {serving}')}", "!", "yellow")
    else:
        print_error(f"{model} serves {serving or 'nothing registered'}: {reason}"  # the registry's text
                    + (f": {detail}" if reason == Reason.LEGACY_SIGNATURE.value else ""))
    if not ok:
        raise typer.Exit(EXIT_FAILED)


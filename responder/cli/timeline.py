"""`responder timeline show|export|anchor|keygen|postmortem`, and `verify` and `sign` from their own modules."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from responder.cli.options import JsonOpt
from responder.cli.output import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_UNSIGNED,
    EXIT_USAGE,
    console,
    emit_json,
    err_console,
    print_error,
    timeline_table,
)
from responder.cli.timeline_files import (
    anchors_by_file,
    interleave,
    merged,
    parsable,
    read_timeline,
    resolve,
    timeline_file,
    verify_file,
    writers,
)
from responder.cli.timeline_sign import sign
from responder.cli.timeline_verify import AnchorOpt, ArchiveOpt, KeyOpt, PathsArg, verify
from responder.errors import ChainBroken
from responder.settings import Settings
from responder.timeline.checkpoint import generate_keypair, key_id, load_public_key
from responder.timeline.evidence import evidence_pack, incident_entries, render_markdown
from responder.timeline.verify import verify_anchor_entry

app = typer.Typer(help="Verify, show and export the hash-chained timeline.", no_args_is_help=True)
app.command()(sign)
app.command()(verify)

PathArg = Annotated[Path, typer.Argument(help="timeline JSON Lines file")]  # a missing one: exit 3 (timeline_file)


def _settings() -> Settings:
    return Settings()


@app.command()
def show(
    paths: PathsArg,
    incident: Annotated[str | None, typer.Option(
        help="only this incident (id or unique prefix), with the events that fed it")] = None,
    json: JsonOpt = False,
) -> None:
    """Render the timeline (or one incident's part of it), every writer's entries merged in time order."""
    entries = merged(paths)
    if incident is not None:
        incident = resolve(writers(paths), incident)
        entries = incident_entries(entries, incident)
    if json:
        emit_json({"path": ", ".join(map(str, paths)), "incident": incident,
                   "entries": [e.model_dump(mode="json") for e in entries]})
        return
    title = ", ".join(map(str, paths)) + (f" — incident {incident}" if incident else "")
    console.print(timeline_table(entries, title=title))


@app.command()
def export(
    paths: PathsArg,
    incident: Annotated[str, typer.Option(help="the incident to export (its id or a unique prefix)")],
    fmt: Annotated[str, typer.Option("--format", help="md or json")] = "md",
    out: Annotated[Path | None, typer.Option(help="write here instead of stdout")] = None,
    public_key: KeyOpt = None,
    archive: ArchiveOpt = None,
    anchor: AnchorOpt = None,
) -> None:
    """Write an evidence pack: events, decisions, actions with parameters, results, durations, verification."""
    if fmt not in ("md", "json"):
        print_error("--format must be md or json")
        raise typer.Exit(EXIT_USAGE)
    settings = _settings()
    files = [timeline_file(path) for path in writers(paths)]  # one it cannot open: one line, exit 3
    incident = resolve(files, incident)
    held, orphans = anchors_by_file(files, anchor or [])
    checks: list[dict[str, Any]] = [{"ok": False, "first_bad_seq": -1, "reason": why, "path": str(a)}
                                    for a, why in orphans.items()]
    for path in files:
        try:
            checks.append({**verify_file(path, public_key or settings.timeline_verify_key,
                                         (archive or settings.timeline_archive) if len(files) == 1 else None,
                                         held[path]).as_dict(), "path": str(path)})
        except ChainBroken as exc:
            checks.append({"ok": False, "first_bad_seq": exc.seq, "reason": exc.reason, "path": str(path)})
    verification = checks[0] if len(checks) == 1 else {
        "ok": all(c["ok"] for c in checks), "entries": sum(int(c.get("entries", 0)) for c in checks),
        "checkpoints": sum(int(c.get("checkpoints", 0)) for c in checks),
        "signatures_checked": all(c.get("signatures_checked") for c in checks),
        "writers": len(checks), **next(({"first_bad_seq": c.get("first_bad_seq"), "verdict": c.get("verdict"),
                                         "reason": f"{c['path']}: {c['reason']}"}
                                        for c in sorted(checks, key=lambda c: ("first_bad_seq" not in c, c["ok"]))
                                        if not c["ok"] or c.get("verdict") != "verified"),  # broken, unproven, a tail
                                       {"verdict": "verified"})}
    entries = merged(files) if verification["ok"] else []
    if not entries:  # a broken file may not even parse: fall back to the lines that do
        entries = interleave([parsable(path) for path in files])
    pack = evidence_pack(entries, incident, verification)
    if not pack["entries"]:
        print_error(f"no entries for incident {incident}")
        raise typer.Exit(EXIT_CONFIG)
    text = render_markdown(pack) if fmt == "md" else orjson.dumps(pack, option=orjson.OPT_INDENT_2).decode() + "\n"
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        err_console.print(f"evidence pack for {incident} written to {out}")
    if not verification["ok"]:  # unproven (no key, a tail past the cadence or interval): 4, as verify; broken: 1
        raise typer.Exit(EXIT_FAILED if any("first_bad_seq" in c for c in checks) else EXIT_UNSIGNED)


def _kind(line: bytes) -> str | None:
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return str(doc.get("kind")) if isinstance(doc, dict) else None


@app.command()
def anchor(path: PathArg) -> None:
    """Print the latest checkpoint line: hold it elsewhere and pass it to `verify --anchor` to catch truncation."""
    last = next((ln for ln in reversed(timeline_file(path).read_bytes().splitlines()) if _kind(ln) == "checkpoint"),
                None)
    if last is None:
        print_error(f"{path} has no checkpoint yet (is RESPONDER_TIMELINE_SIGNING_KEY set?)")
        raise typer.Exit(EXIT_FAILED)
    verify_anchor_entry(last, None)
    typer.echo(last.decode())


@app.command()
def keygen(
    out: Annotated[Path | None, typer.Option(help="also write the private key to this file (mode 600)")] = None,
) -> None:
    """Generate an Ed25519 key pair for signing checkpoints; prints the settings to use."""
    private, public = generate_keypair()
    if out is not None:
        out.write_text(private + "\n", encoding="ascii")
        out.chmod(0o600)
        console.print(f"private key written to {out}")
    else:
        console.print(f"RESPONDER_TIMELINE_SIGNING_KEY={private}", soft_wrap=True)
    console.print(f"RESPONDER_TIMELINE_VERIFY_KEY={public}", soft_wrap=True)
    console.print(f"# key id {key_id(load_public_key(public))}; keep the signing key secret, publish the verify key")


@app.command()
def postmortem(
    incident: Annotated[str, typer.Argument(help="the incident id (see `responder timeline show`)")],
    timeline: Annotated[Path | None, typer.Option(help="timeline file (default: RESPONDER_TIMELINE_PATH)")] = None,
    out: Annotated[Path | None, typer.Option(help="write here instead of stdout")] = None,
) -> None:
    """Draft a postmortem in Markdown from one incident's timeline: summary, timeline, actions, approvals, undo."""
    from responder.tabletop.postmortem import postmortem as draft

    text = draft(read_timeline(timeline or _settings().timeline_path), incident)
    if out is not None:
        out.write_text(text, encoding="utf-8")
    else:
        typer.echo(text, nl=False)

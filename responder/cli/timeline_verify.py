"""`responder timeline verify`: every writer's chain checked (links, hashes, signatures, anchors, archive), and the
options naming the files and what to check them against, which `timeline export` shares."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from responder.cli.options import JsonOpt
from responder.cli.output import EXIT_CONFIG, EXIT_FAILED, EXIT_UNSIGNED, EXIT_USAGE, console, emit_json, err_console
from responder.cli.timeline_files import anchors_by_file, verify_file, writers
from responder.cli.timeline_fleet import WritersOpt, expected_writers, fleet_check
from responder.errors import ChainBroken, ConfigError, TimelineError
from responder.escapes import plain
from responder.settings import Settings
from responder.timeline.verification import Verification

PathsArg = Annotated[list[Path], typer.Argument(  # a missing one: exit 3 naming it (`writers`), not a usage error
    help="timeline file(s), or a directory of *.jsonl: one file per writer (a fleet's replicas)")]
KeyOpt = Annotated[str | None, typer.Option(
    "--public-key", help="base64 Ed25519 public key(s), comma-separated (default: RESPONDER_TIMELINE_VERIFY_KEY)")]
ArchiveOpt = Annotated[str | None, typer.Option(
    "--archive", help="s3://bucket/prefix/ of sealed segments (default: RESPONDER_TIMELINE_ARCHIVE)")]
AnchorOpt = Annotated[list[Path] | None, typer.Option(
    "--anchor", help="an externally held checkpoint entry (one JSON line); repeatable", exists=True, dir_okay=False)]


def verify(paths: PathsArg, public_key: KeyOpt = None, archive: ArchiveOpt = None, anchor: AnchorOpt = None,
           writers_: WritersOpt = None, json: JsonOpt = False) -> None:
    """Check every writer's chain: links, hashes, signatures, anchors, archive; exit 1 naming the first bad entry,
    or a replica of --writers with no file, or a writer not in it."""
    settings = Settings()
    expected = expected_writers(writers_, settings.timeline_writers)
    public_key = public_key or settings.timeline_verify_key
    explicit_archive, archive = archive is not None, archive or settings.timeline_archive
    # a missing path is a file that could not be checked (3), not the end: the others are, so one broken is still 1
    missing = [p for p in paths if not p.exists()]
    files = writers([p for p in paths if p not in missing])
    if not files and not missing:
        err_console.print(f"[red]✗ no timeline files in {', '.join(map(str, paths))}")
        raise typer.Exit(EXIT_FAILED)
    several = len(files) + len(missing) > 1
    if archive and several:  # one archive holds one writer's segments
        if explicit_archive:
            err_console.print("✗ --archive holds one writer's segments: verify each writer's file with its own",
                              style="red", markup=False)
            raise typer.Exit(EXIT_USAGE)
        err_console.print(f"note: the archive {archive} is not compared: {len(files)} writers' files",
                          style="yellow", markup=False)
    held, orphans = anchors_by_file(files, anchor or [], several=several)
    failed = len(orphans)
    for a, why in orphans.items():
        if json:  # the shape of a file that does not verify (and of export's checks), the anchor as its path
            emit_json({"ok": False, "path": str(a), "first_bad_seq": -1, "reason": why})
        else:
            err_console.print(f"✗ {why}", style="red", markup=False)
    codes: list[int] = [EXIT_CONFIG] * len(missing)
    for path in missing:
        err_console.print(f"✗ cannot read timeline {path}: no such file or directory", style="red", markup=False)
    results: dict[Path, Verification] = {}
    for path in files:
        try:
            _verify_one(path, public_key, None if several else archive, held[path], json, results)
        except typer.Exit as exc:
            codes.append(exc.exit_code)
    if expected and not fleet_check(expected, files, results, json):
        failed += 1
    if failed or EXIT_FAILED in codes:  # a file that does not verify is the answer
        raise typer.Exit(EXIT_FAILED)
    if any(c != EXIT_UNSIGNED for c in codes):  # one that could not be checked is not
        raise typer.Exit(EXIT_CONFIG)
    if codes:  # links hold, more unsigned entries than the cadence (an offline command's, or a rewrite): unproven
        raise typer.Exit(EXIT_UNSIGNED)


def _verify_one(path: Path, public_key: str | None, archive: str | None, anchor: list[Path], json: bool,
                results: dict[Path, Verification]) -> None:
    """Verify one file, print its verdict and keep its result in `results` (exit 4 when its unsigned tail is past the
    cadence)."""
    try:
        result = verify_file(path, public_key, archive, anchor)
    except ChainBroken as exc:
        if json:
            emit_json({"ok": False, "path": str(path), "first_bad_seq": exc.seq, "reason": exc.reason})
        else:
            err_console.print(plain(f"✗ {path}: timeline does NOT verify at entry {exc.seq}: {exc.reason}"),
                              style="red", markup=False)  # a reason may name an unsigned entry's writer
        raise typer.Exit(EXIT_FAILED) from exc
    except ConfigError as exc:
        err_console.print(f"✗ {exc}", style="red", markup=False)
        raise typer.Exit(EXIT_CONFIG) from exc
    except (OSError, TimelineError) as exc:
        err_console.print(f"✗ cannot check {path}: {exc}", style="red", markup=False)
        raise typer.Exit(EXIT_CONFIG) from exc
    results[path] = result
    if json:
        emit_json({"path": str(path), **result.as_dict()})
    elif result.past_cadence:
        err_console.print(plain(f"! {path}: NOT fully proven: {result.reason()}"), style="yellow", markup=False)
    else:
        console.print(f"[green]✓ {path}: {result.entries} entries verify; head {result.head}")
    if result.past_cadence:
        raise typer.Exit(EXIT_UNSIGNED)
    if json:
        return
    signed = "signatures verified" if result.signatures_checked else "[yellow]signatures NOT checked (no public key)"
    console.print(f"  {result.checkpoints} checkpoints, {signed}; {result.unsigned_tail} entries after the last one")
    for run in result.unsigned_offline:
        console.print(plain(f"  unsigned: {run.entries} entries (seq {run.first_seq}-{run.last_seq}) by "
                                   f"offline writer {run.writer}"), markup=False)  # an unsigned entry's: anyone's
    if result.archived_entries is not None:
        console.print(f"  {result.archived_entries} entries match the archive {archive}")
    if result.anchors_checked:
        console.print(f"  anchored at seq {', '.join(map(str, result.anchors_checked))}")

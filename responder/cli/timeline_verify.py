"""`responder timeline verify`: every writer's chain checked (links, hashes, signatures, anchors, archive), and the
options naming the files and what to check them against, which `timeline export` shares."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from responder.cli.options import JsonOpt, readable
from responder.cli.output import EXIT_CONFIG, EXIT_FAILED, EXIT_UNSIGNED, EXIT_USAGE, console, emit_json, print_error
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
    "--anchor", help="an externally held checkpoint entry (one JSON line); repeatable", callback=readable("--anchor"))]
CadenceOpt = Annotated[bool, typer.Option(
    "--require-cadence", help="the file(s) hold version-2 checkpoints (written since 2026-12-07): a last checkpoint "
    "of version 1 fails (exit 1), as a file cut back to one would be; it looks at the last checkpoint only (a run "
    "after a version-1 checkpoint is held to the one-writer, offline and count rules with or without it)")]


def verify(paths: PathsArg, public_key: KeyOpt = None, archive: ArchiveOpt = None, anchor: AnchorOpt = None,
           writers_: WritersOpt = None, require_cadence: CadenceOpt = False, json: JsonOpt = False) -> None:
    """Check every writer's chain: links, hashes, signatures, anchors, archive; exit 1 naming the first bad entry,
    or a replica of --writers with no file, or a writer not in it."""
    settings = Settings()
    expected = expected_writers(writers_, settings.timeline_writers)
    public_key = public_key or settings.timeline_verify_key
    explicit_archive, archive = archive is not None, archive or settings.timeline_archive
    # a missing path is a file that could not be checked (3), not the end: the others are, so one broken is still 1
    missing = [p for p in paths if not p.exists()]
    named = [[p] if p in missing else writers([p]) for p in paths]  # in the order named, a directory's files sorted
    files = [f for group in named for f in group if f not in missing]
    # one file named alone is its own document (as it always was); several, a directory or --writers: one for all
    alone = len(paths) == 1 and not paths[0].is_dir() and not expected
    if not files and not missing:
        why = f"no timeline files in {', '.join(map(str, paths))}"
        if json:
            emit_json({"ok": False, "files": [], "anchors": [], "error": why})
        print_error(why)
        raise typer.Exit(EXIT_FAILED)
    several = len(files) + len(missing) > 1
    if archive and several:  # one archive holds one writer's segments
        if explicit_archive:
            print_error("--archive holds one writer's segments: verify each writer's file with its own")
            raise typer.Exit(EXIT_USAGE)
        print_error(f"the archive {archive} is not compared: {len(files)} writers' files", "note:", "yellow")
    held, orphans = anchors_by_file(files, anchor or [], several=several)
    failed = len(orphans)
    for why in orphans.values():
        if not json:
            print_error(why)  # an anchor's path and reason
    codes: list[int] = []
    docs: list[dict[str, object]] = []
    results: dict[Path, Verification] = {}
    for path in (f for group in named for f in group):
        doc, code = _verify_one(path, public_key, None if several else archive, held.get(path, []), json, results,
                                require_cadence) \
            if path not in missing else _unchecked(path, f"cannot read timeline {path}: no such file or directory")
        docs.append(doc)
        codes += [code] if code else []
    fleet = fleet_check(expected, files, results, json) if expected else None
    failed += fleet is not None and not fleet.ok
    code = EXIT_FAILED if failed or EXIT_FAILED in codes else EXIT_CONFIG if any(c != EXIT_UNSIGNED for c in codes) \
        else EXIT_UNSIGNED if codes else 0  # broken is the answer; one not checked is not; 4: links hold, unproven
    if json:  # an anchor no file holds: the shape of a file that does not verify, the anchor as its path
        lost = [{"ok": False, "path": str(a), "first_bad_seq": -1, "reason": why} for a, why in orphans.items()]
        emit_json(docs[0] if alone else {"ok": code == 0, "files": docs, "anchors": lost,
                                         **({"fleet": fleet.as_dict()} if fleet is not None else {})})
    if code:
        raise typer.Exit(code)


def _unchecked(path: Path, why: str) -> tuple[dict[str, object], int]:
    """A file that could not be checked: its line on stderr, its document, exit 3."""
    print_error(why)
    return {"ok": False, "path": str(path), "error": why}, EXIT_CONFIG


def _verify_one(path: Path, public_key: str | None, archive: str | None, anchor: list[Path], json: bool,
                results: dict[Path, Verification], require_cadence: bool = False) -> tuple[dict[str, object], int]:
    """Verify one file, print its verdict for a human (not with `json`) and keep its result in `results`; its
    document and exit code (0; 1 broken; 3 not checked; 4 unproven: no public key, or an unsigned tail past the
    cadence or the interval)."""
    try:
        result = verify_file(path, public_key, archive, anchor, require_cadence=require_cadence)
    except ChainBroken as exc:
        if not json:
            print_error(f"{path}: timeline does NOT verify at entry {exc.seq}: {exc.reason}")  # may name a writer
        return {"ok": False, "path": str(path), "first_bad_seq": exc.seq, "reason": exc.reason}, EXIT_FAILED
    except ConfigError as exc:
        return _unchecked(path, str(exc))
    except (OSError, TimelineError) as exc:
        return _unchecked(path, f"cannot check {path}: {exc}")
    results[path] = result
    doc: dict[str, object] = {"path": str(path), **result.as_dict()}
    code = EXIT_UNSIGNED if result.unproven else 0
    if json:
        return doc, code
    if result.unproven:
        print_error(f"{path}: NOT {'proven' if result.verdict in ('chain_only', 'no_entries') else 'fully proven'}: "
                    f"{result.reason()}", "!", "yellow")
        return doc, code
    tail = result.unproven_seqs
    signed = (f"{result.entries} entries verify" if tail is None else
              f"seq 0-{result.last_checkpoint} verify, signed by checkpoint seq {result.last_checkpoint}")
    console.print(plain(f"✓ {path}: {signed}; head {result.head}"), style="green",
                  markup=False, highlight=False)  # as print_ok does: a path is anyone's name
    console.print(f"  {result.checkpoints} checkpoints, signatures verified; {result.unsigned_tail} entries after "
                  "the last one")
    for run in result.unsigned_offline:
        console.print(plain(f"  unsigned: {run.entries} entries (seq {run.first_seq}-{run.last_seq}) by "
                                   f"offline writer {run.writer}"), markup=False)  # an unsigned entry's: anyone's
    for flag in result.flagged:  # acknowledged (an unacknowledged one makes the verdict unproven)
        console.print(plain(f"  acknowledged: seq {flag.first_seq}-{flag.last_seq} ({flag.verdict}, signed by "
                            f"checkpoint seq {flag.signed_by}) by {flag.ack_by} at checkpoint seq "
                            f"{flag.acknowledged_by}"), markup=False)
    if result.archived_entries is not None:
        console.print(f"  {result.archived_entries} entries match the archive {archive}")
    if result.anchors_checked:
        console.print(f"  anchored at seq {', '.join(map(str, result.anchors_checked))}")
    if tail is not None:  # exit 0, but never "verified" for what no signature covers
        print_error(f"{path}: unsigned tail NOT proven: {result.reason()}", "!", "yellow")
    return doc, code

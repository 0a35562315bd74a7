"""`responder timeline sign PATH`: a signed checkpoint over a stopped service's timeline, after checking it."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated

import typer

from responder.cli.options import JsonOpt
from responder.cli.output import EXIT_CONFIG, EXIT_FAILED, console, emit_json, print_error
from responder.cli.timeline_files import timeline_file, verify_checked
from responder.errors import ChainBroken, ConfigError, TimelineError
from responder.settings import Settings
from responder.timeline.checkpoint import ACK_BY_MAX, Ack, Cadence, Checker, Signer, load_public_key
from responder.timeline.recorder import Recorder
from responder.timeline.store import FileStore
from responder.timeline.verification import Verification

ForceOpt = Annotated[bool, typer.Option(
    "--force", help="sign an unsigned tail `verify` reports unproven (exit 4: two writers, past the interval or the "
    "cadence, labelled offline) as it is, once checked against the archive or an anchor, and acknowledge it and any "
    "run a checkpoint signed while unproven (a signed acknowledgement, --by); prints the verdict")]
ByOpt = Annotated[str | None, typer.Option(
    "--by", help=f"who acknowledges with --force (1 to {ACK_BY_MAX} characters; default: the login name)")]


def sign(path: Annotated[Path, typer.Argument(help="timeline JSON Lines file (its service stopped)")],
         force: ForceOpt = False, by: ByOpt = None, json: JsonOpt = False) -> None:
    """Append a signed checkpoint over the entries after the last one (an offline command's, written without the
    key), with RESPONDER_TIMELINE_SIGNING_KEY; refuses a file another process holds (exit 3), then one that does not
    verify under the lock (a torn last line included, checked before anything repairs it), or that the archive
    (RESPONDER_TIMELINE_ARCHIVE, when set) contradicts, or whose unsigned tail `verify` reports unproven (exit 4)
    unless --force (exit 1). Its checkpoint signs the file's cadence; with --force, also an acknowledgement of every
    run `verify` reports unproven (version 3), after which `verify` reports them acknowledged, not unproven."""
    try:
        timeline_file(path)  # a missing one is not created
        settings = Settings()
        key = settings.timeline_signing_key
        if key is None:
            raise ConfigError("timeline sign needs RESPONDER_TIMELINE_SIGNING_KEY (the service's checkpoint key)")
        signer = Signer.from_text(key.get_secret_value())
        checker = Checker([signer.public_key, *(load_public_key(k) for k in (settings.timeline_verify_key or "")
                                                .split(",") if k.strip())])  # a rotated key's checkpoints too
        store = FileStore(path, repair=False)  # the lock first: a running service's file is refused at once
        try:  # then checked read-only under it, so what is signed is what was checked, and nothing is half-written
            if _torn(path):  # opening it to write would drop the torn line: what is signed would not be the file
                raise ChainBroken(-1, "its last line is torn (no newline: a write a crash cut short, or the file was "
                                      "cut); look at it first, against the archive or an anchor: the service or an "
                                      "offline command drops a torn last line when it next opens the file")
            # and against the archive when set: a rewrite behind deleted checkpoints looks like an unsigned tail, the
            # archived segments tell them apart
            checked = verify_checked(path, checker, settings.timeline_archive, [])
            overridden, ack = _unproven(path, checked, force, by)
            signed = Cadence(checked.cadence, checked.interval_ms) if checked.cadence and checked.interval_ms else None
            recorder = Recorder.offline(path, settings.model_copy(update={"timeline_signing_key": None}), store,
                                        signed)  # the cadence the last checkpoint signs, wherever it lies
        except BaseException:
            store.close()
            raise
        try:
            if checked.head != recorder.head:
                raise ChainBroken(checked.entries - 1, "the head to sign is not the head verified")
            if checked.unsigned_tail or ack is not None:
                recorder.signer = signer
                recorder.checkpoint(ack)
        finally:
            recorder.close()  # writes the checkpoint, or nothing
    except ChainBroken as exc:
        where = f" at entry {exc.seq}" if exc.seq >= 0 else ""
        print_error(f"{path} does NOT verify{where}: {exc.reason}; not signed")
        raise typer.Exit(EXIT_FAILED) from exc
    except (ConfigError, TimelineError, OSError) as exc:
        print_error(exc)
        raise typer.Exit(EXIT_CONFIG) from exc
    added = recorder.next_seq - checked.entries  # 1 or 0
    if json:
        emit_json({"ok": True, "path": str(path), "signed": checked.unsigned_tail if added else 0,
                   "checkpoint_seq": recorder.next_seq - 1 if added else checked.last_checkpoint,
                   "key_id": signer.key_id, "overrode": overridden,
                   "acknowledged": [list(r) for r in ack.segments] if ack is not None else []})
    elif added:
        acked = f", acknowledging seqs {_runs(ack)} by {ack.by}" if ack is not None else ""
        console.print(f"✓ {path}: {checked.unsigned_tail} unsigned entries signed by checkpoint seq "
                      f"{recorder.next_seq - 1} (key id {signer.key_id}){acked}", markup=False)
    else:
        why = "the last entry is a checkpoint" if checked.entries else "no entries"
        console.print(f"✓ {path}: nothing to sign ({why})", markup=False)


def _unproven(path: Path, checked: Verification, force: bool, by: str | None) -> tuple[str | None, Ack | None]:
    """The verdict `--force` overrides, and the acknowledgement it signs: an unsigned tail `verify` reports unproven
    (exit 4), not a crash's within the cadence, and the runs a checkpoint signed while unproven. Without `force`, an
    unproven tail is one line and exit 1 (nothing signed), signed runs a warning; (None, None): nothing to override."""
    tail = checked.unproven_seqs if checked.tail_unproven else None
    signed = checked.unacknowledged
    if tail is None and not signed:
        return None, None
    if not force:
        if tail is not None:
            print_error(f"{path}: verdict {checked.verdict}, not signed: {checked.reason()}; compare the tail with "
                        "the archive or an anchor, then sign it as it is with --force")
            raise typer.Exit(EXIT_FAILED)
        print_error(f"{path}: still unproven after signing: {checked.reason()}", "!", "yellow")
        return None, None
    runs = [(f.first_seq, f.last_seq) for f in signed] + ([(tail[0], tail[1])] if tail is not None else [])
    ack = Ack(_who(by), tuple(runs))
    print_error(f"{path}: --force: signing over verdict {checked.verdict}, acknowledged by {ack.by}: "
                f"{checked.reason()}", "!", "yellow")
    return checked.verdict, ack


def _who(by: str | None) -> str:
    """The acknowledging operator: `--by`, else the login name; ConfigError when neither gives 1 to ACK_BY_MAX."""
    if by is None:
        try:
            by = getpass.getuser()
        except (KeyError, OSError) as exc:
            raise ConfigError("timeline sign --force needs --by NAME (no login name to default to)") from exc
    if not 0 < len(by) <= ACK_BY_MAX:
        raise ConfigError(f"--by must be 1 to {ACK_BY_MAX} characters (got {len(by)})")
    return by


def _runs(ack: Ack) -> str:
    return ", ".join(f"{a}-{b}" for a, b in ack.segments)


def _torn(path: Path) -> bool:
    """Whether the file's last byte is not a newline (a line a crash cut short, or a cut file)."""
    with path.open("rb") as fh:
        size = fh.seek(0, 2)
        if size == 0:
            return False
        fh.seek(size - 1)
        return fh.read(1) != b"\n"

"""`responder timeline sign PATH`: a signed checkpoint over a stopped service's timeline, after checking it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from responder.cli.options import JsonOpt
from responder.cli.output import EXIT_CONFIG, EXIT_FAILED, console, emit_json, print_error
from responder.cli.timeline_files import timeline_file, verify_checked
from responder.errors import ChainBroken, ConfigError, TimelineError
from responder.settings import Settings
from responder.timeline.checkpoint import Checker, Signer, load_public_key
from responder.timeline.recorder import Recorder


def sign(path: Annotated[Path, typer.Argument(help="timeline JSON Lines file (its service stopped)")],
         json: JsonOpt = False) -> None:
    """Append a signed checkpoint over the entries after the last one (an offline command's, written without the
    key), with RESPONDER_TIMELINE_SIGNING_KEY; refuses a timeline that does not verify (a torn last line included,
    checked before anything opens the file to write), or that the archive (RESPONDER_TIMELINE_ARCHIVE, when set)
    contradicts (exit 1)."""
    try:
        timeline_file(path)  # a missing one is not created
        settings = Settings()
        key = settings.timeline_signing_key
        if key is None:
            raise ConfigError("timeline sign needs RESPONDER_TIMELINE_SIGNING_KEY (the service's checkpoint key)")
        signer = Signer.from_text(key.get_secret_value())
        checker = Checker([signer.public_key, *(load_public_key(k) for k in (settings.timeline_verify_key or "")
                                                .split(",") if k.strip())])  # a rotated key's checkpoints too
        if _torn(path):  # opening it to write would drop the torn line first: what is signed would not be the file
            raise ChainBroken(-1, "its last line is torn (no newline: a write a crash cut short, or the file was cut); "
                                  "look at it first, against the archive or an anchor: the service or an offline "
                                  "command drops a torn last line when it next opens the file")
        # checked read-only first (nothing repaired or appended yet), and against the archive when set: a rewrite
        # behind deleted checkpoints looks like an unsigned tail, the archived segments tell them apart
        checked = verify_checked(path, checker, settings.timeline_archive, [])
        recorder = Recorder.offline(path, settings.model_copy(update={"timeline_signing_key": None}))  # the lock
        try:  # checked again under the lock, so what is signed is what was checked
            again = verify_checked(path, checker, None, [])
            if (again.entries, again.head) != (checked.entries, checked.head) or checked.head != recorder.head:
                raise ChainBroken(checked.entries - 1, "the file changed between its check and its lock")
            if checked.unsigned_tail:
                recorder.signer = signer
                recorder.checkpoint()
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
                   "key_id": signer.key_id})
    elif added:
        console.print(f"✓ {path}: {checked.unsigned_tail} unsigned entries signed by checkpoint seq "
                      f"{recorder.next_seq - 1} (key id {signer.key_id})", markup=False)
    else:
        console.print(f"✓ {path}: nothing to sign (the last entry is a checkpoint)", markup=False)


def _torn(path: Path) -> bool:
    """Whether the file's last byte is not a newline (a line a crash cut short, or a cut file)."""
    with path.open("rb") as fh:
        size = fh.seek(0, 2)
        if size == 0:
            return False
        fh.seek(size - 1)
        return fh.read(1) != b"\n"

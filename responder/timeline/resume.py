"""What a recorder reads back when it opens a timeline: the entry to continue after, how many follow the last
checkpoint and the cadence that checkpoint signs, from the file's tail only (orjson only: this runs on every start).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import structlog

from responder.errors import ChainBroken
from responder.models.timeline import GENESIS_HASH, EntryKind
from responder.timeline.checkpoint import Cadence, recorded_cadence
from responder.timeline.store import TAIL_WINDOW, TimelineStore
from responder.timeline.tail import run_interval, segment_problem
from responder.timeline.verification import Flagged

log = structlog.get_logger(__name__)

_KIND = b',"kind":"'  # in a canonical line the entry's own kind is the last: only prev, seq and writer follow it


def is_checkpoint(line: bytes) -> bool:
    """Whether a canonical line is a checkpoint entry (a body's nested `"kind":"checkpoint"` comes before it)."""
    at = line.rfind(_KIND)
    return at >= 0 and line.startswith(b'checkpoint"', at + len(_KIND))


@dataclass
class ReadBack:
    """Where a timeline's tail leaves a recorder that continues it."""

    next_seq: int = 0
    head: str = GENESIS_HASH
    last_seq: int = -1
    since_checkpoint: int = 0
    """Entries after the last checkpoint read (all of those read when none was)."""
    signed: bool = False
    """A checkpoint was read."""
    cadence: Cadence | None = None
    """The cadence the last checkpoint read signs (None: none read, or a version-1 checkpoint)."""
    partial: bool = False
    """Only the file's tail was read: entries before it are unknown."""
    run: list[tuple[str, str, str, object]] = field(default_factory=list)
    """The entries after the last checkpoint read, as `verify` judges them: (writer, at, kind, body's step)."""

    def unproven(self, writer: str, mine: Cadence) -> Flagged | None:
        """What `verify` will flag of the run that `writer`'s checkpoint (signing `mine`, at `next_seq`) signs: the
        entries after the last checkpoint read, judged as `verify_lines` judges a signed run; None when they are a
        live writer's, or began before the tail read (not read again: `verify` judges them). The count after a
        version-1 checkpoint is `mine`'s, the setting `verify` uses when it is the service's."""
        if not self.run or (self.partial and not self.signed):
            return None
        first, start = not self.signed, self.next_seq - len(self.run)
        judge = run_interval(self.run, writer, mine.interval_ms,
                             self.cadence.interval_ms if self.cadence is not None else None, first=first)
        bad = None if judge is None else segment_problem(
            self.run, start, judge, None if first else (self.cadence or mine).every, len(self.run))
        return None if bad is None else Flagged(bad[0], start, self.next_seq - 1, self.next_seq, bad[2])


def read_back(store: TimelineStore) -> ReadBack:
    """Read the tail of `store` (a file store's last 256 KiB, widened to a whole line; another store all of it) and
    check its links; ChainBroken naming the entry where they break (hashes are `timeline verify`'s job)."""
    out = ReadBack()
    tail = getattr(store, "tail", None)
    data = tail(TAIL_WINDOW) if tail is not None else store.read()
    out.partial = tail is not None and os.path.getsize(store.path) > len(data)  # type: ignore[attr-defined]
    first = True
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            last: dict[str, Any] = orjson.loads(line)
            kind, seq, digest, prev = last["kind"], int(last["seq"]), str(last["hash"]), str(last["prev"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ChainBroken(number, f"line {number} is not a timeline entry: {exc.__class__.__name__}") from exc
        if out.partial and first:  # the tail starts mid-chain: link checks start at its first entry
            out.next_seq, out.head = seq, prev
        first = False
        if seq != out.next_seq or prev != out.head:
            reason = (f"sequence gap: expected seq {out.next_seq}, found {seq}" if seq != out.next_seq
                      else "prev does not match the hash of the entry before it")
            raise ChainBroken(seq, f"{reason}; refusing to append to a broken timeline "
                                   "(`responder timeline verify` shows it)")
        body = last.get("body")
        if kind == EntryKind.CHECKPOINT:
            out.signed, out.since_checkpoint = True, 0
            out.cadence = recorded_cadence(body) if isinstance(body, dict) else None
            out.run.clear()
        else:
            out.since_checkpoint += 1
            out.run.append((str(last.get("writer")), str(last.get("at")), str(kind),
                            body.get("step") if isinstance(body, dict) else None))
        out.next_seq, out.head, out.last_seq = seq + 1, digest, seq
    return out


def unsigned_run(path: Path) -> tuple[int, bool, Cadence | None]:
    """The whole file read line by line (an offline command without the key, whose tail read may start after the last
    checkpoint): entries after the last checkpoint, whether there is one, and the cadence it signs."""
    run, signed, cadence = 0, False, None
    with path.open("rb") as fh:
        for line in fh:
            if is_checkpoint(line):
                run, signed = 0, True
                try:
                    body = orjson.loads(line).get("body")
                except (orjson.JSONDecodeError, AttributeError):
                    body = None
                cadence = recorded_cadence(body) if isinstance(body, dict) else None
            elif line.strip():
                run += 1
    return run, signed, cadence


def warn_signed(flag: Flagged, writer: str) -> None:
    """Say in the service's log that its checkpoint signed a run `verify` reports unproven (`signed_unproven_tail`)."""
    log.warning("timeline_signed_unproven_tail", verdict=flag.verdict, first_seq=flag.first_seq,
                last_seq=flag.last_seq, checkpoint_seq=flag.signed_by, writer=writer, reason=flag.reason)

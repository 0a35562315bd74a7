"""What a verification of a timeline established (`Verification`), and the runs of entries offline writers wrote in it.

responder/timeline/verify.py checks a chain and returns one; the CLI, the recorder and the fleet's writer check read it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from responder.models.timeline import GENESIS_HASH


@dataclass
class OfflineRun:
    """Consecutive entries of one offline writer, and the checkpoint that signs them (None: not yet)."""

    writer: str
    first_seq: int
    last_seq: int
    entries: int = 0
    signed_by: int | None = None


@dataclass
class Verification:
    """What a successful verification established."""

    entries: int = 0
    head: str = GENESIS_HASH
    checkpoints: int = 0
    signatures_checked: bool = False
    last_checkpoint: int | None = None
    anchors_checked: list[int] = field(default_factory=list)
    archived_entries: int | None = None
    offline: list[OfflineRun] = field(default_factory=list)
    """Each offline writer's run of entries: writer, first and last seq, count, and the checkpoint that signs it."""
    past_cadence: bool = False
    """The unsigned tail is longer than the cadence, by an offline writer's entries: unproven (see `reason`)."""
    writers: dict[str, tuple[int, str]] = field(default_factory=dict)
    """Each writer id's last entry: (seq, hash)."""
    first_seqs: dict[str, int] = field(default_factory=dict)
    """Each writer id's first seq: at or before `last_checkpoint`, a signature covers an entry of it."""

    @property
    def unsigned_offline(self) -> list[OfflineRun]:
        """The offline writers' runs in the unsigned tail (no checkpoint signs them yet)."""
        return [run for run in self.offline if run.signed_by is None]

    @property
    def verdict(self) -> str:
        """`verified`, or `unsigned_offline_tail`: the chain links and every checkpoint holds, but more entries than
        the cadence follow the last checkpoint, the excess written by an offline command without the signing key."""
        return "unsigned_offline_tail" if self.past_cadence else "verified"

    @property
    def unsigned_tail(self) -> int:
        """Entries after the last checkpoint: provable only by an archive, mirror or later anchor."""
        return self.entries - (self.last_checkpoint + 1 if self.last_checkpoint is not None else 0)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready summary."""
        return {"ok": not self.past_cadence, "verdict": self.verdict, "entries": self.entries, "head": self.head,
                "checkpoints": self.checkpoints,
                "signatures_checked": self.signatures_checked, "last_checkpoint": self.last_checkpoint,
                "unsigned_tail": self.unsigned_tail, "anchors_checked": self.anchors_checked,
                "archived_entries": self.archived_entries, "offline_writers": [asdict(r) for r in self.offline],
                **({"reason": self.reason()} if self.past_cadence else {})}

    def reason(self) -> str:
        """Why the verdict is not `verified`, naming the unsigned offline entries."""
        runs = "; ".join(f"seq {r.first_seq}-{r.last_seq} by {r.writer}" for r in self.unsigned_offline)
        signed = f"seq {self.last_checkpoint}" if self.last_checkpoint is not None else "no entry"
        return (f"{self.unsigned_tail} unsigned entries follow the last checkpoint (signed up to {signed}), more than "
                f"the cadence, within the allowance of an offline command without the signing key ({runs}); "
                "deleting checkpoints and rewriting the entries they signed looks the same: check them against the "
                "archive, mirror or an anchor before `responder timeline sign`, which makes them proven")

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
class Flagged:
    """Entries a checkpoint signed while `verify` would report them unproven (a start signs whatever tail it finds):
    the run `first_seq`…`last_seq` before checkpoint `signed_by`, the tail verdict they had and why; unproven until a
    signed acknowledgement (`timeline sign --force`, a version-3 checkpoint) names the run."""

    verdict: str
    first_seq: int
    last_seq: int
    signed_by: int
    reason: str
    acknowledged_by: int | None = None
    ack_by: str | None = None


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
    cadence: int | None = None
    """The entries allowed after the last checkpoint: the cadence it signs, else the setting (None: not checked)."""
    interval_ms: int | None = None
    """The checkpoint interval the last checkpoint signs (None: a version-1 checkpoint, or none checked)."""
    tail_problem: tuple[str, int, str] | None = None
    """Why the unsigned tail is no live writer's: verdict, first seq at fault, why (responder/timeline/tail.py)."""
    flagged: list[Flagged] = field(default_factory=list)
    """Runs a checkpoint signed that `verify` would have reported unproven, acknowledged or not."""

    @property
    def unacknowledged(self) -> list[Flagged]:
        """The signed runs still unproven: no signed acknowledgement names them."""
        return [f for f in self.flagged if f.acknowledged_by is None]

    @property
    def tail_unproven(self) -> bool:
        """The unsigned tail has a shape no live writer leaves: past the cadence, or a `tail_problem` (its verdict
        one of `responder.timeline.tail`'s, exit 4); False for a crash's tail within the cadence, or none."""
        return self.signatures_checked and (self.past_cadence or self.tail_problem is not None)

    @property
    def unsigned_offline(self) -> list[OfflineRun]:
        """The offline writers' runs in the unsigned tail (no checkpoint signs them yet)."""
        return [run for run in self.offline if run.signed_by is None]

    @property
    def verdict(self) -> str:
        """Never `verified` while an entry is left that no checked signature covers. Exit 0: `verified` (every entry
        covered by a checkpoint whose signature holds), `unsigned_tail` (the entries after the last checkpoint, within
        its cadence, unproven). Exit 4 (unproven): `chain_only` (no public key: links and hashes only), `no_entries`
        (a file cut to nothing looks the same), `unsigned_offline_tail` (an offline writer's unsigned entries pass the
        cadence), `unsigned_tail_past_interval`, `unsigned_tail_two_writers`, `unsigned_tail_not_offline` (entries
        labelled offline that no offline command writes): responder/timeline/tail.py; `signed_unproven_tail` (a
        checkpoint signed a run of entries that had one of these verdicts, and no acknowledgement names it)."""
        if not self.signatures_checked:
            return "chain_only"
        if not self.entries:
            return "no_entries"
        if self.past_cadence:
            return "unsigned_offline_tail"
        if self.tail_problem is not None:
            return self.tail_problem[0]
        if self.unacknowledged:
            return "signed_unproven_tail"
        return "unsigned_tail" if self.unsigned_tail else "verified"

    @property
    def unproven(self) -> bool:
        """Links hold, but the verdict is not one to exit 0 on (exit 4): no key, or a tail no live writer leaves."""
        return self.verdict not in ("verified", "unsigned_tail")

    @property
    def unsigned_tail(self) -> int:
        """Entries after the last checkpoint: provable only by an archive, mirror or later anchor."""
        return self.entries - (self.last_checkpoint + 1 if self.last_checkpoint is not None else 0)

    @property
    def unproven_seqs(self) -> list[int] | None:
        """The first and last seq no checked signature covers (the whole chain without a key); None: none."""
        first = self.entries - self.unsigned_tail if self.signatures_checked else 0
        return [first, self.entries - 1] if first < self.entries else None

    def as_dict(self) -> dict[str, object]:
        """JSON-ready summary."""
        return {"ok": not self.unproven, "verdict": self.verdict, "entries": self.entries, "head": self.head,
                "checkpoints": self.checkpoints,
                "signatures_checked": self.signatures_checked, "last_checkpoint": self.last_checkpoint,
                "unsigned_tail": self.unsigned_tail, "unproven_seqs": self.unproven_seqs, "cadence": self.cadence,
                "interval_ms": self.interval_ms, "anchors_checked": self.anchors_checked,
                "archived_entries": self.archived_entries, "offline_writers": [asdict(r) for r in self.offline],
                "signed_unproven": [asdict(f) for f in self.flagged],
                **({"reason": self.reason()} if self.verdict != "verified" else {})}

    def reason(self) -> str:
        """Why the verdict is not `verified`: what is unproven, and what can prove it."""
        verdict, tail = self.verdict, self.unproven_seqs
        if verdict == "chain_only":
            return (f"no public key: links and hashes hold, but no signature was checked ({self.checkpoints} "
                    "checkpoints) nor the cadence: anyone who can write the file can write such a chain, forged "
                    "checkpoints included; verify with --public-key (RESPONDER_TIMELINE_VERIFY_KEY)")
        signed = f"seq {self.last_checkpoint}" if self.last_checkpoint is not None else "no entry"
        after = (f"{self.unsigned_tail} entries after the last checkpoint (seq {tail[0]}-{tail[1]}; signed up to "
                 f"{signed}) are unproven: no checkpoint signs them" if tail else "")
        check = ("; deleting checkpoints and rewriting the entries they signed looks the same: "
                 "only the archive (--archive), the mirror or a later anchor (--anchor) tells them apart, and the next "
                 "checkpoint (the service's start, `responder timeline sign`) signs them as they are; one `verify` "
                 "reports unproven stays so once signed, until acknowledged (`timeline sign --force`)")
        if verdict == "unsigned_offline_tail":
            runs = "; ".join(f"seq {r.first_seq}-{r.last_seq} by {r.writer}" for r in self.unsigned_offline)
            return (f"{after}, more than the cadence ({self.cadence}), within the allowance of an offline command "
                    f"without the signing key ({runs}){check}{self._also()}")
        if verdict == "no_entries":
            return ("no entries: an empty file proves nothing, and a file cut to nothing looks the same; compare it "
                    "with the archive (--archive) or an anchor (--anchor)")
        if self.tail_problem is not None:
            return f"{after}; {self.tail_problem[2]}{check}{self._also()}"
        if verdict == "signed_unproven_tail":
            return self._signed() + (f"; and {after}" if tail else "")
        within = (f"within the cadence ({self.cadence} entries"
                  f"{f', {self.interval_ms / 1000:g} s' if self.interval_ms else ''})" if self.cadence else
                  "no cadence checked")
        return f"{after} ({within}: a crash or an offline command without the key leaves such a tail){check}"

    def _also(self) -> str:
        """The signed runs still unproven, after the tail's own reason."""
        left = self.unacknowledged
        return f"; and {len(left)} signed run(s) are unproven too: {self._signed()}" if left else ""

    def _signed(self) -> str:
        runs = "; ".join(f"seq {f.first_seq}-{f.last_seq} ({f.verdict}: {f.reason}) signed by checkpoint seq "
                         f"{f.signed_by}" for f in self.unacknowledged)
        return (f"entries were signed that verify reported unproven: {runs}; a checkpoint (a service's start) signs "
                "whatever tail it finds, so the signature proves nothing of them: compare them with the archive "
                "(--archive) or an anchor (--anchor), then acknowledge them with `responder timeline sign --force "
                "--by NAME`")

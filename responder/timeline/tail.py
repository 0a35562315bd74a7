"""What `verify` can say about the entries after the last checkpoint: no signature covers them, so the file alone
cannot prove them; these rules only refuse shapes a writer keeping its cadence never leaves (docs/timeline.md,
"What the file alone proves").

* An offline writer's run (`offline:host:pid:token`: a command without the signing key) may start only within the
  cadence and may itself write no more than it (`offline_run`).
* A writer that signs keeps the interval its last checkpoint records: it checkpoints at its first append once the
  interval has passed since its last checkpoint or its start, so each of its entries but the last (whose
  checkpoint a crash can tear) is stamped within the interval of its first unsigned entry. `late_entry` allows
  twice the interval (one interval of slack, for a clock stepped back between two reads) and names the first
  entry past it: unproven, not broken, since `at` is the writer's clock and anyone who rewrites the tail can
  restamp it too. A tripwire for a careless rewrite, not a proof.
"""

from __future__ import annotations

from datetime import datetime

from responder.errors import ChainBroken
from responder.timeline.verification import OfflineRun

OFFLINE_WRITER = "offline:"
"""The prefix of an offline command's writer id (`offline:host:pid`: `undo`, `models …` on a stopped service's file)."""


def offline_run(writer: str, seq: int, since_cp: int, limit: int | None) -> OfflineRun:
    """A new offline writer's run at `seq`. An offline command without the signing key refuses to start on a tail
    already past the cadence, so an unsigned run passes the cadence only by the entries of one offline writer
    that started within it: an edit cannot hide behind more than one cadence of "offline" entries."""
    if limit is not None and since_cp > limit:
        raise ChainBroken(seq, f"offline writer {writer} starts after {since_cp} entries without a signed checkpoint, "
                               f"more than the cadence ({limit}): checkpoints were removed or the chain rewritten")
    return OfflineRun(writer, seq, seq)


def _when(at: str) -> float | None:
    try:
        return datetime.fromisoformat(at).timestamp()
    except (TypeError, ValueError):
        return None


def late_entry(tail: list[tuple[str, str]], first_seq: int, interval_ms: int) -> tuple[int, str] | None:
    """The first entry of the unsigned tail (`(writer, at)` of seqs `first_seq`…) stamped more than twice
    `interval_ms` after its writer's first entry of the tail, the last entry of each writer's run excepted, with
    why; None when there is none. Offline writers' runs are left to `offline_run`."""
    slack = 2 * interval_ms / 1000
    start = 0
    while start < len(tail):
        writer = tail[start][0]
        end = start
        while end + 1 < len(tail) and tail[end + 1][0] == writer:
            end += 1
        if not writer.startswith(OFFLINE_WRITER):
            first = _when(tail[start][1])
            for i in range(start, end):  # the run's last entry may be the one whose checkpoint was torn
                when = _when(tail[i][1])
                if first is None or when is None:
                    return first_seq + i, f"entry seq {first_seq + i} of the unsigned tail has no readable time"
                if when - first > slack:
                    return first_seq + i, (
                        f"entry seq {first_seq + i} is stamped {when - first:.1f} s after the first unsigned entry "
                        f"of its writer {writer} (seq {first_seq + start}), more than twice the interval the last "
                        f"checkpoint records ({interval_ms / 1000:g} s), and is not that writer's last: a writer "
                        "with the key would have checkpointed")
        start = end + 1
    return None

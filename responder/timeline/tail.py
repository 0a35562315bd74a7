"""What `verify` can say about the entries after the last checkpoint: no signature covers them, so the file alone
cannot prove them; these rules only refuse shapes a writer keeping its cadence never leaves (docs/timeline.md,
"What the file alone proves").

* An offline writer's run (`offline:host:pid:token`: a command without the signing key) may start only within the
  cadence and may itself write no more than it (`offline_run`).
* After a checkpoint that signs its cadence (version 2) the entries up to the next are one process's: a start with
  the key appends a checkpoint before its first entry when entries follow the last one on disk. A second writer
  among the tail's non-offline entries is no writer's doing: `tail_problem` names its first entry (relabelling the
  tail's entries between two writer ids must not split it into runs each of which escapes the time rule).
* That writer keeps the interval its last checkpoint records: it checkpoints at its first append once the interval
  has passed since its last checkpoint or its start, so each of its entries but the last (whose checkpoint a crash
  can tear) is stamped within the interval of its first unsigned entry. `tail_problem` allows twice the interval
  (one interval of slack, for a clock stepped back between two reads) and names the first entry past it.
  Both are unproven, not broken, since `at` and `writer` are not signed and anyone who rewrites the tail can restamp
  and relabel it too: a tripwire for a careless rewrite, not a proof.
* Both rules skip offline writers' entries, so after a version-2 checkpoint an entry labelled offline must look like
  an offline command's (`not_offline`): the writer id `Recorder.offline` writes, and a kind it writes (`undo`'s, or
  the `operator` step of `models …`), else relabelling the tail `offline:x` would dodge both.
* After a version-1 checkpoint (an older release's) no interval is known: the same rules with `UNKNOWN_INTERVAL`
  (one writer, offline labels, not the time), for the unsigned tail and for the run a later checkpoint signs
  (`run_interval`), so a file cut back to its last version-1 checkpoint gains no looser rule than these.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from operator import itemgetter

from responder.errors import ChainBroken
from responder.timeline.verification import OfflineRun

OFFLINE_WRITER = "offline:"
"""The prefix of an offline command's writer id (`offline:host:pid:token`: `undo`, `models …` on a stopped service's
file)."""
OFFLINE_ID = re.compile(r"offline:.+:[0-9]+:[0-9a-f]{6}")
"""The whole id `Recorder.offline` writes: host (which may hold colons), pid, and a token of 3 random bytes in hex."""
UNKNOWN_INTERVAL = 2**53
"""An interval no time rule trips (2**53 ms: centuries): a run whose writer's interval is unknown."""
OFFLINE_KINDS = frozenset(("undo.intent", "undo.result", "undo.skipped"))
"""The kinds `responder undo` writes (responder/engine/undo.py); `models …` writes `step.intent` / `step.result` of
its step `operator` (responder/cli/model_ops.py); a checkpoint is no tail entry."""
OFFLINE_STEP_KINDS = frozenset(("step.intent", "step.result"))


def offline_run(writer: str, seq: int, since_cp: int, limit: int | None) -> OfflineRun:
    """A new offline writer's run at `seq`. An offline command without the signing key refuses to start on a tail
    already past the cadence, so an unsigned run passes the cadence only by the entries of one offline writer
    that started within it: an edit cannot hide behind more than one cadence of "offline" entries."""
    if limit is not None and since_cp > limit:
        raise ChainBroken(seq, f"offline writer {writer} starts after {since_cp} entries without a signed checkpoint, "
                               f"more than the cadence ({limit}): checkpoints were removed or the chain rewritten")
    return OfflineRun(writer, seq, seq)


def _canonical(when: float) -> str:
    """`when` in the form a recorder stamps `at` (UTC, microseconds), which sorts as the time it names."""
    try:
        return datetime.fromtimestamp(when, UTC).isoformat(timespec="microseconds")
    except (OverflowError, OSError, ValueError):
        return ""  # out of range: no fast path ("" sorts before every time), each entry parsed


def _when(at: str) -> float | None:
    try:
        return datetime.fromisoformat(at).timestamp()
    except (TypeError, ValueError):
        return None


def not_offline(writer: str, kind: str, step: object) -> str | None:
    """Why an entry labelled an offline writer's is no offline command's (None: it may be one)."""
    if not OFFLINE_ID.fullmatch(writer):
        return "its writer id is not the form an offline command writes (offline:host:pid:token, a 6-hex token)"
    if kind not in OFFLINE_KINDS and not (kind in OFFLINE_STEP_KINDS and step == "operator"):
        return (f"an offline command writes no {kind} entry{f' of step {step}' if isinstance(step, str) else ''} "
                "(only undo's, and the operator step of `models …`): the service's")
    return None


_TIMES = re.compile(r"(?:[0-9]{4}-[0-9]{2}-[0-9]{2}T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]\.[0-9]{6}\+00:00)*")
"""Any number of times of day in the form a recorder stamps them, back to back (each 32 characters)."""
_STAMP_LEN = 32
"""Each time is one stamp: `_TIMES` matches any concatenation, so an `at` of two stamps end to end would pass it."""
_WRITER, _AT = itemgetter(0), itemgetter(1)


def _plainly_live(tail: list[tuple[str, str, str, object]], interval_ms: int) -> bool:
    """The common case at a glance (`verify` runs this for every run a checkpoint signs): one writer, not offline,
    every time but the last in the recorder's form (which sorts as the time it names) and within the slack of the
    first. False: `tail_problem` looks entry by entry."""
    writers = set(map(_WRITER, tail))
    if len(writers) != 1 or next(iter(writers)).startswith(OFFLINE_WRITER):
        return False
    times = list(map(_AT, tail[:-1]))
    if not times:
        return True
    first, latest = _when(times[0]), max(times)
    if first is None or min(times)[:10] != latest[:10] or latest[:10] != times[0][:10]:
        return False  # one readable date for all (the first's, parsed): a run across midnight goes entry by entry
    bound = _canonical(first + 2 * interval_ms / 1000)
    return (bool(bound) and latest <= bound and set(map(len, times)) == {_STAMP_LEN}
            and _TIMES.fullmatch("".join(times)) is not None)


def tail_problem(tail: list[tuple[str, str, str, object]], first_seq: int,
                 interval_ms: int) -> tuple[str, int, str] | None:
    """Why the unsigned tail after a version-2 checkpoint (`(writer, at, kind, body's step)` of seqs `first_seq`…)
    is no live writer's: (verdict, the first seq at fault, why), or None. Entries labelled offline must look like an
    offline command's; their runs are left to `offline_run`."""
    if _plainly_live(tail, interval_ms):
        return None
    for i, (writer, _, kind, step) in enumerate(tail):
        if writer.startswith(OFFLINE_WRITER) and (why := not_offline(writer, kind, step)) is not None:
            return "unsigned_tail_not_offline", first_seq + i, (
                f"entry seq {first_seq + i} is labelled offline writer {writer}'s, but {why}: relabelled entries "
                "would escape the one-writer and interval rules")
    own = [(first_seq + i, writer, at) for i, (writer, at, _, _) in enumerate(tail)
           if not writer.startswith(OFFLINE_WRITER)]
    if not own:
        return None
    start, writer, first_at = own[0]
    for seq, other, _ in own:
        if other != writer:
            return "unsigned_tail_two_writers", seq, (
                f"entry seq {seq} is writer {other}'s, after unsigned entries of writer {writer} (from seq {start}): "
                "after a checkpoint the entries up to the next are one process's (a start with the key "
                "checkpoints before its first entry), so a second writer is no writer's doing")
    first, slack = _when(first_at), 2 * interval_ms / 1000
    for seq, _, at in own[:-1]:  # the last may be the one whose checkpoint a crash tore
        when = _when(at)
        if first is None or when is None:
            return "unsigned_tail_past_interval", seq, f"entry seq {seq} of the unsigned tail has no readable time"
        if when - first > slack:
            return "unsigned_tail_past_interval", seq, (
                f"entry seq {seq} is stamped {when - first:.1f} s after the first unsigned entry (seq {start}, "
                f"writer {writer}), more than twice the interval the last checkpoint records "
                f"({interval_ms / 1000:g} s), and is not the tail's last: a writer with the key would have "
                "checkpointed")
    return None


def run_interval(run: list[tuple[str, str, str, object]], signer: str, signed: int | None,
                 before: int | None, *, first: bool) -> int | None:
    """The interval `verify` judges a run a checkpoint has just signed by (`signer` wrote the checkpoint, `signed`
    is the interval it signs, None for version 1; `before`: the one the checkpoint before the run signs); None: the
    run is not judged.

    * After a version-2 checkpoint: the interval it signs (`before`), as while the run was the unsigned tail.
    * Signed by a version-1 checkpoint, after one or as the file's first run: not judged. An older release wrote
      it, whose start did not checkpoint before its first entry (two writers are a restart's), and forging it
      takes the key.
    * After a version-1 checkpoint, signed by a later version: no interval is known, so `UNKNOWN_INTERVAL` (the
      one-writer and offline rules, and the count): a file cut back to its last version-1 checkpoint, a run
      forged after it and an upgraded start's checkpoint over it must not pass where the unsigned tail would not.
    * The file's first run: the interval its first checkpoint signs when that checkpoint's writer wrote it (a
      whole file forged and then signed by a start must not pass where a live writer's first run would not);
      when another writer signs it (a restart after a crash before the first checkpoint), `UNKNOWN_INTERVAL`.
    """
    if not first and before is not None:
        return before
    if signed is None:
        return None
    if first and all(w == signer or w.startswith(OFFLINE_WRITER) for w, _, _, _ in run):
        return signed
    return UNKNOWN_INTERVAL


def segment_problem(tail: list[tuple[str, str, str, object]], first_seq: int, interval_ms: int, limit: int | None,
                    entries: int) -> tuple[str, int, str] | None:
    """What `verify` said of a run of `entries` entries a checkpoint has just signed, while it was the unsigned tail:
    `tail_problem`'s verdict, or `unsigned_offline_tail` past the cadence `limit`; None: a live writer's."""
    if limit is not None and entries > limit:
        return "unsigned_offline_tail", first_seq + limit, (
            f"{entries} entries after a checkpoint, more than the cadence ({limit}): within the allowance of an "
            "offline command without the signing key, which verify cannot tell from a rewrite")
    return tail_problem(tail, first_seq, interval_ms)

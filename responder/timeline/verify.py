"""Full verification: chain links, checkpoint signatures, external anchors and archived copies. What it
established is a `Verification` (responder/timeline/verification.py).

The hot path parses each line with orjson (not pydantic) and rehashes it; see bench/timeline.py.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence

import orjson

from responder.errors import ChainBroken
from responder.models.timeline import GENESIS_HASH, EntryKind
from responder.timeline.checkpoint import Checker, recorded_ack, recorded_cadence
from responder.timeline.tail import (
    OFFLINE_WRITER,
    UNKNOWN_INTERVAL,
    offline_run,
    run_interval,
    segment_problem,
    tail_problem,
)
from responder.timeline.verification import Flagged, OfflineRun, Verification

FIELDS = frozenset(("seq", "writer", "at", "kind", "incident", "body", "prev", "hash"))
_CHECKPOINT = EntryKind.CHECKPOINT.value


def _bad_line(seq: int, number: int, why: str) -> ChainBroken:
    return ChainBroken(seq, f"line {number} is not a timeline entry ({why})")


def split_lines(raw: bytes) -> list[bytes]:
    """The file's lines split on LF only, so a CR, a blank line or a stray space stays visible to the check."""
    lines = raw.split(b"\n")
    return lines[:-1] if lines and lines[-1] == b"" else lines


def verify_lines(
    lines: Iterable[bytes], checker: Checker | None = None, anchors: Mapping[int, str] | None = None,
    cadence: int | None = None, *, strict: bool = False,
) -> Verification:
    """Verify JSON Lines: links, seqs, hashes, checkpoint signatures and anchors (seq → hash that must be there).

    With a `checker`, the chain must hold at least one signed checkpoint, and no more entries than the cadence may
    follow one without the next (the recorder checkpoints at least that often), so deleting checkpoints and
    rehashing fails past it: the cadence a checkpoint signs (version 2), else `cadence` (the setting; none: not
    checked). The unsigned tail, and each run a checkpoint signs, is judged by `responder.timeline.tail` (after a
    version-1 checkpoint without the time rule: `run_interval`). `strict` also requires every line to be
    the canonical bytes of its entry (no blank lines, CR, spaces or re-ordered keys). Raises ChainBroken naming
    the first bad entry.
    """
    sha256, dumps, sort = hashlib.sha256, orjson.dumps, orjson.OPT_SORT_KEYS
    expect = dict(anchors or {})
    prev, seq, checkpoints, last_cp, since_cp = GENESIS_HASH, 0, 0, None, 0
    runs: list[OfflineRun] = []
    last_by: dict[str, tuple[int, str]] = {}
    first_by: dict[str, int] = {}
    writer: str | None = None
    run: OfflineRun | None = None  # the offline writer's run the last entry belongs to
    limit = cadence if checker is not None and cadence is not None else None
    interval_ms: int | None = None  # the interval the last checkpoint signs (version 2)
    tail: list[tuple[str, str, str, object]] = []  # after the last checkpoint, with a checker: `tail_problem`'s
    keep = tail.append
    flagged: list[Flagged] = []  # runs a checkpoint signed that the tail rules call unproven
    for number, line in enumerate(lines, start=1):
        if not line or line.isspace():
            if strict:
                raise _bad_line(seq, number, "not canonical: a blank line")
            continue
        try:
            d = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise _bad_line(seq, number, "not JSON") from exc
        if type(d) is not dict or d.keys() != FIELDS:
            raise _bad_line(seq, number, "wrong fields")
        s, w, at, kind, inc, body, p, h = (d["seq"], d["writer"], d["at"], d["kind"], d["incident"], d["body"],
                                           d["prev"], d["hash"])
        if type(s) is not int or type(body) is not dict or not (inc is None or type(inc) is str):
            raise _bad_line(seq, number, "wrong field types")  # false, 0, [], {} would hash as no incident (null)
        if s != seq:
            raise ChainBroken(s if s > seq else seq, f"sequence gap: expected seq {seq}, found {s}")
        if p != prev:
            raise ChainBroken(seq, "prev does not match the hash of the entry before it")
        try:
            parts = (p.encode(), s.to_bytes(8, "big"), w.encode(), at.encode(), kind.encode(),
                     (inc or "").encode(), dumps(body, option=sort))
        except (AttributeError, TypeError) as exc:
            raise _bad_line(seq, number, "wrong field types") from exc
        if sha256(b"".join([len(x).to_bytes(4, "big") + x for x in parts])).hexdigest() != h:
            raise ChainBroken(seq, "content does not match its hash (edited)")
        if strict and dumps(d, option=sort) != line:
            raise _bad_line(seq, number, "not canonical bytes: whitespace, CR or key order differ")
        if kind != _CHECKPOINT:
            if w.startswith(OFFLINE_WRITER):
                if run is None or run.writer != w:
                    run = offline_run(w, seq, since_cp, limit)
                    runs.append(run)
                run.last_seq, run.entries = seq, run.entries + 1
                if limit is not None and run.entries > limit:
                    raise ChainBroken(seq, f"offline writer {w} wrote more than {limit} entries without a signed "
                                           "checkpoint (the cadence): checkpoints were removed or the chain rewritten")
            else:
                run = None
                if limit is not None and since_cp >= limit:
                    raise ChainBroken(seq, f"more than {limit} entries without a signed checkpoint (the cadence): "
                                           "checkpoints were removed or the chain rewritten")
            since_cp += 1
            if checker is not None:
                keep((w, at, kind, body.get("step")))
        else:
            for r in reversed(runs):
                if r.signed_by is not None:
                    break
                r.signed_by = seq
            run = None
            checkpoints += 1
            last_cp = seq
            if checker is not None:
                problem = checker.problem(w, seq, p, body)
                if problem is not None:
                    raise ChainBroken(seq, problem)
                signed = recorded_cadence(body)  # what the writer keeps until its next checkpoint
                # the run it signs, judged as `verify` judged it while it was the unsigned tail
                judge = run_interval(tail, w, None if signed is None else signed.interval_ms, interval_ms,
                                     first=checkpoints == 1)
                if judge is not None and tail and (bad := segment_problem(
                        tail, seq - len(tail), judge, limit if checkpoints > 1 else None, since_cp)) is not None:
                    flagged.append(Flagged(bad[0], seq - len(tail), seq - 1, seq, bad[2]))
                if (ack := recorded_ack(body)) is not None:
                    for f in flagged:
                        if f.acknowledged_by is None and (f.first_seq, f.last_seq) in ack.segments:
                            f.acknowledged_by, f.ack_by = seq, ack.by
                limit, interval_ms = (signed.every, signed.interval_ms) if signed is not None else (
                    cadence, None)
                tail.clear()
            since_cp = 0
        if w != writer:  # recorded when the writer changes, and at the end
            if writer is not None:
                last_by[writer] = (seq - 1, prev)
            writer = w
            first_by.setdefault(w, seq)
        if expect:
            want = expect.pop(seq, None)
            if want is not None and want != h:
                raise ChainBroken(seq, "differs from the externally held checkpoint (rewritten)")
        prev = h
        seq += 1
    if checker is not None and seq and not checkpoints:
        raise ChainBroken(0, "no signed checkpoint: with a public key the chain must be covered by checkpoints")
    if expect:
        missing = min(expect)
        raise ChainBroken(seq, f"truncated: a signed checkpoint exists for seq {missing}, the timeline ends "
                               f"at seq {seq - 1}")
    if writer is not None:
        last_by[writer] = (seq - 1, prev)
    # after a version-1 checkpoint too (no interval: the one-writer and offline rules), as once a start signs it
    judged = tail_problem(tail, seq - len(tail), UNKNOWN_INTERVAL if interval_ms is None else interval_ms) \
        if tail else None
    return Verification(entries=seq, head=prev, checkpoints=checkpoints, signatures_checked=checker is not None,
                        last_checkpoint=last_cp, anchors_checked=sorted((anchors or {}).keys()), offline=runs,
                        past_cadence=limit is not None and since_cp > limit, writers=last_by, first_seqs=first_by,
                        cadence=limit, interval_ms=interval_ms, tail_problem=judged, flagged=flagged)


def verify_anchor_entry(line: bytes, checker: Checker | None) -> tuple[int, str]:
    """Check that one checkpoint line is self-consistent and validly signed; return (seq, hash)."""
    try:
        d = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ChainBroken(-1, "the anchor is not a checkpoint entry (not JSON)") from exc
    if not isinstance(d, dict) or d.get("kind") != _CHECKPOINT or d.keys() != FIELDS:
        raise ChainBroken(-1, "the anchor is not a checkpoint entry")
    if type(d["seq"]) is not int or d["seq"] < 0 or type(d["body"]) is not dict or d["incident"] is not None \
            or not all(isinstance(d[k], str) for k in ("prev", "writer", "at", "hash")):
        raise ChainBroken(-1, "the anchor is not a checkpoint entry (wrong field types)")
    parts = (d["prev"].encode(), d["seq"].to_bytes(8, "big"), d["writer"].encode(), d["at"].encode(),
             _CHECKPOINT.encode(), b"", orjson.dumps(d["body"], option=orjson.OPT_SORT_KEYS))
    if hashlib.sha256(b"".join([len(x).to_bytes(4, "big") + x for x in parts])).hexdigest() != d["hash"]:
        raise ChainBroken(d["seq"], "the anchor checkpoint does not match its own hash")
    if checker is not None:
        problem = checker.problem(d["writer"], d["seq"], d["prev"], d["body"])
        if problem is not None:
            raise ChainBroken(d["seq"], f"the anchor: {problem}")
    return d["seq"], d["hash"]


def compare_with_copy(local: Sequence[bytes], copy: Sequence[bytes], what: str = "archive") -> int:
    """Byte-compare the local lines with an independent copy; ChainBroken at the first difference.

    Returns how many entries were compared. The copy may be shorter (not yet archived) but never longer.
    """
    local = [ln for ln in local if ln.strip()]
    copy = [ln for ln in copy if ln.strip()]
    for seq, (mine, theirs) in enumerate(zip(local, copy, strict=False)):
        if mine != theirs:
            return _differs(seq, mine, theirs, what)
    if len(copy) > len(local):
        raise ChainBroken(len(local), f"truncated: the {what} holds entries up to seq {len(copy) - 1}, "
                                      f"the timeline ends at seq {len(local) - 1}")
    return len(copy)


def _differs(seq: int, mine: bytes, theirs: bytes, what: str) -> int:
    try:
        mine_seq = orjson.loads(mine).get("seq")
    except orjson.JSONDecodeError:
        mine_seq = None
    if mine_seq is not None and mine_seq != seq:
        raise ChainBroken(seq, f"differs from the {what}: found seq {mine_seq} where the {what} has seq {seq} "
                               "(deleted, inserted or reordered)")
    raise ChainBroken(seq, f"differs from the {what} (edited)")

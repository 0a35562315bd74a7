"""Timeline benchmark: durable appends/s (group commit vs fsync per entry) and full verification entries/s.

Run: `.venv/bin/python bench/timeline.py [--entries N] [--dir DIR]` (also part of `make bench`).
Both results are printed as ratios against baselines measured in the same run, and against the targets of
issue 7 (≥ 50k durable appends/s, ≥ 150k verified entries/s). Use a directory on the real disk (not tmpfs).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from responder.timeline import FileStore, Recorder
from responder.timeline.chain import parse_lines, verify_entries
from responder.timeline.checkpoint import Checker, Signer, generate_keypair
from responder.timeline.verify import verify_lines

BODY = {"event_id": "ev-0123456789abcdef", "runbook": "iam-credential-compromise@1", "step": "deactivate-key",
        "actuator": "aws.iam.deactivate_access_key", "target": "AKIAIOSFODNN7EXAMPLE", "status": "ok",
        "key": "0f" * 16, "params": {"user_name": "ml-training", "access_key_id": "AKIAIOSFODNN7EXAMPLE"},
        "prior": {"status": "Active"}, "after": {"status": "Inactive"}, "duration_ms": 12.345}

PRIVATE, PUBLIC = generate_keypair()


def _recorder(path: Path, linger: float = 0.0) -> Recorder:
    return Recorder(FileStore(path), writer="bench:1", linger=linger, signer=Signer.from_text(PRIVATE),
                    checkpoint_every=1000)


def per_entry_fsync(path: Path, n: int) -> float:
    """Baseline: every append flushed and fdatasync'd on its own."""
    rec = _recorder(path)
    start = time.perf_counter()
    for i in range(n):
        rec.append("step.result", BODY | {"i": i}, "inc-1")
        rec.flush_sync()
    elapsed = time.perf_counter() - start
    rec.close()
    return n / elapsed


async def group_commit(path: Path, n: int, writers: int, linger: float) -> tuple[float, float]:
    """`writers` concurrent callers, each appending one entry and awaiting its durability (the service's shape)."""
    rec = _recorder(path, linger)
    per = n // writers

    async def writer(w: int) -> None:
        for i in range(per):
            rec.append("step.result", BODY | {"i": i, "w": w}, "inc-1")
            await rec.flush()

    start = time.perf_counter()
    await asyncio.gather(*(writer(w) for w in range(writers)))
    elapsed = time.perf_counter() - start
    syncs = rec.syncs
    rec.close()
    return per * writers / elapsed, per * writers / max(1, syncs)


async def batch_commit(path: Path, n: int, batch: int) -> float:
    """A Kafka batch's shape: append `batch` entries, then one flush."""
    rec = _recorder(path)
    start = time.perf_counter()
    for b in range(n // batch):
        for i in range(batch):
            rec.append("step.result", BODY | {"i": i, "b": b}, "inc-1")
        await rec.flush()
    elapsed = time.perf_counter() - start
    rec.close()
    return (n // batch) * batch / elapsed


def verify_speed(path: Path) -> tuple[float, float, int]:
    """(fast verifier with signatures entries/s, pydantic-model baseline entries/s, entries)."""
    lines = path.read_bytes().splitlines()
    checker = Checker.from_text(PUBLIC)
    start = time.perf_counter()
    result = verify_lines(lines, checker)
    fast = result.entries / (time.perf_counter() - start)
    start = time.perf_counter()
    count, _ = verify_entries(parse_lines(lines))
    base = count / (time.perf_counter() - start)
    return fast, base, result.entries


def main() -> None:
    """Run every measurement once, print results and ratios."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--entries", type=int, default=200_000)
    ap.add_argument("--fsync-entries", type=int, default=5_000)
    ap.add_argument("--writers", type=int, default=256)
    ap.add_argument("--dir", type=Path, default=Path(".responder"))
    args = ap.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        d = Path(tmp)
        base = per_entry_fsync(d / "fsync.jsonl", args.fsync_entries)
        grouped, per_sync = asyncio.run(group_commit(d / "group.jsonl", args.entries, args.writers, 0.0005))
        batched = asyncio.run(batch_commit(d / "batch.jsonl", args.entries, 500))
        fast, slow, n = verify_speed(d / "batch.jsonl")
        size = os.path.getsize(d / "batch.jsonl")
    print(f"entries of {size // n} bytes on {args.dir.resolve()}")
    print(f"durable appends/s, fdatasync per entry (baseline):      {base:>10,.0f}")
    print(f"durable appends/s, group commit, {args.writers} concurrent callers: {grouped:>10,.0f}  "
          f"({per_sync:,.0f} entries per fdatasync)  ratio {grouped / base:5.1f}x baseline, "
          f"{grouped / 50_000:4.2f}x target 50k/s")
    print(f"durable appends/s, group commit, batches of 500:       {batched:>10,.0f}  "
          f"ratio {batched / base:5.1f}x baseline, {batched / 50_000:4.2f}x target 50k/s")
    print(f"verify entries/s (orjson fast path + Ed25519 checkpoints): {fast:>10,.0f} over {n:,} entries  "
          f"ratio {fast / slow:4.1f}x pydantic baseline ({slow:,.0f}/s), {fast / 150_000:4.2f}x target 150k/s")


if __name__ == "__main__":
    main()

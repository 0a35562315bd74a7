"""Sign and verify a 100 MiB model with model-signing; compare with a plain sha256 of the same bytes.

Run: .venv/bin/python bench/signing.py [--mib 100] [--repeat 3]

The model (random weights in four shards plus a config) is generated in a temporary directory and
deleted afterwards. Each figure is the median of --repeat runs; the baseline, hashlib.sha256 over
every file read from disk, is measured in the same run on the same files (all in page cache).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from responder.actuators.model.signing import generate_key, sign, verify


def _median(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _sha256_all(model: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in model.rglob("*") if p.is_file()):
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
    return h.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="responder-bench-") as tmp:
        root = Path(tmp)
        model = root / "model"
        model.mkdir()
        shard = args.mib * (1 << 20) // 4
        for i in range(4):
            (model / f"weights-{i:05d}.bin").write_bytes(os.urandom(shard))
        (model / "config.json").write_text('{"layers": 24}')
        generate_key(root / "k.pem", root / "k.pub.pem")
        sig = root / "model.sig"
        _sha256_all(model)  # warm the page cache
        baseline = _median(lambda: _sha256_all(model), args.repeat)
        print(f"model: {args.mib} MiB in 5 files (signing adds a 6th, its ~150-byte release statement); "
              f"median of {args.repeat} runs; cores: {os.cpu_count()}")
        print(f"{'sha256 of the bytes (baseline)':<36} {baseline * 1000:9.1f} ms   1.00x")
        for algo in ("sha256", "blake3"):
            signed = _median(lambda a=algo: sign(model, root / "k.pem", sig, model="bench", version="v1", hash_name=a),
                             args.repeat)
            verdict = verify(model, sig, [root / "k.pub.pem"])
            assert verdict.ok, verdict
            checked = _median(lambda: verify(model, sig, [root / "k.pub.pem"]), args.repeat)
            for label, seconds in ((f"model-signing sign ({algo})", signed),
                                   (f"model-signing verify ({algo})", checked)):
                print(f"{label:<36} {seconds * 1000:9.1f} ms  {seconds / baseline:5.2f}x")


if __name__ == "__main__":
    main()

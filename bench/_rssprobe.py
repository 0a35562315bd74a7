"""Where bench/longrun.py's running RSS goes: allocator and object readings at every point (not in `make bench`).

    PYTHONPATH=. .venv/bin/python bench/_rssprobe.py [longrun.py's arguments, e.g. --real-days 3]
    RSSPROBE_TRIM=1 ...         # also call glibc's malloc_trim(0) after each reading and print the RSS after it
    MALLOC_MMAP_THRESHOLD_=131072 ...   # glibc with a fixed mmap threshold (its dynamic one off)

Runs bench/longrun.py unchanged, with its `measure` (the 10k, every 100k and the final point) and `forward` (every
10,000 fast-forwarded incidents) wrapped: after `gc.collect()` each reading prints the current and peak RSS,
`sys.getallocatedblocks()`, glibc's `mallinfo2()` (heap size, in use, free; mmapped chunks), pymalloc's arenas
(`sys._debugmallocstats()`) and the `gc.get_objects()` types whose count changed by more than 50. Objects and
blocks that stay flat while the RSS rises are not retention; free glibc heap that `malloc_trim` gives back is the
allocator's (docs/fleet.md, the longrun section). Linux with glibc only.
"""

from __future__ import annotations

import collections
import ctypes
import gc
import os
import sys
import tempfile
from pathlib import Path

import bench.longrun as longrun
from responder.engine.executor import Engine
from responder.timeline.recorder import Recorder

LIBC = ctypes.CDLL("libc.so.6")
TRIM = os.environ.get("RSSPROBE_TRIM") == "1"


class MallInfo2(ctypes.Structure):
    """glibc's `struct mallinfo2` (all arenas)."""

    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


LIBC.mallinfo2.restype = MallInfo2
_counts: collections.Counter[str] = collections.Counter()


def pymalloc_arenas() -> str:
    """Current and high-water pymalloc arenas, from `sys._debugmallocstats()` (it writes to fd 2)."""
    with tempfile.TemporaryFile() as out:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(out.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        text = out.read().decode()
    found = {line.split("=")[0].strip("# ").strip(): line.split("=")[-1].strip() for line in text.splitlines()
             if line.startswith(("# arenas allocated current", "# arenas highwater mark"))}
    return f"{found.get('arenas allocated current', '?')} (high-water {found.get('arenas highwater mark', '?')})"


def reading(tag: str) -> None:
    """Print one line of readings."""
    global _counts
    gc.collect()
    info = LIBC.mallinfo2()
    counts = collections.Counter(type(o).__name__ for o in gc.get_objects())
    changed = sorted(((k, counts[k] - _counts[k]) for k in counts | _counts
                      if _counts and abs(counts[k] - _counts[k]) > 50), key=lambda kv: -abs(kv[1]))
    _counts = counts
    mib = 2**20
    line = (f"[{tag}] RSS {longrun.rss_mb('VmRSS'):.1f} MB (peak {longrun.rss_mb():.1f}), "
            f"blocks {sys.getallocatedblocks():,}, glibc heap {info.arena / mib:.1f} MiB: in use "
            f"{info.uordblks / mib:.1f}, free {info.fordblks / mib:.1f}; mmapped {info.hblkhd / mib:.1f} MiB "
            f"({info.hblks}), pymalloc arenas {pymalloc_arenas()}, gc objects {sum(counts.values()):,}, "
            f"changed {changed[:8]}")
    if TRIM:
        LIBC.malloc_trim(0)
        line += f"; after malloc_trim(0): RSS {longrun.rss_mb('VmRSS'):.1f} MB"
    print(line, flush=True)


def main() -> None:
    measure, forward = longrun.measure, longrun.forward
    forwarded = [0]

    def measured(directory: Path, engine: Engine) -> dict[str, float]:
        reading("before measure")
        out = measure(directory, engine)
        reading("after measure")
        return out

    def forwarded_one(recorder: Recorder, templates: list[tuple[str, bytes]], old: tuple[str, str],
                      new: tuple[str, str]) -> None:
        forward(recorder, templates, old, new)
        forwarded[0] += 1
        if forwarded[0] % 10_000 == 0:
            reading(f"{forwarded[0]:,} incidents fast-forwarded")

    longrun.measure, longrun.forward = measured, forwarded_one
    sys.argv = [longrun.__file__, *sys.argv[1:]]
    longrun.main()


if __name__ == "__main__":
    main()

"""The benchmarks under bench/ still import: CI does not run them, so a renamed or removed API breaks them silently."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"

_IMPORT_ALL = """
import importlib.util, sys, traceback
failed = []
for path in sys.argv[1:]:
    spec = importlib.util.spec_from_file_location("bench_" + path.rsplit("/", 1)[-1][:-3], path)
    try:
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
    except Exception:
        failed.append(path + ": " + traceback.format_exc(limit=1).strip().splitlines()[-1])
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def test_every_benchmark_module_imports() -> None:
    """Each bench/*.py loads (its imports resolve) without running its main."""
    scripts = sorted(str(p) for p in BENCH.glob("*.py"))
    assert len(scripts) >= 10
    out = subprocess.run([sys.executable, "-c", _IMPORT_ALL, *scripts], capture_output=True, text=True,
                         cwd=BENCH.parent, timeout=120, check=False)
    assert out.returncode == 0, out.stdout + out.stderr

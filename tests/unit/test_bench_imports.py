"""The benchmarks under bench/ still import: CI does not run them, so a renamed or removed API breaks them silently."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from responder.sandbox import lifeline

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
    out = lifeline.run([sys.executable, "-c", _IMPORT_ALL, *scripts], capture_output=True, text=True,
                       cwd=BENCH.parent, timeout=120, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


_AS_MAKE_RUNS_IT = """#!/bin/sh
exec {python} -c '
import importlib.machinery, os, sys
root, script = os.getcwd(), sys.argv[1]
given = [os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
installed = [p for p in sys.path[1:] if os.path.abspath(p or ".") not in (root, *given)]
# as `python script` sets it up, but with the venv installed from the other tree (its path entry last)
sys.path[:] = [os.path.dirname(os.path.abspath(script)), *given, *installed, "{other}"]
for name in ("bench", "responder"):
    spec = importlib.machinery.PathFinder.find_spec(name)
    where = os.path.dirname(list(spec.submodule_search_locations)[0]) if spec is not None else None
    if where != root:
        sys.exit(f"{{script}}: {{name}} from {{where}}, not {{root}}")
' "$@"
"""


def test_make_bench_runs_each_benchmark_with_this_tree_importable(tmp_path: Path) -> None:
    """`make bench` runs each benchmark so that `bench.*` and `responder` are this tree's, not another install's."""
    other = tmp_path / "other"  # the tree the venv was installed from (an editable install's path entry)
    (other / "bench").mkdir(parents=True)
    (other / "bench" / "_dispatch.py").touch()
    (other / "responder").mkdir()
    (other / "responder" / "__init__.py").touch()
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text(_AS_MAKE_RUNS_IT.format(python=sys.executable, other=other))
    python.chmod(0o755)
    (venv / ".installed").touch()  # newer than pyproject.toml: make installs nothing
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # only what make sets
    out = lifeline.run(["make", "-s", "bench", f"VENV={venv}"], capture_output=True, text=True, env=env,
                       cwd=BENCH.parent, timeout=120, check=False)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert out.stdout.count("== bench/") == len([p for p in BENCH.glob("*.py") if not p.name.startswith("_")])

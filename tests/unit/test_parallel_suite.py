"""`make test` runs the suite on pytest-xdist workers: every test runs, and the fault table is one complete table."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from responder.sandbox import lifeline

ROOT = Path(__file__).resolve().parents[2]

CONFTEST = "from tests.conftest import pytest_sessionfinish, pytest_terminal_summary, pytest_testnodedown  # noqa\n"
ROWS = """\
import pytest

from tests.faults.table import FaultRow, record


@pytest.mark.parametrize("n", range(6))
def test_row(n):
    record(FaultRow(fault=f"fault-{5 - n}", events=n, expected=n, done=n, duplicates=0, lost=0))
"""


def test_rows_from_every_worker_reach_one_table(tmp_path: Path) -> None:
    """Rows recorded on two xdist workers are all in the printed table and in the one report file, sorted by fault."""
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_rows.py").write_text(ROWS)
    report = tmp_path / "out" / "fault-report.md"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "RESPONDER_FAULT_REPORT": str(report)}
    proc = lifeline.run([sys.executable, "-m", "pytest", "-n", "2", "-p", "no:cacheprovider", "-q", "test_rows.py"],
                        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "fault table" in proc.stdout
    written = report.read_text()
    for n in range(6):
        assert written.count(f"| fault-{n} |") == 1, written
        assert f"| fault-{n} |" in proc.stdout
    faults = [line.split(" | ")[0] for line in written.splitlines() if line.startswith("| fault-")]
    assert faults == [f"| fault-{n}" for n in range(6)], written  # sorted, not in the order workers finished


def _pytest_line(tmp_path: Path, target: str, *args: str) -> str:
    """The pytest command `make -n TARGET ARGS` prints (continuation lines joined)."""
    # the Makefile's defaults, not an enclosing `make test PYTEST_WORKERS=0` (MAKEFLAGS) or the caller's environment
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "PYTEST_WORKERS", "SOAK_TIMEOUT")}
    plan = lifeline.run(["make", "-n", target, f"VENV={tmp_path / 'venv'}", *args], cwd=ROOT, env=env,
                        capture_output=True, text=True, check=True).stdout.replace("\\\n", "")
    [pytest] = [line for line in plan.splitlines() if " -m pytest " in line]
    return pytest


def test_make_test_spreads_single_tests_over_workers(tmp_path: Path) -> None:
    """`make test` runs pytest on xdist workers with `--dist load`, never a mode that keeps one test per node id."""
    if shutil.which("make") is None:  # pragma: no cover - CI has make
        return
    pytest = _pytest_line(tmp_path, "test")
    assert " -n 3 " in pytest, pytest
    assert " --dist load " in pytest, pytest
    assert not any(mode in pytest for mode in ("loadscope", "loadfile", "loadgroup")), pytest


def test_make_soak_is_bounded_by_timeout_only_when_asked(tmp_path: Path) -> None:
    """`make soak SOAK_TIMEOUT=90m` runs pytest under a foreground `timeout` (Ctrl-C reaches it); plain soak: none."""
    if shutil.which("make") is None:  # pragma: no cover - CI has make
        return
    bounded = _pytest_line(tmp_path, "soak", "SOAK_TIMEOUT=90m")
    # without --foreground, timeout moves pytest to a process group of its own: the terminal's Ctrl-C reaches make
    # only, which then waits for a pytest that runs on until the timeout
    assert " timeout --foreground --kill-after=60 90m " in bounded, bounded
    assert "timeout" not in _pytest_line(tmp_path, "soak"), "an unbounded soak runs under timeout"


BROKER = """\
def test_bootstrap(kafka_bootstrap):
    assert kafka_bootstrap == "127.0.0.1:9"
"""


def test_workers_broker_line_is_printed_by_the_controller(tmp_path: Path) -> None:
    """Under xdist the run still says which broker the tests used: once, though two workers started one."""
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["responder.sandbox.fixtures"]\n')
    (tmp_path / "test_broker.py").write_text(BROKER + BROKER.replace("test_bootstrap", "test_again"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "RESPONDER_TEST_KAFKA": "external", "RESPONDER_KAFKA_BOOTSTRAP": "127.0.0.1:9"}
    proc = lifeline.run([sys.executable, "-m", "pytest", "-n", "2", "-p", "no:cacheprovider", "-q", "test_broker.py"],
                        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert proc.stdout.count("kafka broker: external Kafka at 127.0.0.1:9") == 1, proc.stdout

"""Shared fixtures; the broker and moto server fixtures come from responder.sandbox.fixtures."""

from __future__ import annotations

import gc
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from responder import log, tracing

if TYPE_CHECKING:
    from tests.modelkit import Keys

pytest_plugins = ["responder.sandbox.fixtures"]

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"


_COLLECTOR = gc.get_threshold(), gc.isenabled()  # the interpreter's, before a service's start tuned it


def _reset_process_globals() -> None:
    tracing.reset()
    log.reset()
    gc.unfreeze()  # collector.tune (each service's start) froze what was alive then out of every later collection
    gc.set_threshold(*_COLLECTOR[0])
    (gc.enable if _COLLECTOR[1] else gc.disable)()


@pytest.fixture(autouse=True)
def _fresh_process_globals() -> Iterator[None]:
    """Each test starts with no tracer provider, logging unconfigured and the collector untuned, and leaves them so: a
    provider a tracing test installed sent every later service test through the per-record traced path, a CLI
    test's `log.configure(..., "warning")` (the root command does that) must not hide the info logs a later test
    reads, and a service test's collector tuning must not leave later tests' objects frozen or their collections
    rarer."""
    _reset_process_globals()
    yield
    _reset_process_globals()


@pytest.fixture(name="unique")
def _unique() -> str:
    """A short unique suffix for topic and group names."""
    return uuid.uuid4().hex[:10]


@pytest.fixture(name="runbooks_dir")
def _runbooks_dir() -> Path:
    """The repository's runbooks/."""
    return ROOT / "runbooks"


@pytest.fixture(name="keys")
def _keys(tmp_path: Path) -> Keys:
    """A trusted and an untrusted ECDSA key pair (model signing), under `tmp_path/keys`."""
    from tests.modelkit import make_keys

    return make_keys(tmp_path / "keys")


@pytest.fixture
async def topics(kafka_bootstrap: str, unique: str) -> dict[str, str]:
    """Fresh alert and dead-letter topics for one test."""
    from responder.ingest.kafka import ensure_topics

    names = {"alerts": f"alerts-{unique}", "deadletter": f"dlq-{unique}"}
    await ensure_topics(kafka_bootstrap, list(names.values()), partitions=3)
    return names


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Under pytest-xdist, a worker hands its fault-table rows to the controller, which alone writes the table."""
    from tests.faults.table import rows_out

    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["fault_rows"] = rows_out()


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: the controller collects each finished worker's rows
def pytest_testnodedown(node: Any, error: object) -> None:
    """Add the rows of a worker that finished (or died after handing them over) to the controller's table."""
    from tests.faults.table import rows_in

    rows_in(getattr(node, "workeroutput", {}).get("fault_rows", []))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the fault table (tests/faults/table.py) once every test that adds a row has run (on the controller
    under pytest-xdist: the workers' rows reach it through `pytest_testnodedown`)."""
    from tests.faults.table import REPORT, write_report

    if hasattr(terminalreporter.config, "workerinput"):
        return
    text = write_report()
    if text:
        terminalreporter.write_sep("=", f"fault table (also in {REPORT})")
        terminalreporter.write_line(text)

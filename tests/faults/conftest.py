"""Fault-suite hooks: print the fault table at the end of the run and write it to RESPONDER_FAULT_REPORT."""

from __future__ import annotations

import pytest

from tests.faults.table import REPORT, write_report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the table once every fault test has run."""
    text = write_report()
    if text:
        terminalreporter.write_sep("=", f"fault table (also in {REPORT})")
        terminalreporter.write_line(text)

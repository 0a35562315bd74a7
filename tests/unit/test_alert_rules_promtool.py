"""deploy/prometheus/alerts.yml under Prometheus' own `promtool` (in the Debian package `prometheus`): its rules parse
and their templates expand, and they fire and clear as the unit tests in tests/fixtures/prometheus/alerts_test.yml
expect (a quiet restart, a new deployment, every replica down, two deployments, a revoked partition, a lag with gaps, a
restart, a rebuilt consumer, unsent approval requests, a changelog short of partitions, a stuck or overflowed mirror).
Skipped where promtool is not installed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from responder.sandbox import lifeline

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
CASES = ROOT / "tests" / "fixtures" / "prometheus" / "alerts_test.yml"
PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="promtool is not on PATH (apt-get install prometheus)")


def _promtool(*args: str | Path) -> str:
    """promtool's output; the test fails with it unless promtool exits 0."""
    assert PROMTOOL is not None
    done = lifeline.run([PROMTOOL, *map(str, args)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return str(done.stdout)


def test_promtool_accepts_the_rules() -> None:
    """`promtool check rules` accepts alerts.yml: every expression parses and every annotation template expands."""
    assert "SUCCESS" in _promtool("check", "rules", RULES)


def test_the_rules_fire_and_clear_as_their_promtool_unit_tests_expect(tmp_path: Path) -> None:
    """`promtool test rules` passes the fixture's cases, run on the rules without annotations (compared otherwise)."""
    groups = yaml.safe_load(RULES.read_text())
    for group in groups["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(groups))
    shutil.copy(CASES, tmp_path / CASES.name)
    assert "SUCCESS" in _promtool("test", "rules", tmp_path / CASES.name)

"""The group's timeouts and the changelog write deadline are settings with one rule between them: a write deadline
not below the rebalance timeout and the poll interval is one line naming it, exit 3 (responder/settings_kafka.py,
docs/fleet.md, "Deadlines"); both reach the clients that use them."""

from __future__ import annotations

import inspect
import os
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from responder import bounds
from responder.bounds import largest
from responder.cli import app
from responder.engine import fleetguard
from responder.engine.guards import Guards
from responder.ingest.approvals import KafkaPublisher
from responder.ingest.changelog import Changelog
from responder.ingest.clients import resending, send_retrying
from responder.ingest.commits import OffsetCommits
from responder.ingest.dlqsend import send_deadletter
from responder.ingest.flow import Flow
from responder.ingest.kafka import KafkaIngest
from responder.ingest.transactions import Transactions
from responder.service import Service
from responder.settings import Settings
from responder.settings_errors import SettingsInvalid
from responder.settings_kafka import CHANGELOG_WRITE_DEADLINE_S
from tests.fakes import FakeIam


@pytest.mark.parametrize(("env", "names"), [
    ({"RESPONDER_CHANGELOG_WRITE_DEADLINE": "120"}, "RESPONDER_REBALANCE_TIMEOUT_MS (120000 ms)"),
    ({"RESPONDER_KAFKA_MAX_POLL_INTERVAL_MS": "30000"}, "RESPONDER_KAFKA_MAX_POLL_INTERVAL_MS (30000 ms)"),
])
def test_a_write_deadline_not_below_the_group_timeouts_is_one_line_and_exit_3(
        monkeypatch: pytest.MonkeyPatch, env: dict[str, str], names: str) -> None:
    """A changelog write deadline not below the group timeouts prints one line naming the settings, and exits 3."""
    monkeypatch.setenv("RESPONDER_CHANGELOG_TOPIC", "responder.changelog")
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)
    result = CliRunner().invoke(app, ["deadletter", "replay", "--bootstrap", "127.0.0.1:1"])
    assert result.exit_code == 3, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("✗ RESPONDER_CHANGELOG_WRITE_DEADLINE=")
    assert names in lines[0]
    assert f"raise {names.split()[0]}" in lines[0]
    assert "=45.0)" not in lines[0]  # its example is not the default a 30 s poll interval just refused


def test_the_write_deadline_is_not_checked_without_a_changelog(tmp_path: Path) -> None:
    """Outside fleet mode, a rebalance timeout or poll interval below the write deadline still loads."""
    settings = Settings(timeline_path=tmp_path / "t.jsonl", rebalance_timeout_ms=30_000,
                        kafka_max_poll_interval_ms=30_000)
    assert settings.changelog_write_deadline > 30.0


async def test_the_poll_interval_and_the_write_deadline_reach_their_clients(tmp_path: Path) -> None:
    """kafka_max_poll_interval_ms and changelog_write_deadline reach the alert consumer and the changelog writer."""
    settings = Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", topics=["a"],
                        changelog_topic="c", kafka_max_poll_interval_ms=90_000, changelog_write_deadline=20.0)
    service = Service(settings, aws=FakeIam(), runbooks=[])
    try:
        assert service.ingest.consumer._max_poll_interval_ms == 90_000
        assert service.fleet is not None
        assert service.fleet.changelog.write_deadline == 20.0
    finally:
        service.recorder.close()
        await service.close_unstarted()


@pytest.mark.parametrize(("env", "names"), [
    ({"RESPONDER_AWS_CALL_TIMEOUT": "120"}, "RESPONDER_REBALANCE_TIMEOUT_MS (120000 ms)"),
    ({"RESPONDER_AWS_CALL_TIMEOUT": "100", "RESPONDER_REBALANCE_TIMEOUT_MS": "200000",
      "RESPONDER_KAFKA_MAX_POLL_INTERVAL_MS": "90000"}, "RESPONDER_KAFKA_MAX_POLL_INTERVAL_MS (90000 ms)"),
])
def test_an_aws_call_timeout_not_below_the_group_timeouts_is_one_line_and_exit_3(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: dict[str, str], names: str) -> None:
    """In fleet mode an AWS call timeout not below the group timeouts names RESPONDER_AWS_CALL_TIMEOUT, exit 3."""
    for name in [n for n in os.environ if n.startswith("RESPONDER_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("RESPONDER_CHANGELOG_TOPIC", "responder.changelog")
    for name, value in {"KAFKA_BOOTSTRAP": "127.0.0.1:9", "KAFKA_CONNECT_TIMEOUT": "0.5", "RUNBOOKS_DIR": str(tmp_path),
                        "TIMELINE_PATH": str(tmp_path / "t.jsonl"), "DRY_RUN": "true"}.items():
        monkeypatch.setenv(f"RESPONDER_{name}", value)
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)
    result = CliRunner().invoke(app, ["run"])
    assert result.exit_code == 3, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("✗ RESPONDER_AWS_CALL_TIMEOUT=")
    assert names in lines[0]


def test_the_aws_call_timeout_is_not_checked_without_a_changelog(tmp_path: Path) -> None:
    """Outside fleet mode (as for the write deadline) a long AWS call timeout still loads."""
    assert Settings(timeline_path=tmp_path / "t.jsonl", aws_call_timeout=600.0).aws_call_timeout == 600.0


def _fleet_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: dict[str, str]) -> None:
    """Only `env` and what `responder run` needs in fleet mode, Kafka unreachable, short write and AWS deadlines."""
    for name in [n for n in os.environ if n.startswith("RESPONDER_")]:
        monkeypatch.delenv(name)
    for name, value in {"CHANGELOG_TOPIC": "responder.changelog", "KAFKA_BOOTSTRAP": "127.0.0.1:9",
                        "KAFKA_CONNECT_TIMEOUT": "0.5", "RUNBOOKS_DIR": str(tmp_path), "DRY_RUN": "true",
                        "TIMELINE_PATH": str(tmp_path / "t.jsonl"), "CHANGELOG_WRITE_DEADLINE": "10",
                        "AWS_CALL_TIMEOUT": "10", **env}.items():
        monkeypatch.setenv(f"RESPONDER_{name}", value)


@pytest.mark.parametrize(("env", "variable", "bound"), [
    ({"REBALANCE_TIMEOUT_MS": "20000"}, "RESPONDER_REBALANCE_TIMEOUT_MS", "a transaction's send"),
    ({"REBALANCE_TIMEOUT_MS": "30000", "KAFKA_TRANSACTIONS": "on"}, "RESPONDER_REBALANCE_TIMEOUT_MS",
     "a transaction's send"),
    ({"KAFKA_MAX_POLL_INTERVAL_MS": "25000", "KAFKA_TRANSACTIONS": "off"}, "RESPONDER_KAFKA_MAX_POLL_INTERVAL_MS",
     "a record's resends after a transient error"),
])
def test_a_group_timeout_not_above_the_fixed_bounds_is_one_line_and_exit_3(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: dict[str, str], variable: str, bound: str) -> None:
    """In fleet mode a group timeout not above the largest fixed bound: one line: it, its least value, the bound."""
    _fleet_env(monkeypatch, tmp_path, env)
    result = CliRunner().invoke(app, ["run"])
    assert result.exit_code == 3, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"✗ {variable}=")
    assert "30001 or more" in lines[0]
    assert bound in lines[0]


@pytest.mark.parametrize(("env", "fixes"), [
    ({"REBALANCE_TIMEOUT_MS": "20000", "CHANGELOG_WRITE_DEADLINE": None}, {"REBALANCE_TIMEOUT_MS": "45001"}),
    ({"REBALANCE_TIMEOUT_MS": "20000", "KAFKA_MAX_POLL_INTERVAL_MS": "25000", "CHANGELOG_WRITE_DEADLINE": "22"},
     {"REBALANCE_TIMEOUT_MS": "30001", "KAFKA_MAX_POLL_INTERVAL_MS": "30001"}),
])
def test_a_write_deadline_refused_by_a_group_timeout_below_the_fixed_bounds_names_the_least_timeouts(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: dict[str, str | None], fixes: dict[str, str]) -> None:
    """A write deadline refused by a timeout also below the fixed bounds: one line with each timeout's least value."""
    _fleet_env(monkeypatch, tmp_path, {name: value for name, value in env.items() if value is not None})
    for name in [name for name, value in env.items() if value is None]:
        monkeypatch.delenv(f"RESPONDER_{name}")  # its default (45 s)
    result = CliRunner().invoke(app, ["run"])
    assert result.exit_code == 3, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("✗ RESPONDER_CHANGELOG_WRITE_DEADLINE=")
    assert "set it below" not in lines[0]  # lowering the deadline alone would not do
    for name, least in fixes.items():
        assert re.search(rf"RESPONDER_{name} [^;]*\b{least} or more", lines[0]), lines[0]
    for name, least in fixes.items():  # one round: the values it names load
        monkeypatch.setenv(f"RESPONDER_{name}", least)
    Settings()


@pytest.mark.parametrize(("env", "variable", "bound"), [
    ({"CHANGELOG_WRITE_DEADLINE": "22", "KAFKA_TRANSACTIONS": "off"}, "RESPONDER_CHANGELOG_WRITE_DEADLINE",
     "a record's resends after a transient error"),
    ({"CHANGELOG_WRITE_DEADLINE": "22"}, "RESPONDER_CHANGELOG_WRITE_DEADLINE", "a transaction's send"),
    ({"AWS_CALL_TIMEOUT": "22", "KAFKA_TRANSACTIONS": "off"}, "RESPONDER_AWS_CALL_TIMEOUT",
     "a record's resends after a transient error"),
])
def test_a_refusal_naming_a_timeout_s_least_value_names_the_fixed_bound_that_applies(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: dict[str, str], variable: str, bound: str) -> None:
    """A deadline refused by a group timeout below the fixed bounds names the bound that applies: one line, exit 3."""
    _fleet_env(monkeypatch, tmp_path, {"REBALANCE_TIMEOUT_MS": "20000", **env})
    result = CliRunner().invoke(app, ["run"])
    assert result.exit_code == 3, result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"✗ {variable}=")
    assert f"above 30s, the fixed bound of {bound}" in line, line
    assert "RESPONDER_REBALANCE_TIMEOUT_MS to 30001 or more" in line


@pytest.mark.parametrize("env", [
    {"REBALANCE_TIMEOUT_MS": "20000"},
    {"KAFKA_MAX_POLL_INTERVAL_MS": "15000", "KAFKA_TRANSACTIONS": "off"},
    {"REBALANCE_TIMEOUT_MS": "1000"},
])
def test_a_deadline_refused_by_a_group_timeout_suggests_an_example_that_timeout_accepts(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: dict[str, str]) -> None:
    """A deadline's refusal suggests a value its group timeout accepts: applied, with the timeout's fix, all loads."""
    _fleet_env(monkeypatch, tmp_path, env)
    for name in ("CHANGELOG_WRITE_DEADLINE", "AWS_CALL_TIMEOUT"):
        monkeypatch.delenv(f"RESPONDER_{name}")  # their defaults (45 s, 20 s): both refused
    with pytest.raises(SettingsInvalid) as refused:
        Settings()
    hinted = {}
    for line in refused.value.problems:
        variable = line.split("=", 1)[0]
        if variable in ("RESPONDER_CHANGELOG_WRITE_DEADLINE", "RESPONDER_AWS_CALL_TIMEOUT"):
            [hinted[variable]] = re.findall(rf"\(example: {variable}=([^)]+)\)$", line)
    assert sorted(hinted) == ["RESPONDER_AWS_CALL_TIMEOUT", "RESPONDER_CHANGELOG_WRITE_DEADLINE"], refused.value
    for variable, value in hinted.items():
        monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsInvalid) as left:  # the group timeout is below the fixed bounds too: its own line
        Settings()
    [line] = left.value.problems
    variable, least = re.findall(r"^(RESPONDER_\w+)=.*set it to (\d+) or more", line)[0]
    monkeypatch.setenv(variable, least)
    Settings()  # the hinted deadlines hold under the least group timeout allowed


@pytest.mark.parametrize(("values", "leasts"), [
    ({"changelog_write_deadline": 40.5, "rebalance_timeout_ms": 20_000, "kafka_max_poll_interval_ms": 25_000},
     ["RESPONDER_REBALANCE_TIMEOUT_MS to 40501 or more", "RESPONDER_KAFKA_MAX_POLL_INTERVAL_MS (25000 ms) too: set "
                                                         "it to 40501 or more"]),
    ({"changelog_write_deadline": 22.0, "rebalance_timeout_ms": 20_000, "kafka_max_poll_interval_ms": 25_000},
     ["RESPONDER_REBALANCE_TIMEOUT_MS to 30001 or more", "RESPONDER_KAFKA_MAX_POLL_INTERVAL_MS (25000 ms) too: set "
                                                         "it to 30001 or more"]),
    ({"aws_call_timeout": 35.0, "rebalance_timeout_ms": 20_000}, ["RESPONDER_REBALANCE_TIMEOUT_MS to 35001 or more"]),
    ({"rebalance_timeout_ms": 25_000}, ["not above 30s", "set it to 30001 or more"]),
])
def test_the_least_values_a_refusal_names_are_the_first_whole_milliseconds_above(
        tmp_path: Path, values: dict[str, Any], leasts: list[str]) -> None:
    """Each least value a refusal names is the first whole millisecond above the deadline or the largest fixed bound."""
    with pytest.raises(SettingsInvalid) as refused:
        Settings(**{"timeline_path": tmp_path / "t.jsonl", "changelog_topic": "c", "changelog_write_deadline": 10.0,
                    "aws_call_timeout": 10.0, **values})
    [line] = refused.value.problems
    for least in leasts:
        assert least in line, line


@pytest.mark.parametrize("transactions", ["auto", "on", "off"])
def test_the_defaults_and_the_least_group_timeouts_allowed_load_in_fleet_mode(
        tmp_path: Path, transactions: str) -> None:
    """In fleet mode the default group timeouts load, and so do both at 1 ms above the largest fixed bound."""
    fleet: dict[str, Any] = {"timeline_path": tmp_path / "t.jsonl", "changelog_topic": "c",
                             "kafka_transactions": transactions}
    Settings(**fleet)
    least = int(largest(transactions=True).seconds * 1000) + 1
    Settings(**fleet, rebalance_timeout_ms=least, kafka_max_poll_interval_ms=least, changelog_write_deadline=10.0,
             aws_call_timeout=10.0)


def test_the_group_timeouts_are_not_checked_against_the_fixed_bounds_without_a_changelog(tmp_path: Path) -> None:
    """Outside fleet mode a rebalance timeout and poll interval below every fixed bound still load, as before."""
    Settings(timeline_path=tmp_path / "t.jsonl", rebalance_timeout_ms=1000, kafka_max_poll_interval_ms=1000,
             changelog_write_deadline=0.5, aws_call_timeout=0.5)


def _default(function: Any, parameter: str) -> Any:
    return inspect.signature(function).parameters[parameter].default


def test_the_waits_use_the_fixed_bounds_the_settings_check() -> None:
    """The deadlines the code waits by (attributes, defaults) are responder.bounds' numbers, as the settings check."""
    txn = Transactions("127.0.0.1:1", "c", "g")
    assert txn.end_deadline == bounds.END_DEADLINE
    assert txn.send_deadline == bounds.SEND_DEADLINE
    assert _default(Transactions.assign, "deadline") == bounds.RESTORE_DEADLINE
    assert _default(Changelog.ensure_partition, "deadline") == bounds.RESTORE_DEADLINE
    assert _default(Changelog.read, "timeout") == bounds.RESTORE_DEADLINE
    assert _default(send_retrying, "deadline") == bounds.SEND_DEADLINE
    assert _default(resending, "deadline") == bounds.SEND_DEADLINE
    assert _default(send_deadletter, "deadline") == bounds.SEND_DEADLINE
    assert KafkaIngest.deadletter_deadline == bounds.SEND_DEADLINE
    assert KafkaPublisher.deadline == bounds.PUBLISH_DEADLINE
    assert _default(Flow, "drain_deadline") == bounds.DRAIN_DEADLINE
    assert _default(OffsetCommits.close, "deadline") == bounds.DRAIN_DEADLINE
    assert Guards().reads_deadline == bounds.READS_DEADLINE_S
    assert fleetguard.SWITCH_READ_S == bounds.SWITCH_READ_S  # read at each kill-switch read


def test_a_changelog_given_no_write_deadline_waits_by_the_setting_s_default() -> None:
    """A Changelog built without a write deadline waits by changelog_write_deadline's default: one constant for both."""
    assert _default(Changelog, "write_deadline") == CHANGELOG_WRITE_DEADLINE_S
    assert Settings.model_fields["changelog_write_deadline"].default == CHANGELOG_WRITE_DEADLINE_S

"""`responder deadletter replay` does not publish a record its destination would delete at once: stamped with the
original's broker time, a dead letter older than a CreateTime, time-deleting topic's retention (an hour's margin
included) is counted `too_old`, neither sent nor noted (responder/ingest/replayage.py, responder/cli/deadletter.py).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from aiokafka.errors import UnsupportedVersionError
from structlog.testing import capture_logs
from typer.testing import CliRunner

from responder.cli import app
from responder.cli.output import EXIT_WITHHELD
from responder.ingest import deadletter
from responder.ingest.deadletter import ReplayResult, replay_deadletters
from responder.ingest.replayage import MARGIN_MS, TargetAges
from tests.replay_kit import ConfigAdmin, ReplayProducer, dead_letter, fake_replay

DAY_MS = 86_400_000
DELETES_AFTER_A_DAY = {"retention.ms": str(DAY_MS), "cleanup.policy": "delete", "message.timestamp.type": "CreateTime"}


def _ago(ms: int) -> int:
    """The broker time `ms` milliseconds before now."""
    return int(time.time() * 1000) - ms


async def _replay(monkeypatch: pytest.MonkeyPatch, records: Sequence[object], admin: ConfigAdmin,
                  **options: Any) -> tuple[ReplayResult, ReplayProducer]:
    """Replay `records` to targets `admin` describes (faked clients, an empty ledger): its result and what it sent."""
    producer = ReplayProducer()
    fake_replay(monkeypatch, producer, records, admin=admin)
    return await replay_deadletters("127.0.0.1:1", "dlq", idle_seconds=0.05, **options), producer


async def test_a_dead_letter_older_than_its_target_s_retention_is_counted_not_sent_nor_noted(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Stamped two days ago, to a topic keeping a day: too_old, not sent, not noted; one a minute old is sent."""
    admin = ConfigAdmin(DELETES_AFTER_A_DAY)
    records = [dead_letter(5, original=(0, 7), timestamp_ms=_ago(2 * DAY_MS)),
               dead_letter(6, original=(0, 8), timestamp_ms=_ago(60_000))]
    with capture_logs() as logs:
        result, producer = await _replay(monkeypatch, records, admin)
    assert (result.too_old, result.replayed, result.scanned) == (1, 1, 2)
    assert producer.to("alerts") == [b"v8"]
    assert producer.to("dlq.replayed") == [b"dlq:0:6"]
    assert admin.asked == ["alerts"]  # one read per target, however many records go to it
    [line] = [e for e in logs if e["event"] == "deadletters_replayed"]
    assert line["too_old"] == 1


async def test_a_dead_letter_within_the_margin_of_its_target_s_retention_is_not_sent(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Stamped half the margin short of the retention: the broker would delete it soon after, so it is too_old."""
    records = [dead_letter(5, original=(0, 7), timestamp_ms=_ago(DAY_MS - MARGIN_MS // 2))]
    result, producer = await _replay(monkeypatch, records, ConfigAdmin(DELETES_AFTER_A_DAY))
    assert (result.too_old, result.replayed, producer.to("alerts")) == (1, 0, [])


async def test_a_short_retention_still_takes_its_newest_dead_letters(monkeypatch: pytest.MonkeyPatch) -> None:
    """To a topic keeping an hour a record a minute old is sent (a tenth of it as margin), one 55 minutes old not."""
    records = [dead_letter(5, original=(0, 7), timestamp_ms=_ago(60_000)),
               dead_letter(8, original=(0, 9), timestamp_ms=_ago(55 * 60_000))]
    hour = ConfigAdmin({**DELETES_AFTER_A_DAY, "retention.ms": "3600000"})
    result, producer = await _replay(monkeypatch, records, hour)
    assert (result.too_old, result.replayed, producer.to("alerts")) == (1, 1, [b"v7"])


@pytest.mark.parametrize("configs", [
    {**DELETES_AFTER_A_DAY, "message.timestamp.type": "LogAppendTime"},
    {**DELETES_AFTER_A_DAY, "retention.ms": "-1"},
    {**DELETES_AFTER_A_DAY, "cleanup.policy": "compact"},
], ids=["log-append-time", "retention-forever", "compact-only"])
async def test_an_old_dead_letter_to_a_topic_not_deleting_it_by_its_stamp_is_sent(
        monkeypatch: pytest.MonkeyPatch, configs: dict[str, str | None]) -> None:
    """A LogAppendTime target, retention.ms -1, a compact-only topic: a record stamped two days back is sent."""
    records = [dead_letter(5, original=(0, 7), timestamp_ms=_ago(2 * DAY_MS))]
    result, producer = await _replay(monkeypatch, records, ConfigAdmin(configs))
    assert (result.too_old, result.replayed, producer.to("alerts")) == (0, 1, [b"v7"])


async def test_a_target_not_created_yet_is_judged_by_the_broker_s_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """No such topic: the broker's log.retention.hours (24) and CreateTime are the auto-created topic's, so too_old."""
    broker = {"log.retention.ms": None, "log.retention.minutes": None, "log.retention.hours": "24",
              "log.cleanup.policy": "delete", "log.message.timestamp.type": "CreateTime"}
    admin = ConfigAdmin(code=3, broker=broker)
    records = [dead_letter(5, original=(0, 7), timestamp_ms=_ago(2 * DAY_MS))]
    result, producer = await _replay(monkeypatch, records, admin)
    assert (result.too_old, result.replayed, producer.to("alerts")) == (1, 0, [])
    assert admin.asked == ["alerts", "1"]


@pytest.mark.parametrize("admin", [ConfigAdmin(code=29), ConfigAdmin(error=UnsupportedVersionError("no")),
                                   ConfigAdmin(error=ValueError("not enough values to unpack")),
                                   ConfigAdmin(error=AttributeError("no resources")),
                                   ConfigAdmin({"cleanup.policy": "delete", "message.timestamp.type": "CreateTime"})],
                         ids=["error-code", "unsupported", "odd-answer", "no-resources", "no-retention"])
async def test_a_target_whose_configuration_cannot_be_read_is_sent_to_with_a_warning(
        monkeypatch: pytest.MonkeyPatch, admin: ConfigAdmin) -> None:
    """DescribeConfigs refused, unsupported or odd: sent as before, with `deadletter_replay_retention_unknown`."""
    records = [dead_letter(5, original=(0, 7), timestamp_ms=_ago(2 * DAY_MS))]
    with capture_logs() as logs:
        result, producer = await _replay(monkeypatch, records, admin)
    assert (result.too_old, result.replayed, producer.to("alerts")) == (0, 1, [b"v7"])
    [warning] = [e for e in logs if e["event"] == "deadletter_replay_retention_unknown"]
    assert warning["target"] == "alerts"


def _described(*resources: Any) -> list[SimpleNamespace]:
    """A DescribeConfigs answer holding `resources` as they are (each one a tuple, well formed or not)."""
    return [SimpleNamespace(resources=list(resources))]


@pytest.mark.parametrize("answers", [
    [], [SimpleNamespace()], _described(), _described((0, None, 2, "alerts", []), (0, None, 2, "alerts", [])),
    _described((0, None, 2, "alerts")), _described(("none", None, 2, "alerts", [])),
    _described((0, None, 2, "alerts", [None])), _described((0, None, 2, "alerts", [("retention.ms",)])),
], ids=["no-answer", "no-resources", "no-resource", "two-resources", "short-resource", "odd-code", "odd-entry",
        "short-entry"])
async def test_a_malformed_answer_read_by_the_parser_is_sent_to_with_a_warning(
        monkeypatch: pytest.MonkeyPatch, answers: list[Any]) -> None:
    """A DescribeConfigs answer of another shape, read by the replay's own parser: retention unknown, so it is sent."""
    records = [dead_letter(5, original=(0, 7), timestamp_ms=_ago(2 * DAY_MS))]
    with capture_logs() as logs:
        result, producer = await _replay(monkeypatch, records, ConfigAdmin(answers=answers))
    assert (result.too_old, result.replayed, producer.to("alerts")) == (0, 1, [b"v7"])
    [warning] = [e for e in logs if e["event"] == "deadletter_replay_retention_unknown"]
    assert warning["target"] == "alerts"


@pytest.mark.parametrize(("ms", "minutes", "hours", "kept"), [
    (None, "60", "168", 3_600_000), ("1800000", "60", "168", 1_800_000), (None, None, "168", 168 * 3_600_000),
], ids=["minutes-over-hours", "ms-over-minutes", "hours-alone"])
async def test_a_target_not_created_yet_takes_the_broker_s_most_precise_retention(
        monkeypatch: pytest.MonkeyPatch, ms: str | None, minutes: str | None, hours: str, kept: int) -> None:
    """No such topic: log.retention.ms wins over .minutes, which wins over .hours (minutes=60, hours=168: an hour)."""
    broker = {"log.retention.ms": ms, "log.retention.minutes": minutes, "log.retention.hours": hours,
              "log.cleanup.policy": "delete", "log.message.timestamp.type": "CreateTime"}
    fake_replay(monkeypatch, ReplayProducer(), admin=ConfigAdmin(code=3, broker=broker))
    assert await TargetAges("127.0.0.1:1").retention("alerts") == kept


async def test_a_dry_run_counts_the_too_old_and_force_does_not_send_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """--dry-run counts a too-old record as a replay would; --force skips it too (it is about loss, not repeats)."""
    records = [dead_letter(5, original=(0, 7), timestamp_ms=_ago(2 * DAY_MS)), dead_letter(6, original=(0, 8))]
    dry, producer = await _replay(monkeypatch, records, ConfigAdmin(DELETES_AFTER_A_DAY), dry_run=True)
    assert (dry.too_old, dry.replayed, producer.sent) == (1, 1, [])
    forced, producer = await _replay(monkeypatch, records, ConfigAdmin(DELETES_AFTER_A_DAY), force=True)
    assert (forced.too_old, forced.replayed, producer.to("alerts")) == (1, 1, [b"v8"])


def test_the_command_reports_the_too_old_and_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    """`deadletter replay` says how many were too old and to replay them with --topic, in text and `--json`."""
    async def replayed(*_: object, **__: object) -> ReplayResult:
        return ReplayResult(scanned=3, replayed=1, too_old=2, published=["dlq:0:5 -> alerts"])

    monkeypatch.setattr(deadletter, "replay_deadletters", replayed)
    text = CliRunner().invoke(app, ["deadletter", "replay", "--bootstrap", "127.0.0.1:1"])
    assert text.exit_code == EXIT_WITHHELD, text.output  # tests/unit/test_deadletter_replay_exit.py
    said = " ".join(text.output.split())
    assert "2 dead letter(s) older than their destination topic's retention not replayed" in said
    assert "--topic" in said
    assert "message.timestamp.type=LogAppendTime" in said
    as_json = CliRunner().invoke(app, ["deadletter", "replay", "--bootstrap", "127.0.0.1:1", "--json"])
    assert orjson.loads(as_json.stdout)["too_old"] == 2

"""`approve` in a fleet: an incident prefix is resolved against the local timeline and the fleet's signed requests
together, so it never silently picks the local incident when the operator meant another; and a plan is signed only
when the timeline and the topic name one for the step (a re-plan, a forged or a replayed request is a choice shown
to the operator, made with --digest); the decision names the request it answers (the topic's latest for the plan,
else the timeline's)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
import typer
from click.testing import Result
from typer.testing import CliRunner

from responder.cli import app
from responder.cli import pending as cli_pending
from responder.engine.approvals import request_headers
from responder.errors import BrokerUnreachable
from responder.ingest import approvals as ingest_approvals
from responder.models.approval import ApprovalDecision, ApprovalRequest
from responder.models.event import RawRecord
from responder.models.timeline import EntryKind
from responder.settings import Settings
from responder.timeline import Recorder
from responder.timeline.checkpoint import Signer, generate_keypair
from responder.timeline.store import FileStore

PRIVATE, PUBLIC = generate_keypair()
T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
LOCAL, REPLANNED = "a" * 64, "b" * 64
FIRST, SECOND = "1" * 32, "2" * 32  # two parkings' request ids


def _published(incident: str, digest: str, at: datetime | None = None, *, target: str = "AKIA1",
               expires: timedelta = timedelta(hours=1), partition: int = 0, request_id: str | None = None) -> RawRecord:
    request = ApprovalRequest(incident=incident, step="revoke", runbook="rb", actuator="aws.iam.deactivate_access_key",
                              target=target, params={}, digest=digest, reasons=["approval required"], approvers=[],
                              expires_at=datetime.now(UTC) + expires, on_timeout="deny", request_id=request_id)
    value = orjson.dumps(request.model_dump(mode="json"))
    return RawRecord(topic="req", value=value, headers=tuple(request_headers(Signer.from_text(PRIVATE), value)),
                     timestamp_ms=int(at.timestamp() * 1000) if at is not None else None, partition=partition)


@pytest.fixture
def on_kafka(monkeypatch: pytest.MonkeyPatch) -> list[RawRecord]:
    """What the requests topic holds (instead of a broker)."""
    records: list[RawRecord] = []
    monkeypatch.setattr(cli_pending, "_read", lambda settings, server, topics, timeout=30.0: [
        [r.model_copy(update={"offset": i}) for i, r in enumerate(records)]])  # one partition, in order
    return records


def _settings() -> Settings:
    return Settings(kafka_bootstrap="127.0.0.1:9", timeline_verify_key=PUBLIC)


def test_a_prefix_matching_the_timeline_and_kafka_differently_is_refused(on_kafka):
    """`7f3a` matching 7f3a1… on this timeline and 7f3a9… on Kafka exits 3 naming both, instead of signing one."""
    on_kafka.append(_published("7f3a9-kafka", "b" * 64))
    with pytest.raises(typer.Exit) as exited:
        cli_pending.fleet_request(_settings(), "7f3a", "revoke", ["7f3a1-local"])
    assert exited.value.exit_code == 3


def test_a_unique_prefix_finds_the_request_on_kafka(on_kafka):
    """A prefix only the fleet's requests have resolves to that incident and its latest signed request."""
    on_kafka.append(_published("7f3a9-kafka", "b" * 64))
    found = cli_pending.fleet_request(_settings(), "7f3a", "revoke", ["0000-local"])
    assert found.incident == "7f3a9-kafka"
    assert found.request is not None
    assert found.request.digest == "b" * 64


def test_an_unsigned_request_is_not_a_candidate(on_kafka):
    """With the replicas' public key configured, an unsigned request on the topic is neither matched nor used."""
    forged = _published("7f3a9-kafka", "b" * 64).model_copy(update={"headers": ()})
    on_kafka.append(forged)
    found = cli_pending.fleet_request(_settings(), "7f3a", "revoke", [])
    assert (found.incident, found.request) == ("7f3a", None)
    assert "1 record(s) there refused" in found.where


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[ApprovalDecision]:
    """The decisions `approve` sends (instead of a broker), with the settings it needs to sign one."""
    import os

    for name in list(os.environ):
        if name.startswith("RESPONDER_"):
            monkeypatch.delenv(name)
    for name, value in {"KAFKA_BOOTSTRAP": "127.0.0.1:9", "APPROVAL_KEYS": '{"k1": "s"}', "APPROVAL_KEY_ID": "k1",
                        "TIMELINE_VERIFY_KEY": PUBLIC, "TIMELINE_PATH": str(tmp_path / "none.jsonl")}.items():
        monkeypatch.setenv(f"RESPONDER_{name}", value)
    decisions: list[ApprovalDecision] = []

    async def send(bootstrap: str, topic: str, decision: ApprovalDecision, key_id: str, secret: bytes,
                   **_: object) -> None:
        decisions.append(decision)

    monkeypatch.setattr(ingest_approvals, "send_decision", send)
    return decisions


def _timeline(path: Path, digest: str, at: datetime, request_id: str | None = None) -> Path:
    """A timeline on which this replica requested approval of inc-1's step `revoke` for `digest` at `at`."""
    recorder = Recorder(FileStore(path), clock=at.timestamp)
    recorder.append(EntryKind.APPROVAL_REQUESTED, {"step": "revoke", "digest": digest,
                                                   **({"request_id": request_id} if request_id else {})}, "inc-1")
    recorder.close()
    return path


def _approve(path: Path) -> Result:
    return CliRunner().invoke(app, ["approve", "inc-1", "revoke", "--by", "alice", "--timeline", str(path)])


def test_two_plans_are_shown_and_neither_is_signed(on_kafka, sent, tmp_path):
    """The timeline and the topic's latest request name different plans: exit 3 listing both, nothing sent."""
    path = _timeline(tmp_path / "t.jsonl", LOCAL, T0)
    on_kafka.extend([_published("inc-1", LOCAL, T0), _published("inc-1", REPLANNED, T0 + timedelta(seconds=30))])
    result = _approve(path)
    assert result.exit_code == 3, result.stderr
    assert sent == []
    assert "2 plans for inc-1/revoke; none is signed without --digest" in result.stderr
    assert f"timeline: {LOCAL}" in result.stderr
    assert f"responder.approvals.requests: {REPLANNED}" in result.stderr
    assert "signature verified" in result.stderr


def test_a_replayed_plan_is_not_signed_without_the_timeline(on_kafka, sent):
    """No timeline, a re-plan, then the first plan's signed request replayed: exit 3 listing both, nothing sent."""
    on_kafka.extend([_published("inc-1", LOCAL, T0), _published("inc-1", REPLANNED, T0),
                     _published("inc-1", LOCAL, T0)])
    result = CliRunner().invoke(app, ["deny", "inc-1", "revoke", "--by", "alice"])
    assert result.exit_code == 3, result.stderr
    assert sent == []
    assert LOCAL in result.stderr
    assert REPLANNED in result.stderr


def test_requests_on_several_partitions_are_flagged(on_kafka, sent):
    """Plans on two partitions (a replica publishes on its incident's): exit 3, saying not all are a replica's."""
    on_kafka.extend([_published("inc-1", LOCAL, T0), _published("inc-1", REPLANNED, T0, partition=5)])
    result = CliRunner().invoke(app, ["approve", "inc-1", "revoke", "--by", "alice"])
    assert result.exit_code == 3, result.stderr
    assert "requests on several partitions" in result.stderr
    assert "partition 5 offset 1" in result.stderr


def test_a_forged_future_request_does_not_replace_the_timelines(on_kafka, sent, tmp_path, monkeypatch):
    """Without a verify key, an unsigned request stamped in the future is shown as unverified and signs nothing."""
    monkeypatch.delenv("RESPONDER_TIMELINE_VERIFY_KEY")
    path = _timeline(tmp_path / "t.jsonl", LOCAL, T0)
    forged = _published("inc-1", REPLANNED, T0 + timedelta(days=365)).model_copy(update={"headers": ()})
    on_kafka.extend([_published("inc-1", LOCAL, T0), forged])
    result = _approve(path)
    assert result.exit_code == 3, result.stderr
    assert sent == []
    assert "NOT verified (RESPONDER_TIMELINE_VERIFY_KEY unset; unsigned)" in result.stderr


def test_what_kafka_says_is_printed_without_escapes_or_markup(on_kafka, sent, tmp_path):
    """A target with a terminal escape, a newline faking a timeline line and rich markup is shown escaped."""
    path = _timeline(tmp_path / "t.jsonl", LOCAL, T0)
    target = "AKIA1\x1b[2J\n  timeline: " + "c" * 64 + " [link=https://evil.example/]x[/link]"
    on_kafka.append(_published("inc-1", REPLANNED, T0, target=target))
    result = _approve(path)
    assert result.exit_code == 3, result.stderr
    assert "\x1b" not in result.stderr
    assert "\\x1b[2J\\x0a  timeline: ccc" in result.stderr  # one line, escaped
    assert not any(line.startswith("  timeline: ccc") for line in result.stderr.splitlines())
    assert "[link=https://evil.example/]x[/link]" in result.stderr


def test_an_incident_id_with_markup_is_refused_cleanly(on_kafka, sent):
    """An ambiguous prefix whose candidates hold rich markup exits 3 with the ids as they are, not a traceback."""
    on_kafka.extend([_published("7f3a[/][/]x", LOCAL, T0), _published("7f3a9", REPLANNED, T0)])
    result = CliRunner().invoke(app, ["approve", "7f3a", "revoke", "--by", "alice"])
    assert result.exit_code == 3, result.output
    assert "7f3a[/][/]x" in result.stderr


def test_expired_plans_do_not_count(on_kafka, sent):
    """An expired request for another plan is ignored; when every request has expired, exit 3 saying so."""
    on_kafka.extend([_published("inc-1", LOCAL, T0, expires=timedelta(minutes=-5)), _published("inc-1", REPLANNED)])
    result = CliRunner().invoke(app, ["approve", "inc-1", "revoke", "--by", "alice"])
    assert result.exit_code == 0, result.stderr
    assert [d.digest for d in sent] == [REPLANNED]
    on_kafka[1:] = []
    again = CliRunner().invoke(app, ["approve", "inc-1", "revoke", "--by", "alice"])
    assert again.exit_code == 3
    assert "expired" in again.stderr


def test_digest_chooses_between_two_plans(on_kafka, sent, tmp_path):
    """--digest as a 12-character prefix (as `pending` shows it) signs that plan, warned if not the timeline's."""
    path = _timeline(tmp_path / "t.jsonl", LOCAL, T0)
    on_kafka.extend([_published("inc-1", LOCAL, T0), _published("inc-1", REPLANNED, T0)])
    result = CliRunner().invoke(app, ["approve", "inc", "revoke", "--by", "alice", "--timeline", str(path),
                                      "--digest", REPLANNED[:12]])
    assert result.exit_code == 0, result.stderr
    assert [(d.incident, d.digest) for d in sent] == [("inc-1", REPLANNED)]
    assert f"--digest {REPLANNED[:12]}… is not the timeline's request {LOCAL[:12]}…" in result.stderr


def test_a_digest_no_request_names_is_refused(on_kafka, sent):
    """--digest naming a plan no request for the step names (or not a digest at all) exits 3 and sends nothing."""
    on_kafka.append(_published("inc-1", LOCAL, T0))
    for given in ("c" * 64, "zz", "c" * 12):
        result = CliRunner().invoke(app, ["approve", "inc-1", "revoke", "--by", "alice", "--digest", given])
        assert result.exit_code == 3, (given, result.output)
    assert sent == []


def test_digest_with_an_id_the_timeline_lacks_is_resolved_on_kafka(on_kafka, sent):
    """With --digest and no timeline, a prefix is resolved to the full id on the requests topic, not sent as is."""
    on_kafka.extend([_published("inc-1", LOCAL, T0), _published("inc-1", REPLANNED, T0)])
    result = CliRunner().invoke(app, ["approve", "inc", "revoke", "--by", "alice", "--digest", REPLANNED])
    assert result.exit_code == 0, result.stderr
    assert [(d.incident, d.digest) for d in sent] == [("inc-1", REPLANNED)]
    assert result.stderr == ""


def test_kafka_unreachable_signs_the_timelines_request_with_a_warning(monkeypatch, sent, tmp_path):
    """The requests topic cannot be read: the timeline's digest is signed, exit 0, and stderr says it was not read."""
    path = _timeline(tmp_path / "t.jsonl", LOCAL, T0)

    def unreachable(settings: Settings, server: str, topics: list[str], timeout: float) -> list[list[RawRecord]]:
        assert timeout == 10.0  # the timeline has the request: the operator does not wait 30 s for the fleet's
        raise BrokerUnreachable("could not read responder.approvals.requests at 127.0.0.1:9 to its end within 10 s")

    monkeypatch.setattr(cli_pending, "_read", unreachable)
    result = _approve(path)
    assert result.exit_code == 0, result.stderr
    assert [d.digest for d in sent] == [LOCAL]
    [line] = result.stderr.strip().splitlines()
    assert "requests topic responder.approvals.requests was not read" in line


def test_agreeing_requests_are_signed_with_the_fleets_plan_shown(on_kafka, sent, tmp_path):
    """The timeline and the topic name the same plan: it is signed, and the success line names its target."""
    path = _timeline(tmp_path / "t.jsonl", LOCAL, T0)
    on_kafka.append(_published("inc-1", LOCAL, T0))
    result = _approve(path)
    assert result.exit_code == 0, result.stderr
    assert [d.digest for d in sent] == [LOCAL]
    assert "aws.iam.deactivate_access_key on AKIA1" in result.stdout
    assert result.stderr == ""


def test_an_unverified_fleet_request_is_signed_with_a_warning(on_kafka, sent, monkeypatch):
    """Without a verify key and without a timeline, the topic's request is signed, and stderr says it is unchecked."""
    monkeypatch.delenv("RESPONDER_TIMELINE_VERIFY_KEY")
    on_kafka.append(_published("inc-1", REPLANNED, T0))
    result = CliRunner().invoke(app, ["approve", "inc-1", "revoke", "--by", "alice"])
    assert result.exit_code == 0, result.stderr
    assert [d.digest for d in sent] == [REPLANNED]
    assert "is not a replica's verified request" in result.stderr
    assert "claims key" in result.stderr


def test_a_request_with_a_malformed_digest_is_refused_and_counted(on_kafka):
    """A request whose digest is not 64 lowercase hex characters is refused, never offered for signing."""
    bad = _published("inc-1", LOCAL, T0).value.replace(LOCAL.encode(), b"../../x")
    on_kafka.append(RawRecord(topic="req", value=bad, headers=tuple(request_headers(Signer.from_text(PRIVATE), bad))))
    found = cli_pending.fleet_request(_settings(), "inc-1", "revoke", [])
    assert found.plans == []
    assert "1 record(s) there refused" in found.where


def test_a_replayed_older_copy_does_not_shorten_a_plans_deadline(on_kafka, sent):
    """A plan escalated (a later deadline), then its first request replayed: it still waits and is signed."""
    first = _published("inc-1", LOCAL, T0, expires=timedelta(minutes=-5))
    on_kafka.extend([first, _published("inc-1", LOCAL, T0, expires=timedelta(hours=1)), first])
    result = CliRunner().invoke(app, ["deny", "inc-1", "revoke", "--by", "alice"])
    assert result.exit_code == 0, result.stderr
    assert [d.digest for d in sent] == [LOCAL]


def test_a_timeline_request_the_topic_does_not_back_is_warned_of_or_refused(on_kafka, sent, tmp_path):
    """The topic holds no unexpired request for the timeline's plan: a warning; with its deadline passed, exit 3."""
    path = _timeline(tmp_path / "t.jsonl", LOCAL, T0)
    result = _approve(path)
    assert result.exit_code == 0, result.stderr
    assert "holds no unexpired request for the timeline's plan" in result.stderr
    late = tmp_path / "late.jsonl"
    recorder = Recorder(FileStore(late), clock=T0.timestamp)
    recorder.append(EntryKind.APPROVAL_REQUESTED, {"step": "revoke", "digest": LOCAL,
                                                   "deadline": (T0 + timedelta(minutes=5)).timestamp()}, "inc-1")
    recorder.close()
    expired = _approve(late)
    assert expired.exit_code == 3
    assert "no longer waits" in expired.stderr
    assert [d.digest for d in sent] == [LOCAL]


def test_the_success_line_escapes_the_incident_id(on_kafka, sent):
    """An incident id from Kafka with a terminal escape is printed escaped in the success line."""
    on_kafka.append(_published("inc-\x1b]0;owned\x07", LOCAL, T0))
    result = CliRunner().invoke(app, ["approve", "inc-", "revoke", "--by", "alice"])
    assert result.exit_code == 0, result.stderr
    assert "\x1b" not in result.stdout
    assert "inc-\\x1b]0;owned\\x07/revoke" in result.stdout


def test_the_decision_names_the_topics_latest_request_for_the_plan(on_kafka, sent):
    """With no timeline, the decision names the topic's latest request id for the plan, shown in the success line."""
    on_kafka.extend([_published("inc-1", LOCAL, T0, request_id=FIRST),
                     _published("inc-1", LOCAL, T0, request_id=SECOND, expires=timedelta(hours=2))])
    result = CliRunner().invoke(app, ["approve", "inc-1", "revoke", "--by", "alice"])
    assert result.exit_code == 0, result.stderr
    assert [d.request_id for d in sent] == [SECOND]
    assert f"request {SECOND[:12]}…" in result.stdout
    assert result.stderr == ""


def test_the_json_output_carries_the_full_request_id(on_kafka, sent):
    """`--json` shows the signed decision with its full request id."""
    on_kafka.append(_published("inc-1", LOCAL, T0, request_id=FIRST))
    result = CliRunner().invoke(app, ["deny", "inc-1", "revoke", "--by", "alice", "--json"])
    assert result.exit_code == 0, result.stderr
    assert orjson.loads(result.stdout)["sent"]["request_id"] == FIRST


def test_the_timelines_request_id_is_named_when_the_topic_has_none_for_the_plan(monkeypatch, sent, tmp_path):
    """The topic cannot be read: the decision names the timeline's request id for the plan."""
    path = _timeline(tmp_path / "t.jsonl", LOCAL, T0, request_id=FIRST)

    def unreachable(settings: Settings, server: str, topics: list[str], timeout: float) -> list[list[RawRecord]]:
        raise BrokerUnreachable("could not read responder.approvals.requests")

    monkeypatch.setattr(cli_pending, "_read", unreachable)
    result = _approve(path)
    assert result.exit_code == 0, result.stderr
    assert [(d.digest, d.request_id) for d in sent] == [(LOCAL, FIRST)]


def test_agreeing_request_ids_are_named_without_a_warning(on_kafka, sent, tmp_path):
    """The timeline and the topic name the same request for the plan: it is named, and stderr is empty."""
    path = _timeline(tmp_path / "t.jsonl", LOCAL, T0, request_id=FIRST)
    on_kafka.append(_published("inc-1", LOCAL, T0, request_id=FIRST))
    result = _approve(path)
    assert result.exit_code == 0, result.stderr
    assert [d.request_id for d in sent] == [FIRST]
    assert result.stderr == ""


def test_request_ids_that_differ_name_the_topics_with_one_warning(on_kafka, sent, tmp_path):
    """When the timeline's and topic's latest requests differ, the topic's is named with one `!` warning on stderr."""
    path = _timeline(tmp_path / "t.jsonl", LOCAL, T0, request_id=FIRST)
    on_kafka.append(_published("inc-1", LOCAL, T0, request_id=SECOND))
    result = _approve(path)
    assert result.exit_code == 0, result.stderr
    assert [d.request_id for d in sent] == [SECOND]
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("! ")
    assert f"request {SECOND[:12]}…, the timeline's is {FIRST[:12]}…" in line
    assert "approvals pending" in line


def test_the_timelines_request_for_another_plan_is_not_named(on_kafka, sent, tmp_path):
    """With --digest choosing the topic's re-plan, the decision names that plan's request, with no warning."""
    path = _timeline(tmp_path / "t.jsonl", LOCAL, T0, request_id=FIRST)
    on_kafka.extend([_published("inc-1", LOCAL, T0, request_id=FIRST),
                     _published("inc-1", REPLANNED, T0, request_id=SECOND)])
    result = CliRunner().invoke(app, ["approve", "inc-1", "revoke", "--by", "alice", "--timeline", str(path),
                                      "--digest", REPLANNED])
    assert result.exit_code == 0, result.stderr
    assert [(d.digest, d.request_id) for d in sent] == [(REPLANNED, SECOND)]
    assert "the timeline's is" not in result.stderr


def test_requests_from_before_ids_give_a_decision_with_none(on_kafka, sent, tmp_path):
    """With no request id on either side, the decision names none and its signed bytes have no request_id key."""
    path = _timeline(tmp_path / "t.jsonl", LOCAL, T0)
    on_kafka.append(_published("inc-1", LOCAL, T0))
    result = _approve(path)
    assert result.exit_code == 0, result.stderr
    [decision] = sent
    assert decision.request_id is None
    assert b"request_id" not in decision.canonical()
    assert "no request id" in result.stdout

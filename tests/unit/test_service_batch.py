"""One poll batch through the service, without a broker: only matches act, poison is dead-lettered, commit last."""

from __future__ import annotations

from typing import Any

import pytest

from responder.models.event import RawRecord
from responder.service import Service
from responder.settings import Settings
from tests.fakes import FakeIam
from tests.findings import envelope_bytes, guardduty_finding
from tests.kit import BATCH_RUNBOOK

KEY = "AKIAABCDEFGHIJKLMN99"


def _record(offset: int, key: str, value: bytes, partition: int = 0) -> RawRecord:
    return RawRecord(topic="a", partition=partition, offset=offset, key=key.encode(), value=value)


@pytest.mark.parametrize("interval_ms", [0, 100])
async def test_batch_acts_on_matches_only_and_commits_after_every_entry_is_durable(tmp_path, interval_ms) -> None:
    """The batch lane acts on matches only, dead-letters poison, and commits after the fsync of every entry."""
    iam = FakeIam()
    keys = [f"AKIAABCDEFGHIJKLMN{i:02d}" for i in range(3)]
    for key in keys:
        iam.add_key("ml-training", key)
    settings = Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", topics=["a"],
                        kafka_commit_interval_ms=interval_ms)
    service = Service(settings, aws=iam, runbooks=[BATCH_RUNBOOK])
    committed: list[tuple[dict[Any, int], int, int]] = []
    dead: list[tuple[int, str]] = []

    async def commit(offsets: dict[Any, int]) -> None:
        committed.append((dict(offsets), service.recorder.syncs, service.recorder.next_seq))

    async def deadletter(record: RawRecord, reason: str, detail: str) -> None:
        dead.append((record.offset, reason))

    service.ingest.commit = commit  # type: ignore[method-assign]
    service.ingest.deadletter = deadletter  # type: ignore[method-assign]
    low = envelope_bytes(guardduty_finding("AKIAZZZZZZZZZZZZZZZZ", severity=2))
    batch = {
        ("a", 0): [_record(0, "x", low), _record(1, keys[0], envelope_bytes(guardduty_finding(keys[0]))),
                   _record(2, "p", b"{not json"), _record(3, keys[0], envelope_bytes(guardduty_finding(keys[0])))],
        ("a", 1): [_record(0, keys[1], envelope_bytes(guardduty_finding(keys[1])), 1), _record(1, "y", low, 1)],
    }
    await service._handle_batch(batch)
    if interval_ms:
        assert committed == []
        assert service.commits.pending() == {("a", 0): 4, ("a", 1): 2}
        await service.commits.commit()
        assert service.commits.pending() == {}
    entries = list(service.recorder.entries())
    assert dead == [(2, "not_json")]
    assert iam.count("update_access_key") == 2
    assert {iam.keys[k]["Status"] for k in keys[:2]} == {"Inactive"}
    assert sum(e.kind == "event.received" for e in entries) == 3  # the two low-severity findings left nothing
    assert committed == [({("a", 0): 4, ("a", 1): 2}, service.recorder.syncs, len(entries))]
    await service.close_unstarted()
    service.recorder.close()


async def test_group_waits_for_the_rebalance_timeout_not_the_session_timeout(tmp_path) -> None:
    """A replica finishing slow chunks on revocation stays in the group for RESPONDER_REBALANCE_TIMEOUT_MS."""
    settings = Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", topics=["a"],
                        session_timeout_ms=6000, rebalance_timeout_ms=90_000)
    service = Service(settings, aws=FakeIam(), runbooks=[BATCH_RUNBOOK])
    try:
        assert service.ingest.consumer._rebalance_timeout_ms == 90_000
    finally:
        await service.close_unstarted()
        service.recorder.close()


async def test_the_alert_consumer_fetches_with_the_configured_wait(tmp_path) -> None:
    """`kafka_fetch_max_wait_ms` (and the idle wait) reach the alert consumer (Tansu holds fetches: latency)."""
    for wait, expected in ((None, 10), (7, 7)):
        extra = {} if wait is None else {"kafka_fetch_max_wait_ms": wait}
        settings = Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / f"{wait}.jsonl", topics=["a"],
                            **extra)
        service = Service(settings, aws=FakeIam(), runbooks=[BATCH_RUNBOOK])
        try:
            assert service.ingest.consumer._fetch_max_wait_ms == expected
            assert service.ingest.fetch_wait is not None
            assert service.ingest.fetch_wait.idle_ms == 250
        finally:
            await service.close_unstarted()
            service.recorder.close()


@pytest.mark.parametrize("kind", ["approval.rejected", "operator.rejected"])
async def test_a_signed_record_the_client_cannot_parse_is_refused_durably_and_the_rest_pass(tmp_path, kind) -> None:
    """A signed record the Kafka client cannot parse is recorded refused durably; the readable ones pass in order."""
    settings = Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", topics=["a"])
    service = Service(settings, aws=FakeIam(), runbooks=[BATCH_RUNBOOK])
    try:
        records = [_record(0, "d", b"first"), _record(1, "d", b"\xff"), _record(2, "d", b"last")]
        records[1] = records[1].model_copy(update={"unreadable": "header key is not UTF-8"})
        passed = await service._readable(records, kind)
        assert [r.offset for r in passed] == [0, 2]
        assert service.recorder.syncs >= 1  # durable before the offsets are committed
        assert service.recorder.next_seq == 1
        [entry] = [e for e in service.recorder.entries() if e.kind == kind]
        assert (entry.body["topic"], entry.body["partition"], entry.body["offset"]) == ("a", 0, 1)
        assert entry.body["reason"] == "the Kafka client cannot parse the record: header key is not UTF-8"
    finally:
        await service.close_unstarted()
        service.recorder.close()


@pytest.mark.parametrize("act_fails", [False, True])
async def test_both_lanes_dead_letter_a_partly_bad_record_alike(tmp_path, monkeypatch, act_fails) -> None:
    """Both lanes act on a partly bad record's good part, then dead-letter it once, `internal` if acting fails."""
    value = b"[" + envelope_bytes(guardduty_finding(KEY)) + b', {"unknown": "shape"}]'
    seen: dict[str, list[tuple[str, int, str]]] = {}
    for lane in ("batch", "per-record"):
        iam = FakeIam()
        iam.add_key("ml-training", KEY)
        settings = Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / f"{lane}.jsonl", topics=["a"],
                            kafka_commit_interval_ms=0)
        service = Service(settings, aws=iam, runbooks=[BATCH_RUNBOOK])
        seen[lane] = said = []

        async def commit(offsets: dict[Any, int], said: list[tuple[str, int, str]] = said) -> None:
            said.append(("commit", offsets[("a", 0)], ""))

        async def deadletter(record: RawRecord, reason: str, detail: str,
                             said: list[tuple[str, int, str]] = said) -> None:
            said.append(("dead", record.offset, reason))

        async def broken(*_: Any) -> None:
            raise RuntimeError("boom")

        service.ingest.commit = commit  # type: ignore[method-assign]
        service.ingest.deadletter = deadletter  # type: ignore[method-assign]
        if act_fails:
            monkeypatch.setattr(service.engine, "handle", broken)
        record = _record(0, KEY, value)
        if lane == "batch":
            await service._handle_batch({("a", 0): [record]})
        else:
            await service._handle_partition([record])
            said.append(("commit", 1, ""))  # `_handle_chunk` commits after its partition tasks
        assert iam.count("update_access_key") == (0 if act_fails else 1)
        await service.close_unstarted()
        service.recorder.close()
    reason = "internal" if act_fails else "unknown_shape"
    assert seen["batch"] == seen["per-record"] == [("dead", 0, reason), ("commit", 1, "")]

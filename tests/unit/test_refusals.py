"""A flood of forged decisions or operator requests costs bounded entries and fsyncs, is counted, and never delays a
genuine decision; what was not recorded one by one is summed up per window."""

from __future__ import annotations

import pytest
from aiokafka import TopicPartition

from responder.auth import signed_headers
from responder.engine.operator import Operator
from responder.engine.refusals import FULL_PER_WINDOW, WINDOW_S
from responder.models.event import RawRecord
from responder.service import Service
from responder.settings import Settings
from tests.kit import WIPE, Kit, decision, make_kit
from tests.operator_kit import SECRET as OPS_SECRET
from tests.operator_kit import operator_request, operator_with_all

FLOOD = 10_000
BATCH = 500  # records per poll: the approvals loop flushes once per batch, before it commits the batch's offsets


def _forged(kit: Kit, incident: str, n: int) -> tuple[bytes, str | None, str | None]:
    """The n-th forged record: unsigned, wrongly signed, a claimed key id nobody holds (each one new), or a replay."""
    value, key_id, sig = decision(kit, incident, "wipe")
    return [(value, None, None), (value, key_id, "0" * 64), (value, f"mallory-{n}", sig),
            decision(kit, incident, "other")][n % 4]


async def _flood(kit: Kit, incident: str, n: int = FLOOD) -> None:
    """`n` forged decisions in poll batches, flushed per batch as the approvals loop does."""
    for start in range(0, n, BATCH):
        for i in range(start, min(n, start + BATCH)):
            assert not await kit.engine.decide(*_forged(kit, incident, i))
        kit.engine.decisions.refusals.tick()
        await kit.engine.recorder.flush()


async def test_ten_thousand_forged_decisions_cost_bounded_entries_and_fsyncs_and_the_genuine_one_acts(tmp_path):
    """10,000 forged decisions add at most FULL_PER_WINDOW entries per class and one fsync; the genuine one acts."""
    kit = make_kit(tmp_path, {"rb": WIPE % "deny"})
    await kit.send()
    [parked] = kit.engine.state.parked_steps()
    counted: list[str] = []
    kit.engine.decisions.refusals.counted = counted.append
    syncs, seq = kit.engine.recorder.syncs, kit.engine.recorder.next_seq
    await _flood(kit, parked.incident)
    assert kit.engine.recorder.next_seq - seq == 4 * FULL_PER_WINDOW  # four classes, claimed key ids in one bucket
    assert kit.engine.recorder.syncs - syncs == 1  # the first batch's; the later ones added nothing to write
    assert len(counted) == FLOOD
    assert {c: counted.count(c) for c in set(counted)} == {"unsigned": 2500, "bad_signature": 2500,
                                                            "unknown_key": 2500, "not_pending": 2500}
    assert await kit.engine.decide(*decision(kit, parked.incident, "wipe"))
    assert [p.target for p in kit.wipe.applied] == ["t1"]
    assert kit.entries("approval.decided")[0]["by"] == "alice"


async def test_a_passed_window_is_summed_up_and_the_next_one_records_in_full_again(tmp_path):
    """A passed window gets one summary `approval.rejected` per bucket, then refusals are recorded in full again."""
    kit = make_kit(tmp_path, {"rb": WIPE % "deny"})
    await kit.send()
    [parked] = kit.engine.state.parked_steps()
    value, _, _ = decision(kit, parked.incident, "wipe")
    for _ in range(FULL_PER_WINDOW + 7):
        await kit.engine.decide(value, None, None)
    assert kit.engine.decisions.refusals.tick() == 0  # the window has not passed
    kit.clock.now += WINDOW_S
    await kit.engine.decide(value, None, None)  # the first of a new window: the old one is summed up first
    await kit.engine.recorder.flush()
    rejected = kit.entries("approval.rejected")
    assert len(rejected) == FULL_PER_WINDOW + 2
    summary = rejected[FULL_PER_WINDOW]
    assert (summary["suppressed"], summary["recorded"], summary["class"]) == (7, FULL_PER_WINDOW, "unsigned")
    assert summary["key_id"] is None
    assert "incidents" not in summary
    assert "unsigned" in rejected[-1]["reason"]
    assert "suppressed" not in rejected[-1]


async def test_a_refusal_is_not_flushed_alone(tmp_path):
    """A forged decision's entry waits for the next group commit: no fsync of its own."""
    kit = make_kit(tmp_path, {"rb": WIPE % "deny"})
    await kit.send()
    [parked] = kit.engine.state.parked_steps()
    syncs = kit.engine.recorder.syncs
    assert not await kit.engine.decide(decision(kit, parked.incident, "wipe")[0], None, None)
    assert kit.engine.recorder.syncs == syncs
    assert kit.entries("approval.rejected") == []
    await kit.engine.recorder.flush()
    assert "unsigned" in kit.entries("approval.rejected")[0]["reason"]


async def test_forged_operator_requests_are_bounded_and_summed_up_at_close():
    """Forged operator requests are recorded in full up to the bound, the rest summed up when the window closes."""
    op: Operator = operator_with_all()
    value, _, _ = operator_request()
    for _ in range(FULL_PER_WINDOW + 3):
        assert await op.handle(value, "ops", "0" * 64) is None
    op.refusals.close()
    await op.recorder.flush()
    bodies = [e.body for e in op.recorder.entries() if e.kind == "operator.rejected"]
    assert len(bodies) == FULL_PER_WINDOW + 1
    assert (bodies[-1]["suppressed"], bodies[-1]["key_id"], bodies[-1]["class"]) == (3, "ops", "bad_signature")


async def test_the_service_counts_refusals_in_its_metric(tmp_path):
    """`responder_decisions_refused_total{reason}` counts every refusal, recorded or only counted."""
    service = Service(Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", topics=["a"],
                               approval_keys={"k1": "s"}), runbooks=[])
    try:
        for _ in range(FULL_PER_WINDOW + 5):
            await service.engine.decide(b"{}", None, None)
        [(_, key_id), (_, sig)] = signed_headers("k1", b"s", b"{}")
        await service.operator.handle(b"{}", key_id.decode(), sig.decode())
        assert service.metrics.value("responder_decisions_refused_total", reason="unsigned") == FULL_PER_WINDOW + 5
        assert service.metrics.value("responder_decisions_refused_total", reason="malformed") == 1
    finally:
        await service.close_unstarted()


@pytest.mark.parametrize("flood", ["replayed", "forged"])
async def test_a_signed_refusal_is_recorded_in_full_whatever_floods_its_key(tmp_path, flood):
    """A refused decision a configured key really signed is recorded in full after replays or forgeries of its key."""
    kit = make_kit(tmp_path, {"rb": WIPE % "deny"})
    await kit.send()
    [parked] = kit.engine.state.parked_steps()
    stale = decision(kit, parked.incident, "wipe", digest="f" * 64)  # signed by k1, for another plan: refused
    copy = stale if flood == "replayed" else (stale[0], stale[1], "0" * 64)
    for _ in range(FULL_PER_WINDOW + 5):
        assert not await kit.engine.decide(*copy)
    assert not await kit.engine.decide(*decision(kit, parked.incident, "wipe", by="mallory"))
    await kit.engine.recorder.flush()
    rejected = kit.entries("approval.rejected")
    assert len(rejected) == FULL_PER_WINDOW + 1
    assert rejected[-1]["by"] == "mallory"
    assert rejected[-1]["key_id"] == "k1"
    assert await kit.engine.decide(*decision(kit, parked.incident, "wipe"))  # the genuine one still releases it


async def test_a_signed_operator_refusal_is_recorded_in_full_whatever_replays_came_first():
    """A malformed operator request a configured key signed is recorded in full after many copies of another one."""
    op: Operator = operator_with_all()

    def signed(value: bytes) -> tuple[bytes, str, str]:
        [(_, key_id), (_, sig)] = signed_headers("ops", OPS_SECRET, value)
        return value, key_id.decode(), sig.decode()

    for _ in range(FULL_PER_WINDOW + 5):
        assert await op.handle(*signed(b'{"replayed": 1}')) is None
    assert await op.handle(*signed(b'{"insider": 1}')) is None
    await op.recorder.flush()
    bodies = [e.body for e in op.recorder.entries() if e.kind == "operator.rejected"]
    assert len(bodies) == FULL_PER_WINDOW + 1


async def test_the_service_counts_records_the_kafka_client_cannot_parse(tmp_path):
    """A decision or request record the Kafka client cannot parse is refused and counted (`reason="unreadable"`)."""
    service = Service(Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", topics=["a"],
                               approval_keys={"k1": "s"}), runbooks=[])
    try:
        unreadable = RawRecord(topic="decisions", value=b"", unreadable="crc mismatch")
        assert await service._readable([unreadable], "approval.rejected") == []
        assert service.metrics.value("responder_decisions_refused_total", reason="unreadable") == 1
    finally:
        await service.close_unstarted()


async def test_records_the_kafka_client_cannot_parse_are_bounded_like_forged_ones(tmp_path):
    """A flood of unparseable decision records writes at most the bound's entries, each one still counted."""
    service = Service(Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", topics=["a"],
                               approval_keys={"k1": "s"}), runbooks=[])
    try:
        flood = [RawRecord(topic="decisions", offset=i, value=b"", unreadable="crc mismatch") for i in range(50)]
        assert await service._readable(flood, "approval.rejected") == []
        assert service.recorder.next_seq == FULL_PER_WINDOW
        assert service.metrics.value("responder_decisions_refused_total", reason="unreadable") == 50
    finally:
        await service.close_unstarted()



class _Topic:
    """An approvals ingest: each poll hands out the next of `polls` (None: the window passes, nothing comes), then
    stops the service; each commit is recorded with how many summary entries were durable when it was made."""

    consumer = None  # no Kafka consumer behind it: never out of its group (responder/ingest/lost.py `in_group`)

    def __init__(self, service: Service, clock: list[float], polls: list[list[RawRecord] | None]) -> None:
        self.service, self.clock, self.polls = service, clock, polls
        self.commits = list[tuple[int, int]]()

    async def poll(self) -> dict[TopicPartition, list[RawRecord]]:
        if not self.polls:
            self.service.request_stop()
            return {}
        records = self.polls.pop(0)
        if records is None:
            self.clock[0] += WINDOW_S
            return {}
        return {TopicPartition("decisions", 0): records}

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        if offsets:
            summaries = [e for e in self.service.recorder.entries() if "suppressed" in e.body]
            self.commits.append((max(offsets.values()), len(summaries)))

    def replayed(self, record: RawRecord) -> bool:
        return False


@pytest.mark.parametrize("end", ["window", "stop"])
async def test_offsets_of_refusals_only_counted_are_committed_once_their_summary_is_durable(tmp_path, end):
    """A poll whose refusals were only counted is committed once their summary is durable (window end or stop)."""
    clock = [1_000.0]
    service = Service(Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", topics=["a"],
                               approval_keys={"k1": "s"}), runbooks=[], clock=lambda: clock[0])
    flood = [RawRecord(topic="decisions", offset=n, value=b"{}") for n in range(FULL_PER_WINDOW + 5)]
    topic = _Topic(service, clock, [flood[:FULL_PER_WINDOW], flood[FULL_PER_WINDOW:], *([None] if end == "window"
                                                                                      else [])])
    real, service.approvals = service.approvals, topic  # type: ignore[assignment]
    try:
        await service._approvals_loop()
        assert topic.commits == [(FULL_PER_WINDOW, 0), (FULL_PER_WINDOW + 5, 1)]
    finally:
        service.approvals = real
        await service.close_unstarted()

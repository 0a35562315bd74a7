"""Metrics added once per chunk or durable batch show, at the scrape after it, what per-event updates showed."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.samples import Sample

from responder.errors import TimelineError
from responder.metrics import DISPATCH_BUCKETS, _folds, observe_all
from responder.models.event import RawRecord
from responder.models.runbook import Runbook
from responder.service import Service
from responder.settings import Settings
from tests.fakes import FakeIam
from tests.findings import envelope_bytes, guardduty_finding

RUNBOOK = Runbook.model_validate({
    "id": "deactivate", "trigger": {"source": "guardduty", "type": "*IAMUser/*"},
    "steps": [{"id": "deactivate", "actuator": "aws.iam.deactivate_access_key",
               "with": {"user_name": "${event.resource.iam_user.id}",
                        "access_key_id": "${event.resource.access_key.id}"}}],
})
KEYS = [f"AKIAABCDEFGHIJKLMN{i:02d}" for i in range(5)]
# on the bounds, between them, past the last, zero, and sums whose float rounding depends on the order of additions
AMOUNTS = [0.0, 0.005, 0.0051, 0.1, 0.1, 0.2, 0.3, 1e-9, 60.0, 61.5, 1e6, *[0.1 * n for n in range(1, 40)]]


def _exposition(registry: CollectorRegistry) -> bytes:
    """The registry's text without the `_created` sample (the moment each histogram was made)."""
    return b"\n".join(line for line in generate_latest(registry).splitlines() if b"_created" not in line)


@pytest.mark.parametrize("chunks", [[AMOUNTS], [AMOUNTS[:7], AMOUNTS[7:]], [[0.25], [], AMOUNTS]])
def test_observe_all_gives_the_exposition_of_observe_one_by_one(chunks: list[list[float]]) -> None:
    """The same bucket counts and bit-for-bit the same sum as prometheus_client's `observe` of each amount in turn."""
    one, folded = CollectorRegistry(), CollectorRegistry()
    each = Histogram("h", "d", buckets=DISPATCH_BUCKETS, registry=one)
    batch = Histogram("h", "d", buckets=DISPATCH_BUCKETS, registry=folded)
    for amounts in chunks:
        for amount in amounts:
            each.observe(amount)
        observe_all(batch, amounts)
        assert _exposition(folded) == _exposition(one)
    total = 0.0
    for amount in (a for amounts in chunks for a in amounts):
        total += amount  # in order, one by one: not fsum's, nor a sum per chunk added to the last
    assert one.get_sample_value("h_sum") == folded.get_sample_value("h_sum") == total


class _Cumulative(Histogram):
    """A `Histogram` whose buckets hold cumulative counts: internals another prometheus_client release could have."""

    def observe(self, amount: float, exemplar: dict[str, str] | None = None) -> None:
        self._sum.inc(amount)
        for bound, bucket in zip(self._upper_bounds, self._buckets, strict=True):
            if amount <= bound:
                bucket.inc(1)

    def _child_samples(self) -> Iterable[Sample]:
        return (*(Sample("_bucket", {"le": str(bound)}, bucket.get(), None, None)
                  for bound, bucket in zip(self._upper_bounds, self._buckets, strict=True)),
                Sample("_count", {}, self._buckets[-1].get(), None, None),
                Sample("_sum", {}, self._sum.get(), None, None))


def test_observe_all_folds_into_the_installed_prometheus_client_histogram() -> None:
    """The installed prometheus_client's `Histogram` takes the folded update (a release moving its fields fails)."""
    assert _folds(Histogram)


def test_observe_all_observes_one_by_one_a_histogram_whose_internals_differ() -> None:
    """A histogram class whose buckets `observe_all` cannot fold into gets `observe`'s exposition, not wrong counts."""
    one, folded = CollectorRegistry(), CollectorRegistry()
    each = _Cumulative("h", "d", buckets=DISPATCH_BUCKETS, registry=one)
    batch = _Cumulative("h", "d", buckets=DISPATCH_BUCKETS, registry=folded)
    for amount in AMOUNTS:
        each.observe(amount)
    observe_all(batch, AMOUNTS)
    assert _exposition(folded) == _exposition(one)
    assert not _folds(_Cumulative)


def _service(tmp_path: Path, act_fails: bool, monkeypatch: pytest.MonkeyPatch) -> Service:
    iam = FakeIam()
    for key in KEYS:
        iam.add_key("ml-training", key)
    settings = Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", topics=["a"],
                        kafka_commit_interval_ms=0)
    service = Service(settings, aws=iam, runbooks=[RUNBOOK])
    monkeypatch.setattr(service.ingest, "commit", _ignored)  # no broker: offsets and dead letters go nowhere
    monkeypatch.setattr(service.ingest, "deadletter", _ignored)
    if act_fails:
        monkeypatch.setattr(service.engine, "handle", _raises)
    return service


def _records(first: int, count: int) -> list[RawRecord]:
    return [RawRecord(topic="a", offset=n, key=KEYS[n].encode(), value=envelope_bytes(guardduty_finding(KEYS[n])))
            for n in range(first, first + count)]


async def _ignored(*_: Any) -> None:
    return None


async def _raises(*_: Any) -> None:
    raise RuntimeError("boom")


@pytest.mark.parametrize("act_fails", [False, True])
async def test_a_scrape_after_each_chunk_shows_every_event_it_matched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                      act_fails: bool) -> None:
    """`responder_events_matched_total`, read and in `/metrics`, counts a chunk's matched events once it is handled."""
    service = _service(tmp_path, act_fails, monkeypatch)
    try:
        seen = []
        for first, count in ((0, 3), (3, 2)):
            await service._handle_batch({("a", 0): _records(first, count)})
            exposed = [line for line in service.metrics.exposition().splitlines()
                       if line.startswith(b"responder_events_matched_total ")]
            seen.append((service.metrics.value("responder_events_matched_total"), exposed))
        assert seen == [(3.0, [b"responder_events_matched_total 3.0"]), (5.0, [b"responder_events_matched_total 5.0"])]
    finally:
        await service.close_unstarted()
        service.recorder.close()


async def test_a_chunk_whose_acting_stops_the_service_still_shows_the_events_it_matched(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A timeline failure that escapes the chunk's acting tasks still adds the events they matched to the metric."""
    service = _service(tmp_path, False, monkeypatch)
    monkeypatch.setattr(service.engine, "handle", _timeline_fails)
    try:
        with pytest.raises(ExceptionGroup):
            await service._handle_batch({("a", 0): _records(0, 3)})
        assert service.pipeline.counters.matched == 3
        assert service.metrics.value("responder_events_matched_total") == 3
    finally:
        await service.close_unstarted()
        service.recorder.close()


async def _timeline_fails(*_: Any) -> None:
    raise TimelineError("disk gone")

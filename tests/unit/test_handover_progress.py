"""What a rebuild's hand-over commits is not the rebuilt consumer's progress (responder/service/consumers.py,
`RebuildBudget.seen`), and a chunk whose partitions all left before it ran commits nothing (responder/service/
batches.py)."""

from __future__ import annotations

from typing import Any

import pytest

from responder.errors_kafka import ConsumerRebuildsExhausted
from responder.ingest.coordinator import RebuildBudget
from responder.ingest.raw import to_raw
from responder.service import Service
from responder.settings import Settings
from tests.consumer_kit import TP, FakeBroker, JoinedConsumer, MovingClock, RecordedTxn, alerts_over
from tests.fakes import FakeIam


async def test_a_hand_over_commit_does_not_settle_a_rebuilt_consumer_that_never_finds_its_coordinator(
        tmp_path: Any) -> None:
    """Each rebuild's hand-over commits a chunk in hand: rebuilt consumers without a coordinator stay unready, 5 max."""
    clock, broker = MovingClock(), FakeBroker(records=0)
    built: list[JoinedConsumer] = []

    def make(service: Service) -> Any:
        def one() -> JoinedConsumer:  # the first finds its coordinator; the rebuilt ones never do, and lose it at once
            built.append(JoinedConsumer(broker, clock, dies_after=1, found=not built))
            return built[-1]
        return one

    async with alerts_over(tmp_path, lambda: RebuildBudget(clock, backoff=0.0, backoff_max=0.0), make) as service:
        revoked = service._on_revoked

        async def handing_over(partitions: list[Any]) -> None:  # the chunk in hand, waited for by the hand-over,
            service.ingest.commits += 1  # commits its offsets in its changelog transaction (a fleet replica)
            await revoked(partitions)

        service._on_revoked = handing_over  # type: ignore[method-assign]
        said: list[str | None] = []

        async def polling() -> None:
            for _ in range(60):  # hang guard: the ceiling (20 rebuilds) is reached well before
                await service._polled(service.ingest, "alerts")
                if len(built) > 1:
                    said.append(service.unready())

        with pytest.raises(ConsumerRebuildsExhausted, match="alerts consumer was rebuilt 5 times"):
            await polling()
        assert said
        assert all("has not settled" in str(why) for why in said)


async def test_a_chunk_of_revoked_partitions_commits_nothing_and_is_no_progress(tmp_path: Any) -> None:
    """A chunk whose partition left while it waited for the gate commits no offsets and counts no commit."""
    settings = Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", runbooks_dir=tmp_path,
                        topics=["a"], changelog_topic="changelog")
    service = Service(settings, aws=FakeIam(), runbooks=[])
    assert service.fleet is not None
    service.fleet.changelog.txn = txn = RecordedTxn()  # type: ignore[assignment]
    try:  # TP's partition is not owned: revoked (a rebuild's hand-over) while this chunk waited for the gate
        await service._handle_chunk({TP: [to_raw(r) for r in FakeBroker(records=2).log]})
        assert txn.committed == [{}]
        assert service.ingest.commits == 0
    finally:
        service.recorder.close()
        await service.close_unstarted()

"""`responder deadletter replay` publishes each original record once per target: the copies of one record (dead-lettered
again after a restart, its offset not committed) are one record, in one replay and across replays, whatever their
reason; a ledger written before 2026-12-06 still counts (responder/ingest/deadletter.py, responder/cli/deadletter.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from responder.cli import app
from responder.ingest import deadletter
from responder.ingest.deadletter import ReplayResult, replay_deadletters
from tests.replay_kit import ReplayProducer, dead_letter, fake_replay

# two copies of the record at alerts:0:7 (dlq:0:5 and dlq:0:6), one of the record at alerts:0:9 (dlq:0:8)
COPIES = [dead_letter(5, original=(0, 7)), dead_letter(6, original=(0, 7)), dead_letter(8, original=(0, 9))]


async def _replay(monkeypatch: pytest.MonkeyPatch, records: Sequence[object], ledger: set[bytes] | None = None,
                  **options: Any) -> tuple[ReplayResult, ReplayProducer]:
    """Replay `records` over `ledger` (faked clients, `options` passed on): its result and what it sent."""
    producer = ReplayProducer()
    fake_replay(monkeypatch, producer, records, ledger or set())
    return await replay_deadletters("127.0.0.1:1", "dlq", idle_seconds=0.05, **options), producer


async def test_two_copies_of_one_record_are_replayed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two copies of one record and a copy of another: two records published and noted, the second copy a duplicate."""
    result, producer = await _replay(monkeypatch, COPIES)
    assert (result.replayed, result.duplicates, result.already, result.scanned) == (2, 1, 0, 3)
    assert producer.to("alerts") == [b"v7", b"v9"]
    assert result.published == ["dlq:0:5 -> alerts", "dlq:0:8 -> alerts"]
    assert producer.to("dlq.replayed") == [b"dlq:0:5", b"dlq:0:8"]


async def test_a_dry_run_counts_the_copies_of_one_record_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """`dry_run` over two copies of one record and a copy of another counts two to replay, one duplicate; sends none."""
    result, producer = await _replay(monkeypatch, COPIES, dry_run=True)
    assert (result.replayed, result.duplicates, result.already) == (2, 1, 0)
    assert producer.sent == []


async def test_a_later_replay_skips_every_copy_of_a_record_an_earlier_one_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    """After a replay, a second one skips both copies, the other record and a copy dead-lettered since: all already."""
    _, first = await _replay(monkeypatch, COPIES)
    result, second = await _replay(monkeypatch, [*COPIES, dead_letter(11, original=(0, 7))], first.noted())
    assert (result.replayed, result.already, result.duplicates) == (0, 4, 0)
    assert second.sent == []


async def test_a_ledger_noted_by_dead_letter_coordinates_still_skips(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ledger keys of a copy's own coordinates (as before 2026-12-06) skip it and a later copy of the same record."""
    old = {b"alerts|dlq:0:5", b"alerts|dlq:0:12"}
    result, producer = await _replay(monkeypatch, [*COPIES, dead_letter(12)], old)
    assert (result.replayed, result.already, result.duplicates) == (1, 3, 0)
    assert producer.to("alerts") == [b"v9"]


async def test_an_old_ledger_note_skips_its_record_for_another_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    """A copy noted by its own coordinates (before 2026-12-06) skips its record's copy of another `reason` after."""
    copies = [dead_letter(5, original=(0, 7), reason=b"internal"), dead_letter(6, original=(0, 7))]
    result, producer = await _replay(monkeypatch, copies, {b"alerts|dlq:0:5"}, reason="authentication")
    assert (result.replayed, result.already, producer.sent) == (0, 1, [])


async def test_a_record_the_reason_filter_skips_is_not_hashed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A `reason` matching none of three dead letters (no old-form note) computes no `sent_digest` of any of them."""
    hashed: list[object] = []
    digest = deadletter.sent_digest

    def counting(*args: Any) -> str:
        hashed.append(args)
        return digest(*args)

    monkeypatch.setattr(deadletter, "sent_digest", counting)
    result, producer = await _replay(monkeypatch, COPIES, reason="internal")
    assert (result.scanned, result.replayed, producer.sent, hashed) == (3, 0, [], [])
    chosen, _ = await _replay(monkeypatch, COPIES, reason="authentication")
    assert (chosen.replayed, len(hashed)) == (2, 3)  # the chosen ones are hashed, once each


async def test_force_sends_every_copy_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """`force` sends both copies of one record and the other record again, as many times as they were dead-lettered."""
    _, first = await _replay(monkeypatch, COPIES)
    result, producer = await _replay(monkeypatch, COPIES, first.noted(), force=True)
    assert (result.replayed, result.duplicates, result.already) == (3, 0, 0)
    assert producer.to("alerts") == [b"v7", b"v7", b"v9"]


async def test_each_target_gets_a_record_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A record replayed to its topic is replayed once more to another `to_topic`, then skipped there too."""
    _, first = await _replay(monkeypatch, COPIES[:2])
    moved, second = await _replay(monkeypatch, COPIES[:2], first.noted(), to_topic="elsewhere")
    assert (moved.replayed, moved.duplicates, moved.already) == (1, 1, 0)
    assert second.to("elsewhere") == [b"v7"]
    again, third = await _replay(monkeypatch, COPIES[:2], first.noted() | second.noted(), to_topic="elsewhere")
    assert (again.replayed, again.already, third.sent) == (0, 2, [])


async def test_copies_dead_lettered_for_other_reasons_are_one_record(monkeypatch: pytest.MonkeyPatch) -> None:
    """A record a `reason` replay sent through one copy is skipped by a replay for another reason through its other."""
    copies = [dead_letter(5, original=(0, 7), reason=b"internal"), dead_letter(6, original=(0, 7))]
    first, sent = await _replay(monkeypatch, copies, reason="internal")
    assert (first.replayed, sent.to("alerts")) == (1, [b"v7"])
    result, producer = await _replay(monkeypatch, copies, sent.noted(), reason="authentication")
    assert (result.replayed, result.already, producer.sent) == (0, 1, [])


async def test_dead_letters_naming_no_original_are_each_replayed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dead letters without `dlq.partition`/`dlq.offset` are each sent, noted by their own coordinates as before."""
    result, producer = await _replay(monkeypatch, [dead_letter(5, value=b"same"), dead_letter(6, value=b"same")])
    assert (result.replayed, result.duplicates) == (2, 0)
    assert producer.noted() == {b"alerts|dlq:0:5", b"alerts|dlq:0:6"}


async def test_dead_letters_naming_one_record_with_other_bytes_are_two(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two dead letters naming one offset but holding other bytes (no digest header) are two records, both sent."""
    copies = [dead_letter(5, original=(0, 7), value=b"{bad-1"), dead_letter(6, original=(0, 7), value=b"{bad-2")]
    result, producer = await _replay(monkeypatch, copies)
    assert (result.replayed, result.duplicates, producer.to("alerts")) == (2, 0, [b"{bad-1", b"{bad-2"])


async def test_a_digest_header_does_not_make_other_bytes_one_record(monkeypatch: pytest.MonkeyPatch) -> None:
    """A dead letter naming a record's offset and `dlq.sha256` but sending other bytes, key or headers hides nothing."""
    digest, trace = ("dlq.sha256", b"ab" * 32), ("trace", b"t")
    other_key, other_headers, other_value, genuine = (dead_letter(o, original=(0, 7), value=b"{real}")
                                                      for o in (5, 6, 8, 9))
    other_key.key, other_value.value = b"another", b"{forged}"
    for copy, headers in ((other_key, [trace]), (other_headers, []), (other_value, [trace]), (genuine, [trace])):
        copy.headers += [*headers, digest]
    result, producer = await _replay(monkeypatch, [other_key, other_headers, other_value, genuine])
    assert (result.replayed, result.duplicates) == (4, 0)
    assert producer.to("alerts")[-1] == b"{real}"


async def test_one_offset_with_another_broker_time_is_another_record(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same bytes at one offset with another broker time (`dlq.timestamp`: a topic created again) are two."""
    copies = [dead_letter(5, original=(0, 7), timestamp_ms=1_790_000_000_000),
              dead_letter(6, original=(0, 7), timestamp_ms=1_790_000_360_000),
              dead_letter(8, original=(0, 7), timestamp_ms=1_790_000_360_000)]
    result, producer = await _replay(monkeypatch, copies)
    assert (result.replayed, result.duplicates, producer.to("alerts")) == (2, 1, [b"v7", b"v7"])


async def test_a_copy_whose_key_was_replaced_by_its_digest_is_not_replayed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A copy marked `dlq.key_replaced` (its key over 4 KiB, sent as the key's digest) is unreplayable, never sent."""
    replaced = dead_letter(5, original=(0, 7))
    replaced.headers.append(("dlq.key_replaced", b"5000"))
    result, producer = await _replay(monkeypatch, [replaced, dead_letter(8, original=(0, 9))])
    assert (result.replayed, result.unreplayable, producer.to("alerts")) == (1, 1, [b"v9"])


def test_the_command_reports_the_duplicate_copies(monkeypatch: pytest.MonkeyPatch) -> None:
    """`deadletter replay` says how many copies duplicated a record it replayed, in its text line and `--json`."""
    async def replayed(*_: object, **__: object) -> ReplayResult:
        return ReplayResult(scanned=3, replayed=2, duplicates=1, published=["dlq:0:5 -> alerts", "dlq:0:8 -> alerts"])

    monkeypatch.setattr(deadletter, "replay_deadletters", replayed)
    text = CliRunner().invoke(app, ["deadletter", "replay", "--bootstrap", "127.0.0.1:1"])
    assert text.exit_code == 0, text.output
    assert "1 more copy(ies) of records this replay sent, skipped" in " ".join(text.stdout.split())
    as_json = CliRunner().invoke(app, ["deadletter", "replay", "--bootstrap", "127.0.0.1:1", "--json"])
    assert orjson.loads(as_json.stdout)["duplicates"] == 1

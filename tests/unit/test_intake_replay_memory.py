"""The intake's replay memory never forgets a signed delivery inside its window: when it is full of live entries,
a new signed delivery is answered 503 with Retry-After (the sender retries), instead of evicting one that could
then be replayed."""

from __future__ import annotations

from starlette.testclient import TestClient

from responder.intake import Intake, create_app
from responder.intake.deliveries import Deliveries
from tests.intake_kit import HMAC_NEW, FakeSender, corpus, intake_settings, webhook_headers


class Clock:
    """A settable monotonic clock."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_memory_that_keeps_live_entries_is_full_but_forgets_nothing_until_they_expire() -> None:
    """Full at its bound with live entries; one more (a request already in flight) is kept too; expiry frees it."""
    clock = Clock()
    replays = Deliveries(10.0, 2, clock, evict_live=False)
    replays.done("a", None, True)
    clock.now += 4
    replays.done("b", None, True)
    assert replays.full()
    replays.done("c", None, True)
    assert (replays.seen("a"), len(replays), replays.retry_after()) == (True, 3, 6)
    clock.now += 6.5
    assert (replays.seen("a"), replays.seen("b"), replays.full()) == (False, True, True)
    clock.now += 4
    assert (replays.full(), len(replays)) == (False, 0)


def test_a_memory_that_evicts_still_drops_its_oldest_entry_at_its_bound() -> None:
    """The delivery memory (a day's ids) stays bounded oldest first: its bound is memory, replays are caught apart."""
    replays = Deliveries(10.0, 2, Clock())
    for key in "abc":
        replays.done(key, None, True)
    assert (replays.seen("a"), replays.seen("c"), len(replays)) == (False, True, 2)


def test_signed_deliveries_past_the_replay_memory_are_refused_503_and_a_replay_stays_409() -> None:
    """With the memory full, a new signed delivery is 503 + Retry-After; a captured one replayed is still 409."""
    sources = {"hooks": {"auth": "standard-webhooks", "keys": {"new": HMAC_NEW}}}
    sender = FakeSender()
    intake = Intake(intake_settings(intake_sources=sources, intake_dedupe_max=2), sender)
    body = corpus("datadog")
    captured = webhook_headers(body, wid="m1")
    with TestClient(create_app(intake)) as client:
        answers = [client.post("/v1/events/hooks", content=body, headers=headers)
                   for headers in (captured, webhook_headers(body, wid="m2"), webhook_headers(body, wid="m3"))]
        replayed = client.post("/v1/events/hooks", content=body, headers=captured)
    assert [a.status_code for a in answers] == [202, 202, 503]
    assert answers[2].json()["reason"] == "replay-memory-full"
    assert 0 < int(answers[2].headers["retry-after"]) <= 600
    assert replayed.status_code == 409
    assert len(sender.sent) == 2

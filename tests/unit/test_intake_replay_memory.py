"""Each intake source's replay memory never forgets a signed delivery inside its window: it is sized by what the
source's rate admits in that window, a delivery is remembered from its admission whatever its outcome, and a copy
racing the original is a replay; were the memory full, a new signed delivery would be answered 503 + Retry-After."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import orjson
from starlette.testclient import TestClient

from responder.errors import RecordTooLarge
from responder.intake import Intake, create_app
from responder.intake.deliveries import Deliveries, replay_bound, replay_key
from tests.intake_kit import BEARER, HMAC_NEW, FakeSender, corpus, intake_settings, webhook_headers

HOOKS = {"auth": "standard-webhooks", "keys": {"new": HMAC_NEW}}


class Clock:
    """A settable monotonic clock."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class TooLargeHostB(FakeSender):
    """Refuses a record keyed on host-b as too large for Kafka; acknowledges the others."""

    async def send(self, topic: str, value: bytes, *, key: bytes | None,
                   headers: list[tuple[str, bytes]]) -> tuple[int, int]:
        if b"host-b" in (key or b""):
            raise RecordTooLarge("the record exceeds max_request_size")
        return await super().send(topic, value, key=key, headers=headers)


class SlowSender(FakeSender):
    """Acknowledges a record only once `release` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    async def send(self, topic: str, value: bytes, *, key: bytes | None,
                   headers: list[tuple[str, bytes]]) -> tuple[int, int]:
        await self.release.wait()
        return await super().send(topic, value, key=key, headers=headers)


def _splunk_on(host: str) -> dict[str, Any]:
    """The Splunk corpus alert about `host` (its own sid)."""
    doc: dict[str, Any] = orjson.loads(corpus("splunk"))
    doc["sid"] += host
    doc["result"]["host"] = host
    return doc


def test_a_memory_that_keeps_live_entries_is_full_but_forgets_nothing_until_they_expire() -> None:
    """Full at its bound with live entries; one more (a request in flight) is kept too; Retry-After until room."""
    clock = Clock()
    replays = Deliveries(10.0, 2, clock, evict_live=False)
    replays.done("a", None, True)
    clock.now += 4
    replays.done("b", None, True)
    assert (replays.full(), replays.retry_after()) == (True, 6)
    replays.done("c", None, True)
    assert (replays.seen("a"), len(replays), replays.retry_after()) == (True, 3, 10)
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


def test_each_source_remembers_as_many_deliveries_as_its_rate_admits_in_the_window() -> None:
    """The bound is burst + rate × 600 s, per source: a source within its rate never fills it, nor another's."""
    sources = {"hooks": {**HOOKS, "rate_per_s": 0.001, "burst": 3}, "other": {**HOOKS, "rate_per_s": 2.0}}
    intake = Intake(intake_settings(intake_sources=sources), FakeSender())
    body = corpus("datadog")
    with TestClient(create_app(intake)) as client:
        answers = [client.post("/v1/events/hooks", content=body, headers=webhook_headers(body, wid=f"m{n}"))
                   for n in range(5)]
        other = client.post("/v1/events/other", content=body, headers=webhook_headers(body, wid="o1"))
    assert [a.status_code for a in answers] == [202, 202, 202, 429, 429]
    assert other.status_code == 202
    assert (intake.replays["hooks"].max_entries, intake.replays["other"].max_entries) == (4, 1300)
    assert (len(intake.replays["hooks"]), len(intake.replays["other"])) == (3, 1)
    assert not any(memory.evict_live for memory in intake.replays.values())
    assert replay_bound(50.0, 100, 600.0) == 30_100


def test_signed_deliveries_past_a_full_replay_memory_are_refused_503_and_a_replay_stays_409() -> None:
    """With a source's memory full of live entries, its new delivery is 503 + Retry-After; a replay is still 409."""
    sender = FakeSender()
    intake = Intake(intake_settings(intake_sources={"hooks": HOOKS}), sender)
    intake.replays["hooks"] = Deliveries(600.0, 2, evict_live=False)
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


def test_a_signed_delivery_refused_after_some_records_were_acknowledged_is_remembered() -> None:
    """A 413 after another record was acknowledged: its copy replayed is 409, not produced again once ids expire."""
    sender = TooLargeHostB()
    intake = Intake(intake_settings(intake_dedupe_max=4), sender)
    body = orjson.dumps([_splunk_on("host-a"), _splunk_on("host-b")])
    captured = webhook_headers(body, wid="m1")
    with TestClient(create_app(intake)) as client:
        first = client.post("/v1/events/hooks", content=body, headers=captured)
        for n in range(4):  # a bearer source's deliveries push m1's ids out of the (evicting) delivery memory
            client.post("/v1/events/dd", content=orjson.dumps(_splunk_on(f"other-{n}")),
                        headers={"content-type": "application/json", "authorization": f"Bearer {BEARER}"})
        again = client.post("/v1/events/hooks", content=body, headers=captured)
    assert (first.status_code, again.status_code) == (413, 409)
    assert [k.endswith(b"host-a") for _, _, k, _ in sender.sent if k is not None].count(True) == 1


def test_a_delivery_refused_for_its_rate_is_not_remembered_so_its_retry_goes_through() -> None:
    """A 429 comes before admission: the same signed bytes sent again once the rate allows are produced (no 409)."""
    clock = Clock()
    intake = Intake(intake_settings(intake_sources={"hooks": {**HOOKS, "rate_per_s": 1.0, "burst": 1}}),
                    FakeSender())
    intake.limits["hooks"].clock = clock
    intake.limits["hooks"].stamp = clock.now
    body = corpus("datadog")
    retried = webhook_headers(body, wid="m2")
    with TestClient(create_app(intake)) as client:
        first = client.post("/v1/events/hooks", content=body, headers=webhook_headers(body, wid="m1"))
        limited = client.post("/v1/events/hooks", content=body, headers=retried)
        clock.now += 2
        again = client.post("/v1/events/hooks", content=body, headers=retried)
    assert [a.status_code for a in (first, limited, again)] == [202, 429, 202]


async def test_a_copy_racing_its_original_is_a_replay_not_a_second_delivery() -> None:
    """Two copies of one signed request at once: the first is delivered, the second is 409 once it is (one send)."""
    sender = SlowSender()
    intake = Intake(intake_settings(intake_sources={"hooks": HOOKS}), sender)
    body = corpus("datadog")
    headers = webhook_headers(body, wid="m1")
    transport = httpx.ASGITransport(app=create_app(intake))
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
        first = asyncio.create_task(client.post("/v1/events/hooks", content=body, headers=headers))
        second = asyncio.create_task(client.post("/v1/events/hooks", content=body, headers=headers))
        for _ in range(50):
            await asyncio.sleep(0)
        sender.release.set()
        answers = sorted([(await first).status_code, (await second).status_code])
    assert answers == [202, 409]
    assert len(sender.sent) == 1


def test_a_replay_entry_is_a_digest_whatever_the_length_of_the_webhook_id() -> None:
    """A 60 KB webhook-id costs a 64-character entry, not its own length."""
    assert len(replay_key("x" * 60_000, "1700000000")) == 64
    assert replay_key("a", "1") != replay_key("a", "2")


def test_a_signed_delivery_the_broker_failed_is_remembered_and_its_resigned_retry_is_produced() -> None:
    """A 503 after admission is remembered: its captured copy is 409, the sender's retry (new timestamp) is produced."""
    sender = FakeSender()
    intake = Intake(intake_settings(intake_sources={"hooks": HOOKS}), sender)
    body = corpus("datadog")
    now = int(time.time())
    captured, retry = webhook_headers(body, wid="m1", ts=now), webhook_headers(body, wid="m1", ts=now + 1)
    with TestClient(create_app(intake)) as client:
        sender.down = True
        failed = client.post("/v1/events/hooks", content=body, headers=captured)
        sender.down = False
        replayed = client.post("/v1/events/hooks", content=body, headers=captured)
        retried = client.post("/v1/events/hooks", content=body, headers=retry)
    assert [a.status_code for a in (failed, replayed, retried)] == [503, 409, 202]
    assert len(sender.sent) == 1

"""A single instance (no fleet, no changelog) whose alerts consumer, rebuilt after its group coordinator died, reaches
no broker is rebuilt in-process by `serve_rejoining` (`kafka_unreachable`, responder/service/rejoin.py): the old
service releases its timeline, clients and the process's metrics server, the new one recovers its state from the
same timeline and goes on acting, each effect once; one that was ready `HEALTHY_S` before it was cut off is followed
after the first backoff again."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError
from structlog.testing import capture_logs

from responder.cli.timeline_files import verify_file
from responder.errors import BrokerUnreachable
from responder.errors_kafka import CoordinatorDied
from responder.ingest.kafka import publish
from responder.models.timeline import TimelineEntry
from responder.service import Service, health_server, rebuilds, serve_rejoining
from responder.service import rejoin as rejoin_module
from responder.timeline.chain import parse_lines
from tests.findings import envelope_bytes, guardduty_finding
from tests.http import http_request
from tests.integration.harness import CountingAws, access_key, all_closed, key_status, make_settings, wait_for

pytestmark = pytest.mark.integration

_DOWN = "cannot reach Kafka at 127.0.0.1:9 (AIOKafkaConsumer): no answer in 5s: injected (the cluster down)"


def _entries(path: Path) -> list[TimelineEntry]:
    return list(parse_lines(path.read_bytes().splitlines()))


def _deactivations(entries: list[TimelineEntry], kind: str, key: str) -> list[TimelineEntry]:
    """The `kind` entries of the deactivate-key step for `key`."""
    return [e for e in entries if e.kind == kind and e.body.get("step") == "deactivate-key"
            and key in str(e.body.get("target"))]


def _cut_off_after_acting(service: Service, armed: list[str]) -> None:
    """The service's next poll of alerts finds the group coordinator dead (once), and the consumer built in its
    place reaches no broker (`BrokerUnreachable`, as within `kafka_connect_timeout` during a cluster outage): the
    real rebuild path of responder/service/consumers.py, its start the only part replaced."""
    poll = service.ingest.poll

    async def coordinator_died(*args: Any, **kwargs: Any) -> Any:
        service.ingest.poll = poll  # type: ignore[method-assign]  # once
        armed.append("coordinator died")
        raise CoordinatorDied("alerts", KafkaConnectionError("Connection at 127.0.0.1 closed (injected)"))

    async def unreachable(*args: Any, **kwargs: Any) -> None:
        armed.append("rebuild unreachable")
        raise BrokerUnreachable(_DOWN)

    service.ingest.poll = coordinator_died  # type: ignore[method-assign]
    service.ingest.start_consumer = unreachable  # type: ignore[method-assign]


async def _readyz(port: int, said: list[str]) -> None:
    """Ask /readyz every 20 ms, adding each answer's body to `said`, until cancelled."""
    while True:
        with contextlib.suppress(OSError):  # never refused (the port is kept), but a failure here must not hide one
            said.append((await http_request(port, "/readyz"))[1])
        await asyncio.sleep(0.02)


@pytest.mark.timeout(180)
async def test_a_single_instance_cut_off_from_kafka_is_rebuilt_in_process_and_acts_once(
        kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir):
    """A single instance cut off from Kafka is rebuilt in-process from its timeline and acts on each alert once."""
    first_user, later_user = f"rj-{unique}-a", f"rj-{unique}-b"
    first_key, later_key = await access_key(aws, first_user), await access_key(aws, later_user)
    timeline = tmp_path / "t.jsonl"
    settings = make_settings(kafka_bootstrap, aws, topics, unique, timeline, runbooks_dir, metrics_port=0,
                             metrics_host="127.0.0.1", kafka_connect_timeout=5.0, fenced_rejoins=2)
    assert settings.changelog_topic is None  # a single instance: its state is its timeline's
    counting = CountingAws(aws)
    health = health_server(settings)
    assert health is not None
    make = rebuilds(settings, aws=counting, metrics_server=health)
    built: list[Service] = []
    lines_before: list[int] = []  # the timeline's entries when the second service was built

    def build(previous: Service | None) -> Service:
        if previous is not None:
            lines_before.append(len(_entries(timeline)))
        built.append(make(previous))
        return built[-1]

    first_record = envelope_bytes(guardduty_finding(first_key, first_user))
    armed: list[str] = []
    stop = asyncio.Event()  # ends serving as SIGTERM does, without signalling the pytest process
    with warnings.catch_warnings(record=True) as caught, capture_logs() as logs:
        warnings.simplefilter("always")
        task = asyncio.create_task(serve_rejoining(build, rejoins=settings.fenced_rejoins, backoff=1.0, stop=stop))
        try:
            await wait_for(lambda: bool(built) and built[0].ready.is_set(), 60, what="the first service did not start",
                           serving=task)
            first = built[0]
            await publish(kafka_bootstrap, topics["alerts"], [first_record], key=first_key.encode())
            await wait_for(lambda: first.pipeline.counters.records == 1 and first.ingest.commits >= 1, 60,
                           what="the first alert was not handled and committed", serving=task)  # else it comes again
            assert await key_status(aws, first_key, user=first_user) == "Inactive"
            port = health.port
            _cut_off_after_acting(first, armed)
            said: list[str] = []  # what /readyz answered until the second service served
            watching = asyncio.create_task(_readyz(port, said))
            try:
                await wait_for(lambda: len(built) > 1 and built[1].ready.is_set(), 60, what="no second service served",
                               serving=task)
            finally:
                watching.cancel()
            assert all_closed(first)
            assert (await http_request(port, "/readyz"))[0] == 200  # the same port, answering for the new one
            assert "responder_replica_rejoins_total 1.0" in (await http_request(port, "/metrics"))[1]
            await publish(kafka_bootstrap, topics["alerts"], [first_record], key=first_key.encode())  # again
            await publish(kafka_bootstrap, topics["alerts"],
                          [envelope_bytes(guardduty_finding(later_key, later_user))], key=later_key.encode())

            def handled() -> bool:
                entries = _entries(timeline)
                return bool(_deactivations(entries, "step.result", later_key)) and bool(
                    _deactivations(entries, "step.skipped", first_key))

            await wait_for(handled, 60, what="the second service did not handle both alerts", serving=task)
        finally:
            stop.set()
            await asyncio.wait_for(task, 60)
        gc.collect()
    assert armed == ["coordinator died", "rebuild unreachable"]
    rejoining = [e for e in logs if e["event"] == "replica_rejoining"]
    assert [(e["reason"], e["rejoin"]) for e in rejoining] == [("kafka_unreachable", 1)], rejoining
    assert rejoining[0]["error"] == f"BrokerUnreachable: {_DOWN}"
    assert "recovers it from its timeline" in rejoining[0]["detail"], rejoining  # no changelog to restore from
    between = [body for body in said if "rejoining after an unreachable Kafka cluster" in body]
    assert between, said  # /readyz 503 between the two services, saying why
    assert all("recovers it from its timeline" in body and "changelog" not in body for body in between), between
    assert len(built) == 2
    assert [e["event"] for e in logs].count("service_stopped") == 1  # the second's clean end (the first failed)
    assert not health.listening  # serving's end stopped the process's metrics server
    assert counting.counts.get("update_access_key") == 2, counting.calls  # one per key, none again
    assert await key_status(aws, later_key, user=later_user) == "Inactive"
    entries = _entries(timeline)
    done = _deactivations(entries, "step.result", first_key)
    assert len(done) == 1, done
    assert entries.index(done[0]) < lines_before[0]  # acted on by the first service only
    again = _deactivations(entries[lines_before[0]:], "step.skipped", first_key)  # the second recovered it:
    assert [(e.body["reason"], e.incident) for e in again] == [("already_done", done[0].incident)], again  # the
    # same incident, continued
    later = _deactivations(entries[lines_before[0]:], "step.result", later_key)
    assert [e.body["status"] for e in later] == ["ok"], later
    assert verify_file(timeline, None, None, []).entries == len(entries)  # `responder timeline verify`: one chain
    assert [str(w.message) for w in caught if "Unclosed" in str(w.message)] == []


@pytest.mark.timeout(180)
async def test_a_single_instance_ready_healthy_s_before_it_is_cut_off_rejoins_after_the_first_backoff(
        kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir, monkeypatch):
    """A Service ready `HEALTHY_S` (rejoin.py's clock) before it is cut off rejoins after `backoff`, not twice it."""
    # three real Services cut off from Kafka in turn; rejoin.py's clock reads, when one fails, its `ready_since`
    # (running.py) plus how long the phase says it was ready, whatever time really passed (a loaded machine's minute
    # between ready and cut off must not reset the backoff): the first rejoins after `backoff`; the second, ready
    # past `HEALTHY_S`, after `backoff` again, not twice it; the third, ready a second short of it, after twice it
    started = time.monotonic()
    built: list[Service] = []
    ready_for = [0.0]  # what rejoin.py's clock says the service that fails was ready for

    def clock() -> float:
        since = built[-1].ready_since
        return (time.monotonic() if since is None else since) + ready_for[0]

    monkeypatch.setattr(rejoin_module, "time", SimpleNamespace(monotonic=clock))
    settings = make_settings(kafka_bootstrap, aws, topics, unique, tmp_path / "t.jsonl", runbooks_dir,
                             kafka_connect_timeout=5.0, fenced_rejoins=3)
    make = rebuilds(settings, aws=aws)

    def build(previous: Service | None) -> Service:
        built.append(make(previous))
        return built[-1]

    armed: list[str] = []
    stop = asyncio.Event()
    with capture_logs() as logs:
        task = asyncio.create_task(serve_rejoining(build, rejoins=settings.fenced_rejoins, backoff=0.1, stop=stop))
        try:
            for n, ready_s in enumerate((0.0, rejoin_module.HEALTHY_S + 1, rejoin_module.HEALTHY_S - 1), start=1):
                await wait_for(lambda n=n: len(built) == n and built[-1].ready.is_set(), 60,
                               what=f"service {n} did not get ready", serving=task)
                ready_for[0] = ready_s
                _cut_off_after_acting(built[-1], armed)
            await wait_for(lambda: len(built) == 4, 60, what="no fourth service was built", serving=task)
        finally:
            stop.set()
            await asyncio.wait_for(task, 60)
    rejoining = [e for e in logs if e["event"] == "replica_rejoining"]
    assert [(e["reason"], e["in_s"]) for e in rejoining] == [
        ("kafka_unreachable", 0.1), ("kafka_unreachable", 0.1), ("kafka_unreachable", 0.2)], rejoining
    assert armed == ["coordinator died", "rebuild unreachable"] * 3
    # each became ready by the clock rejoin.py reads unpatched (time.monotonic), during this test
    assert all(s.ready_since is not None and started <= s.ready_since <= time.monotonic() for s in built[:3])

"""bench/pipeline.py's latency phase runs its replicas as a fleet (a changelog co-partitioned with the input) unless
told `--no-fleet`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bench import _latency
from bench import pipeline as bench_pipeline
from responder.service import Service


async def _topics_made(monkeypatch: pytest.MonkeyPatch, replicas: int, *, fleet: bool) -> tuple[str | None, list[Any]]:
    """What `make_topics` returns and the admin calls it made (kind, topic, partitions), no broker reached."""
    made: list[Any] = []

    async def topics(bootstrap: str, names: list[str], partitions: int) -> None:
        made.extend(("topic", name, partitions) for name in names)

    async def changelog(bootstrap: str, topic: str, partitions: int) -> None:
        made.append(("changelog", topic, partitions))

    monkeypatch.setattr(_latency, "ensure_topics", topics)
    monkeypatch.setattr(_latency, "ensure_changelog", changelog)
    return await _latency.make_topics("127.0.0.1:1", replicas, fleet=fleet), made


@pytest.mark.parametrize("replicas", [3, 5])
async def test_a_fleet_gets_a_compacted_changelog_with_the_input_topics_partitions(
        monkeypatch: pytest.MonkeyPatch, replicas: int) -> None:
    """By default the latency phase makes a changelog (ensure_changelog: compacted) as partitioned as its input."""
    changelog, made = await _topics_made(monkeypatch, replicas, fleet=True)
    assert changelog == _latency.CHANGELOG
    assert made == [("topic", _latency.TOPIC, replicas), ("changelog", _latency.CHANGELOG, replicas)]


async def test_without_a_fleet_no_changelog_is_made(monkeypatch: pytest.MonkeyPatch) -> None:
    """`--no-fleet` makes the input topic only, and the replicas are given no changelog."""
    changelog, made = await _topics_made(monkeypatch, 3, fleet=False)
    assert (changelog, made) == (None, [("topic", _latency.TOPIC, 3)])


def test_the_fleet_is_the_default_and_no_fleet_turns_it_off() -> None:
    """bench/pipeline.py runs a fleet unless given --no-fleet."""
    assert bench_pipeline.parser().parse_args([]).fleet is True
    assert bench_pipeline.parser().parse_args(["--no-fleet"]).fleet is False


@pytest.mark.parametrize("changelog", [_latency.CHANGELOG, None])
async def test_a_replica_process_runs_in_fleet_mode_when_given_the_changelog(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, changelog: str | None) -> None:
    """A replica's command line, parsed as bench/pipeline.py does, builds a fleet-mode Service only with a changelog."""
    args = bench_pipeline.parser().parse_args(_latency.replica_argv(tmp_path / "r.json", "127.0.0.1:1", changelog)[2:])
    built: list[Service] = []

    def service(*a: Any, **kw: Any) -> Service:
        built.append(Service(*a, **kw))
        return built[-1]

    async def serve(svc: Service) -> None:  # stopped at once, as by SIGTERM: no broker reached
        await asyncio.sleep(0)

    monkeypatch.setattr(_latency, "Service", service)
    monkeypatch.setattr(_latency, "serve", serve)
    monkeypatch.setattr(_latency, "gc_pauses", list)  # no collector callback left in the test process
    await _latency.replica(args.bootstrap, args.replica, args.changelog)
    [svc] = built
    try:
        assert svc.settings.changelog_topic == changelog
        assert (svc.fleet is not None) is (changelog is not None)
    finally:
        svc.recorder.close()
        await svc.close_unstarted()


def test_the_latency_line_says_whether_the_replicas_were_a_fleet() -> None:
    """The printed latency line names the changelog of a fleet, or says the replicas were not one."""
    assert _latency.shape(3, "lat.changelog") == "3 replicas, fleet (changelog lat.changelog)"
    assert _latency.shape(3, None) == "3 replicas, not a fleet"

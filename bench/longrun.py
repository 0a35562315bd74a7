"""Thirty days of running, in-process: restart time and RSS stay flat in history.

    PYTHONPATH=. .venv/bin/python bench/longrun.py [--events 1000000] [--incidents 100000] [--days 30] [--real-days 3]
        [--operator-requests 10000] [--operator-days 0.1]

Drives the engine directly (no broker) on an injected clock: `--incidents` incidents spread over `--days`
days, `--events / --incidents` events each, one no-op step per incident, timeline entries made durable
with group commit. Closed incidents are evicted every virtual hour, as the service does. After 10k
events and after all of them, the engine state is snapshotted (what the fleet's changelog holds) and a
fresh process restarts from it: it resumes the timeline (from its tail) and restores the snapshot. The
bench prints that restart time and RSS for both points and their ratio, and the snapshot's size and make-up
at every 100k events. Then `--operator-requests` signed operator requests (one-minute lifetime; nine in ten refused
for their key, the tenth an undo that completes not ok) spread over `--operator-days` go through the service's
`Operator` on its own timeline file: the request ids it holds stay at one lifetime's worth (plus the margin), not
one per request, and its RSS growth is printed.
RSS is read from /proc (the restarted process's own peak, the running one's current and peak).
Restart time is the restarted process's CPU time for that work (best of 7; wall time is printed too): on a
shared machine, wall time measures the other processes' load.

`--real-days D` fast-forwards: the first 10k events and the last D days go through the engine; the incidents
between are appended to the timeline at the format level (the first real incident's entries with new ids,
chained and hashed as the recorder does). The restart reads the same kind of file (as long, with the same
tail) and the snapshot the engine built over the last D days. With D ≥ 3 that snapshot is what a full run
ends with: nothing in the state outlives 2 days (quota windows keep a run only as long as a configured quota that
can count it looks back, and this runbook has none; closed incidents are kept 6 hours). A full run
through the engine showed that (docs/fleet.md).
Targets (DESIGN.md): restart-time ratio (1M ÷ 10k) ≤ 1.5; RSS < 300 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench._dispatch import RUNBOOK, NoAws, NoopActuator, NoopParams
from bench._fastforward import first_incident, forward
from responder import log
from responder.actuators.base import ActuationContext, ActuationResult
from responder.actuators.registry import Registry
from responder.auth import KeyRing, signed_headers
from responder.engine.answered import FORGET_MARGIN_S
from responder.engine.executor import Engine
from responder.engine.operator import Operator
from responder.engine.snapshot import EngineSnapshot
from responder.engine.state import EngineState
from responder.models.event import Event
from responder.models.operator import OperatorRequest
from responder.normalise import normalise
from responder.rules.matcher import Match
from responder.sandbox import lifeline
from responder.timeline.recorder import Recorder
from responder.timeline.store import FileStore
from tests.findings import envelope_bytes, guardduty_finding

START = datetime(2026, 1, 1, tzinfo=UTC)
RUNS = int(os.environ.get("LONGRUN_RESTARTS", "7"))  # restarts per point; the fastest (CPU time) counts
BOOK = RUNBOOK.model_copy(update={"window": 600.0, "cooldown": 300.0})


class QuietActuator(NoopActuator):
    """The no-op step without bench/_dispatch.py's dispatch log. `APPLIED` keeps one entry per access key for the
    latency bench's join; here that was one entry per incident, never dropped: the running RSS's ~12 MB over
    100,000 incidents (a tracemalloc diff, docs/fleet.md), growth of the bench and not of the engine."""

    async def apply(self, p: NoopParams, ctx: ActuationContext) -> ActuationResult:
        return ActuationResult(changed=True, target=p.access_key_id)

    async def verify(self, p: NoopParams, ctx: ActuationContext) -> bool:
        return True


def rss_mb(field: str = "VmHWM") -> float:
    """This process's peak (VmHWM) or current (VmRSS) resident set, MB, from /proc.

    Not `getrusage(RUSAGE_SELF).ru_maxrss`: Linux keeps it across fork + exec, so a restart measured in a
    child process would report its parent's peak (an earlier version of this bench did).
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def restart(directory: Path) -> dict[str, float]:
    """What a restarted replica does: resume the timeline and restore the snapshot (run in a fresh process)."""
    begin, cpu = time.perf_counter(), time.process_time()
    recorder = Recorder(FileStore(directory / "timeline.jsonl"))
    state = EngineState()
    state.restore(EngineSnapshot.model_validate_json((directory / "snapshot.json").read_bytes()))
    took, cpu = time.perf_counter() - begin, time.process_time() - cpu
    recorder.store.close()
    return {"wall": took, "seconds": cpu, "rss_mb": rss_mb(), "incidents": len(state.incidents.all()),
            "seq": recorder.next_seq}


def measure(directory: Path, engine: Engine) -> dict[str, float]:
    snap = engine.state.snapshot()
    (directory / "snapshot.json").write_text(snap.model_dump_json())
    sizes = {"snapshot_kb": (directory / "snapshot.json").stat().st_size / 1024, "done": len(snap.done),
             "closed": len(snap.closed), "quota_times": sum(len(q.times) for q in snap.quotas),
             "timeline_mb": (directory / "timeline.jsonl").stat().st_size / 2**20}
    engine.recorder.store.close()  # one process writes a timeline file, under its lock: hand it over
    runs: list[dict[str, float]] = []
    for _ in range(RUNS):
        out = lifeline.run([sys.executable, __file__, "--restart", str(directory)], capture_output=True, check=False)
        if out.returncode:
            raise SystemExit(out.stderr.decode()[-2000:])
        runs.append(json.loads(out.stdout))
    engine.recorder.store = FileStore(directory / "timeline.jsonl")
    best = min(runs, key=lambda r: r["seconds"])
    return best | sizes | {"live_rss_mb": rss_mb("VmRSS"), "peak_rss_mb": rss_mb()}


def engine_on(directory: Path, now: list[float]) -> tuple[Recorder, Engine, Event]:
    """The bench's engine on the clock `now[0]`, its recorder, and the GuardDuty event every incident copies."""
    registry = Registry()
    registry.add(QuietActuator())
    recorder = Recorder(FileStore(directory / "timeline.jsonl"), linger=0.002, clock=lambda: now[0])
    engine = Engine(recorder, registry, NoAws(), clock=lambda: now[0])
    engine.use_runbooks([BOOK])
    return recorder, engine, normalise(envelope_bytes(guardduty_finding("AKIA000000000000TMPL")))[0]


async def drive(events: int, incidents: int, days: float, directory: Path, real_days: float | None = None) -> None:
    per = max(1, events // incidents)
    spacing = days * 86400 / incidents
    now = [START.timestamp()]
    recorder, engine, template = engine_on(directory, now)
    done, evicted_at = 0, now[0]
    points: dict[str, dict[str, float]] = {}
    began = time.perf_counter()
    batch: list[Event] = []
    first = (10_000 // per) + 1  # incidents before the 10k point always go through the engine
    skip = range(first, incidents - int(incidents * real_days / days)) if real_days is not None else range(0)
    templates: list[tuple[str, bytes]] = []
    old: tuple[str, str] = ("", "")
    for i in range(incidents):
        key = f"AKIA{i:016d}"
        if i in skip:  # fast-forward: the timeline grows by the entries the engine writes for one incident
            if not templates:
                opened, templates = first_incident(directory / "timeline.jsonl")
                old = (opened, "AKIA0000000000000000")
                print(f"fast-forward over incidents {skip.start:,}..{skip.stop - 1:,}: {len(templates)} entries "
                      "each, appended at the format level (chained, not through the engine)", flush=True)
            now[0] = (START + timedelta(seconds=i * spacing)).timestamp()
            forward(recorder, templates, old, (f"ff-{i}", key))
            done += per
            if i % 256 == 0:
                recorder.store.sync()
            if i == skip.stop - 1:
                recorder.store.sync()
                engine.evict()  # the clock jumped: the real incidents before the jump close
            continue
        res = tuple(r.model_copy(update={"id": key}) if r.id.startswith("AKIA") else r for r in template.resources)
        for j in range(per):
            at = START + timedelta(seconds=i * spacing + j * 30)
            batch.append(template.model_copy(update={"id": f"{i}-{j}", "time": at, "resources": res,
                                                     "incident_key": key}))
        if len(batch) >= 256 or i == incidents - 1 or i + 1 == skip.start:
            now[0] = max(now[0], batch[-1].time.timestamp())
            await asyncio.gather(*(engine.handle(Match(BOOK, e)) for e in batch))
            await recorder.flush()
            done += (len_batch := len(batch))
            batch = []
            if now[0] - evicted_at >= 3600:
                engine.evict()
                evicted_at = now[0]
            if not points and done >= 10_000:
                points["10k"] = measure(directory, engine) | {"events": done, "entries": recorder.next_seq}
                print(f"10k point: {points['10k']}", flush=True)
            if done % 100_000 < len_batch:  # a restart measured at every 100k events, against the 10k one
                p = measure(directory, engine) | {"events": done, "entries": recorder.next_seq}
                print(f"after {done:,} events ({time.perf_counter() - began:.0f} s): restart "
                      f"{p['seconds'] * 1000:.1f} ms CPU ({p['wall'] * 1000:.1f} ms wall) = "
                      f"{p['seconds'] / points['10k']['seconds']:.2f}x the 10k one, "
                      f"restarted RSS {p['rss_mb']:.0f} MB, running RSS {p['live_rss_mb']:.0f} MB "
                      f"(peak {p['peak_rss_mb']:.0f} MB), "
                      f"live incidents {p['incidents']:,}, snapshot {p['snapshot_kb']:.0f} KiB "
                      f"(done {p['done']:,}, closed {p['closed']:,}, quota times {p['quota_times']:,}), "
                      f"timeline {p['timeline_mb']:.0f} MiB", flush=True)
    points["all"] = measure(directory, engine) | {"events": done, "entries": recorder.next_seq}
    recorder.close()
    elapsed = time.perf_counter() - began
    small, big = points["10k"], points["all"]
    print(f"simulated {days:g} days: {done:,} events, {incidents:,} incidents, {big['entries']:,} timeline entries "
          f"in {elapsed:.0f} s ({done / elapsed:,.0f} events/s); open incidents now {big['incidents']:,}")
    for p in points.values():
        print(f"after {p['events']:>9,} events ({p['entries']:>9,} entries): restart {p['seconds'] * 1000:7.1f} ms "
              f"CPU ({p['wall'] * 1000:.1f} ms wall), "
              f"restarted RSS {p['rss_mb']:6.1f} MB, live incidents {p['incidents']:,}, "
              f"running RSS {p['live_rss_mb']:6.1f} MB, snapshot {p['snapshot_kb']:.0f} KiB, "
              f"timeline {p['timeline_mb']:.0f} MiB")
    ratio = big["seconds"] / small["seconds"]
    print(f"restart-time ratio (all ÷ 10k): {ratio:.2f} (target ≤ 1.5); restarted RSS {big['rss_mb']:.0f} MB, "
          f"running RSS {big['live_rss_mb']:.0f} MB, peak {big['peak_rss_mb']:.0f} MB (target < 300 MB)")


async def operator_requests(requests: int, days: float, directory: Path) -> None:
    """`requests` operator requests over `days` simulated days through an `Operator`: the ids it holds, at most and at
    the end, against one request lifetime's worth; its RSS before and after."""
    log.configure("json", "error")  # a refusal is a warning: one line per request
    secret, ttl, spacing = b"bench-operator-key", 60.0, days * 86400 / requests
    now = [START.timestamp()]
    recorder = Recorder(FileStore(directory / "operator.jsonl"), clock=lambda: now[0])
    op = Operator(recorder, Registry(), ActuationContext(aws=NoAws()), keys=KeyRing({"ops": secret, "viewer": secret}),
                  clock=lambda: now[0], permissions={"ops": ["undo"]})
    rss, peak, began = rss_mb("VmRSS"), 0, time.perf_counter()
    for i in range(requests):
        now[0] = START.timestamp() + i * spacing
        at = datetime.fromtimestamp(now[0], UTC)
        value = OperatorRequest(id=f"{i:032x}", action="undo", by="bench", incident="not-on-this-timeline",
                                issued_at=at, expires_at=at + timedelta(seconds=ttl)).canonical()
        [(_, key_id), (_, signature)] = signed_headers("ops" if i % 10 == 0 else "viewer", secret, value)
        await op.handle(value, key_id.decode(), signature.decode())
        peak = max(peak, len(op.memory))
    op.refusals.close()
    recorder.close()
    lifetime = (ttl + FORGET_MARGIN_S) / spacing + 1
    print(f"operator: {requests:,} requests over {days:g} days in {time.perf_counter() - began:.0f} s "
          f"({recorder.next_seq:,} timeline entries): request ids held at most {peak:,}, at the end "
          f"{len(op.memory):,} (one lifetime and the margin: {lifetime:.0f}); running RSS {rss:.0f} → "
          f"{rss_mb('VmRSS'):.0f} MB", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--days", type=float, default=30)
    parser.add_argument("--restart", type=Path)
    parser.add_argument("--operator-requests", type=int, default=10_000, help="0: none")
    parser.add_argument("--operator-days", type=float, default=0.1,
                        help="the simulated days the operator requests are spread over (dense: ~1 a second)")
    parser.add_argument("--real-days", type=float, default=None,
                        help="fast-forward: only the first 10k events and the last REAL_DAYS days go through the "
                             "engine; the incidents between are appended to the timeline at the format level")
    args = parser.parse_args()
    if args.restart:
        print(json.dumps(restart(args.restart)))
        return
    log.configure("json", "warning")
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(drive(args.events, args.incidents, args.days, Path(tmp), args.real_days))
        if args.operator_requests:
            asyncio.run(operator_requests(args.operator_requests, args.operator_days, Path(tmp)))


if __name__ == "__main__":
    main()

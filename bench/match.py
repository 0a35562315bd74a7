"""Matching throughput and flatness: events/s against 100, 1,000 and 10,000 runbooks on one core.

Run: `.venv/bin/python bench/match.py` (or `make bench`). Prints events/s per rule-set size, the
ratio time(10,000)/time(100) (target ≤ 2) and the rate at 1,000 runbooks (target ≥ 50,000/s), plus
decode + normalise + match of real GuardDuty records at 1,000 runbooks for context. Exits 1 when a
target is missed. Nothing here is asserted in the unit tests: wall-clock numbers belong to benchmarks.

The synthetic rule set is shaped like a real one: most runbooks name an exact finding type or a
type family (`Family:Resource/*`), some anchor on an account (`event.account eq …`), and a constant
handful are catch-alls (`source: "*"`, conditions only), which every event must check.
"""

from __future__ import annotations

import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from responder.models.event import Event, Resource, ResourceKind, Severity
from responder.models.runbook import Runbook
from responder.normalise import normalise
from responder.rules.matcher import Matcher

SOURCES = ["guardduty", "securityhub", "cloudtrail", "falco", "model-monitor", "ocsf", "siem", "custom"]
FAMILIES = [f"Family{i}" for i in range(60)]
RESOURCES = ["IAMUser", "EC2", "S3", "Kubernetes", "Runtime", "Lambda", "SageMaker", "Bedrock"]
UNIVERSE = 20_000  # distinct finding types events are drawn from
CATCH_ALLS = 5
EVENTS = 5_000


def type_name(i: int) -> str:
    """The i-th finding type of the universe."""
    return f"{FAMILIES[i % len(FAMILIES)]}:{RESOURCES[i % len(RESOURCES)]}/Finding{i}"


def runbook(i: int, rng: random.Random) -> Runbook:
    """One synthetic runbook: 70 % exact type, 20 % type family glob, 10 % account anchor."""
    kind = rng.random()
    src = SOURCES[i % len(SOURCES)]
    cond: list[dict[str, object]] = [{"field": "event.severity.score", "op": "ge", "value": rng.choice([2, 5, 7])}]
    if kind < 0.7:
        trigger = {"source": src, "type": type_name(rng.randrange(UNIVERSE)), "conditions": cond}
    elif kind < 0.9:
        fam = f"{rng.choice(FAMILIES)}:{rng.choice(RESOURCES)}/*"
        trigger = {"source": src, "type": fam, "conditions": [*cond, {"field": "event.region", "op": "in",
                                                                       "value": ["us-east-1", "eu-west-1"]}]}
    else:
        acct = f"{rng.randrange(10**12):012d}"
        trigger = {"source": "*", "conditions": [{"field": "event.account", "op": "eq", "value": acct}, *cond]}
    return Runbook.model_validate({
        "id": f"rb-{i}", "trigger": trigger,
        "steps": [{"id": "s", "actuator": "aws.iam.deactivate_access_key", "with": {}}],
    })


def catch_all(i: int) -> Runbook:
    """A rule every event must check: any source, any type, a severity and resource test."""
    return Runbook.model_validate({
        "id": f"catch-all-{i}",
        "trigger": {"conditions": [{"field": "event.severity.score", "op": "ge", "value": 9.5},
                                   {"field": "event.resource.access_key.id", "op": "exists", "value": True}]},
        "steps": [{"id": "s", "actuator": "aws.iam.deactivate_access_key", "with": {}}],
    })


def events(rng: random.Random) -> list[Event]:
    """Pre-normalised events drawn from the type universe."""
    at = datetime(2026, 11, 25, tzinfo=UTC)
    out = []
    for n in range(EVENTS):
        i = rng.randrange(UNIVERSE)
        out.append(Event(
            id=f"e{n}", source=SOURCES[i % len(SOURCES)], type=type_name(i), severity=Severity.of(rng.uniform(0, 10)),
            time=at, account=f"{rng.randrange(10**12):012d}", region=rng.choice(["us-east-1", "eu-west-1", "ap-1"]),
            resources=(Resource(kind=ResourceKind.ACCESS_KEY, id=f"AKIA{n:016d}"),), incident_key=f"k{n}",
        ))
    return out


def rate(matcher: Matcher, evs: list[Event], rounds: int = 5) -> tuple[float, int]:
    """Best-of-rounds events/s, and matches found in one pass."""
    best = float("inf")
    matched = 0
    for _ in range(rounds):
        start = time.perf_counter()
        matched = sum(len(matcher.match(e)) for e in evs)
        best = min(best, time.perf_counter() - start)
    return len(evs) / best, matched


def pipeline_rate(matcher: Matcher) -> tuple[float, float]:
    """Events/s of decode + normalise alone, and of decode + normalise + match, on real GuardDuty records."""
    from tests.findings import envelope_bytes, guardduty_finding

    raws = [envelope_bytes(guardduty_finding(f"AKIA{n:016d}", finding_id=f"f{n}")) for n in range(2000)]
    start = time.perf_counter()
    for raw in raws:
        normalise(raw)
    alone = len(raws) / (time.perf_counter() - start)
    start = time.perf_counter()
    for raw in raws:
        for event in normalise(raw):
            matcher.match(event)
    return alone, len(raws) / (time.perf_counter() - start)


def main() -> int:
    """Measure, print, and exit non-zero if a target is missed."""
    rng = random.Random(4)
    evs = events(rng)
    rates: dict[int, float] = {}
    for n in (10, 100, 1_000, 10_000):
        books = [runbook(i, rng) for i in range(n - CATCH_ALLS)] + [catch_all(i) for i in range(CATCH_ALLS)]
        matcher = Matcher(books)
        rates[n], matched = rate(matcher, evs)
        print(f"{n:>6} runbooks: {rates[n]:>10,.0f} events/s  ({matched} matches over {len(evs)} events; "
              f"filed {matcher.index.stats()})")
        if n == 1_000:
            alone, full = pipeline_rate(matcher)
            print(f"        real GuardDuty records: decode + normalise {alone:,.0f}/s; + match {full:,.0f}/s "
                  f"(matching adds {(1 / full - 1 / alone) * 1e6:.1f} µs/event)")
    ratio = rates[100] / rates[10_000]
    print(f"ratio time(10,000 runbooks) / time(100 runbooks) = {ratio:.2f}  (target <= 2)")
    print(f"rate at 1,000 runbooks / target 50,000 events/s = {rates[1_000] / 50_000:.2f}  (target >= 1)")
    return 0 if ratio <= 2 and rates[1_000] >= 50_000 else 1


if __name__ == "__main__":
    raise SystemExit(main())

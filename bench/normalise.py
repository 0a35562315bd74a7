"""Decode + normalise throughput per format, on one core, against plain `orjson.loads` of the same bytes.

Run: `.venv/bin/python bench/normalise.py` (or `make bench`). Each rate is the best of many short rounds
pinned to one core (timeit's method) and timed with the thread's CPU clock, so other load on the machine
does not drag it down. A per-stage breakdown of the GuardDuty record follows the table. `--seconds S` per row,
`--format NAME` to run one row. Target: >= 50,000 events/s for a GuardDuty finding (EventBridge envelope).
Samples come from ../shared/corpus when present; the GuardDuty rows always use the bundled finding.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from responder.demo import eventbridge, finding_template  # noqa: E402
from responder.models.event import Event  # noqa: E402
from responder.normalise import guardduty, guardduty_fast, head, normalise  # noqa: E402
from responder.normalise.registry import detect  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus"
TARGET = 50_000
RATIO_TARGET = 0.25  # of orjson.loads on the same bytes (issue 11)
SAMPLES = {
    "securityhub (Imported envelope)": "securityhub/eventbridge_imported_cis_1.4_access_key_rotation.json",
    "ocsf 2004": "ocsf/detection_finding_2004_securityhub_guardduty_cloudtrail_disabled.json",
    "cloudtrail record": "cloudtrail/ocsf_examples_createuser_assumedrole.json",
    "falco": "falco/falco_docs_terminal_shell_in_container_critical.json",
    "sagemaker violations (7)": "ml_monitoring/sagemaker_model_monitor_data_quality_constraint_violations.json",
    "cloudwatch alarm": "ml_monitoring/cloudwatch_alarm_state_change_lambda_target_metric_math.json",
    "datadog signal": "siem_alerts/datadog_cloud_siem_signal_eventbridge_eventbridge_rule_deleted.json",
    "alertmanager (2 alerts)": "alertmanager/alertmanager_webhook_v4_firing_two_alerts.json",
}


def _rate(fn: Callable[[bytes], Any], data: bytes, seconds: float) -> tuple[float, int]:
    """Best calls per CPU second of fn(data) over rounds filling about `seconds` (timeit's best-of, timed with
    this thread's CPU clock, so time spent descheduled on a shared machine does not count)."""
    out = fn(data)
    per_call = len(out) if isinstance(out, list) else 1
    timer = timeit.Timer(lambda: fn(data), timer=time.thread_time)
    number = max(1, int(0.05 / max(timer.timeit(number=50) / 50, 1e-9)))
    rounds = max(3, int(seconds / 0.05))
    best = min(timer.repeat(number=number, repeat=rounds)) / number
    return 1.0 / best, per_call


def stages(data: bytes, seconds: float) -> None:
    """Where a GuardDuty record's decode + normalise time goes, stage by stage (µs of CPU per record)."""
    doc = orjson.loads(data)
    finding = doc["detail"]
    ips = guardduty._remote_ips(finding["service"]["action"])
    event = normalise(data)[0]
    rows: list[tuple[str, Callable[[bytes], Any]]] = [
        ("orjson.loads", orjson.loads),
        ("detect the format", lambda _: detect(doc)),
        ("resources", lambda _: guardduty._resources(finding["resource"], ips)),
        ("finding → Event (incl. resources)", lambda _: guardduty.decode_envelope(doc)),
        ("  (the fast lane alone)", lambda _: guardduty_fast.event(finding, doc)),
        ("  (general decoder, fast lane not taken)", lambda _: guardduty.finding_to_event(finding, doc)),
        ("  (Event validated by pydantic instead)", lambda _: Event.model_validate(event.model_dump())),
        ("normalise (all of it)", normalise),
        ("head only (the no-match prefilter's fields)", lambda _: head(doc)),
        ("event.view() (first condition on a path)", lambda _: event.model_dump(mode="json", exclude={"raw"})),
    ]
    print("\nGuardDuty (EventBridge envelope), per stage:")
    for name, fn in rows:
        calls, _ = _rate(fn, data, seconds / 2)
        print(f"  {name:46} {1e6 / calls:8.2f} µs")


def samples() -> dict[str, bytes]:
    """Name → record bytes."""
    finding = finding_template()
    out = {
        "guardduty (EventBridge envelope)": orjson.dumps(eventbridge(finding)),
        "guardduty (raw finding)": orjson.dumps(finding),
    }
    drift = {"source": "responder.drift", "model": "fraud-scorer", "version": "7", "metric": "psi", "window": "1h",
             "statistic": 0.31, "threshold": 0.2, "verdict": "detected", "time": "2026-11-25T10:00:00Z"}
    out["responder.drift"] = orjson.dumps(drift)
    if CORPUS.is_dir():
        out |= {name: (CORPUS / rel).read_bytes() for name, rel in SAMPLES.items() if (CORPUS / rel).is_file()}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--format", default=None, help="only the rows whose name contains this")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    print(f"{'format':34} {'bytes':>7} {'events/s':>10} {'orjson.loads/s':>15} {'ratio':>7}")
    ok = ratio_ok = True
    for name, data in samples().items():
        if args.format and args.format not in name:
            continue
        calls, per_call = _rate(normalise, data, args.seconds)
        base, _ = _rate(orjson.loads, data, args.seconds / 2)
        events = calls * per_call
        print(f"{name:34} {len(data):>7} {events:>10,.0f} {base:>15,.0f} {calls / base:>7.3f}")
        if name.startswith("guardduty (EventBridge"):
            ok = ok and events >= TARGET
            ratio_ok = calls / base >= RATIO_TARGET
    if not args.format or "guardduty" in args.format:
        stages(samples()["guardduty (EventBridge envelope)"], args.seconds)
    print(f"target: guardduty >= {TARGET:,} events/s on one core: {'met' if ok else 'NOT met'}; "
          f"ratio >= {RATIO_TARGET}: {'met' if ratio_ok else 'NOT met'}")
    print("ratio = records/s through decode+normalise ÷ records/s of orjson.loads alone (same bytes)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

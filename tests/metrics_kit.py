"""The series `responder run` and the intake export as a scrape shows them (sample names with the suffixes the client
library adds, each with its label names), and what a PromQL expression of the shipped rules or dashboard reads."""

from __future__ import annotations

import re
from types import SimpleNamespace

from prometheus_client import generate_latest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

from responder.instruments import HeldPartitions
from responder.intake.metrics import IntakeMetrics
from responder.metrics import Metrics

TARGET_LABELS = frozenset({"job", "instance"})  # Prometheus adds them to every scraped series
# the Prometheus Operator adds it to a ServiceMonitor's targets, compose's scrape jobs have none: a rule may group by it
# (an absent label groups as empty), not match on it
GROUPING_TARGET_LABELS = frozenset({"namespace"})
OTHERS = {  # series the rules read that responder does not export: Prometheus' own, and kube-state-metrics'
    "up": frozenset(),
    "kube_pod_container_status_restarts_total": frozenset({"namespace", "pod", "uid", "container"}),
}
_SELECTOR = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}")
_MATCHER = re.compile(r"(\w+)\s*(?:=~|!~|!=|=)")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")


def exported_series() -> dict[str, frozenset[str]]:
    """Every sample name the service and the intake export, with its label names: both registries scraped (the text
    format) once each labelled metric has a child, with what a running service adds (the mirror's gauges, the held
    partitions' collector, the series started at zero)."""
    metrics = Metrics(mirror=SimpleNamespace(pending=0, dropped=0, overflowed=0))
    metrics.start_at_zero(["security.alerts"], ["alerts"])
    metrics.registry.register(HeldPartitions(lambda: [("security.alerts", 0)]))
    intake = IntakeMetrics()
    for owner in (metrics, metrics.partitions, intake):
        for metric in vars(owner).values():
            if isinstance(metric, MetricWrapperBase) and metric._labelnames:
                metric.labels(*("x" for _ in metric._labelnames))
    found: dict[str, set[str]] = {}
    for registry in (metrics.registry, intake.registry):
        for family in text_string_to_metric_families(generate_latest(registry).decode()):
            for sample in family.samples:
                found.setdefault(sample.name, set()).update(sample.labels)
    return {name: frozenset(labels) for name, labels in found.items()}


def series_read(expr: str) -> dict[str, set[str]]:
    """The metric names a PromQL expression reads (every `responder_*` name, and any selector with matchers), each with
    the label names its matchers use."""
    read: dict[str, set[str]] = {name: set() for name in re.findall(r"\b(responder_[a-z_]+)\b", expr)}
    for name, matchers in _SELECTOR.findall(expr):
        read.setdefault(name, set()).update(_MATCHER.findall(matchers))
    return read


def grouping_labels(expr: str) -> set[str]:
    """The label names of the expression's `by`, `without`, `on`, `ignoring` and `group_*` clauses."""
    return {label.strip() for labels in _GROUPING.findall(expr) for label in labels.split(",") if label.strip()}


def unknown_reads(expr: str, known: dict[str, frozenset[str]]) -> list[str]:
    """What the expression reads that `known` (name → label names) does not have: a name, or a label of the
    series it reads (matched or grouped by); the target labels are everyone's (`namespace` to group by only)."""
    read = series_read(expr)
    wrong = [name for name in read if name not in known]
    have = set(TARGET_LABELS).union(*(known.get(name, frozenset()) for name in read))
    wrong += [f"{name}{{{label}}}" for name, labels in read.items()
              for label in sorted(labels - TARGET_LABELS - known.get(name, frozenset()))]
    wrong += [f"by/on ({label})" for label in sorted(grouping_labels(expr) - have - GROUPING_TARGET_LABELS)]
    return wrong

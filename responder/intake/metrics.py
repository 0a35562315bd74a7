"""Prometheus metrics of the intake (its own registry, served on the intake's `/metrics`)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class IntakeMetrics:
    """Requests by source and status, refusals by reason, auth failures, latency, records produced."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("responder_intake_requests", "Webhook requests answered", ["source", "status"],
                                registry=r)
        self.rejected = Counter("responder_intake_rejected", "Webhook requests refused (problem documents)",
                                ["source", "reason"], registry=r)
        self.auth_failures = Counter("responder_intake_auth_failures", "Webhook requests that failed authentication",
                                     ["source", "reason"], registry=r)
        self.latency = Histogram("responder_intake_request_duration_seconds",
                                 "Time from request to answer (202 = after the broker acknowledged)", ["source"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.produced = Counter("responder_intake_records_produced", "Records acknowledged by Kafka", ["source"],
                                registry=r)
        self.duplicates = Counter("responder_intake_duplicates", "Redeliveries acknowledged without producing",
                                  ["source"], registry=r)

    def refused(self, reason: str, source: str = "unknown") -> None:
        """Count a refusal that no source's request handler answered (routing, connection limits, errors)."""
        self.rejected.labels(source, reason).inc()

    def value(self, name: str, **labels: str) -> float:
        """The current value of a sample, 0 when absent."""
        got = self.registry.get_sample_value(name, labels)
        return float(got) if got is not None else 0.0

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)

"""The Kafka settings: where alerts are consumed from, and how a fleet of replicas shares their partitions.

They are the first fields of `responder.settings.Settings`, which builds on `KafkaSettings` (a class's own
fields follow those it inherits, so the fields keep their order: that of docs/configuration.md and of the
fleet digest's settings).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings

from responder.bounds import largest
from responder.kafka_config import KafkaSecurity

CHANGELOG_COMPRESSION = "zstd"
"""The codec of the changelog's record batches (every write, with or without transactions). zstd at aiokafka's level
3 compresses the slices as well as gzip did at level 9 for about a twentieth of the CPU, which a fleet member pays
in its event loop on every flush (docs/fleet.md, "What is written"); every release since 2026-12-03 reads it."""

CHANGELOG_WRITE_DEADLINE_S = 45.0
"""The default of `changelog_write_deadline`, and of the deadline of a `Changelog` given none: seconds a changelog
write outside transactions may take in all, from its call (its partition's lock included) across its resends, and
for a flush across the partitions it writes one after another (`until`): below the rebalance timeout and the poll
interval, so a broker that stays down stops the replica before the group drops it (docs/fleet.md, "Deadlines")."""


class KafkaSettings(BaseSettings):
    """The alert consumer, the dead letters, the fleet's changelog and guard table (read as part of `Settings`)."""

    kafka_bootstrap: str | None = Field(default=None, description="host:port[,host:port]; unset = no Kafka")
    topics: list[str] = Field(default_factory=lambda: ["security.alerts", "ml.drift"],
                              description="topics to consume (JSON list)")
    group_id: str = Field(default="responder", description="Kafka consumer group; replicas share it")
    deadletter_topic: str = Field(default="responder.deadletter", description="where poison records go")
    deadletter_max_bytes: int = Field(
        default=1_000_000, ge=16_384,
        description="largest dead-letter copy (key+value+headers); headers, then the value, are cut to fit")
    session_timeout_ms: int = Field(
        default=10_000, ge=1000,
        description="Kafka consumer session timeout; a silent member is evicted after this long")
    rebalance_timeout_ms: int = Field(
        default=120_000, ge=1000, description="how long a replica may take to finish the chunks in hand when its "
                                              "partitions move; in fleet mode a revocation still going on at this "
                                              "less its margin (103 s at the defaults) is cut: its chunks are "
                                              "cancelled uncommitted and the replica rejoins; in fleet mode above the "
                                              "write deadline and the fixed bounds, 30 s (docs/fleet.md, "
                                              "\"Deadlines\")")
    kafka_max_poll_interval_ms: int = Field(
        default=300_000, ge=1000, description="longest a replica may go between two polls of its alert consumer "
                                              "before it leaves the group (aiokafka's default); the poll loop awaits "
                                              "neither the batch gate nor the changelog, and in fleet mode must "
                                              "stay above changelog_write_deadline and the fixed bounds, 30 s "
                                              "(docs/fleet.md, \"Deadlines\")")
    kafka_group_instance_id: str | None = Field(
        default=None, description="static group membership (KIP-345): a stable id unique per replica (e.g. the pod "
                                  "name); a restart after a crash takes its old place without waiting for the "
                                  "session to expire")
    max_record_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="larger records are dead-lettered (`too_large`)")
    max_batch: int = Field(default=500, ge=1, description="most records fetched and handled in one consumer batch")
    max_in_flight: int = Field(
        default=1000, ge=1, description="most records of one partition polled and not yet committed; a partition "
                                        "at the limit is paused until it drains (backpressure, docs/fleet.md)")
    kafka_fetch_max_wait_ms: int = Field(
        default=10, ge=1, le=60_000,
        description="longest a fetch waits for records while alerts flow; the embedded broker (Tansu) holds a fetch "
                    "for up to this long, so it adds to alert-to-action latency there (Apache Kafka answers as soon "
                    "as a record arrives)")
    kafka_fetch_idle_wait_ms: int = Field(
        default=250, ge=1, le=60_000,
        description="the fetch wait once no alert came for a second (the busy wait is kafka_fetch_max_wait_ms): an "
                    "idle replica asks 4 times a second, not 100; on Tansu the first alert after a quiet spell waits "
                    "for one such fetch (docs/kafka.md)")
    kafka_commit_interval_ms: int = Field(
        default=100, ge=0, le=60_000,
        description="how often the alert consumer commits its offsets (always after the timeline entries of every "
                    "record up to them are durable, and on revoke and stop); a crash redelivers at most this long's "
                    "records, which act on nothing twice (step keys). 0 = after every chunk. Transactions mode "
                    "commits each chunk in its transaction (docs/fleet.md)")
    kafka_connect_timeout: float = Field(
        default=30.0, gt=0, description="seconds to keep retrying to reach Kafka before giving up (exit 3 when "
                                        "the service never reached it; once it did, a rejoin: a new service "
                                        "in-process, RESPONDER_FENCED_REJOINS, docs/fleet.md)")
    kafka_manual_assignment: bool = Field(
        default=False, description="own every partition without group membership (one instance; no rebalances); a "
                                   "partition added to a topic it reads is taken within 30 s (docs/fleet.md)")
    changelog_topic: str | None = Field(
        default=None, description="fleet mode: the compacted state changelog, co-partitioned with the alert "
                                  "topics (grown to match when they grow: ALTER on it); each partition's engine "
                                  "state follows the partition (docs/fleet.md)")
    # kafka_transactions comes before changelog_write_deadline: validated first, it says which fixed bound applies
    # when a group timeout is below them as well as below the deadline (`below_group_timeouts`)
    kafka_transactions: Literal["auto", "on", "off"] = Field(
        default="auto", description="fleet mode: write the changelog and commit offsets in one Kafka transaction, "
                                    "fencing a zombie replica; auto = when the broker supports them (Apache Kafka "
                                    "does, Tansu does not), checked at start: no answer within "
                                    "RESPONDER_KAFKA_CONNECT_TIMEOUT is an unreachable Kafka, never a no "
                                    "(docs/fleet.md)")
    changelog_write_deadline: float = Field(
        default=CHANGELOG_WRITE_DEADLINE_S, gt=0,
        examples=[20.0],  # the example a refused value's line suggests (settings_errors.py)
        description="fleet mode without transactions: seconds a changelog write may take in all (resends included; "
                    "a flush's partitions share it); past it nothing of it acts or is committed and the replica "
                    "rejoins its group in-process (RESPONDER_FENCED_REJOINS). "
                    "In fleet mode below the rebalance timeout and the poll interval (docs/fleet.md, \"Deadlines\")")
    fenced_rejoins: int = Field(
        default=5, ge=0, le=100, description="in-process rejoins allowed an hour, all kinds together: a service "
                                             "cut off from Kafka once its settings reached it (any mode), or a "
                                             "fleet replica fenced by another (paused past its session) or whose "
                                             "changelog transaction failed (a broker killed), drops its state and "
                                             "is built again; past this many, or at once with 0, it exits 75 for "
                                             "its supervisor (docs/fleet.md)")
    fleet_guard_table: str | None = Field(
        default=None, description="DynamoDB table shared by the fleet: global quotas count every replica's "
                                  "actions and its kill switch stops every replica within one poll")
    fleet_adopt_digest: bool = Field(
        default=False, description="make this replica's runbook/settings digest the fleet's (first replica of a "
                                   "rollout); otherwise a replica whose digest differs is refused")
    evict_every: float = Field(default=60.0, gt=0, description="seconds between evictions of closed incidents")
    kafka_security: KafkaSecurity = Field(
        default_factory=KafkaSecurity, description="TLS / SASL for every Kafka client (docs/kafka.md); "
                                                   "env RESPONDER_KAFKA_SECURITY__PROTOCOL=SASL_SSL etc.")

    @field_validator("changelog_write_deadline")
    @classmethod
    def _below_the_group_timeouts(cls, deadline: float, info: ValidationInfo) -> float:
        """A write that may take longer than the group waits for the replica outlives its place in the group (fleet
        mode only: without a changelog nothing is written, and a setting valid before this one existed still loads)."""
        return below_group_timeouts(deadline, info, "a changelog write")

    def group_timeouts_too_short(self) -> list[tuple[str, str]]:
        """In fleet mode (a changelog), each group timeout (the rebalance timeout, the poll interval) not above the
        largest fixed bound on a wait made while holding a partition (`responder.bounds.largest`; a transaction's
        unless transactions are off): its field and why, with the least value allowed. Outside fleet mode none."""
        if not self.changelog_topic:
            return []
        bound = largest(transactions=self.kafka_transactions != "off")
        least = _ms_above(bound.seconds)
        return [(name, f"not above {bound.seconds:g}s, the fixed bound of {bound.what} (responder/bounds.py): the "
                       f"group would move a partition while the replica still waits on it; set it to {least} or more")
                for name in ("rebalance_timeout_ms", "kafka_max_poll_interval_ms") if getattr(self, name) < least]


class NotBelow(ValueError):
    """A deadline refused by a group timeout (`below_group_timeouts`): `below` is the seconds it must stay under (the
    smallest group timeout), which the refusal's example respects (`settings_errors.describe`)."""

    def __init__(self, message: str, below: float) -> None:
        super().__init__(message)
        self.below = below


def _ms_above(seconds: float) -> int:
    """The least whole number of milliseconds above `seconds`: what a group timeout (in ms) must be at least to stay
    above a bound or deadline given in seconds."""
    return int(seconds * 1000) + 1


def below_group_timeouts(seconds: float, info: ValidationInfo, what: str) -> float:
    """`seconds`, unless in fleet mode (a changelog) it is not below the rebalance timeout and the poll interval
    validated before it (`info`): then a ValueError (`NotBelow`) saying that `what` taking that long outlives the
    replica's place in its group, and how to fix it. A group timeout also below the largest fixed bound that applies
    (checked after the fields, so not reached when this refuses; `kafka_transactions`, validated before `seconds`, says
    which) is given its least value here, naming that bound: one round fixes both."""
    if not info.data.get("changelog_topic"):
        return seconds
    limits = {name: limit for name in ("rebalance_timeout_ms", "kafka_max_poll_interval_ms")
              if isinstance(limit := info.data.get(name), int)}
    refused = next((name for name, limit in limits.items() if seconds * 1000 >= limit), None)
    if refused is None:
        return seconds
    bound = largest(transactions=info.data.get("kafka_transactions") != "off")  # validated before `seconds`
    floor = _ms_above(bound.seconds)
    above_both = max(_ms_above(seconds), floor)
    variable, limit = f"RESPONDER_{refused.upper()}", limits[refused]
    fix = f"set it below {limit / 1000:g}s or raise {variable}"
    if limit < floor:  # lowering this alone would not do: the timeout is below the fixed bounds too
        fix = (f"raise {variable} to {above_both} or more (above this and above {bound.seconds:g}s, the fixed bound "
               f"of {bound.what}: responder/bounds.py)")
    also = "".join(  # the other timeout, if below the fixed bounds too (and this, if refused as well)
        f"; RESPONDER_{name.upper()} ({other} ms) too: set it to {above_both if seconds * 1000 >= other else floor} "
        "or more" for name, other in limits.items() if name != refused and other < floor)
    raise NotBelow(f"{seconds:g}s is not below {variable} ({limit} ms): {what} that takes that long outlives the "
                   f"replica's place in its group; {fix}{also}", below=min(limits.values()) / 1000)

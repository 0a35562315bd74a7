"""The fixed bounds, in seconds, on the waits a replica makes while it holds a partition (no setting sets them).

Each must end before the group moves the partition: in fleet mode the settings refuse a rebalance timeout or a poll
interval not above the largest that applies (`largest`; `Settings`, docs/fleet.md, "Deadlines"). They are kept here,
below the settings in the import layers, so that the load-time rule and the code that waits (ingest, the engine) read
the same numbers: each module that waits imports its own from here.
"""

from __future__ import annotations

from dataclasses import dataclass

END_DEADLINE = 30.0
"""A transaction's send (its records' queueing and acks), commit, abort or offsets' addition, and the stop of a
partition's transactional producer (`Transactions.end_deadline`): under the 60 s transaction timeout."""
RESTORE_DEADLINE = 30.0
"""Each of a restore's waits for Kafka: its transactional producer's start (the fence), the changelog's growth to the
partition, its reader's start, and its reader's polls that bring nothing (`Transactions.assign`, `Changelog.read`).
Not in `BOUNDS`: a revocation cancels a restore still fencing or reading (`_end_restore`), so these waits never hold a
partition the group moves."""
SEND_DEADLINE = 30.0
"""A record sent again after its first transient error (`resending`): a dead letter, a restore's fence record, a
transaction run again. Counted from that first failure: an attempt may itself take aiokafka's request timeout."""
PUBLISH_DEADLINE = 20.0
"""A publication (an approval request, a notification, an operator reply) in all, its resends included
(`KafkaPublisher.deadline`): it may run in a lane's chunk or under the exclusive gate, which a rebalance waits for."""
DRAIN_DEADLINE = 20.0
"""A graceful stop's wait for the chunks in hand (`Flow.drain_deadline`: the late ones are cancelled uncommitted), then
as long for its last offsets' commit (`OffsetCommits.close`); also the other lanes' drain when an unsent dead letter
fails the service (`Flow.abort`), which commits nothing."""
READS_DEADLINE_S = 15.0
"""A step's guard reads through AWS in all (`Guards.reads_deadline`): past it the step is refused, fail closed."""
SWITCH_READ_S = 5.0
"""One read of the fleet's kill switch, which the poll loop waits for (`FleetGuard`): past it, a failed read."""
REVOCATION_MARGIN_S = 5.0
"""The least a fleet revocation leaves of the group's rebalance timeout besides its cut (`revocation_deadline`)."""
CUT_GRACE_S = 5.0
"""How long a revocation past its deadline waits for the chunks it cancelled to end (they end at their next await)."""


@dataclass(frozen=True)
class Bound:
    """One fixed bound: its seconds, what waits that long, and whether only with Kafka transactions."""

    seconds: float
    what: str
    transactional: bool = False


BOUNDS = (
    Bound(END_DEADLINE, "a transaction's send, commit, abort or offsets' addition", transactional=True),
    Bound(SEND_DEADLINE, "a record's resends after a transient error (a dead letter)"),
    Bound(PUBLISH_DEADLINE, "a publication (an approval request)"),
    Bound(DRAIN_DEADLINE, "a graceful stop's drain"),
    Bound(READS_DEADLINE_S, "a step's guard reads"),
    Bound(SWITCH_READ_S, "a kill-switch read"),
)
"""Every fixed bound a revocation, a stop or the poll loop waits for (a dead letter's resends: in the chunk a revocation
waits for), the first of equals the one a refusal names (without transactions, the resends)."""


def revocation_deadline(rebalance_timeout_ms: int, session_timeout_ms: int) -> float:
    """The seconds a fleet revocation may take in all (finishing the chunks in hand, then the hand-over) before it is
    cut (responder/service/revocation.py): the rebalance timeout less the cut's own wait (`CUT_GRACE_S`) and the
    largest of `REVOCATION_MARGIN_S`, a tenth of the rebalance timeout and a heartbeat interval (a sixth of the session
    timeout: the member learns of the rebalance up to a heartbeat late, and must send its JoinGroup in time). So a
    chunk never acts after the group moved its partition, however its waits add up (docs/fleet.md, "Deadlines")."""
    rebalance, session = rebalance_timeout_ms / 1000, session_timeout_ms / 1000
    return max(0.0, rebalance - CUT_GRACE_S - max(REVOCATION_MARGIN_S, rebalance / 10, session / 6))


def largest(*, transactions: bool) -> Bound:
    """The largest bound that applies: with Kafka transactions (on, or `auto`, settled only at start) or without."""
    return max((b for b in BOUNDS if transactions or not b.transactional), key=lambda b: b.seconds)

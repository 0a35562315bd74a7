"""The Kafka consumer group's and the fleet changelog's branch of the one exception tree (`responder.errors`).

::

    ResponderError
    ├── ChangelogError                  → a partition's state cannot be restored or written: not consumed / stop
    │   ├── ChangelogTooShort           no changelog partition for an alert partition (partition)
    │   ├── ChangelogWriteTimedOut      a write outside transactions passed its deadline
    │   ├── ReplicaFenced               another replica took the partition: this one is a zombie
    │   │   ├── RevocationCut           a revocation outlasted its deadline: cut, rejoined as after a fence
    │   │   └── MembershipLapsed        no heartbeat answered for a session: stops acting, rejoined likewise
    │   └── TransactionFailed           a partition's changelog transaction failed for good (not fenced)
    │       └── StillUnreachable        rejoined too often with Kafka unreachable: `responder run` exits 75
    ├── CoordinatorDied                 a consumer's group coordination task ended: rebuilt (consumer, cause)
    ├── CoordinatorLost                 out of its group past the bound, its task still looking: a CoordinatorDied cause
    └── ConsumerRebuildsExhausted       rebuilt too often without progress: `responder run` exits 75
"""

from __future__ import annotations

from responder.errors import ResponderError


class ChangelogError(ResponderError):
    """A partition's state cannot be restored (unreadable changelog, a record that does not parse, wrong fleet)."""


class ChangelogTooShort(ChangelogError):
    """The changelog has no partition for an alert partition (one added while the fleet runs), and growing it failed:
    that alert partition is not consumed until the changelog has one."""

    def __init__(self, message: str, partition: int) -> None:
        super().__init__(message)
        self.partition = partition


class ChangelogWriteTimedOut(ChangelogError):
    """A changelog write outside transactions was not acknowledged within its deadline (`changelog_write_deadline`,
    resends included): the changelog barrier fails with it, nothing it carried acts or is committed, and the service
    stops; `serve_rejoining` builds a new one (`kafka_unreachable`: Kafka cut off after it was reached), which
    restores the partitions it is given from what was acknowledged."""


class ReplicaFenced(ChangelogError):
    """Another replica took this one's partition and its transactional producer: this replica is a zombie."""


class RevocationCut(ReplicaFenced):
    """A fleet revocation outlasted its deadline (`bounds.revocation_deadline`, below the group's rebalance timeout):
    the chunks in hand were cancelled uncommitted and the leaving partitions' state forgotten, so that nothing acts
    for them once the group has moved them. This replica gave them up unfinished, as a fenced one loses them: it
    rejoins in the same way (responder/service/rejoin.py), and their next owner redoes the uncommitted records from
    the committed intents and offsets (an intent without its result is resolved by `verify()`)."""


class MembershipLapsed(ReplicaFenced):
    """A fleet member's lease on its partitions ended (responder/ingest/lease.py): its group coordinator answered no
    heartbeat for a session timeout, or answered that it is no member, so its group may have given its partitions to
    another member. Its changelog barrier refuses from then on (nothing more of it acts or counts as durable), and it
    rejoins as a fenced replica does; the partitions' next owner redoes the uncommitted records from the committed
    intents and offsets (an intent without its result is resolved by `verify()`)."""


class TransactionFailed(ChangelogError):
    """A partition's changelog transaction failed for good, not fenced (responder/ingest/transactions.py): its
    producer died (aiokafka's sender routine ended, e.g. its coordinator lookup lost the connection to a killed
    broker), a non-transient error, or no answer from the coordinator within `END_DEADLINE`. The open transaction's
    records are in no committed one, so nothing more is written or committed for that partition; the replica drops
    its service and rejoins its group, as after a fence (`serve_rejoining`, responder/service/rejoin.py), and the
    partition's next owner, this replica or another, redoes them from the committed intents and offsets."""


class StillUnreachable(TransactionFailed):
    """A replica found Kafka unreachable again and again once its settings had reached it (`BrokerUnreachable` from
    a service built after a rejoin, or from one a client of which started: `rejoin_reason`), more often than
    `fenced_rejoins` allows within the hour: `serve_rejoining` ends serving with it (responder/service/rejoin.py) and
    `responder run` exits 75 for a fresh process, as after the failed transactions it is one of: while the cluster
    is down no changelog transaction can be written. Not a ConfigError as BrokerUnreachable is (exit 3, a bad
    setting): these settings reached Kafka before. Only `serve_rejoining` raises it, once serving is over: it is
    never a rejoin reason."""


class CoordinatorDied(ResponderError):
    """aiokafka's group coordination task of one of the service's consumers ended with an error: aiokafka never
    restarts it, so that consumer is closed and created again (responder/ingest/coordinator.py)."""

    def __init__(self, consumer: str, cause: BaseException) -> None:
        self.consumer = consumer
        self.cause = cause
        super().__init__(f"the {consumer} consumer's group coordinator died: {type(cause).__name__}: {cause}")


class CoordinatorLost(ResponderError):
    """A consumer was out of its group (its coordinator unknown, or, subscribed, its assignment not in force) at every
    poll for longer than a start may take, while its coordination task goes on looking rather than dying: the cause
    of the CoordinatorDied that has it rebuilt all the same (responder/service/consumers.py)."""


class ConsumerRebuildsExhausted(ResponderError):
    """One of the service's consumers was rebuilt after a dead group coordinator more often than it may be without
    progress in between (no offset committed, no rebuilt consumer settled, or its start timed out each time:
    responder/service/consumers.py): the service stops, and `responder run` exits 75 for a fresh process."""

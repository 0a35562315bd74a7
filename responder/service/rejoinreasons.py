"""Why a replica's service is rebuilt in-process (`rejoin_reason`), and what `serve_rejoining` (rejoin.py) says when
a stop came meanwhile (`stopped`) or the rejoins of the hour ran out (`exhausted`)."""

from __future__ import annotations

import structlog

from responder.errors import BrokerUnreachable
from responder.errors_kafka import ChangelogWriteTimedOut, ReplicaFenced, StillUnreachable, TransactionFailed
from responder.exception_groups import only

log = structlog.get_logger(__name__)

WINDOW_S = 3600.0
"""The rejoins allowed (`fenced_rejoins`, after fences, failed transactions and an unreachable Kafka alike) are
counted over this many seconds."""
WHY = {"fenced": "a fence", "transaction_failed": "a failed changelog transaction",
       "kafka_unreachable": "an unreachable Kafka cluster"}
SAID = {"fenced": "fenced", "transaction_failed": "stopped by a failed changelog transaction",
        "kafka_unreachable": "cut off from Kafka after reaching it"}
REJOINED = (ReplicaFenced, TransactionFailed, ChangelogWriteTimedOut)
"""What any service that ended with it rejoins after; one whose settings reached Kafka also after BrokerUnreachable.
A changelog write outside transactions that was not acknowledged within its deadline (ChangelogWriteTimedOut) is
Kafka cut off after it was reached, as a transaction that failed so is: `kafka_unreachable` (exit 3 until 2026-12-07,
as if a setting were wrong; the same outage with transactions rejoined)."""


def rejoin_reason(exc: BaseException, *, rebuilt: bool = False) -> str | None:
    """Why a service that ended with `exc` is rebuilt, when every leaf, followed through its causes, is a
    ReplicaFenced, a TransactionFailed or a ChangelogWriteTimedOut (written to a partition it owned: its group was
    joined, so Kafka was reached), or, when its settings reached Kafka before (`rebuilt`: built after a rejoin, or a
    client of it started: `reached_kafka`), a BrokerUnreachable: `fenced` when any is a fence (another replica owns a
    partition: a zombie, the strongest diagnosis), else `transaction_failed` when any is one, else
    `kafka_unreachable`. None (not rebuilt) when any leaf is anything else, or the BrokerUnreachable of a first
    service that never reached Kafka (a bad bootstrap: exit 3). A dead letter not sent whose drain a fence ended (a
    `Drained` group, responder/ingest/lanefailures.py) is left out: the fence decides, the record is read again."""
    found = only(exc, (*REJOINED, BrokerUnreachable) if rebuilt else REJOINED, causes=True, deciding=True)
    if found is None:
        return None
    for kind, reason in ((ReplicaFenced, "fenced"), (TransactionFailed, "transaction_failed")):
        if any(isinstance(e, kind) for e in found):
            return reason
    return "kafka_unreachable"


def stopped(reason: str, exc: BaseException) -> None:
    """A stop was asked for while the service failed with what would have rejoined it: serving ends cleanly."""
    if reason == "fenced":
        log.info("replica_fenced_while_stopping", detail="its partitions are another replica's already")
    elif reason == "transaction_failed":
        log.warning("replica_transaction_failed_while_stopping", error=error_line(exc),
                    detail="its uncommitted records are redone by the partition's next owner, as after a crash")
    else:
        log.warning("replica_unreachable_while_stopping", error=error_line(exc),
                    detail="Kafka cut off (unreachable, or a changelog write past its deadline): not waiting for it; "
                                "the next start tries again")


def exhausted(reasons: list[str], rejoins: int, last: str) -> ReplicaFenced | TransactionFailed:
    """The error that ends serving when `reasons` (this hour's, the last one's included, whose error was `last`) are
    more than `rejoins`: of the last one's kind, saying how many of each there were."""
    counts = {r: reasons.count(r) for r in WHY if r in reasons}
    said = " and ".join(f"{SAID[r]} {n} time{'' if n == 1 else 's'}" for r, n in counts.items())
    message = f"this replica was {said} within {WINDOW_S:.0f} s (RESPONDER_FENCED_REJOINS={rejoins}): "
    if reasons[-1] == "fenced":
        log.critical("replica_fenced_exiting", fences_in_window=len(reasons), rejoins=rejoins, counts=counts,
                     detail="fenced more often than fenced_rejoins allows: exiting for the supervisor")
        return ReplicaFenced(message + "another replica owns its partitions; start it again")
    if reasons[-1] == "kafka_unreachable":
        log.critical("replica_unreachable_exiting", rejoins_in_window=len(reasons), rejoins=rejoins, counts=counts,
                     error=last, detail="Kafka stayed unreachable through more rejoins than fenced_rejoins allows: "
                                        "exiting for the supervisor")
        return StillUnreachable(message + "Kafka is still unreachable though these settings reached it before (the "
                                "cluster down, or a partition short of in-sync replicas?); start it again once it is "
                                f"back. The last: {last}")
    log.critical("replica_transaction_failed_exiting", rejoins_in_window=len(reasons), rejoins=rejoins, counts=counts,
                 detail="rejoined more often than fenced_rejoins allows: exiting for the supervisor")
    return TransactionFailed(message + "its changelog transactions keep failing (a broker or the cluster down?); "
                             "start it again")


def error_line(exc: BaseException) -> str:
    """The first leaf of `exc` that is a fence, a failed transaction, a changelog write past its deadline or an
    unreachable Kafka (followed through its causes), as a line."""
    found = only(exc, (*REJOINED, BrokerUnreachable), causes=True, deciding=True)
    first: BaseException = found[0] if found else exc
    return f"{type(first).__name__}: {first}"

"""The broker time a dead-letter replay stamps (`original_time`) and whether its target would delete it at once.

A topic deleting by time (`cleanup.policy` holding `delete`, `retention.ms` ≥ 0) with
`message.timestamp.type=CreateTime` judges a record by its stamped time: a dead letter older than the target's
retention is deleted by the broker's next retention check (every 5 minutes by default), before a replica reads it,
while the replay ledger would note it sent. `TargetAges` reads each target's effective `retention.ms`,
`cleanup.policy` and `message.timestamp.type` once per replay (DescribeConfigs) and says which stamps are older than
`now - retention.ms + margin` (`MARGIN_MS`, or a tenth of a shorter retention's): the replay neither sends nor notes
those (`too_old`). A target stamping its own time (`LogAppendTime`), keeping records forever (`retention.ms=-1`) or
only compacted, and a record without a stamp (the producer stamps the replay's time) are sent. A target that does
not exist yet is judged by the broker's defaults (`log.retention.ms`, else `.minutes`, else `.hours`;
`log.cleanup.policy`, `log.message.timestamp.type`): those of the topic the producer's send auto-creates. A target
whose configuration cannot be read (an error, a broker refusing or not supporting DescribeConfigs, an answer of
another shape or naming no `retention.ms`) is sent to as before, with the warning
`deadletter_replay_retention_unknown`: the check guards against a loss the operator can see coming, it does not stop
a replay it cannot judge.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import structlog
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError

from responder.errors import BrokerUnreachable
from responder.ingest.admin import with_admin
from responder.ingest.dlq import header_text

log = structlog.get_logger(__name__)
MAX_TIMESTAMP_MS = 253_402_300_800_000  # 10000-01-01: past it `RawRecord.stamped` reads no time
MARGIN_MS = 3_600_000  # a record this close to its target's retention is not replayed either: it would go soon after
MARGIN_SHARE = 10  # a retention under 10 hours gets a tenth of it as its margin: its newest records still go
UNKNOWN_TOPIC_OR_PARTITION = 3  # DescribeConfigs' error code for a topic that does not exist
_BROKER_DEFAULTS = {"log.cleanup.policy": "cleanup.policy", "log.message.timestamp.type": "message.timestamp.type"}
_RETENTION_UNITS = (("log.retention.ms", 1), ("log.retention.minutes", 60_000), ("log.retention.hours", 3_600_000))
Configs = dict[str, str | None]


def original_time(headers: list[tuple[str, bytes]]) -> int | None:
    """The dead-lettered record's broker timestamp (`dlq.timestamp`, ms), None when absent or not a plausible one
    (the producer then stamps the replay with its own time, as before 2026-12-05)."""
    text = header_text(headers, "dlq.timestamp") or ""
    if not text.isascii() or not text.isdigit():
        return None
    ms = int(text)
    return ms if 0 < ms < MAX_TIMESTAMP_MS else None


def deletes_after(configs: Mapping[str, str | None]) -> int | None:
    """The milliseconds after its stamped time a topic of `configs` deletes a record, None when it never judges a
    record by its stamp (LogAppendTime, no `delete` policy, `retention.ms` -1 or unreadable)."""
    if configs.get("message.timestamp.type") == "LogAppendTime":
        return None
    if "delete" not in [p.strip() for p in (configs.get("cleanup.policy") or "delete").split(",")]:
        return None
    kept = configs.get("retention.ms")
    return int(kept) if kept is not None and kept.isascii() and kept.isdigit() else None


def _entries(answer: Any) -> tuple[int, Configs]:
    """The error code and the configuration (name: value) of the one resource a DescribeConfigs answer describes."""
    [(code, _, _, _, entries)] = answer.resources
    return int(code), {str(entry[0]): None if entry[1] is None else str(entry[1]) for entry in entries}


async def _read(admin: Any, topic: str) -> Configs | None:
    """The effective configuration of `topic`, the broker's defaults when it does not exist yet; None when the
    answer carries another error."""
    [answer] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    code, configs = _entries(answer)
    if code != UNKNOWN_TOPIC_OR_PARTITION:
        return None if code else configs
    broker = (await admin.describe_cluster())["brokers"][0]["node_id"]
    [answer] = await admin.describe_configs([ConfigResource(ConfigResourceType.BROKER, str(broker))])
    code, defaults = _entries(answer)
    if code:
        return None
    out = {topic_name: defaults.get(name) for name, topic_name in _BROKER_DEFAULTS.items()}
    value, unit = next(((defaults[n], u) for n, u in _RETENTION_UNITS if defaults.get(n) is not None), (None, 1))
    number = int(value) if value is not None and value.isascii() and value.lstrip("-").isdigit() else None
    out["retention.ms"] = None if number is None else str(number * unit if number >= 0 else -1)
    return out


class TargetAges:
    """Which stamps each target of one replay would delete at once; each target's configuration read once."""

    def __init__(self, bootstrap: str, options: Mapping[str, Any] | None = None) -> None:
        self.bootstrap, self.options = bootstrap, options
        self.kept: dict[str, int | None] = {}  # target: ms it keeps a record past its stamp (None: not by its stamp)

    async def retention(self, target: str) -> int | None:
        """How long `target` keeps a record past its stamp (read once), None when not judged by it or unknown."""
        if target not in self.kept:
            try:
                configs = await with_admin(self.bootstrap, lambda admin: _read(admin, target), options=self.options)
                error = None if configs is not None else "DescribeConfigs answered with an error"
                if configs is not None and configs.get("retention.ms") is None:  # a broker that names none
                    configs, error = None, "the answer names no retention.ms"
            except (KafkaError, BrokerUnreachable, AttributeError, LookupError, TypeError, ValueError) as exc:
                configs, error = None, f"{type(exc).__name__}: {exc}"  # or an answer of another shape
            if configs is None:
                log.warning("deadletter_replay_retention_unknown", target=target, error=error,
                            sent="as if it kept every record")
            self.kept[target] = None if configs is None else deletes_after(configs)
        return self.kept[target]

    async def too_old(self, target: str, stamp: int | None) -> bool:
        """Whether a record stamped `stamp` would be deleted by `target` at once, or within the margin (`MARGIN_MS`,
        or a tenth of a retention under 10 hours, so that a short one still takes its newest records)."""
        if stamp is None:
            return False
        kept = await self.retention(target)
        return kept is not None and stamp < time.time() * 1000 - kept + min(MARGIN_MS, kept // MARGIN_SHARE)

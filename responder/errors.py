"""The one exception tree of responder, split by who has to act.

::

    ResponderError
    ├── ConfigError                     → fail at start-up or in `responder runbooks validate`
    │   ├── RunbookError                (path, line, column, reason)
    │   ├── UnknownActuatorError        (name, known): the message lists the valid names
    │   ├── SandboxError                the embedded broker or moto server could not start
    │   └── BrokerUnreachable           Kafka did not answer in time (the wait its message names)
    ├── EventRejected                   → poison or forged record: dead-letter, commit, never retry
    │   ├── DecodeError                 not JSON, too large, unknown shape
    │   │   ├── NotJson                 the bytes do not parse as JSON (reason `not_json`)
    │   │   ├── TooLarge                over `max_record_bytes` (reason `too_large`)
    │   │   └── UnknownShape            no decoder recognises it (reason `unknown_shape`)
    │   ├── ValidationFailed            decoded but the fields are invalid
    │   │   └── PartlyRejected          some parts of a many-part record are invalid: the others are handled
    │   └── AuthenticationFailed        missing or bad HMAC signature
    ├── TemplateError                   → a `${…}` placeholder names no value: the step's params are invalid
    ├── ApprovalRefused                 → a decision that must not release a step (reason on the timeline)
    ├── TimelineError                   → the record is unwritable or does not verify
    │   ├── ChainBroken                 (seq, reason)
    │   └── TimelineLocked              another process holds the file (path, holder)
    ├── BrokerUnavailable               → Kafka did not acknowledge a produce in time (intake answers 503)
    │   └── BrokerRefused               refused for good (too large for a topic, an ACL): a notification fails at once
    ├── RecordTooLarge                  → Kafka refuses the record for its size: never retry (intake answers 413)
    ├── ChangelogError, CoordinatorDied, CoordinatorLost, ConsumerRebuildsExhausted
    │                                   → a fleet's state or a consumer's group failed (`responder.errors_kafka`)
    └── ActuationError                  → raised by actuators only
        ├── TransientActuationError     throttling, 5xx, timeouts: retried with jittered backoff
        └── PermanentActuationError     AccessDenied, NotFound, bad params: recorded, the step fails
            └── PartialActuationError   it failed after changing part of its target (or may have): kept counted
                                        (`responder.errors_actuation`)
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any


class ResponderError(Exception):
    """Root of every error responder raises on purpose."""


class ConfigError(ResponderError):
    """Configuration, runbooks or wiring are wrong; a human must fix them before start."""


class RunbookError(ConfigError):
    """A runbook file is invalid; carries where and why."""

    def __init__(self, path: str, reason: str, line: int | None = None, column: int | None = None) -> None:
        self.path = path
        self.reason = reason
        self.line = line
        self.column = column
        where = path if line is None else f"{path}:{line}:{column or 1}"
        super().__init__(f"{where}: {reason}")


class UnknownActuatorError(ConfigError):
    """A runbook names an actuator that is not registered."""

    def __init__(self, name: str, known: Sequence[str]) -> None:
        self.name = name
        self.known = tuple(sorted(known))
        super().__init__(f"unknown actuator {name!r}; valid choices: {', '.join(self.known)}")


class PlaybookError(RunbookError):
    """A tabletop playbook file is invalid; carries where and why."""


class SandboxError(ConfigError):
    """The embedded broker or the local AWS API could not be started."""


class BrokerUnreachable(ConfigError):
    """No Kafka broker answered at the configured bootstrap within the wait, or the cluster answered and was not
    ready for an admin request within its deadline (responder/ingest/admin.py, `with_admin`). The wait is
    RESPONDER_KAFKA_CONNECT_TIMEOUT for the service's clients (a fleet member's changelog producer too) and its topic
    check, a fixed one elsewhere (an admin call's 15 s, a command-line tool's, the timeline mirror's, a partition
    restore's 30 s, a client started with its default 30 s): the message names which."""


class ReadCancelled(ResponderError, RuntimeError):
    """A read run by `in_order` (the guard's, responder/engine/inorder.py), alone or among several, ended cancelled,
    though neither its caller nor an earlier read's refusal cancelled it: it has no answer, so neither has `in_order`
    (fail closed)."""


class TopicRefused(ConfigError):
    """Kafka refuses this principal a topic it must write to (an ACL): retrying cannot help until it is granted."""


class EventRejected(ResponderError):
    """A record that must never actuate: it goes to the dead-letter topic with `reason`."""

    reason_code = "rejected"

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(detail)


class DecodeError(EventRejected):
    """The record is not JSON, too large, or of no known shape."""

    reason_code = "decode"


class NotJson(DecodeError):
    """The record's bytes are not JSON (or not UTF-8)."""

    reason_code = "not_json"


class TooLarge(DecodeError):
    """The record exceeds the configured size limit."""

    reason_code = "too_large"


class UnreadableRecord(DecodeError):
    """The Kafka client could not parse the record (a header key that is not UTF-8, a batch that fails its CRC or
    cannot be decompressed): read by responder/ingest/recordbatch.py and dead-lettered with its bytes."""

    reason_code = "unreadable"


class UnknownShape(DecodeError):
    """No registered decoder recognises the record (and no format was forced for its topic)."""

    reason_code = "unknown_shape"


class ValidationFailed(EventRejected):
    """The record decoded but its fields do not validate."""

    reason_code = "validation"


class PartlyRejected(ValidationFailed):
    """Some parts of a record of many (a Security Hub event's findings, a JSON array's elements) do not validate:
    `kept` holds the Events of the others, which are handled; the record is dead-lettered with `detail` naming each
    rejected part by its index (`parts`), under the rejected parts' reason when they share one (`unknown_shape` for
    a JSON array's element of no known shape), else `validation`."""

    def __init__(self, detail: str, kept: Sequence[Any], parts: Sequence[int], reason: str = "validation") -> None:
        super().__init__(detail)
        self.kept = list(kept)
        self.parts = tuple(parts)
        self.reason_code = reason


class AuthenticationFailed(EventRejected):
    """The record's HMAC signature is missing, unknown or wrong."""

    reason_code = "authentication"


class TemplateError(ResponderError, ValueError):
    """A runbook placeholder names no value for this event (the step's parameters do not resolve)."""


class Refusal(StrEnum):
    """The class of a refused decision or operator request, set where it is refused (never read from its message):
    the `reason` label of `responder_decisions_refused_total` and a bucket of the bound on refusals (a fixed set)."""

    UNSIGNED = "unsigned"
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"
    MALFORMED = "malformed"
    NO_KEYS = "no_keys"
    NOT_PENDING = "not_pending"
    REPLAYED = "replayed"
    UNREADABLE = "unreadable"
    REFUSED = "refused"
    """Signed by a key of the ring, but not valid for what it asks (another plan, expired, not permitted...)."""


class ApprovalRefused(ResponderError):
    """An approval decision that is forged, unbound, expired or from someone not listed; `refusal`: its class."""

    def __init__(self, reason: str, decision: Any = None, *, refusal: Refusal = Refusal.REFUSED) -> None:
        self.reason = reason
        self.decision = decision
        self.refusal = refusal
        super().__init__(reason)


class TimelineError(ResponderError):
    """The timeline cannot be written or read."""


class ChainBroken(TimelineError):
    """The timeline does not verify; `seq` is the first bad entry (line number when unparsable)."""

    def __init__(self, seq: int, reason: str) -> None:
        self.seq = seq
        self.reason = reason
        super().__init__(f"entry {seq}: {reason}")


class TimelineLocked(TimelineError):
    """Another writer holds the timeline file's lock; appending too would fork the chain."""

    def __init__(self, path: str, holder: str) -> None:
        self.path = path
        self.holder = holder
        super().__init__(f"timeline {path} is in use by {holder}; stop that writer first, or point --timeline "
                         "(RESPONDER_TIMELINE_PATH) at another file")


class UnparsableRecord(ResponderError):
    """A record the Kafka client cannot parse, which reading the fetch again (responder/ingest/unreadable.py) did
    not get past either: its consumer stops with this error naming where it stood (docs/faults.md)."""


class BrokerUnavailable(ResponderError):
    """Kafka did not acknowledge a record in time: the sender must retry (HTTP intake: 503). Its subclass
    `BrokerRefused` is the one that must not be retried."""


class BrokerRefused(BrokerUnavailable):
    """Kafka refused a record for good (too large for the topic, an ACL): sending it again cannot help. A subclass so
    that whoever waits out a broker (an approval request kept to publish again) treats it as before; a notification
    step fails at once instead of spending its retries (responder/actuators/notify/kafka.py)."""


class RecordTooLarge(ResponderError):
    """The producer or the broker refuses a record for its size; a retry cannot succeed (HTTP intake: 413)."""


class ActuationError(ResponderError):
    """An actuator failed to reach its desired state."""

    def __init__(self, message: str, *, code: str = "") -> None:
        self.code = code
        super().__init__(message)


class TransientActuationError(ActuationError):
    """Throttling, a 5xx or a timeout: worth retrying."""


class PermanentActuationError(ActuationError):
    """Retrying cannot help: recorded as a failure."""

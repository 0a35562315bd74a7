"""What a broker's refusal of a mirrored line says about that line (responder/ingest/mirror.py): too large (it never
fits), the topic's (an ACL: not the line's fault, it waits), or a record batch refused whole (its lines are sent again
one at a time to find the one at fault)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    TopicAuthorizationFailedError,
)

TOO_LARGE = (MessageSizeTooLargeError, RecordListTooLargeError)  # that line never fits; the others may
TOPIC_REFUSED = (TopicAuthorizationFailedError, ClusterAuthorizationFailedError)  # not the line's fault: it waits


def refused_together(sends: Sequence[asyncio.Future[Any] | KafkaError], errors: Sequence[BaseException | None],
                     index: int) -> int:
    """How many lines from `index` on failed in their futures with the same kind of error: a record batch refused
    whole, whose lines are then sent one at a time to find the one at fault (aiokafka builds a batch of one for a line
    above its batch size, so one refused alone was refused for itself, and the lines after it went through)."""
    error, n = errors[index], 0
    while index + n < len(errors) and sends[index + n] is not errors[index + n] and \
            type(errors[index + n]) is type(error) and error is not None:
        n += 1
    return n

"""Operator requests and their replies as they travel on Kafka (pure data; signing is in responder.auth).

An operator action on a running fleet (`responder undo --via kafka`, `responder models rollback|switch|
quarantine --via kafka`) is a signed `OperatorRequest` on the operator-requests topic, keyed by incident
(the model name for model actions). The service that owns the timeline executes it through the engine's
step runner, records it with the operator's identity, and publishes an `OperatorReply` to the replies topic.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue, field_validator

REQUESTS_TOPIC = "responder.operator.requests"
REPLIES_TOPIC = "responder.operator.replies"
REPLY_KEY_HEADER = "responder-reply-key-id"
REPLY_SIGNATURE_HEADER = "responder-reply-signature"
REPLY_DOMAIN = b"responder operator reply v1\n"
"""Prefixed to what a replica signs for a reply (Ed25519, its timeline key, `reply_signed`): a reply signature can
stand for nothing else that key signs (approval requests, checkpoints, scorecards)."""
Action = Literal["undo", "models.rollback", "models.switch", "models.quarantine"]
ARGS_MAX_BYTES = 4096
"""Most bytes of an operator request's `args` as JSON (an undo's step, a model's name, version and reason take a few
hundred): more is refused as malformed, so what `operator.requested` and the reasons of a refusal record of them is
bounded (since 2026-12-07; before, args of any size were recorded)."""
MODEL_ACTUATORS: dict[Action, str] = {
    "models.rollback": "model.rollback_to_last_signed",
    "models.switch": "model.switch_version",
    "models.quarantine": "model.quarantine_version",
}


class OperatorRequest(BaseModel):
    """What an operator asks the owning service to do, signed; valid until `expires_at`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[0-9a-f]{32}$", description="the reply carries it")
    action: Action
    by: str = Field(min_length=1, max_length=200)
    incident: str | None = Field(default=None, max_length=200, description="for undo")
    args: dict[str, JsonValue] = Field(
        default_factory=dict, description="undo: step, force, allow_destructive; models.*: the actuator's params")
    issued_at: AwareDatetime
    expires_at: AwareDatetime

    @field_validator("args")
    @classmethod
    def _args_bounded(cls, args: dict[str, JsonValue]) -> dict[str, JsonValue]:
        """At most `ARGS_MAX_BYTES` as JSON; args JSON reads but orjson cannot write (an int beyond 64 bits) are
        malformed too (a ValueError, which pydantic reports; orjson's TypeError would escape the model)."""
        try:
            size = len(orjson.dumps(args))
        except TypeError as exc:  # orjson.JSONEncodeError is one
            raise ValueError("args cannot be written as JSON") from exc
        if size > ARGS_MAX_BYTES:
            raise ValueError(f"{size} bytes as JSON, more than {ARGS_MAX_BYTES}")
        return args

    def canonical(self) -> bytes:
        """The exact bytes that are signed and sent as the record value."""
        return orjson.dumps(self.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)

    @property
    def key(self) -> bytes:
        """The record key: the incident (co-partitioned with its decisions), or the model."""
        return (self.incident or str(self.args.get("model", ""))).encode()

    def expired(self, now: datetime) -> bool:
        """Whether the request is too old to act on."""
        return now >= self.expires_at


class OperatorReply(BaseModel):
    """What the service did with a request: `ok`, each step's outcome, or why it refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    action: str = ""
    ok: bool
    error: str | None = None
    outcomes: list[dict[str, Any]] = Field(default_factory=list)
    timeline_seq: int | None = None


class ReplyWait(BaseModel):
    """What a `--via kafka` command heard back: the reply it accepts (None: none by the timeout), whether its
    signature was checked (False: no public key, accepted unverified), how many other replies were refused and why
    (the first few, `responder.ingest.operator.REFUSALS_KEPT`)."""

    model_config = ConfigDict(frozen=True)

    reply: OperatorReply | None = None
    verified: bool = False
    refused: list[str] = Field(default_factory=list)
    refused_count: int = 0


def request_digest(value: bytes) -> str:
    """SHA-256 (hex) of a request record's value: what its reply is bound to (another request may claim its id)."""
    return hashlib.sha256(value).hexdigest()


def reply_signed(request: str, reply: bytes) -> bytes:
    """What a replica signs for a reply: `REPLY_DOMAIN`, the digest of the request it answers, the reply's value."""
    return REPLY_DOMAIN + request.encode() + b"\n" + reply

"""How each SIEM posting to the intake authenticates and how fast it may post: the `intake_sources` settings.

Environment: `RESPONDER_INTAKE_SOURCES='{"splunk": {"auth": "url-token", "keys": {"k1": "…"}}}'` (source → its
settings, as JSON), or an `intake_sources:` mapping in the YAML file. `responder.intake.auth` checks requests
against them.
"""

from __future__ import annotations

import base64
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

WHSEC = "whsec_"
"""The prefix of a key given as base64 (Standard Webhooks' form): the key is the bytes it decodes to."""
IntakeAuth = Literal["standard-webhooks", "bearer", "url-token", "open"]


class IntakeSource(BaseModel):
    """One SIEM posting to `POST /v1/events/{source}`: how it authenticates and how fast it may post."""

    model_config = ConfigDict(extra="forbid")

    auth: IntakeAuth = Field(description="standard-webhooks (HMAC), bearer, url-token (Splunk) or open")
    keys: dict[str, SecretStr] = Field(default_factory=dict,
                                       description="key id → secret; several at once while rotating")
    format: str | None = Field(default=None, description="decoder format or family; unset = by shape")
    topic: str | None = Field(default=None, description="topic to produce to; unset = intake_topic")
    rate_per_s: float = Field(default=50.0, gt=0, allow_inf_nan=False, description="sustained requests per second")
    burst: int = Field(default=100, ge=1, description="requests allowed at once above the rate")


def key_bytes(secret: str) -> bytes:
    """The bytes an intake source's key stands for: a `whsec_<base64>` key decoded (binascii.Error when it is not
    base64), any other key its UTF-8 text."""
    if secret.startswith(WHSEC):
        return base64.b64decode(secret.removeprefix(WHSEC), validate=True)
    return secret.encode()

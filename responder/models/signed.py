"""What a signed decision or operator request may hold: the bounds that keep its refusal's timeline entry small.

Whoever holds an approval key (or stole one) can sign any bytes; a decision or request that is then refused is still
recorded (`approval.rejected`, `operator.rejected`), so what it names is bounded before anything of it is recorded:
refused as malformed, never cut into something that reads as valid (docs/security.md, "Signed but refused").
"""

from __future__ import annotations

from pydantic import BaseModel, ValidationError

STEP_ID_MAX = 100
"""Most characters of a runbook's step id (`Step.id`; the shipped runbooks' longest is 21), so that every step a
decision may have to name fits in `NAME_MAX`."""
NAME_MAX = 2 * STEP_ID_MAX + 1
"""Most characters of the incident or step a decision names: incident ids are 20, a step is a runbook's, or an
escalation step parked as `<escalation id>.<failed step id>`. A longer one is refused as malformed, never cut
(since 2026-12-07; before, both were unbounded, and recorded in full when the decision was refused)."""
SIGNED_MAX_BYTES = 64 * 1024
"""Most bytes of a decision's or an operator request's record value: a larger one is refused as malformed before it
is read, its signature checked first so the refusal says whether a key signed it (since 2026-12-07). Every value the
fields' limits accept fits however its producer escapes it: a decision at every limit, each character a `\\uXXXX`
escape (12 bytes for an emoji), takes about 33 KB; as the CLI writes it, at most about 14 KB."""


def too_large(value: bytes) -> str | None:
    """Why a signed record's value is too large to be a decision or an operator request (its length only), or None."""
    if len(value) <= SIGNED_MAX_BYTES:
        return None
    return f"{len(value)} bytes, more than a decision or operator request may take ({SIGNED_MAX_BYTES})"


def first_problem(exc: ValidationError, model: type[BaseModel]) -> str:
    """The first thing wrong with a value read as `model`, after the field it is in when `model` declares that field:
    pydantic's message never quotes the input, and an undeclared field's name (the sender's, of any length) is left
    out, so what a refusal records of it is bounded."""
    error = exc.errors()[0]
    field = error["loc"][0] if error["loc"] else None
    return f"{field}: {error['msg']}" if isinstance(field, str) and field in model.model_fields else error["msg"]

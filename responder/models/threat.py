"""The normalised threat an event reports: a closed category plus ATT&CK / ATLAS technique ids.

Decoders set it from the native type, rule or technique fields of their format through declarative
tables (responder.normalise.threats); runbooks trigger on `category` whatever the source (docs/threats.md).
"""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

# ATT&CK (T1098, T1098.001) or ATLAS (AML.T0018, AML.T0018.000) technique ids
TECHNIQUE = r"^(T\d{4}(\.\d{3})?|AML\.T\d{4}(\.\d{3})?)$"
_TECHNIQUE = re.compile(TECHNIQUE)


class ThreatCategory(StrEnum):
    """What is happening, independent of who reported it (a closed set: runbooks name these)."""

    CREDENTIAL_COMPROMISE = "credential_compromise"  # a long-term key used by someone else, or leaked
    # an ML model found a principal's credential-access or sign-in API calls unusual: suspected, not shown
    ANOMALOUS_CREDENTIAL_USE = "anomalous_credential_use"
    CREDENTIAL_EXFILTRATION = "credential_exfiltration"  # an instance role's session used off the instance
    BACKDOOR_CREDENTIAL = "backdoor_credential"  # a key or login minted for another principal
    PRIVILEGE_ESCALATION = "privilege_escalation"  # admin policy attached, admin user created
    DEFENSE_EVASION_LOGGING = "defense_evasion_logging"  # audit logging stopped, deleted or blinded
    # audit logging narrowed or redirected, still on: CloudTrail PutEventSelectors that still logs writes,
    # UpdateTrail (a notice; `defense_evasion_logging` is the stop, contained)
    AUDIT_LOGGING_CHANGED = "audit_logging_changed"
    SECRET_ACCESS = "secret_access"  # noqa: S105  # nosec B105 # a category name; secrets read in bulk or by an unexpected principal
    PUBLIC_DATA_EXPOSURE = "public_data_exposure"  # a bucket or dataset made public
    UNAUTHORIZED_DATA_WRITE = "unauthorized_data_write"  # an unknown principal writing to training data
    MODEL_TAMPERING = "model_tampering"  # a served model artifact changed after signing
    UNSIGNED_MODEL = "unsigned_model"  # a model version no trusted key signed was deployed
    MODEL_DRIFT = "model_drift"  # data, bias or attribution drift of a served model
    MODEL_EXTRACTION = "model_extraction"  # inference API probed to copy the model
    CRYPTOMINING = "cryptomining"  # a miner on a host or container
    HOST_COMPROMISE = "host_compromise"  # malware, backdoor or brute force on an instance
    CONTAINER_SHELL = "container_shell"  # an interactive shell in a container
    CONTAINER_DRIFT = "container_drift"  # binaries written or kernel modules loaded in a container
    LLMJACKING = "llmjacking"  # stolen credentials enabling or invoking hosted LLMs (Bedrock)
    DISCOVERY = "discovery"  # reconnaissance of permissions or resources


class Threat(BaseModel):
    """The category and the technique ids (ATT&CK first, then ATLAS) an event's source reports or implies."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    category: ThreatCategory
    techniques: tuple[str, ...] = Field(default=(), description="ATT&CK / ATLAS technique ids")

    def with_techniques(self, extra: tuple[str, ...]) -> Threat:
        """This threat with the source's own technique ids added (kept in order, no duplicates)."""
        merged = tuple(dict.fromkeys((*self.techniques, *(t for t in extra if _TECHNIQUE.match(t)))))
        return self if merged == self.techniques else Threat(category=self.category, techniques=merged)


def is_technique(value: str) -> bool:
    """Whether `value` is an ATT&CK or ATLAS technique id."""
    return _TECHNIQUE.match(value) is not None

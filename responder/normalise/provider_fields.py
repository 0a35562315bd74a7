"""The finding provider's own types and severity of a Security Hub finding, which only the provider writes.

ASFF keeps them in `FindingProviderFields` (`BatchImportFindings`); the top-level `Types` and `Severity` are
anyone's allowed `securityhub:BatchUpdateFindings` (an analyst, a triage role, an automation rule). Security Lake's
OCSF copy of an ASFF finding maps the top-level ones into `finding_info.types` and `severity_id`, and keeps the
provider's, flattened to text, in `unmapped` (a list comma-joined: `"A,B"`). Whenever the provider's copy is there,
it alone decides (docs/threats.md, "The provider's `Types` classify, not an analyst's").
"""

from __future__ import annotations

import math
from typing import Any

from responder.errors import ValidationFailed
from responder.models.event import Severity
from responder.normalise.fields import dig, in_band, label_of, number, severity_from_label

UNMAPPED_TYPES, UNMAPPED_LABEL = "FindingProviderFields.Types[]", "FindingProviderFields.Severity.Label"
# OCSF severity_id → 0-10 score (0 Unknown, 1 Informational … 5 Critical, 6 Fatal)
SEVERITY_IDS = {0: 0.0, 1: 0.0, 2: 2.0, 3: 5.0, 4: 7.5, 5: 9.5, 6: 10.0}


def provider_types(provider: Any, given: Any) -> list[str]:
    """The texts of the finding provider's types list whenever it has one (ASFF `FindingProviderFields.Types`), even
    an empty or malformed one (then no types); `given` only when it has none (null or absent): the top-level `Types`
    (OCSF `finding_info.types`), which anyone allowed `securityhub:BatchUpdateFindings` may rewrite."""
    chosen = given if provider is None else provider
    return [x for x in chosen if isinstance(x, str)] if isinstance(chosen, list) else []


def ocsf_types(doc: dict[str, Any]) -> list[str]:
    """An OCSF finding's types: the provider's in Security Lake's `unmapped` when it is there (its comma-joined text
    split; the ASFF type taxonomy has no commas), else `finding_info.types`."""
    flat = dig(doc, "unmapped", UNMAPPED_TYPES)
    if isinstance(flat, str):
        flat = [part.strip() for part in flat.split(",") if part.strip()]
    info = doc.get("finding_info") or doc.get("finding") or {}
    return provider_types(flat, dig(info, "types"))


def ocsf_severity(doc: dict[str, Any]) -> Severity:
    """`severity_id`, unless it falls outside the band of the provider's label Security Lake's copy of an ASFF finding
    keeps in `unmapped` (`severity_id` is mapped from the top-level Severity BatchUpdateFindings may rewrite): then
    that label; else the `severity` word."""
    sid, provider = doc.get("severity_id"), dig(doc, "unmapped", UNMAPPED_LABEL)
    score = SEVERITY_IDS.get(sid) if isinstance(sid, int) else None
    if score is not None and (label_of(provider) is None or in_band(provider, score)):
        return Severity.of(score, original=sid)
    return severity_from_label(provider if label_of(provider) else doc.get("severity"), default=0.0)


def _numbers(copy: Any, guardduty: bool, own: tuple[str, ...]) -> list[float]:
    """The finite 0-10 scores a Severity object gives: GuardDuty's own number (its `own` fields) for its findings,
    then `Normalized/10` ("NaN", "Infinity", "1e400" are not scores)."""
    normalized = number(dig(copy, "Normalized"))
    hints = [number(dig(copy, key)) for key in own] if guardduty else []
    hints.append(normalized / 10 if normalized is not None else None)
    return [h for h in hints if h is not None and math.isfinite(h)]


def asff_severity(f: dict[str, Any], guardduty: bool) -> Severity:
    """An ASFF finding's severity from one copy: `FindingProviderFields.Severity` whenever it gives a known label or
    a number, else the top-level `Severity` (which BatchUpdateFindings may rewrite). The copy's label, scored by its
    first number inside the label's band (for GuardDuty's own finding GuardDuty's 0-10 number first: the provider's
    `Original` or `Product`, the top-level `Product`), else by the label's standard score (MEDIUM 5.0, as
    `severity_id` 3 in the OCSF lane)."""
    provider, top = dig(f, "FindingProviderFields", "Severity"), dig(f, "Severity")
    label, finite = dig(provider, "Label"), _numbers(provider, guardduty, ("Original", "Product"))
    if label_of(label) is None and not finite:  # no provider's copy, or nothing in it to score by
        label, finite = dig(top, "Label"), _numbers(top, guardduty, ("Product",))
    if label is None and not finite:
        raise ValidationFailed("securityhub finding without Severity.Label or Severity.Normalized")
    fit = next((h for h in finite if in_band(label, h)), None)
    return severity_from_label(label, hint=fit, default=finite[0] if finite else None)

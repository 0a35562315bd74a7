"""Whether a protected-id pattern protects one of a target's forms (`matching_form`; the forms are `protection`'s).

A pattern is a glob, matched case-insensitively against the lower-cased forms. An ARN pattern is matched part by part
against the ARN forms, a form's `*` partition, region or account matching whatever the pattern names there (the forms
`protection` derives leave them open), a complete secret ARN also as the partial ARN naming the same secret; and a
pattern also matches as what else it protects (`pattern_variants`: a qualified function's function, an object's
bucket, an exact IAM path form's name, a session form's unique id, a secret's name without its suffix).
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase

from responder.engine.arnforms import pattern_variants, suffix_known, without_suffix


def _arn_match(pattern: str, form: str) -> bool:
    """Part by part; a form's `*` partition (1), region (3) or account (4) matches whatever the pattern names there."""
    want, have = pattern.split(":", 5), form.split(":", 5)
    if len(want) != 6 or len(have) != 6:
        return False
    return all(fnmatchcase(h, w) or (i in (1, 3, 4) and h == "*")
               for i, (w, h) in enumerate(zip(want, have, strict=True)))


def matching_form(pattern: str, forms: Iterable[str]) -> str | None:
    """The first form `pattern` protects (case-insensitive; ARN patterns part by part), or None; `forms` in the order
    to report the first of (sorted by the caller, once for every pattern)."""
    want = pattern.casefold()
    wants = pattern_variants(want)
    arn = want.startswith("arn:")
    for form in forms:
        if fnmatchcase(form, want):
            return form
        if arn and form.startswith("arn:") and _arn_variants_match(want, wants, form):
            return form
        if not arn and len(wants) > 1 and any(fnmatchcase(form, w) for w in wants[1:]):  # `role/admins/X` → `role/X`
            return form
    return None


def _arn_variants_match(want: str, wants: tuple[str, ...], form: str) -> bool:
    """`want` matches the ARN form; for a complete secret ARN also as the partial ARN naming the same secret; for any
    form also what else the pattern protects (`pattern_variants`: a secret's suffix dropped, for a form whose suffix
    is not known or may not be one, a Lambda qualifier, an object's key, an IAM path). A complete-looking secret ARN
    (`…:secret:db-backup`) may also be the partial ARN of a name ending in `-` and 6 characters, which Secrets Manager
    (and moto) may resolve to that secret: it is matched both ways (fail closed)."""
    if _arn_match(want, form):
        return True
    if suffix_known(form) and _arn_match(want, without_suffix(form)):
        return True
    return any(_arn_match(w, form) for w in wants[1:])

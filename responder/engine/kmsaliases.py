"""The aliases of a KMS key, read through AWS, so that a protected alias protects the key it points to.

A step names a KMS key by key id or key ARN (the KMS actuators refuse aliases), while an operator naturally protects the
alias (`alias/prod-key`, `arn:aws:kms:REGION:ACCOUNT:alias/prod-key`). When a protected id can name an alias
(`names_alias`) and a step names a KMS key, the guard reads the key's aliases (`kms:ListAliases` with its `KeyId`, in
responder's own account and region) and matches them as forms of the key, kept and refused as `keptreads` says: an alias
moved away meanwhile still refuses for `TTL_S` seconds, an alias re-pointed to the key since protects it at once, and a
read that fails (no permission, a key that is not found, throttling past the retries, an answer without `Aliases`, one
truncated with no marker, too many pages) refuses the step (fail closed)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

import structlog

from responder.engine.arnforms import may_start
from responder.engine.keptreads import KeptReads
from responder.errors import PermanentActuationError

log = structlog.get_logger(__name__)

_KEY_FORM = re.compile(r"arn:[^:]*:kms:[^:]*:[^:]*:key/"
                       r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})")
_MAX_PAGES = 20  # ListAliases pages read for one key at most (asked 100 a page, its maximum; a key may have 50)
_PAGE = 100  # aliases asked for a page: ListAliases' maximum (its default is 50)


@lru_cache(maxsize=4096)
def names_alias(pattern: str) -> bool:
    """Whether a protected id can match a KMS alias: it names `alias`, or its name part (after an ARN's last `:`) may
    start with `alias/` (`*prod-key`, `alia?/x`, `a*`, `arn:aws:kms:*:*:*`), or it is a bare pattern that may match
    an ARN (`ar*`)."""
    low = pattern.casefold()
    arn = low.startswith("arn:")
    name = low.rsplit(":", 1)[-1] if arn else low
    return "alias" in low or may_start(name, "alias/") or (not arn and may_start(low, "arn:"))


def key_ids(forms: Iterable[str]) -> set[str]:
    """The ids of the KMS keys among a step's (lower-cased) identifier forms: of each key ARN, the one a KMS key
    parameter (an `aws.kms.*` step's `key_id`) or a `kms_key` event resource derives included; a bare id elsewhere (a
    notify step's signing `key_id`, any other uuid) names no KMS key."""
    return {m.group(1) for form in forms if (m := _KEY_FORM.fullmatch(form))}


class KeyAliases(KeptReads):
    """Reads and keeps, for `TTL_S` seconds, the aliases of the keys steps name (`clock`: monotonic seconds)."""

    def _unreadable(self, key: str, exc: Exception) -> str:
        log.warning("kms_aliases_unreadable", key_id=key, error=str(exc))
        return (f"KMS key {key!r}: its aliases could not be read ({exc}), and a protected id may name one of "
                f"them: refused until they can be (kms:ListAliases)")

    async def _read(self, key: str) -> frozenset[str]:
        """Every page's aliases, or refused (fail closed): a page with no `Aliases` list (moto and AWS answer `[]` for
        a key with none), one marked truncated with no marker, more than `_MAX_PAGES` pages. A `NextMarker` is
        followed even when `Truncated` is left out: the next page may name a protected alias."""
        found: set[str] = set()
        marker: dict[str, str] = {}
        for _ in range(_MAX_PAGES):
            page = await self.aws.call("kms", "list_aliases", KeyId=key, Limit=_PAGE, **marker)  # the key's only
            aliases = page.get("Aliases")
            if not isinstance(aliases, list):
                raise PermanentActuationError("ListAliases answered without Aliases", code="Malformed")
            for alias in aliases:
                found.update(str(alias[k]).casefold() for k in ("AliasName", "AliasArn") if alias.get(k))
            token = page.get("NextMarker")
            if not page.get("Truncated") and not token:
                return frozenset(found)
            if not token:
                raise PermanentActuationError("aliases truncated with no marker for the next page", code="Malformed")
            marker = {"Marker": str(token)}
        raise PermanentActuationError(f"more than {_MAX_PAGES} pages of aliases", code="TooManyAliases")

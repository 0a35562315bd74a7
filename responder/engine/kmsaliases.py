"""The aliases of a KMS key, read through AWS, so that a protected alias protects the key it points to.

A step names a KMS key by key id or key ARN (the KMS actuators refuse aliases), while an operator naturally protects
the alias (`alias/prod-key`, `arn:aws:kms:REGION:ACCOUNT:alias/prod-key`). When a protected id can name an alias
(`names_alias`) and a step names a KMS key, the guard reads the key's aliases (`kms:ListAliases` with its `KeyId`,
in responder's own account and region) and matches them as forms of the key. A key's aliases are kept `TTL_S`
seconds, and the guard uses kept ones only to refuse (`kept`): aliases that refuse a step refuse the next one on the
key without a read (fail closed: an alias moved away meanwhile still refuses), while aliases that refuse nothing are
read again (`forms`), so an alias re-pointed to the key since protects it at once. A read that fails (no permission,
a key that is not found, throttling) is not kept, and the step is refused (fail closed): the guard cannot tell that
the key is not the protected one.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from functools import lru_cache

import structlog

from responder.actuators.base import AwsCaller
from responder.errors import PermanentActuationError

log = structlog.get_logger(__name__)

_KEY_FORM = re.compile(r"arn:[^:]*:kms:[^:]*:[^:]*:key/"
                       r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})")
_WILDCARD = re.compile(r"[*?\[]")
_MAX_KEYS = 1024  # keys kept at most: findings naming many keys cannot grow the cache without bound
_MAX_PAGES = 20  # ListAliases pages read for one key at most (100 aliases a page; a key may have 50)


def _may_start(glob: str, prefix: str) -> bool:
    """Whether `glob` may match a string starting with `prefix`: it starts with it, or its text before a wildcard is
    the start of it (a glob without one matches only itself)."""
    literal, *wild = _WILDCARD.split(glob, 1)
    return literal.startswith(prefix) or (bool(wild) and prefix.startswith(literal))


@lru_cache(maxsize=4096)
def names_alias(pattern: str) -> bool:
    """Whether a protected id can match a KMS alias: it names `alias`, or its name part (after an ARN's last `:`) may
    start with `alias/` (`*prod-key`, `alia?/x`, `a*`, `arn:aws:kms:*:*:*`), or it is a bare pattern that may match
    an ARN (`ar*`)."""
    low = pattern.casefold()
    arn = low.startswith("arn:")
    name = low.rsplit(":", 1)[-1] if arn else low
    return "alias" in low or _may_start(name, "alias/") or (not arn and _may_start(low, "arn:"))


def key_ids(forms: Iterable[str]) -> set[str]:
    """The ids of the KMS keys among a step's (lower-cased) identifier forms: of each key ARN, the one a KMS key
    parameter (an `aws.kms.*` step's `key_id`) or a `kms_key` event resource derives included; a bare id elsewhere (a
    notify step's signing `key_id`, any other uuid) names no KMS key."""
    return {m.group(1) for form in forms if (m := _KEY_FORM.fullmatch(form))}


class KeyAliases:
    """Reads and keeps, for `TTL_S` seconds, the aliases of the keys steps name (`clock`: monotonic seconds)."""

    TTL_S = 30.0

    def __init__(self, aws: AwsCaller, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.aws = aws
        self.clock = clock
        self._kept: dict[str, tuple[float, frozenset[str]]] = {}

    def kept(self, keys: Iterable[str]) -> set[str]:
        """The aliases (lower-cased) of `keys` read less than `TTL_S` seconds ago, with no read: only to refuse a step
        (an alias re-pointed to a key since is not among them)."""
        now = self.clock()
        return {a for key in keys if (kept := self._kept.get(key)) is not None and now - kept[0] < self.TTL_S
                for a in kept[1]}

    async def forms(self, keys: Iterable[str]) -> set[str] | str:
        """Every alias name and alias ARN (lower-cased) of `keys`, read now, or why some key's could not be read."""
        out: set[str] = set()
        for key in sorted(keys):
            found = await self._of(key)
            if isinstance(found, str):
                return found
            out |= found
        return out

    async def _of(self, key: str) -> frozenset[str] | str:
        now = self.clock()
        try:
            aliases = await self._read(key)
        except Exception as exc:  # noqa: BLE001 - whatever the read ended with, the step is refused (fail closed)
            log.warning("kms_aliases_unreadable", key_id=key, error=str(exc))
            return (f"KMS key {key!r}: its aliases could not be read ({exc}), and a protected id may name one of "
                    f"them: refused until they can be (kms:ListAliases)")
        if len(self._kept) >= _MAX_KEYS:
            self._kept = {k: v for k, v in self._kept.items() if now - v[0] < self.TTL_S}
            if len(self._kept) >= _MAX_KEYS:
                self._kept.clear()
        self._kept[key] = (now, aliases)
        return aliases

    async def _read(self, key: str) -> frozenset[str]:
        found: set[str] = set()
        marker: dict[str, str] = {}
        for _ in range(_MAX_PAGES):
            page = await self.aws.call("kms", "list_aliases", KeyId=key, **marker)
            for alias in page.get("Aliases", []):
                found.update(str(alias[k]).casefold() for k in ("AliasName", "AliasArn") if alias.get(k))
            if not page.get("Truncated") or not page.get("NextMarker"):
                return frozenset(found)
            marker = {"Marker": str(page["NextMarker"])}
        raise PermanentActuationError(f"more than {_MAX_PAGES} pages of aliases", code="TooManyAliases")

"""What the protection guard matches a step against (`Guards.protected`): the identifier forms of its target and
the tags the event gives the resources it names (`matching`), and the forms only AWS knows of a target, read by a
`KeptReads` (`by_reads`: the KMS aliases of a key, the unique id and path of an IAM role or user). Each kind of read
answers the guard's reason to refuse, or None (`refuses`), and the kinds run together (`inorder`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from responder.engine.formmatch import matching_form
from responder.engine.keptreads import KeptReads
from responder.engine.tagreads import carries, tag_value
from responder.models.event import Resource
from responder.models.runbook import Protected


def _tags(attributes: Mapping[str, Any]) -> dict[str, set[str]]:
    """The tags an event gives a resource, each key with every value given it (a value None or left out: the empty
    value, as `tagreads` reads AWS's; an entry with no key is no tag)."""
    raw = attributes.get("tags")
    if isinstance(raw, Mapping):
        pairs = list(raw.items())
    elif isinstance(raw, list):  # AWS style [{Key, Value}] or [{key, value}]
        pairs = [(t.get("Key", t.get("key")), t.get("Value", t.get("value"))) for t in raw if isinstance(t, Mapping)]
    else:
        return {}
    out: dict[str, set[str]] = {}
    for key, value in pairs:
        if key is not None:
            out.setdefault(str(key), set()).add(tag_value(value))
    return out


def matching(protected: Sequence[Protected], target: str, forms: set[str], named: Sequence[Resource]) -> str | None:
    """Why a step's target, known by `forms` (lower-cased), or an event resource it names (`named`, by the tags the
    event gives it) is protected, or None."""
    ordered = sorted(forms)  # once for every pattern: the first form a pattern matches is the one reported
    for p in protected:
        for pattern in p.ids:
            hit = matching_form(pattern, ordered)
            if hit is not None:
                return f"{target!r} (as {hit!r}) matches protected id {pattern!r}"
        if not p.tags:
            continue
        for res in named:
            tag = carries(p.tags, _tags(res.attributes))
            if tag is not None:
                return f"resource {res.id!r} carries protected tag {tag}"
    return None


async def by_reads(reader: KeptReads | None, what: str, protected: Sequence[Protected], target: str, forms: set[str],
                    named: Sequence[Resource], keys: set[str]) -> str | None:
    """Why a target the step names is protected by forms only AWS knows of it (`reader`'s), or None. Forms kept from an
    earlier read only refuse (fail closed); otherwise they are read now: a change since protects the target."""
    if reader is None:
        return f"{what} {sorted(keys)}: no AWS client to read them, and a protected id may name what only AWS knows"
    kept = reader.kept(keys)
    if kept and (hit := matching(protected, target, forms | kept, named)) is not None:
        return hit
    found = await reader.forms(keys)
    return found if isinstance(found, str) else matching(protected, target, forms | found, named)


def refuses(hit: str | None) -> bool:
    """Whether one kind of reads refused the step (`in_order`'s test)."""
    return hit is not None

"""Which acting runbooks an unsigned record can still trigger under a `require_signature` that names sources or
topics, not every record (docs/security.md, "A per-source signature requirement guards only those sources").

A source in `require_signature` refuses an unsigned record only when an event decoded from it has that source. Most
runbooks trigger on a threat category (`credential_exfiltration`), which several decoders produce: the same
GuardDuty finding, wrapped as a Security Hub (ASFF) or OCSF finding, has the source `securityhub` or `ocsf`, and
triggers the same containment unsigned. `unguarded` names, per runbook that acts (enforce mode, some step that is not
a notification, no `require_signature: true` of its own), the sources it can match (`trigger_sources`: its
`trigger.source` glob, narrowed to the sources whose decoders produce one of its categories) whose unsigned records
some consumed topic accepts: a topic not in `require_signature` carries any source, or, pinned in `topic_formats`,
the sources of its pinned format.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from responder.actuators.registry import Registry
from responder.catalog.attributes import trigger_sources
from responder.catalog.checks import containment
from responder.models.runbook import Mode, Runbook
from responder.normalise.registry import formats, sources


def _topic_sources(pin: str | None) -> set[str]:
    """The event sources a topic can carry: every source, or those of the format its `topic_formats` entry pins
    (what `responder.normalise.registry.detect` limits a pinned topic to)."""
    if pin is None:
        return set(sources())
    return {f.source for f in formats().values() if pin in (f.name, f.family, f.source)}


def acts(rb: Runbook, registry: Registry) -> bool:
    """Whether the runbook can change something: enforce mode, and a containment step (`checks.containment`)."""
    return rb.mode is Mode.ENFORCE and bool(containment(rb, registry))


def unsigned_sources(require: Iterable[str], topics: Sequence[str], topic_formats: Mapping[str, str]) -> set[str]:
    """The event sources whose unsigned records are accepted: carried by a consumed topic that does not require a
    signature, and not themselves in `require`. Empty with `*`, or when every consumed topic requires one."""
    required = set(require)
    if "*" in required:
        return set()
    carried = set().union(*(_topic_sources(topic_formats.get(t)) for t in topics if t not in required))
    return carried - required


def unguarded(books: Iterable[Runbook], registry: Registry, require: Iterable[str], topics: Sequence[str],
              topic_formats: Mapping[str, str]) -> dict[str, list[str]]:
    """Runbook id → the sources it can match whose unsigned records are accepted, for every acting runbook that does
    not require a signature itself; empty when `require` is empty (signatures are not asked for at all)."""
    required = list(require)
    if not required:
        return {}
    open_sources = unsigned_sources(required, topics, topic_formats)
    found: dict[str, list[str]] = {}
    for rb in books:
        if rb.require_signature or not acts(rb, registry):
            continue
        reachable = [s for s in trigger_sources(rb) if s in open_sources]
        if reachable:
            found[rb.id] = reachable
    return found

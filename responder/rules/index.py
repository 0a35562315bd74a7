"""A discrimination index over runbook triggers, so matching cost does not grow with the rule count.

Each runbook is filed once, under its most selective *anchor*:

1. exact type (no wildcard): `(source, type)`;
2. type glob with a literal prefix (`UnauthorizedAccess:IAMUser/*`): `(source, prefix)` per prefix length;
3. threat category (`trigger.category`): one key per listed category;
4. a top-level `eq` / `in` condition on an event field: `(field, value)`;
5. exact source only;
6. nothing indexable: the residue, checked for every event (keep it small).

An event probes each family with a bounded number of dict lookups (one per distinct prefix length, one
for its threat category and one per distinct indexed field), then the few candidates found run their
compiled predicate. Wildcard or glob sources file under `*` and are re-checked by the predicate.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from responder.models.runbook import AllOf, AnyOf, Condition, ConditionNode, NotOf, Runbook
from responder.models.threat import ThreatCategory
from responder.rules.conditions import Getter, Predicate, compile_node, getter
from responder.rules.operators import MISSING
from responder.rules.times import time_operand

_WILD = re.compile(r"[*?\[]")
MEMO = 4096  # (source, type, threat category) combinations whose candidates are remembered
MEMO_KEY = 256  # longest source or type remembered (a record's type is the sender's to choose)


def literal_prefix(pattern: str) -> str:
    """The characters of a glob before its first wildcard."""
    found = _WILD.search(pattern)
    return pattern if found is None else pattern[: found.start()]


def _glob(pattern: str) -> Callable[[str], bool]:
    if not _WILD.search(pattern):
        return lambda value: value == pattern
    if pattern == "*":
        return lambda value: True
    inner = pattern.strip("*")  # `*lit*`, `lit*` and `*lit` are plain string tests (a regex `.*` backtracks)
    if inner and not _WILD.search(inner) and pattern.count("*") == len(pattern) - len(inner):
        if pattern[0] == "*" and pattern[-1] == "*":
            return lambda value: inner in value
        if pattern[-1] == "*":
            return lambda value: value.startswith(inner)
        return lambda value: value.endswith(inner)
    rx = re.compile(fnmatch.translate(pattern))
    return lambda value: rx.match(value) is not None


@dataclass(frozen=True)
class Compiled:
    """A runbook with its trigger compiled into one predicate over the scope `{"event": Event}`; `reads` names
    the top-level Event fields the predicate can read (`*` for a path outside `event`)."""

    order: int
    runbook: Runbook
    accepts: Predicate
    reads: frozenset[str] = frozenset({"*"})


def _field_of(path: str) -> str:
    """The top-level Event field a condition path reads (`event.severity.score` → severity), `*` outside `event`."""
    parts = path.split(".")
    return parts[1] if parts[0] == "event" and len(parts) > 1 else "*"


def _condition_fields(node: ConditionNode) -> set[str]:
    if isinstance(node, Condition):
        return {_field_of(node.field)}
    if isinstance(node, AllOf):
        return set().union(*(_condition_fields(n) for n in node.all))
    if isinstance(node, AnyOf):
        return set().union(*(_condition_fields(n) for n in node.any))
    if isinstance(node, NotOf):
        return _condition_fields(node.not_)
    return {"*"}  # pragma: no cover - ConditionNode has no other kind


def trigger_reads(rb: Runbook) -> frozenset[str]:
    """Every top-level Event field the runbook's trigger reads: source and type always, threat for a category."""
    fields = {"source", "type", *(["threat"] if rb.trigger.category else [])}
    for node in rb.trigger.conditions:
        fields |= _condition_fields(node)
    return frozenset(fields)


def compile_trigger(order: int, rb: Runbook) -> Compiled:
    """Source and type globs, then each condition, as one closure."""
    source_ok, type_ok = _glob(rb.trigger.source), _glob(rb.trigger.type)
    categories = frozenset(rb.trigger.category)
    preds = tuple(compile_node(n) for n in rb.trigger.conditions)

    def accepts(scope: Mapping[str, Any]) -> bool:
        event = scope["event"]
        if not (source_ok(event.source) and type_ok(event.type)):
            return False
        if categories and (event.threat is None or event.threat.category not in categories):
            return False
        for pred in preds:  # noqa: SIM110 - a plain loop is ~20 % faster than all(genexpr) here
            if not pred(scope):
                return False
        return True

    return Compiled(order, rb, accepts, trigger_reads(rb))


def _eq_anchor(rb: Runbook) -> tuple[str, list[Hashable]] | None:
    for node in rb.trigger.conditions:
        if not isinstance(node, Condition) or not node.field.startswith("event."):
            continue
        value = time_operand(node.field, node.op, node.value)  # as the compiled condition compares it
        if node.op == "eq" and isinstance(value, Hashable) and value is not None:
            return node.field, [value]
        # `in: [null, …]` holds for a field that is null, which `candidates` never probes: not an anchor
        if node.op == "in" and isinstance(value, list) and all(
                v is not None and isinstance(v, Hashable) for v in value):
            return node.field, [v for v in value if isinstance(v, Hashable)]  # all of them
    return None


class TriggerIndex:
    """Runbooks filed by anchor; `candidates(event)` returns the few worth checking, in load order."""

    def __init__(self, runbooks: Iterable[Runbook]) -> None:
        self.compiled = [compile_trigger(i, rb) for i, rb in enumerate(runbooks)]
        self._exact: dict[tuple[str, str], list[Compiled]] = {}
        self._prefix: dict[int, dict[tuple[str, str], list[Compiled]]] = {}
        self._category: dict[ThreatCategory, list[Compiled]] = {}
        self._eq: dict[str, tuple[Getter, dict[Hashable, list[Compiled]]]] = {}
        self._source: dict[str, list[Compiled]] = {}
        self.residue: list[Compiled] = []
        self._memo: dict[tuple[str, str, ThreatCategory | None], list[Compiled]] = {}
        for c in self.compiled:
            self._file(c)
        self._prefix_lengths = sorted(self._prefix)
        # what `candidates` reads: the anchors' fields (a partial event must carry them all to be probed)
        self.probes = frozenset({"source", "type", "threat", *(_field_of(f) for f in self._eq)})

    def _file(self, c: Compiled) -> None:
        trig = c.runbook.trigger
        source = trig.source if not _WILD.search(trig.source) else "*"
        prefix = literal_prefix(trig.type)
        if prefix == trig.type:
            self._exact.setdefault((source, prefix), []).append(c)
            return
        if prefix:
            self._prefix.setdefault(len(prefix), {}).setdefault((source, prefix), []).append(c)
            return
        if trig.category:
            for category in dict.fromkeys(trig.category):
                self._category.setdefault(category, []).append(c)
            return
        anchor = _eq_anchor(c.runbook)
        if anchor is not None:
            field, values = anchor
            bucket = self._eq.setdefault(field, (getter(field), {}))[1]
            for v in values:
                bucket.setdefault(v, []).append(c)
            return
        if source != "*":
            self._source.setdefault(source, []).append(c)
            return
        self.residue.append(c)

    def candidates(self, scope: Mapping[str, Any]) -> list[Compiled]:
        """Runbooks that may accept the event in `scope["event"]` (a superset of the matches), in a list that may be
        shared between calls: do not modify it.

        Without `eq` anchors the answer depends on the event's source, type and threat category alone, and is
        remembered per combination (a stream repeats a few; at most `MEMO` are kept, of sources and types up to
        `MEMO_KEY` characters)."""
        event = scope["event"]
        if self._eq or len(event.type) > MEMO_KEY or len(event.source) > MEMO_KEY:  # memory stays bounded
            return self._candidates(scope)
        threat = event.threat
        key = (event.source, event.type, threat.category if threat is not None else None)
        found = self._memo.get(key)
        if found is None:
            if len(self._memo) >= MEMO:
                self._memo.clear()
            found = self._memo[key] = self._candidates(scope)
        return found

    def _candidates(self, scope: Mapping[str, Any]) -> list[Compiled]:
        event = scope["event"]
        src, typ = event.source, event.type
        found: list[Compiled] = []
        for key in ((src, typ), ("*", typ)):
            hit = self._exact.get(key)
            if hit:
                found += hit
        for length in self._prefix_lengths:
            if length > len(typ):
                break
            table, pre = self._prefix[length], typ[:length]
            for key in ((src, pre), ("*", pre)):
                hit = table.get(key)
                if hit:
                    found += hit
        threat = event.threat
        if threat is not None:
            hit = self._category.get(threat.category)
            if hit:
                found += hit
        for get, eq_table in self._eq.values():
            value = get(scope)
            if value is not MISSING and isinstance(value, Hashable):
                try:
                    hit = eq_table.get(value)
                except TypeError:  # defensive: the reader yields JSON values (a tuple as a list), so nothing
                    continue  # Hashable that does not hash; such a value would equal no anchor value (all hash)
                if hit:
                    found += hit
        hit = self._source.get(src)
        if hit:
            found += hit
        if self.residue:
            found += self.residue
        if len(found) > 1:
            found = sorted({c.order: c for c in found}.values(), key=lambda c: c.order)
        return found

    def stats(self) -> dict[str, int]:
        """How the runbooks were filed (for `runbooks explain --json` and the benchmark)."""
        return {
            "exact": sum(len(v) for v in self._exact.values()),
            "prefix": sum(len(v) for t in self._prefix.values() for v in t.values()),
            "category": len({id(c) for v in self._category.values() for c in v}),
            "eq": len({id(c) for _, t in self._eq.values() for v in t.values() for c in v}),
            "source": sum(len(v) for v in self._source.values()),
            "residue": len(self.residue),
        }

"""A playbook that failed its schema, cut to the parts that passed it, so `tabletop validate` lists the reference
problems of those parts with the schema errors (every problem in one pass, not the rest after the schema is fixed).

An item of `injects`, `decisions`, `faults` or `expectations` with a schema error is left out, a header field
(`title`, `objectives`, ...) with one gets a stand-in and an unknown top-level key is dropped; the reference checks
then run on what is left, each problem at its place in the file. A check that would read a left-out item is not
made (it could report a problem the file does not have): an `after:` naming a left-out inject or expectation is taken
as found, and with an inject left out the checks that read the injects' text or times (a decision's target and time,
an expectation's param values) wait until the file is fixed. With an error in `world` or `settings` (which nearly
every check reads), or nothing left of `injects` or `expectations`, the schema errors are all that is reported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from responder.tabletop.models import Playbook

LISTS = ("injects", "decisions", "faults", "expectations")
REQUIRED = ("injects", "expectations")  # a playbook needs at least one of each: no stand-in for them
STAND_IN: dict[str, Any] = {"id": "playbook", "title": "", "objectives": ["-"], "threat": [], "description": "",
                            "discussion": [], "timeout": 60.0}

Loc = tuple[int | str, ...]


@dataclass(frozen=True)
class Omitted:
    """What the reference checks must not hold against the file: the ids of the left-out injects and expectations,
    whether the injects are whole (none left out), and the header fields replaced by a stand-in."""

    injects: frozenset[str] = frozenset()
    expectations: frozenset[str] = frozenset()
    whole: bool = True
    header: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Partial:
    """The playbook of the parts that passed the schema, and where each kept item was in the file."""

    playbook: Playbook
    omitted: Omitted
    kept: Mapping[str, Sequence[int]] = field(default_factory=dict)

    def place(self, loc: Loc) -> Loc:
        """A problem's location in the partial playbook, as a location in the file."""
        if len(loc) > 1 and loc[0] in self.kept and isinstance(loc[1], int):
            return (loc[0], self.kept[str(loc[0])][loc[1]], *loc[2:])
        return loc


def passed_parts(data: Mapping[str, Any], errors: Sequence[ErrorDetails]) -> Partial | None:
    """The parts of `data` that passed the schema as a Playbook (None when too little did to check references)."""
    cut = dict(data)
    bad: dict[str, set[int]] = {k: set() for k in LISTS}
    header: set[str] = set()
    for err in errors:
        loc = err["loc"]
        top = str(loc[0]) if loc else ""
        if top in LISTS and len(loc) > 1 and isinstance(loc[1], int):
            bad[top].add(loc[1])
        elif top in LISTS and top not in REQUIRED:
            cut[top] = []  # not a list at all: nothing of it is checked
        elif top in STAND_IN:
            cut[top] = STAND_IN[top]
            header.add(top)
        elif top and top not in Playbook.model_fields:
            cut.pop(top, None)  # an unknown key
        else:  # world, settings, a missing or unusable injects or expectations
            return None
    kept: dict[str, list[int]] = {}
    ids: dict[str, frozenset[str]] = {}
    for section in LISTS:
        items = cut.get(section)
        if not isinstance(items, list):
            continue
        kept[section] = [n for n in range(len(items)) if n not in bad[section]]
        ids[section] = frozenset(str(items[n]["id"]) for n in bad[section]
                                 if isinstance(items[n], dict) and "id" in items[n])
        cut[section] = [items[n] for n in kept[section]]
    try:
        pb = Playbook.model_validate(cut)
    except ValidationError:  # nothing left of injects or expectations, or a check across what was cut
        return None
    omitted = Omitted(ids.get("injects", frozenset()), ids.get("expectations", frozenset()), not bad["injects"],
                      frozenset(header))
    return Partial(pb, omitted, kept)

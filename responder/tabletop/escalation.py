"""The `default_on_failure` a drill's service uses: the service's setting, unless the playbook drills without one.

`responder run` gives the setting's steps to every runbook without `on_failure` (responder/catalog/defaults.py); a
drill does the same, so it shows what production would do, unless its playbook says `settings.default_on_failure:
none` (a team drilling "what if nobody is configured"). Validation, the run and the report use these same runbooks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from responder.actuators.registry import Registry
from responder.catalog.defaults import defaulted
from responder.models.runbook import Runbook
from responder.tabletop.models import DefaultEscalation, Playbook


def scenario_default(pb: Playbook, service: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The steps the drill's service gives runbooks without `on_failure`: the service's, or none."""
    if pb.settings.default_on_failure is DefaultEscalation.NONE:
        return []
    return [dict(step) for step in service]


def scenario_runbooks(pb: Playbook, books: Sequence[Runbook], service: Sequence[Mapping[str, Any]],
                      registry: Registry) -> tuple[list[Runbook], list[str]]:
    """The runbooks as the drill's service runs them, and the ids of those given the default (ConfigError for a
    default the service would refuse)."""
    return defaulted(books, scenario_default(pb, service), registry)

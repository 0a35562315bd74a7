"""A playbook's registry model and version names are registry names: never a path out of the drill's directory."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from responder.tabletop.models import Playbook

ESCAPE = "a/../../../../outside"


def _playbook(name: str, version: str) -> dict[str, object]:
    return {"id": "pb", "title": "t", "objectives": ["o"],
            "world": {"models": [{"name": name, "versions": [{"version": version}], "serving": version}]},
            "injects": [{"id": "first", "at": "10s", "event": "e.json"}],
            "expectations": [{"id": "seen", "kind": "runbook_matched", "runbook": "r", "within": "30s"}]}


@pytest.mark.parametrize(("name", "version"), [(ESCAPE, "v1"), ("fraud", ESCAPE), ("fraud", "v1:x")])
def test_a_model_or_version_name_that_is_a_path_is_refused_by_the_schema(name, version):
    """`world.models` names with `/`, `..` or `:` fail the schema, before the drill writes a file from them."""
    with pytest.raises(ValidationError, match="should match pattern"):
        Playbook.model_validate(_playbook(name, version))


def test_a_registry_name_is_accepted():
    """A name the registry accepts (letters, digits, `-`, `_`; `.` in a version) still loads."""
    pb = Playbook.model_validate(_playbook("fraud-scorer", "v1.2_rc-1"))
    assert [m.name for m in pb.world.models] == ["fraud-scorer"]

"""Tabletop playbooks: the schema, `tabletop validate` with file:line:col and exit 3, inject rendering."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
from typer.testing import CliRunner

from responder.cli import app
from responder.tabletop.inject import inject_records
from responder.tabletop.models import Inject
from responder.tabletop.schema import playbook_schema_text
from responder.tabletop.world import Bindings, Bound
from tests.playbook_kit import validate as _validate
from tests.playbook_kit import write as _write

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOKS = ROOT / "playbooks"

GOOD = """\
id: {id}
title: t
objectives: [o]
world:
  users:
    - name: alice
      keys: [main]
injects:
  - id: finding
    event: event.json
    overrides:
      detail.key: ${{world.keys.main}}
expectations:
  - id: key-off
    kind: state
    check: key_inactive
    resource: main
"""


def test_committed_schema_is_current():
    """playbooks/playbook.schema.json equals `responder runbooks schema --playbook` (regenerate with that command)."""
    committed = (PLAYBOOKS / "playbook.schema.json").read_text()
    assert committed == playbook_schema_text()
    assert CliRunner().invoke(app, ["schema", "--playbook"]).stdout == committed
    assert json.loads(committed)["additionalProperties"] is False


def test_shipped_playbooks_validate():
    """Every playbook under playbooks/ passes validation against the shipped runbooks."""
    code, out = _validate(str(PLAYBOOKS))
    assert code == 0, out


def test_good_playbook_validates(tmp_path):
    """A minimal playbook with a bound world reference is valid."""
    _write(tmp_path, GOOD.format(id="pb"))
    assert _validate(str(tmp_path)) == (0, f"✓ {tmp_path / 'pb.yaml'}")


def test_unknown_key_is_reported_at_its_line(tmp_path):
    """An unknown key fails with file:line:col and exit code 3."""
    text = GOOD.format(id="pb").replace("    resource: main\n", "    resource: main\n    colour: red\n")
    path = _write(tmp_path, text)
    code, out = _validate(str(path))
    assert code == 3
    assert f"{path}:18:13" in out
    assert "colour" in out


def test_missing_event_file_and_unknown_names(tmp_path):
    """A missing event file, an unknown actuator and an unknown world name are each reported with their line."""
    text = GOOD.format(id="pb").replace("event.json", "missing.json").replace("resource: main", "resource: other")
    text += "  - id: acted\n    kind: step_done\n    actuator: aws.iam.explode\n"
    path = _write(tmp_path, text)
    code, out = _validate(str(path))
    assert code == 3
    assert f"{path}:10:12" in out
    assert "missing.json" in out
    assert f"{path}:17:15" in out
    assert "no keys named 'other'" in out
    assert f"{path}:20:15" in out
    assert "unknown actuator 'aws.iam.explode'" in out


def test_unknown_world_reference_in_override(tmp_path):
    """An override naming a world resource that does not exist is an error at the override."""
    path = _write(tmp_path, GOOD.format(id="pb").replace("world.keys.main", "world.keys.spare"))
    code, out = _validate(str(path))
    assert code == 3
    assert f"{path}:12:19" in out
    assert "no keys named 'spare'" in out


FOLLOW_UP = """\
  - id: follow-up
    after: {after}
    at: 30s
    event: event.json
"""


def test_inject_after_an_expectation_validates(tmp_path):
    """An inject may wait for an expectation to be met (`after: <expectation id>`)."""
    text = GOOD.format(id="pb").replace("expectations:", FOLLOW_UP.format(after="key-off") + "expectations:")
    assert _validate(str(_write(tmp_path, text)))[0] == 0


def _refused_at(path: Path, where: str, message: str) -> None:
    code, out = _validate(str(path))
    assert (code, f"{path}:{where}" in out, message in out) == (3, True, True), out


def test_inject_after_unknown_anchor_lists_the_choices(tmp_path):
    """An unknown `after:` is reported at its line with every inject and expectation it could name."""
    text = GOOD.format(id="pb").replace("expectations:", FOLLOW_UP.format(after="key-of") + "expectations:")
    _refused_at(_write(tmp_path, text), "14:12",
                "after: 'key-of' is neither an inject nor an expectation; choose from ['finding', 'key-off']")


def test_anchor_cycles_are_refused(tmp_path):
    """An inject waiting on an expectation whose window waits on that inject is a cycle, refused at load."""
    text = GOOD.format(id="pb").replace("expectations:", FOLLOW_UP.format(after="key-off") + "expectations:")
    path = _write(tmp_path, text.replace("    resource: main\n", "    resource: main\n    after: follow-up\n"))
    _refused_at(path, "14:12", "follow-up → key-off → follow-up is a cycle")


def test_inject_binds_ids_signs_repeats_and_duplicates(tmp_path):
    """Overrides bind sandbox ids, repeats are made unique, duplicates are delivered twice, signing adds headers."""
    (tmp_path / "e.json").write_text('{"id": "f", "detail": {"key": "x"}}')
    inject = Inject(id="i", event="e.json", overrides={"detail.key": "${world.keys.main}", "time": "${now}"},
                    repeat=2, every=10, unique=["id"], duplicate=True, signature="signed")
    b = Bindings()
    b.add("keys", Bound("AKIAREAL", "main"))
    out = inject_records(inject, tmp_path, b, 0.0, {"alerts": "t"}, {"k1": "secret"})
    docs = [orjson.loads(r.value) for _, r in out]
    assert [d["id"] for d in docs] == ["f-0", "f-0", "f-1", "f-1"]
    assert {d["detail"]["key"] for d in docs} == {"AKIAREAL"}
    assert [d["time"] for d in docs] == ["1970-01-01T00:00:00.000Z"] * 2 + ["1970-01-01T00:00:10.000Z"] * 2
    assert [t for t, _ in out] == [0, 0, 10, 10]
    assert all(dict(r.headers)["responder-key-id"] == b"k1" for _, r in out)

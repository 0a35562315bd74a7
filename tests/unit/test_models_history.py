"""`responder models history` lists a pointer move whose step then failed (its read-back) with status `failed`, next
to the ok ones (since 2026-12-07: before, a failed result with `changed: true` was left out)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from responder.actuators.model.local import LocalStore
from responder.actuators.model.params import RollbackParams
from responder.actuators.model.rollback import RollbackToLastSigned
from responder.cli import app
from responder.timeline import MemoryStore, Recorder
from tests.modelkit import NoAws, context, publish

SWITCH = "model.switch_version"


async def test_history_lists_a_failed_pointer_move_marked(tmp_path: Path):
    """An ok switch v1→v2, then one v2→v3 whose read-back failed: both listed, the second `failed` with its error."""
    rec = Recorder(MemoryStore())
    rec.append("step.result", {"step": "s1", "actuator": SWITCH, "key": "k1", "target": "model/fraud", "status": "ok",
                               "changed": True, "prior": {"serving": "v1"}, "after": {"serving": "v2"},
                               "outputs": {"model": "fraud", "from": "v1", "to": "v2"}}, "inc")
    rec.append("step.result", {"step": "s2", "actuator": SWITCH, "key": "k2", "target": "model/fraud",
                               "status": "failed", "changed": True, "prior": {"serving": "v2"},
                               "after": {"serving": "v3"}, "error": "read back: throttled; partly done before it "
                               "failed: pointed fraud at v3 (it served v2)"}, "inc")
    rec.append("step.result", {"step": "s3", "actuator": SWITCH, "key": "k3", "target": "model/other",
                               "status": "failed", "changed": True, "prior": {"serving": "a"},
                               "after": {"serving": "b"}, "error": "x"}, "inc")
    await rec.flush()
    path = tmp_path / "timeline.jsonl"
    path.write_bytes(rec.store.read())
    out = CliRunner().invoke(app, ["models", "history", "fraud", "--timeline", str(path), "--json"])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)["changes"]
    assert [(r["from"], r["to"], r["status"]) for r in rows] == [("v1", "v2", "ok"), ("v2", "v3", "failed")]
    assert "pointed fraud at v3" in rows[1]["error"]
    table = CliRunner().invoke(app, ["models", "history", "fraud", "--timeline", str(path)])
    assert "failed" in table.output


async def test_history_prints_an_escape_sequence_from_the_pointer_file_escaped(tmp_path: Path, keys):
    """A serving pointer file holding an ANSI escape, rolled back from: the table shows it as `\\x1b`, not raw."""
    store = LocalStore(tmp_path / "registry")
    await publish(store, tmp_path / "w", "fraud", "v1", keys.private)
    (tmp_path / "registry" / "fraud" / "serving").write_text("\x1b[2J\x1b[31mv9\n")
    result = await RollbackToLastSigned().apply(RollbackParams(model="fraud", only_if_unverified=True),
                                                context(NoAws(), str(tmp_path / "registry"), keys))
    assert result.prior == {"serving": "\x1b[2J\x1b[31mv9"}
    rec = Recorder(MemoryStore())
    rec.append("step.result", {"step": "s1", "actuator": "model.rollback_to_last_signed", "key": "k1",
                               "target": result.target, "status": "ok", "changed": True, "prior": result.prior,
                               "after": result.after, "outputs": result.outputs}, "inc\x1b]0;title\x07")
    await rec.flush()
    path = tmp_path / "timeline.jsonl"
    path.write_bytes(rec.store.read())
    table = CliRunner().invoke(app, ["models", "history", "fraud", "--timeline", str(path)])
    assert table.exit_code == 0, table.output
    assert not {"\x1b", "\x07"} & set(table.output)
    assert "\\x1b[2J\\x1b[31mv9" in table.output.replace("\n", "").replace("│", "").replace(" ", "")

"""Timelines written before a fix still verify, resume and archive: old entries are not retroactively refused."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from responder.cli import app
from responder.models.timeline import TimelineEntry
from responder.timeline import FileStore, Recorder
from responder.timeline.archive import Archiver, read_archive
from responder.timeline.checkpoint import Checker, Signer
from responder.timeline.verify import compare_with_copy, verify_lines
from responder.tracing import STAMP
from tests.timeline_builders import (
    PRIVATE,
    PUBLIC,
    archived,
    no_timeline_env,  # noqa: F401 (the fixture every test here uses)
    signed_recorder,
)

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("no_timeline_env")
CHECKER = Checker.from_text(PUBLIC)


class Recorder4b01a61(Recorder):
    """The recorder's `append` as of 4b01a61: the incident id written as given, an empty one as `""`."""

    def append(self, kind: str, body: Mapping[str, Any], incident: str | None = None) -> TimelineEntry:
        """Chain an entry as 4b01a61 did (no `incident or None`)."""
        stamp = STAMP.get()
        entry = self._seal(kind, dict(body) if stamp is None else {**stamp, **body}, incident)
        for observer in self.observers:
            observer(entry)
        if self.signer is not None:
            self._since_checkpoint += 1
            if self._since_checkpoint >= self.checkpoint_every or self._checkpoint_due():
                self.checkpoint()
        return entry


def _old_timeline(path: Path) -> list[bytes]:
    """What 4b01a61's service wrote for a signed decision and an operator request naming incident "" (both
    models accept an empty id): approval.rejected and operator.* entries with `"incident":""`."""
    rec = Recorder4b01a61(FileStore(path), writer="old:1", signer=Signer.from_text(PRIVATE), checkpoint_every=5,
                          checkpoint_interval=3600.0)
    rec.append("incident.opened", {"event_id": "e1", "runbook": "rb@1"}, "inc-1")
    rec.append("approval.rejected", {"reason": "no approval is pending for this incident and step", "key_id": "k",
                                     "step": "s", "by": "alice"}, "")
    rec.append("operator.requested", {"id": "a" * 32, "action": "models.rollback", "by": "bob", "key_id": "k",
                                      "args": {"model": "m"}}, "")
    rec.append("operator.completed", {"id": "a" * 32, "action": "models.rollback", "ok": True, "error": None,
                                      "outcomes": []}, "")
    rec.append("step.intent", {"key": "k1"}, "inc-1")
    rec.append("step.result", {"key": "k1", "status": "ok"}, "inc-1")
    rec.close()
    lines = path.read_bytes().splitlines()
    assert sum(orjson.loads(ln)["incident"] == "" for ln in lines) == 3
    return lines


def test_an_old_timeline_with_empty_incident_ids_verifies(tmp_path):
    """`"incident":""`, as the recorder wrote an empty id before it wrote null, verifies with key and cadence."""
    path = tmp_path / "t.jsonl"
    _old_timeline(path)
    out = runner.invoke(app, ["timeline", "verify", str(path), "--public-key", PUBLIC, "--json"])
    assert out.exit_code == 0, out.output
    assert orjson.loads(out.stdout)["ok"] is True


async def test_an_old_timeline_with_empty_incident_ids_resumes_and_archives(tmp_path):
    """A service upgraded on such a timeline resumes it, catches its archive up, and the whole still verifies."""
    path = tmp_path / "t.jsonl"
    archive = await archived(_old_timeline(path))
    again = signed_recorder(path, every=5)
    for i in range(3):
        again.append("x", {"i": i}, "")
    again.close()
    lines = path.read_bytes().splitlines()
    archiver = Archiver(archive)
    archiver.catch_up(lines)
    archiver.close()
    await archiver.run()
    copy = read_archive(archive)
    verify_lines(copy, CHECKER, cadence=5)
    assert compare_with_copy(lines, copy) == len(lines)
    verify_lines(lines, CHECKER, cadence=5, strict=True)


def test_an_empty_incident_id_is_not_listed_as_an_incident(tmp_path):
    """Readers treat `""` as no incident (so rewriting null as "" changes no view): it is not an incident id."""
    path = tmp_path / "t.jsonl"
    _old_timeline(path)
    out = runner.invoke(app, ["timeline", "show", str(path), "--incident", "", "--json"])
    assert out.exit_code == 0, out.output
    assert orjson.loads(out.stdout)["incident"] == "inc-1"

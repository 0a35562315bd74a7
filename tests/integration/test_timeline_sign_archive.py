"""`responder timeline sign` against the S3 Object Lock archive on the moto server: no signature over a rewrite."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from responder.actuators.aws.archive import S3Archive
from responder.cli import app
from responder.sandbox import SANDBOX_CREDENTIALS
from responder.timeline import FileStore, Recorder
from responder.timeline.archive import Archiver
from tests.timeline_builders import (
    PRIVATE,
    PUBLIC,
    no_timeline_env,  # noqa: F401 (the fixture every test here uses)
    rehash,
    signed_recorder,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("no_timeline_env")]
CADENCE = 5


async def _archived_timeline(aws, path: Path, prefix: str) -> None:
    """15 entries checkpointed every 5, each sealed segment archived (COMPLIANCE-locked) on the moto server."""
    archive = S3Archive("timeline-sign", prefix=prefix, endpoint_url=aws.endpoint_url, credentials=SANDBOX_CREDENTIALS)
    archive.ensure_bucket()
    rec = signed_recorder(path, every=CADENCE)
    archiver = Archiver(archive)
    rec.sinks.append(archiver)
    for i in range(15):
        rec.append("step.intent", {"i": i}, incident="inc")
        await rec.flush()
    rec.close()
    archiver.close()
    await archiver.run()


def _env(monkeypatch, aws, prefix: str) -> None:
    """The signing host's settings (after `no_timeline_env`): key, cadence and the archive on the moto server."""
    monkeypatch.setenv("RESPONDER_TIMELINE_SIGNING_KEY", PRIVATE)
    monkeypatch.setenv("RESPONDER_TIMELINE_CHECKPOINT_EVERY", str(CADENCE))
    monkeypatch.setenv("RESPONDER_TIMELINE_ARCHIVE", f"s3://timeline-sign/{prefix}")
    monkeypatch.setenv("RESPONDER_AWS_ENDPOINT_URL", aws.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


async def test_sign_refuses_a_rewrite_the_archive_contradicts(aws, tmp_path, monkeypatch, unique):
    """`sign` refuses a rewritten timeline the archive contradicts: it exits 1 and writes nothing."""
    path, prefix = tmp_path / "t.jsonl", f"{unique}/"
    await _archived_timeline(aws, path, prefix)
    docs = [orjson.loads(ln) for ln in path.read_bytes().splitlines()]
    cps = [i for i, d in enumerate(docs) if d["kind"] == "checkpoint"]
    kept = [d for i, d in enumerate(docs) if i not in cps[1:]]
    kept[7]["body"]["i"] = 999  # signed by the deleted checkpoint seq 11
    for d in kept[11:]:
        d["writer"] = "offline:host:42"
    path.write_bytes(rehash(kept))
    _env(monkeypatch, aws, prefix)
    plain = CliRunner().invoke(app, ["timeline", "verify", str(path), "--public-key", PUBLIC],
                               env={"RESPONDER_TIMELINE_ARCHIVE": ""})
    assert plain.exit_code == 4, plain.output  # unproven, as the allowance makes it without the archive
    before = path.read_bytes()
    out = CliRunner().invoke(app, ["timeline", "sign", str(path)])
    assert out.exit_code == 1, out.output
    assert "differs from the archive" in out.stderr
    assert path.read_bytes() == before


async def test_sign_signs_an_offline_tail_the_archive_agrees_with(aws, tmp_path, monkeypatch, unique):
    """Two offline commands without the key past the cadence after the archived service stopped: --force signs; 0."""
    path, prefix = tmp_path / "t.jsonl", f"{unique}/"
    await _archived_timeline(aws, path, prefix)
    for writer, n in (("offline:host:1:0000aa", 4), ("offline:host:2:0000bb", 3)):
        rec = Recorder(FileStore(path), writer=writer, checkpoint_every=CADENCE)
        for i in range(n):
            rec.append("undo.intent", {"op": i}, incident="inc")
        rec.close()
    _env(monkeypatch, aws, prefix)
    out = CliRunner().invoke(app, ["timeline", "sign", str(path), "--force", "--json"])  # past the cadence: exit 4
    assert out.exit_code == 0, out.output
    assert orjson.loads(out.stdout)["signed"] == 7
    verify = CliRunner().invoke(app, ["timeline", "verify", str(path), "--public-key", PUBLIC])
    assert verify.exit_code == 0, verify.output

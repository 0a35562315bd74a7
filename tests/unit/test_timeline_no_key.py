"""`timeline verify` and `export` without a public key: links only, never reported as verified (exit 4, chain_only)."""

from __future__ import annotations

import orjson
import pytest
from typer.testing import CliRunner

from responder.cli import app
from responder.timeline import FileStore, Recorder
from tests.timeline_builders import (
    PUBLIC,
    incident_timeline,
    no_timeline_env,  # noqa: F401 (the fixture every test here uses)
    rehash,
    write_signed,
)

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("no_timeline_env")


def _forged(path) -> None:
    """The audit's t4: an entry edited, every checkpoint's signature replaced, the chain rehashed."""
    docs = [orjson.loads(line) for line in write_signed(path, n=12, every=5)]
    docs[2]["body"]["i"] = 999
    for d in docs:
        if d["kind"] == "checkpoint":
            d["body"]["sig"] = "A" * 86 + "=="
    path.write_bytes(rehash(docs))


def test_forged_checkpoints_without_a_key_exit_4_chain_only_not_ok(tmp_path):
    """Forged checkpoints, rehashed: without a key exit 4, ok false, verdict chain_only; with the key exit 1."""
    path = tmp_path / "t.jsonl"
    _forged(path)
    out = runner.invoke(app, ["timeline", "verify", str(path), "--json"])
    assert out.exit_code == 4, out.output
    body = orjson.loads(out.stdout)
    assert (body["ok"], body["verdict"], body["signatures_checked"]) == (False, "chain_only", False)
    assert body["unproven_seqs"] == [0, body["entries"] - 1]
    assert "no public key" in body["reason"]
    text = runner.invoke(app, ["timeline", "verify", str(path)])
    assert (text.exit_code, text.stdout) == (4, "")
    assert "NOT proven: no public key" in text.stderr
    keyed = runner.invoke(app, ["timeline", "verify", str(path), "--public-key", PUBLIC, "--json"])
    assert keyed.exit_code == 1, keyed.output


def test_a_timeline_with_no_checkpoint_and_no_key_is_unproven_too(tmp_path):
    """Stripping every checkpoint buys no exit 0 without a key: an unsigned chain is chain_only, exit 4."""
    path = tmp_path / "t.jsonl"
    rec = Recorder(FileStore(path), writer="w")
    rec.append("x", {})
    rec.close()
    out = runner.invoke(app, ["timeline", "verify", str(path), "--json"])
    assert out.exit_code == 4, out.output
    assert orjson.loads(out.stdout)["verdict"] == "chain_only"


def test_an_anchor_without_a_key_is_no_proof_either(tmp_path):
    """An anchor's forged signature is not checked without a key: the verdict stays chain_only, exit 4."""
    path = tmp_path / "t.jsonl"
    _forged(path)
    anchor = tmp_path / "anchor.json"
    anchor.write_bytes(path.read_bytes().splitlines()[-1])
    out = runner.invoke(app, ["timeline", "verify", str(path), "--anchor", str(anchor), "--json"])
    assert out.exit_code == 4, out.output
    assert orjson.loads(out.stdout)["verdict"] == "chain_only"


def test_an_evidence_pack_without_a_key_says_not_proven(tmp_path):
    """export --format md without a key writes NOT PROVEN, never VERIFIED, and exits 4; with the key, VERIFIED, 0."""
    path = tmp_path / "t.jsonl"
    incident_timeline(path).close()
    md = runner.invoke(app, ["timeline", "export", str(path), "--incident", "inc-1", "--format", "md"])
    assert md.exit_code == 4, md.output
    assert "Timeline verification: NOT PROVEN (no public key" in md.stdout
    assert "Timeline verification: VERIFIED" not in md.stdout
    keyed = runner.invoke(app, ["timeline", "export", str(path), "--incident", "inc-1", "--format", "md",
                                "--public-key", PUBLIC])
    assert keyed.exit_code == 0, keyed.output
    assert "Timeline verification: VERIFIED**" in keyed.stdout


def test_an_evidence_pack_of_an_unsigned_tail_is_not_called_verified(tmp_path):
    """A tail after the last checkpoint: export exits 0 but its report says the entries after it are NOT proven."""
    path = tmp_path / "t.jsonl"
    incident_timeline(path).close()
    rec = Recorder(FileStore(path), writer="offline:host:1:a1b2c3")
    rec.append("step.intent", {"step": "operator", "key": "k2"}, "inc-1")
    rec.close()
    md = runner.invoke(app, ["timeline", "export", str(path), "--incident", "inc-1", "--format", "md",
                             "--public-key", PUBLIC])
    assert md.exit_code == 0, md.output
    assert "VERIFIED up to the last checkpoint; the entries after it NOT proven" in md.stdout

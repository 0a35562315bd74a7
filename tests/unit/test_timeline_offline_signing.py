"""Offline `undo` and `models …` on a signed timeline: a checkpoint when they hold the key, else a one-line notice."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from responder.cli.app import app
from responder.models.step import StepIntent, StepResult, StepStatus
from responder.timeline import Recorder, Signer, generate_keypair
from responder.timeline.archive import Archiver, MemoryArchive, read_archive
from responder.timeline.checkpoint import Checker
from responder.timeline.store import FileStore
from responder.timeline.verify import compare_with_copy, verify_lines

PRIVATE, PUBLIC = generate_keypair()


def _signed_timeline(path: Path, registry: str, every: int = 1000) -> None:
    """What the service leaves: incident inc1 switched fraud v1 → v2, sealed by a signed checkpoint on close (which
    signs the service's cadence, `every`)."""
    head = {"step": "switch", "actuator": "model.switch_version", "target": "fraud", "key": "k1"}
    recorder = Recorder(FileStore(path), signer=Signer.from_text(PRIVATE), checkpoint_every=every)
    recorder.append("step.intent", StepIntent(**head, params={"model": "fraud", "version": "v2",
                                                              "registry": registry}).body(), "inc1")
    recorder.append("step.result", StepResult(**head, status=StepStatus.OK, changed=True, prior={"serving": "v1"},
                                              after={"serving": "v2"}).body(), "inc1")
    recorder.close()


def _verify(path: Path) -> dict[str, object]:
    out = CliRunner().invoke(app, ["timeline", "verify", str(path), "--public-key", PUBLIC, "--json"])
    assert out.exit_code == 0, out.output
    body: dict[str, object] = json.loads(out.stdout)
    return body


COMMANDS = [["undo", "inc1", "--allow-destructive"], ["models", "quarantine", "fraud", "v1", "--reason", "test"]]


@pytest.mark.parametrize("command", COMMANDS, ids=["undo", "models-quarantine"])
def test_offline_command_with_the_signing_key_seals_its_entries_with_a_checkpoint(
        tmp_path, registry, monkeypatch, command):
    """With RESPONDER_TIMELINE_SIGNING_KEY, the entries it adds are covered: verify --public-key, no unsigned tail."""
    path = tmp_path / "t.jsonl"
    _signed_timeline(path, str(registry.root))
    monkeypatch.setenv("RESPONDER_TIMELINE_SIGNING_KEY", PRIVATE)
    out = CliRunner().invoke(app, [*command, "--timeline", str(path)])
    assert out.exit_code == 0, out.output
    assert "unsigned" not in out.output
    body = _verify(path)
    assert body["unsigned_tail"] == 0
    assert body["checkpoints"] == 2
    if command[0] == "undo":
        assert asyncio.run(registry.serving("fraud")) == "v1"  # the switch back did run


@pytest.mark.parametrize("command", COMMANDS, ids=["undo", "models-quarantine"])
def test_offline_command_without_the_key_says_its_entries_are_unsigned_and_verify_accepts_them(
        tmp_path, registry, command):
    """An offline command without the signing key says its entries are unsigned; verify accepts them as the tail."""
    path = tmp_path / "t.jsonl"
    _signed_timeline(path, str(registry.root))
    out = CliRunner().invoke(app, [*command, "--timeline", str(path)])
    assert out.exit_code == 0, out.output
    [note] = [line for line in out.stderr.splitlines() if "unsigned" in line]
    assert "next checkpoint" in note
    assert "RESPONDER_TIMELINE_SIGNING_KEY" in note
    assert _verify(path)["unsigned_tail"] == 2
    Recorder(FileStore(path), signer=Signer.from_text(PRIVATE)).close()  # the service restarts and stops
    assert _verify(path)["unsigned_tail"] == 0


def test_offline_command_on_an_unsigned_timeline_prints_no_notice(tmp_path, registry):
    """A timeline that never had checkpoints (no signing anywhere) gets no notice about signatures."""
    path = tmp_path / "t.jsonl"
    out = CliRunner().invoke(app, ["models", "quarantine", "fraud", "v1", "--timeline", str(path)])
    assert out.exit_code == 0, out.output
    assert "unsigned" not in out.output


def test_offline_model_command_reports_the_seq_of_its_step_result_not_of_a_checkpoint(tmp_path, registry, monkeypatch):
    """With the signing key and a checkpoint due right after the result, timeline_seq still names the step.result."""
    path = tmp_path / "t.jsonl"
    _signed_timeline(path, str(registry.root))
    monkeypatch.setenv("RESPONDER_TIMELINE_SIGNING_KEY", PRIVATE)
    monkeypatch.setenv("RESPONDER_TIMELINE_CHECKPOINT_EVERY", "1")
    out = CliRunner().invoke(app, ["models", "quarantine", "fraud", "v1", "--timeline", str(path), "--json"])
    assert out.exit_code == 0, out.output
    seq = json.loads(out.stdout)["timeline_seq"]
    entry = json.loads(path.read_text().splitlines()[seq])
    assert (entry["seq"], entry["kind"]) == (seq, "step.result")


def test_the_segment_an_offline_checkpoint_seals_is_archived_at_the_services_next_start(
        tmp_path, registry, monkeypatch):
    """Archive on: the service's start-up catch-up uploads the CLI-sealed segment; the copy verifies and matches."""
    path = tmp_path / "t.jsonl"
    _signed_timeline(path, str(registry.root))
    archive = MemoryArchive()
    asyncio.run(_ship(archive, path.read_bytes().splitlines()))  # the service archived what it sealed before it stopped
    monkeypatch.setenv("RESPONDER_TIMELINE_SIGNING_KEY", PRIVATE)
    out = CliRunner().invoke(app, ["models", "quarantine", "fraud", "v1", "--timeline", str(path)])
    assert out.exit_code == 0, out.output
    asyncio.run(_ship(archive, path.read_bytes().splitlines()))  # the service starts again
    assert len(archive.names()) == 2
    lines = path.read_bytes().splitlines()
    copy = read_archive(archive)
    verify_lines(copy, Checker.from_text(PUBLIC), cadence=1000)
    assert compare_with_copy(lines, copy) == len(lines)


async def _ship(archive: MemoryArchive, lines: list[bytes]) -> None:
    """What the service's archiver does at start: catch up on the file's sealed segments and upload them."""
    archiver = Archiver(archive)
    archiver.catch_up(lines)
    archiver.close()
    await archiver.run()


def test_offline_command_without_the_key_notices_a_checkpoint_older_than_the_tail_it_reads(tmp_path, registry):
    """A signed timeline whose last checkpoint lies before the 256 KiB tail (a crash): the notice is still printed."""
    path = tmp_path / "t.jsonl"
    _signed_timeline(path, str(registry.root))
    recorder = Recorder(FileStore(path), signer=Signer.from_text(PRIVATE), checkpoint_every=10**6,
                        checkpoint_interval=10**9)
    for n in range(300):
        recorder.append("note", {"n": n, "pad": "x" * 1024}, "inc1")
    recorder.flush_sync()
    recorder.store.close()  # it crashed: no checkpoint on close
    out = CliRunner().invoke(app, ["models", "quarantine", "fraud", "v1", "--timeline", str(path)])
    assert out.exit_code == 0, out.output
    [note] = [line for line in out.stderr.splitlines() if "unsigned" in line]
    assert "next checkpoint" in note


def test_offline_command_without_the_key_says_when_its_entries_pass_the_cadence(tmp_path, registry, monkeypatch):
    """Past checkpoint_every unsigned entries the notice says so: verify reports an unsigned offline tail (exit 4)."""
    path = tmp_path / "t.jsonl"
    _signed_timeline(path, str(registry.root), every=3)
    monkeypatch.setenv("RESPONDER_TIMELINE_CHECKPOINT_EVERY", "3")
    first = CliRunner().invoke(app, ["models", "quarantine", "fraud", "v1", "--timeline", str(path)])
    assert first.exit_code == 0, first.output
    assert "cadence" not in first.stderr
    second = CliRunner().invoke(app, ["models", "quarantine", "fraud", "v2", "--timeline", str(path)])
    assert second.exit_code == 0, second.output
    [note] = [line for line in second.stderr.splitlines() if "unsigned" in line]
    assert "4 unsigned entries in a row, more than the cadence (3)" in note
    assert "exit 4" in note


@pytest.mark.parametrize("command", COMMANDS, ids=["undo", "models-quarantine"])
def test_offline_command_without_the_key_refuses_a_tail_already_past_the_cadence(
        tmp_path, registry, monkeypatch, command):
    """Past the cadence, an offline command without the key exits 3 naming `timeline sign --force`, writing none."""
    path = tmp_path / "t.jsonl"
    _signed_timeline(path, str(registry.root), every=3)
    monkeypatch.setenv("RESPONDER_TIMELINE_CHECKPOINT_EVERY", "3")
    for _ in range(2):  # v2 (the undo switches back to v1): 2 entries each, by two offline writers
        done = CliRunner().invoke(app, ["models", "quarantine", "fraud", "v2", "--timeline", str(path)])
        assert done.exit_code == 0, done.output
    out = CliRunner().invoke(app, ["timeline", "verify", str(path), "--public-key", PUBLIC, "--json"])
    assert out.exit_code == 4, out.output
    assert all(r["writer"].startswith("offline:") for r in json.loads(out.stdout)["offline_writers"])
    before = path.read_bytes()
    refused = CliRunner().invoke(app, [*command, "--timeline", str(path)])
    assert refused.exit_code == 3, refused.output
    assert "responder timeline sign --force" in refused.stderr
    assert path.read_bytes() == before
    monkeypatch.setenv("RESPONDER_TIMELINE_SIGNING_KEY", PRIVATE)
    assert CliRunner().invoke(app, ["timeline", "sign", str(path), "--force"]).exit_code == 0
    monkeypatch.delenv("RESPONDER_TIMELINE_SIGNING_KEY")
    again = CliRunner().invoke(app, [*command, "--timeline", str(path)])
    assert again.exit_code == 0, again.output
    assert _verify(path)["verdict"] == "unsigned_tail"  # exit 0; its entries unproven ("verified" before 2026-12-07)


def test_offline_command_with_the_key_that_fails_still_seals_what_it_wrote(tmp_path, registry, monkeypatch):
    """A failing offline command with the key still seals what it wrote, so verify finds no unsigned tail."""
    path = tmp_path / "t.jsonl"
    _signed_timeline(path, str(registry.root))
    monkeypatch.setenv("RESPONDER_TIMELINE_SIGNING_KEY", PRIVATE)
    out = CliRunner().invoke(app, ["models", "switch", "fraud", "v9", "--timeline", str(path)])
    assert out.exit_code == 1, out.output
    kinds = [json.loads(line)["kind"] for line in path.read_text().splitlines()]
    assert kinds[3:] == ["step.intent", "step.result", "checkpoint"]
    body = _verify(path)
    assert (body["unsigned_tail"], body["offline_writers"][0]["signed_by"]) == (0, 5)

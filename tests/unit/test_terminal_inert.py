"""Alert text printed for a human on a terminal holds no escape sequence, control character or rich markup."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from responder.cli import app
from responder.tabletop import replay as replay_module
from responder.tabletop.replay import Backtest, Failed, Planned
from tests.timeline_builders import signed_recorder

ROOT = Path(__file__).resolve().parents[2]
EVENT = ROOT / "playbooks" / "events" / "guardduty-leaked-access-key.json"
HOSTILE = "ml\x1b[2K\r[bold]boss[/bold]\x1b]8;;https://evil.example\x07x\u202e"


def _raw(text: str) -> list[str]:
    """What in `text` a terminal would act on: ESC, CR, BEL, a bidi override."""
    return [c for c in text if c in "\x1b\r\x07\u202e"]


def _hostile_event(tmp_path: Path) -> Path:
    doc = json.loads(EVENT.read_text())
    doc["resource"]["accessKeyDetails"]["userName"] = HOSTILE
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps(doc))
    return path


def test_events_normalise_prints_alert_text_inert(tmp_path):
    """`events normalise` shows a user name holding ESC, CR, BEL and markup as visible escapes and literal text."""
    result = CliRunner().invoke(app, ["events", "normalise", str(_hostile_event(tmp_path))])
    assert result.exit_code == 0, result.output
    assert not _raw(result.stdout), result.stdout
    assert "[bold]boss[/bold]" in result.stdout  # markup shown, not applied
    assert "\\x1b[2K" in result.stdout


def test_events_normalise_prints_an_undecodable_detail_inert(tmp_path):
    """A record that does not decode is listed with its detail, whose control characters are escaped."""
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({f"hello{HOSTILE}": "world"}))
    result = CliRunner().invoke(app, ["events", "normalise", str(bad)])
    assert result.exit_code == 3
    assert not _raw(result.stderr), result.stderr


def _step(**extra: Any) -> dict[str, Any]:
    return {"record": 0, "event_id": "e", "runbook": "rb@1", "incident": "i", "step": "s", "actuator": "a.b"} | extra


def test_replay_prints_targets_and_errors_inert(tmp_path, monkeypatch):
    """`responder replay` shows a target and an error from an alert without escape sequences or markup."""
    planned = Planned(**_step(target=HOSTILE, params={}, would_require_approval=[f"guard {HOSTILE}"]))
    failed = Failed(**_step(error=f"boom {HOSTILE}"))

    async def backtest(*_: Any, **__: Any) -> Backtest:
        return Backtest(records=1, incidents=[], planned=[planned], rejected={}, failed=[failed])

    monkeypatch.setattr(replay_module, "backtest", backtest)
    result = CliRunner().invoke(app, ["replay", str(EVENT), "--runbooks", str(ROOT / "runbooks")])
    assert result.exit_code == 0, result.output
    assert not _raw(result.stdout), result.stdout
    assert result.stdout.count("[bold]boss[/bold]") == 3, result.stdout


@pytest.mark.parametrize("args", [["timeline", "show"], ["timeline", "show", "--incident", "inc-1"]])
def test_timeline_show_prints_alert_text_inert(tmp_path, args):
    """`timeline show` escapes what an alert put in an entry (a summary, an error, a target)."""
    path = tmp_path / "t.jsonl"
    rec = signed_recorder(path)
    rec.append("step.result", {"step": "s", "target": HOSTILE, "status": "failed", "error": HOSTILE}, "inc-1")
    rec.close()
    result = CliRunner().invoke(app, [*args, str(path)])
    assert result.exit_code == 0, result.output
    assert not _raw(result.stdout), result.stdout


def test_fleet_status_prints_table_text_inert(capsys):
    """`fleet status` shows a kill switch's reason and a quota slot's key (a step key) with escapes, not raw."""
    from responder.cli.fleet import _print
    from responder.engine.fleetstatus import FleetStatus, KillSwitch, QuotaUse, SlotUse

    _print(FleetStatus(table="t", kill_switch=KillSwitch(on=True, by=HOSTILE, reason=HOSTILE, at="now"),
                       digest=HOSTILE, digest_set_by=HOSTILE,
                       quotas=[QuotaUse(actuator="a.b", window_s=60, max=1,
                                        taken=[SlotUse(slot=0, key=HOSTILE, age_s=1)])]))
    out = capsys.readouterr().out
    assert not _raw(out), out
    assert out.count("[bold]boss[/bold]") == 5, out


def test_runbooks_explain_prints_alert_text_inert(tmp_path):
    """`runbooks explain` shows an event id and type holding escape sequences as visible escapes."""
    doc = json.loads(EVENT.read_text())
    doc["id"], doc["type"] = f"demo{HOSTILE}", f"UnauthorizedAccess:IAMUser/X{HOSTILE}"
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps(doc))
    result = CliRunner().invoke(app, ["runbooks", "explain", str(path), "--runbooks", str(ROOT / "runbooks")])
    assert not _raw(result.stdout), result.stdout
    assert not _raw(result.stderr), result.stderr
    assert "\\x1b[2K" in result.stdout


def _unsigned_tail(path: Path, runs: tuple[int, ...], prefix: str) -> None:
    """A signed timeline, then unsigned entries (anyone who can write the file adds those), a writer per run (an
    offline one's id and kind as an offline command writes them)."""
    from responder.timeline import FileStore, Recorder
    from tests.timeline_builders import write_signed

    write_signed(path, n=5, every=5)
    for n, entries in enumerate(runs):
        rec = Recorder(FileStore(path), writer=f"{prefix}{HOSTILE}{n}{':1:a1b2c3' if prefix else ''}",
                       checkpoint_every=5)
        for i in range(entries):
            rec.append("undo.intent", {"op": i}, incident="inc")
        rec.close()


@pytest.mark.parametrize(("runs", "prefix", "extra", "code"), [
    ((2,), "offline:", [], 0), ((2,), "", ["--writers", "test"], 1), ((4, 3), "offline:", [], 4),
    ((7,), "offline:", [], 1)])
def test_timeline_verify_prints_an_unsigned_writer_name_inert(tmp_path, monkeypatch, runs, prefix, extra, code):
    """`timeline verify` prints an unsigned entry's writer name with visible escapes in every verdict."""
    from tests.timeline_builders import PUBLIC

    monkeypatch.setenv("RESPONDER_TIMELINE_CHECKPOINT_EVERY", "5")
    path = tmp_path / "t.jsonl"
    _unsigned_tail(path, runs, prefix)
    result = CliRunner().invoke(app, ["timeline", "verify", str(path), "--public-key", PUBLIC, *extra])
    assert result.exit_code == code, result.output
    assert f"{prefix}ml\\x1b[2K" in result.stdout + result.stderr, result.output
    assert not _raw(result.stdout + result.stderr), result.output


@pytest.mark.parametrize("heard", ["refused", "unverified"])
def test_an_operator_commands_reply_text_is_printed_inert(monkeypatch, capsys, heard):
    """`--via kafka` prints why forged or unverified replies were refused with visible escapes."""
    import typer

    import responder.ingest.operator as channel
    from responder.cli.operator import ask
    from responder.models.operator import OperatorReply, ReplyWait
    from responder.settings import Settings

    async def answered(*_: object) -> ReplyWait:
        if heard == "refused":
            return ReplyWait(refused=[f"forged reply {HOSTILE}"], refused_count=1)
        return ReplyWait(reply=OperatorReply(id=HOSTILE, action="undo", ok=False, error=HOSTILE), verified=False)

    monkeypatch.setattr(channel, "request_and_wait", answered)
    settings = Settings(kafka_bootstrap="127.0.0.1:9", approval_keys={"ops": "s"}, approval_key_id="ops",
                        operator_unverified_replies=True)
    with pytest.raises(typer.Exit):
        ask(settings, "undo", {}, incident="inc1")
    err = capsys.readouterr().err
    assert "ml\\x1b[2K" in err, err
    assert not _raw(err), err

"""`responder deadletter replay`'s exit status tells a script what a replay left behind: 0 when every chosen dead
letter was sent, `EXIT_WITHHELD` when some were withheld as `too_old` (older than their destination's retention),
`EXIT_FAILED` when a send failed, whatever was withheld; `--dry-run` and `--json` exit the same way
(responder/cli/deadletter.py, responder/cli/output.py).
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from typer.testing import CliRunner, Result

from responder.cli import app
from responder.cli.output import EXIT_CONFIG, EXIT_FAILED, EXIT_UNSIGNED, EXIT_USAGE, EXIT_WITHHELD
from responder.ingest import deadletter
from responder.ingest.deadletter import ReplayResult

WITHHELD = ReplayResult(scanned=3, replayed=1, too_old=2, published=["dlq:0:5 -> alerts"])
DRY = pytest.mark.parametrize("dry_run", [False, True], ids=["replay", "dry-run"])


def _run(monkeypatch: pytest.MonkeyPatch, result: ReplayResult, *options: str) -> tuple[Result, list[bool]]:
    """`deadletter replay OPTIONS` over a replay answering `result`: the command's outcome and each `dry_run` asked."""
    asked: list[bool] = []

    async def replayed(*_: Any, dry_run: bool = False, **__: Any) -> ReplayResult:
        asked.append(dry_run)
        return result

    monkeypatch.setattr(deadletter, "replay_deadletters", replayed)
    return CliRunner().invoke(app, ["deadletter", "replay", "--bootstrap", "127.0.0.1:1", *options]), asked


def test_the_withheld_status_is_its_own() -> None:
    """EXIT_WITHHELD is 5, none of the CLI's other exit codes: a script can tell a withheld record from the rest."""
    assert EXIT_WITHHELD == 5
    assert EXIT_WITHHELD not in (0, EXIT_FAILED, EXIT_USAGE, EXIT_CONFIG, EXIT_UNSIGNED)


@DRY
def test_a_replay_that_withheld_too_old_records_exits_withheld(monkeypatch: pytest.MonkeyPatch, dry_run: bool) -> None:
    """Two dead letters too old for their destination, none failed: EXIT_WITHHELD, stderr says (or would say) so."""
    said, asked = _run(monkeypatch, WITHHELD, *(["--dry-run"] if dry_run else []))
    assert said.exit_code == EXIT_WITHHELD, said.output
    assert asked == [dry_run]
    withheld = "would not be replayed" if dry_run else "not replayed"
    assert f"2 dead letter(s) older than their destination topic's retention {withheld} (" in " ".join(
        said.stderr.split())


@DRY
def test_a_json_replay_that_withheld_records_prints_its_document_and_exits_withheld(
        monkeypatch: pytest.MonkeyPatch, dry_run: bool) -> None:
    """With --json, a replay that withheld two too-old dead letters prints its one document and exits EXIT_WITHHELD."""
    said, _ = _run(monkeypatch, WITHHELD, "--json", *(["--dry-run"] if dry_run else []))
    assert said.exit_code == EXIT_WITHHELD, said.output
    document = orjson.loads(said.stdout)
    assert (document["too_old"], document["replayed"], document["dry_run"]) == (2, 1, dry_run)


@DRY
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_a_replay_that_withheld_nothing_exits_0(monkeypatch: pytest.MonkeyPatch, dry_run: bool,
                                                as_json: bool) -> None:
    """Every chosen dead letter sent (or, --dry-run, to be sent), none too old: exit 0, in text and with --json."""
    sent = ReplayResult(scanned=2, replayed=2, already=1, published=["dlq:0:5 -> alerts", "dlq:0:6 -> alerts"])
    said, _ = _run(monkeypatch, sent, *(["--dry-run"] if dry_run else []), *(["--json"] if as_json else []))
    assert said.exit_code == 0, said.output


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_a_failed_send_exits_1_even_when_records_were_withheld(monkeypatch: pytest.MonkeyPatch,
                                                               as_json: bool) -> None:
    """A replay that withheld a too-old dead letter and then stopped on a failed send exits 1 (EXIT_FAILED wins)."""
    stopped = ReplayResult(scanned=3, replayed=1, too_old=1, published=["dlq:0:5 -> alerts"], failed="dlq:0:7",
                           error="TopicAuthorizationFailedError: refused")
    said, _ = _run(monkeypatch, stopped, *(["--json"] if as_json else []))
    assert said.exit_code == EXIT_FAILED, said.output
    assert "replay stopped at dead letter dlq:0:7" in " ".join(said.stderr.split())

"""Runs after a version-1 checkpoint (a file an older release signed): judged by the rules that need no cadence."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from structlog.testing import capture_logs

from responder.timeline import FileStore, Recorder
from tests.timeline_builders import (
    Clock,
    RecorderV1,
    append_events,
    crash,
    cut_back_to_version_1,
    docs_of,
    no_timeline_env,  # noqa: F401 (the fixture every test here uses)
    rewritten_tail,
    service_recorder,
)
from tests.timeline_builders import keyed_start as _start
from tests.timeline_builders import verify_json as _verify

pytestmark = pytest.mark.usefixtures("no_timeline_env")
OFFLINE = "offline:host:42:abc123"


def _alternating(k: int) -> tuple[str, str]:
    return ("svc:1" if k % 2 == 0 else "svc:2", "event.received")


def _mislabelled(k: int) -> tuple[str, str]:
    return "offline:x", "event.received"


def _offline_after_three(k: int) -> tuple[str, str]:
    return ("svc:1", "event.received") if k < 3 else (OFFLINE, "undo.intent")


@pytest.mark.parametrize(("label", "forged", "every", "verdict"), [
    (_alternating, 40, None, "unsigned_tail_two_writers"),
    (_mislabelled, 40, None, "unsigned_tail_not_offline"),
    (_offline_after_three, 8, "5", "unsigned_offline_tail"),
], ids=["two-writers", "not-offline", "offline-past-cadence"])
def test_a_run_forged_after_a_version_1_checkpoint_stays_unproven_once_a_start_signs_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, label: Callable[[int], tuple[str, str]], forged: int,
        every: str | None, verdict: str) -> None:
    """A file cut back to its last v1 checkpoint, a forged run, then a keyed start: exit 4 naming the run, not 0."""
    if every is not None:
        monkeypatch.setenv("RESPONDER_TIMELINE_CHECKPOINT_EVERY", every)
    path = tmp_path / "t.jsonl"
    last_v1 = cut_back_to_version_1(path, forged, label)
    code, body = _verify(path)
    assert (code, body["verdict"]) == (4, verdict), body
    _start(path)
    for extra in ((), ("--require-cadence",)):
        code, body = _verify(path, *extra)
        assert (code, body["verdict"]) == (4, "signed_unproven_tail"), body
        [seg] = body["signed_unproven"]
        assert (seg["verdict"], seg["first_seq"], seg["last_seq"], seg["signed_by"]) == (
            verdict, last_v1 + 1, last_v1 + forged, last_v1 + forged + 1)


def test_a_run_forged_after_a_version_1_checkpoint_as_one_writer_still_verifies(tmp_path: Path) -> None:
    """What is left to the archive: one writer's forged run (times unjudged after v1), signed by a start: exit 0."""
    path = tmp_path / "t.jsonl"
    cut_back_to_version_1(path)
    _start(path)
    code, body = _verify(path)
    assert (code, body["verdict"], body["signed_unproven"]) == (0, "verified", []), body


def _versions(path: Path) -> list[int]:
    return [d["body"]["v"] for d in docs_of(path) if d["kind"] == "checkpoint"]


def _older_release_killed(path: Path, clock: Clock, entries: int, writer: str = "svc:1") -> None:
    """An older release's service (v1 checkpoints every 3 entries, none owed at its start) writes, then is killed."""
    old = service_recorder(path, clock, writer, every=3, cls=RecorderV1)
    append_events(old, clock, entries, step=0.1)
    crash(old)


def _upgrade_verifies(path: Path) -> list[int]:
    """The tail an older release left is `unsigned_tail`; an upgraded start signs it: verified, exit 0, nothing
    flagged. Returns the checkpoints' versions."""
    assert _verify(path)[1]["verdict"] == "unsigned_tail"
    _start(path)
    code, body = _verify(path)
    assert (code, body["verdict"], body["signed_unproven"]) == (0, "verified", []), body
    return _versions(path)


def test_an_older_releases_crash_tail_signed_by_an_upgraded_start_verifies(tmp_path: Path) -> None:
    """An older release's file (v1), its writer killed after a checkpoint, then an upgraded start: verified, exit 0."""
    path = tmp_path / "t.jsonl"
    _older_release_killed(path, Clock(), 5)
    assert _upgrade_verifies(path) == [1, 2, 2]


def test_an_older_releases_restart_then_an_upgrade_verifies(tmp_path: Path) -> None:
    """Killed, restarted on the older release (whose first v1 checkpoint signs both writers), killed, upgraded: 0."""
    path, clock = tmp_path / "t.jsonl", Clock()
    _older_release_killed(path, clock, 4)
    _older_release_killed(path, clock, 3, "svc:2")  # its v1 checkpoint after its 2nd entry signs svc:1's and svc:2's
    assert [d["writer"] for d in docs_of(path)][4:7] == ["svc:1", "svc:2", "svc:2"]
    assert _upgrade_verifies(path) == [1, 1, 2, 2]


def test_an_older_releases_offline_command_without_the_key_then_an_upgrade_verifies(tmp_path: Path) -> None:
    """A v1 file, its service killed, an offline undo without the key (offline:host:pid:token), upgraded: exit 0."""
    path, clock = tmp_path / "t.jsonl", Clock()
    _older_release_killed(path, clock, 4)
    offline = Recorder(FileStore(path), writer=OFFLINE, clock=clock)
    offline.append("undo.intent", {"step": "s"}, "inc-1")
    offline.append("undo.result", {"step": "s"}, "inc-1")
    offline.close()
    assert _upgrade_verifies(path) == [1, 2, 2]


def _start_logs(path: Path) -> list[dict[str, object]]:
    """What an upgraded start logs under `timeline_signed_unproven_tail` (its checkpoint signing the tail it read)."""
    with capture_logs() as logs:
        _start(path)
    return [e for e in logs if e["event"] == "timeline_signed_unproven_tail"]


@pytest.mark.parametrize(("cut", "label", "verdict"), [
    (False, _alternating, "unsigned_tail_two_writers"), (True, _alternating, "unsigned_tail_two_writers"),
    (True, _mislabelled, "unsigned_tail_not_offline")], ids=["after-v2", "after-v1", "after-v1-not-offline"])
def test_a_start_signing_a_tail_verify_reports_unproven_says_so_in_its_log(
        tmp_path: Path, cut: bool, label: Callable[[int], tuple[str, str]], verdict: str) -> None:
    """The start's checkpoint over an unproven tail logs a warning naming the run and verdict that verify reports."""
    path = tmp_path / "t.jsonl"
    if cut:
        cut_back_to_version_1(path, 6, label)
    else:
        rewritten_tail(path, lambda k: label(k)[0])
    [event] = _start_logs(path)
    [seg] = _verify(path)[1]["signed_unproven"]
    assert event["log_level"] == "warning"
    assert (event["verdict"], event["first_seq"], event["last_seq"], event["checkpoint_seq"], event["reason"]) == (
        seg["verdict"], seg["first_seq"], seg["last_seq"], seg["signed_by"], seg["reason"])
    assert seg["verdict"] == verdict


def test_a_start_signing_a_crash_tail_logs_no_warning(tmp_path: Path) -> None:
    """An older release's crash tail signed by an upgraded start: no `timeline_signed_unproven_tail` in its log."""
    path = tmp_path / "t.jsonl"
    _older_release_killed(path, Clock(), 5)
    assert _start_logs(path) == []


@pytest.mark.parametrize("kind", [[], {"a": 1}, 7])
def test_a_start_over_a_last_entry_with_a_kind_that_is_no_string_does_not_crash(tmp_path: Path, kind: object) -> None:
    """A last entry labelled offline with a list, dict or number as its kind: a keyed start still starts (and warns)."""
    path = tmp_path / "t.jsonl"
    clock = Clock()
    rec = service_recorder(path, clock, every=5)
    append_events(rec, clock, 3)
    rec.close()
    last = docs_of(path)[-1]
    odd = {"seq": last["seq"] + 1, "writer": OFFLINE, "at": last["at"], "kind": kind, "incident": None,
           "body": {}, "prev": last["hash"], "hash": "f" * 64}
    with path.open("ab") as fh:
        fh.write(orjson.dumps(odd, option=orjson.OPT_SORT_KEYS) + b"\n")
    with capture_logs() as logs:
        _start(path)
    assert [e["verdict"] for e in logs if e["event"] == "timeline_signed_unproven_tail"] == [
        "unsigned_tail_not_offline"]

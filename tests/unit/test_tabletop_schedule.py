"""Tabletop scheduling: injects anchored on expectations, and webhook injects as the intake checks them."""

from __future__ import annotations

import pytest

from responder.intake.auth import SourceAuth
from responder.intake.problems import Problem
from responder.settings import IntakeSource
from responder.tabletop.inject import Record
from responder.tabletop.models import Inject, Playbook, Signature, WebhookAuth
from responder.tabletop.schedule import Schedule
from responder.tabletop.webhook import SECRET, request_for

PLAYBOOK = {
    "id": "pb", "title": "t", "objectives": ["o"],
    "injects": [{"id": "first", "at": "10s", "event": "e.json"},
                {"id": "retry", "after": "contained", "at": "2m", "event": "e.json"},
                {"id": "later", "after": "retry", "at": "5s", "event": "e.json"}],
    "expectations": [{"id": "contained", "kind": "step_done", "actuator": "aws.iam.deactivate_access_key",
                      "within": "1m"},
                     {"id": "seen", "kind": "runbook_matched", "runbook": "r", "after": "later", "within": "30s"}],
}


def _schedule(kill=None, **extra) -> Schedule:
    def records(inject: Inject, offset: float) -> list[tuple[float, Record]]:
        return [(0.0, Record("alerts", inject.id.encode(), None, []))]

    def action(*_: object):
        async def run() -> None:
            return None
        return run
    return Schedule(Playbook.model_validate(PLAYBOOK | extra), records, action, action, kill)


def _drain(schedule: Schedule) -> list[float]:
    out = []
    while (item := schedule.pop()) is not None:
        out.append(item[0])
    return out


def test_an_inject_after_an_expectation_waits_until_it_is_met():
    """`after: <expectation>` holds the inject (and what follows it) until the runner reports the expectation met."""
    schedule = _schedule()
    assert schedule.inject_at == {"first": 10.0}
    assert schedule.awaited() == ["contained"]
    assert _drain(schedule) == [10.0, 70.0]  # the first inject, then the end of its window
    schedule.meet("contained", 25.0)
    assert schedule.inject_at == {"first": 10.0, "retry": 145.0, "later": 150.0}
    assert schedule.awaited() == []
    assert _drain(schedule) == [145.0, 150.0, 180.0]  # both injects, then the end of `seen`'s window
    assert schedule.undelivered() == {}


def test_an_expectation_never_met_leaves_its_injects_undelivered():
    """Injects anchored on an expectation that never holds are reported with their anchor."""
    schedule = _schedule()
    _drain(schedule)
    assert schedule.undelivered() == {"retry": "contained", "later": "retry"}


def test_a_kill_at_fault_is_scheduled_after_the_injects_of_its_time():
    """`kill_at` puts the runner's kill at that virtual time, after an inject due at the same moment."""
    async def kill() -> None:
        return None
    schedule = _schedule(kill, faults=[{"kill_at": "10s"}, {"kill_during": "UpdateAccessKey"}])
    due = []
    while (item := schedule.pop()) is not None:
        due.append(item)
    assert [at for at, _ in due] == [10.0, 10.0, 70.0]
    assert due[1][1] is kill


@pytest.mark.parametrize("auth", list(WebhookAuth))
def test_webhook_injects_authenticate_as_their_sender_would(auth):
    """Each webhook inject carries what the intake checks for its scheme; a forged one is refused."""
    source = SourceAuth(auth.value, IntakeSource(auth=auth.value, keys={"tabletop": SECRET}))
    body = b'{"finding": 1}'
    for signature, ok in ((Signature.UNSIGNED, True), (Signature.FORGED, False)):
        url, headers = request_for("http://127.0.0.1:1", auth, body, signature, source.clock())
        query = dict(p.split("=", 1) for p in url.partition("?")[2].split("&") if p)
        assert url.startswith(f"http://127.0.0.1:1/v1/events/{auth.value}")
        if ok:
            assert source.check(headers, query, body).key_id == "tabletop"
        else:
            with pytest.raises(Problem):
                source.check(headers, query, body)


def test_a_webhook_inject_cannot_name_a_topic_or_key():
    """The intake chooses the topic and the record key: a webhook inject naming them is invalid."""
    with pytest.raises(ValueError, match="webhook inject"):
        Inject.model_validate({"id": "i", "event": "e.json", "transport": "webhook", "topic": "drift"})


def test_progress_off_a_terminal_is_plain_lines_on_stderr(capsys):
    """Without a TTY every event but clock ticks is one plain line on stderr; stdout stays clean."""
    from responder.cli.progress import progress_for

    with progress_for(1, tty=False) as progress:
        progress("pb", "clock", "t+10s")
        progress("pb", "inject", "finding at t+10s via webhook bearer → HTTP 202")
        progress("pb", "done", "PASS 100%")
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == ["pb inject finding at t+10s via webhook bearer → HTTP 202", "pb done PASS 100%"]


def test_progress_prints_playbook_and_sandbox_text_inert(capsys):
    """Progress lines, on a terminal or not, show escape sequences and markup from a scenario as written, harmless."""
    from responder.cli.progress import progress_for

    hostile = "x\x1b]0;pwned\x07 \u202e [/bold] [red]"
    for tty in (False, True):
        with progress_for(1, tty=tty) as progress:
            progress(hostile, "expect", f"FAIL {hostile}: instead {hostile}")
            progress(hostile, "inject", hostile)
            progress(hostile, "done", f"FAIL 0% {hostile}")
        out, err = capsys.readouterr()
        for raw in ("\x1b]0;pwned", "\x07", "\u202e"):
            assert raw not in out + err, (tty, raw)
        assert "\\x1b]0;pwned\\x07 \\u202e [/bold] [red]" in out + err

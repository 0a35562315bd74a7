"""Step bodies and the engine state's per-key records share their fields-sets, and stay equal to validated ones."""

from __future__ import annotations

from responder.engine.planner import LazyPlan
from responder.engine.snapshot import DoneStep, EngineSnapshot, InFlight
from responder.engine.state import EngineState
from responder.models.plan import Plan
from responder.models.step import StepIntent, StepResult, StepStatus


def _intent(key: str) -> StepIntent:
    return StepIntent.trusted(step="s", actuator="a", target=f"t-{key}", key=key, params={"x": key}, runbook="rb",
                              clock=1.0)


def test_trusted_instances_share_one_fields_set_and_equal_validated_ones():
    """Two trusted intents with the same given names share a fields-set; each equals (and writes) its validated twin."""
    a, b = _intent("k1"), _intent("k2")
    assert a.__pydantic_fields_set__ is b.__pydantic_fields_set__
    validated = StepIntent(step="s", actuator="a", target="t-k1", key="k1", params={"x": "k1"}, runbook="rb", clock=1.0)
    assert a == validated
    assert a.body() == validated.body() == validated.model_dump(mode="json", exclude_unset=True)
    assert a.model_dump(mode="json", exclude_unset=True) == validated.body()


def test_model_copy_of_a_trusted_instance_leaves_the_shared_set_alone():
    """`model_copy(update=…)` on a trusted intent adds the name to its copy only, not to the others' bodies."""
    a, b = _intent("k1"), _intent("k2")
    copied = a.model_copy(update={"before": {"state": "on"}})
    assert copied.body()["before"] == {"state": "on"}
    assert "before" not in a.body()
    assert "before" not in b.body()
    assert "before" not in _intent("k3").__pydantic_fields_set__


def test_state_records_share_fields_sets_and_snapshot_as_validated_records():
    """intend/finish keep records sharing one fields-set; the snapshot's JSON equals that of validated records."""
    state = EngineState()
    for key in ("k1", "k2"):
        state.intend(_intent(key), "inc-1", 1.0)
    flying = state.snapshot().inflight
    assert flying["k1"].__pydantic_fields_set__ is flying["k2"].__pydantic_fields_set__
    assert flying["k1"] == InFlight(incident="inc-1", intent=_intent("k1"))
    result = StepResult.trusted(step="s", actuator="a", target="t-k1", key="k1", status=StepStatus.OK,
                                outputs={"o": 1})
    state.finish(result, "inc-1")
    snap = state.snapshot()
    assert snap.done["k1"] == DoneStep(incident="inc-1", result=result, params={"x": "k1"})
    assert snap.done["k1"].model_dump_json() == DoneStep.model_validate_json(snap.done["k1"].model_dump_json()) \
        .model_dump_json()
    again = EngineState()
    again.restore(EngineSnapshot.model_validate_json(snap.model_dump_json()))
    assert again.snapshot().model_dump_json() == snap.model_dump_json()
    assert again.intent("k2") == state.intent("k2")
    assert again.result("k1") == state.result("k1")


def test_lazy_plan_of_builds_once_when_asked(monkeypatch):
    """`LazyPlan.of` calls build_plan with the run's arguments only on `get`, and once."""
    calls: list[tuple[object, ...]] = []
    plan = Plan(incident="i", runbook="rb@1", event_id="e", dry_run=True, steps=())

    def build(*args: object, **kw: object) -> Plan:
        calls.append((*args, kw))
        return plan

    monkeypatch.setattr("responder.engine.planner.build_plan", build)
    lazy = LazyPlan.of("rb", "i", "e", {"s": 1}, "reg", dry_run=True)  # type: ignore[arg-type]
    assert calls == []
    assert lazy.get() is plan
    assert lazy.get() is plan
    assert calls == [("rb", "i", "e", {"s": 1}, "reg", {"dry_run": True})]

"""A `when` over an output an earlier step lost, judged with three values: a test reading the lost output is unknown,
`any`/`all`/`not` combine known and unknown parts, and only an unknown answer fails the step (and escalates); an answer
the lost output cannot change runs or skips it as usual. `exists` on the whole result of a step recorded ok is known."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.kit import ESCALATE
from tests.lost_kit import MARK, marker_kit

ACT = MARK + """\
  - id: act
    actuator: test.echo
    with: {target: t2, message: contain}
    when:
"""
HOLDS = "{field: event.severity.score, op: ge, value: 0}"
FAILS = "{field: event.severity.score, op: lt, value: 0}"
LOST = "{field: steps.mark.result.verdict, op: eq, value: true}"


def _dir(path: Path) -> Path:
    """`path`, made (a second kit in one test)."""
    path.mkdir(exist_ok=True)
    return path


async def _act(tmp_path: Path, when: str) -> tuple[dict[str, Any], list[str], list[tuple[str, str]]]:
    """Run the mark (its reply lost, `verdict` lost) then `act` under `when`: act's result ({}: none), skipped steps,
    echoes."""
    kit, marker = marker_kit(tmp_path, ACT + when + ESCALATE)
    marker.lose_replies = 1
    await kit.send()
    results = {str(b["step"]): b for b in kit.entries("step.result")}
    assert results["mark"]["outputs_lost"] == ["verdict"]
    skipped = [str(b["step"]) for b in kit.entries("step.skipped")]
    return results.get("act", {}), skipped, [(p.target, p.message) for p in kit.echo.applied]


async def test_any_that_holds_without_the_lost_output_runs(tmp_path: Path) -> None:
    """`any` with a part that holds runs the step, whatever the lost output held."""
    act, skipped, echoed = await _act(tmp_path, f"      - any: [{HOLDS}, {LOST}]\n")
    assert act.get("status") == "ok"
    assert (skipped, echoed) == ([], [("t2", "contain")])


async def test_all_that_fails_without_the_lost_output_skips(tmp_path: Path) -> None:
    """`all` with a part that does not hold skips the step without a page, whatever the lost output held."""
    act, skipped, echoed = await _act(tmp_path, f"      - all: [{FAILS}, {LOST}]\n")
    assert (act, skipped, echoed) == ({}, ["act"], [])


async def test_not_of_an_any_that_holds_skips(tmp_path: Path) -> None:
    """`not` of an `any` that holds without the lost output skips the step without a page."""
    act, skipped, echoed = await _act(tmp_path, f"      - not: {{any: [{HOLDS}, {LOST}]}}\n")
    assert (act, skipped, echoed) == ({}, ["act"], [])


async def test_a_list_with_a_false_test_skips_and_one_unknown_fails(tmp_path: Path) -> None:
    """A top-level list is an `all`: one false test skips; true tests beside an unknown one fail and escalate."""
    act, skipped, echoed = await _act(tmp_path, f"      - {LOST}\n      - {FAILS}\n")
    assert (act, skipped, echoed) == ({}, ["act"], [])
    act, skipped, echoed = await _act(_dir(tmp_path / "2"), f"      - {HOLDS}\n      - any: [{FAILS}, {LOST}]\n")
    assert act.get("status") == "failed"
    assert "step mark acted, but its output 'verdict' was lost" in act["error"]
    assert "steps.mark.result.verdict" in act["error"]
    assert (skipped, echoed) == ([], [("oncall", "act failed")])


async def test_an_unknown_not_fails_and_escalates(tmp_path: Path) -> None:
    """`not` of an unknown part is unknown: the step fails naming step and output, and escalates."""
    act, skipped, echoed = await _act(tmp_path, f"      - not: {{all: [{HOLDS}, {LOST}]}}\n")
    assert act.get("status") == "failed"
    assert "its output 'verdict' was lost" in act["error"]
    assert (skipped, echoed) == ([], [("oncall", "act failed")])


async def test_exists_on_the_whole_result_of_a_step_that_lost_outputs_is_known(tmp_path: Path) -> None:
    """`exists` on the whole result of a step recorded ok holds (runs), and `exists: false` on it skips."""
    act, skipped, echoed = await _act(tmp_path, "      - {field: steps.mark.result, op: exists}\n")
    assert act.get("status") == "ok"
    assert (skipped, echoed) == ([], [("t2", "contain")])
    absent = "      - {field: steps.mark.result, op: exists, value: false}\n"
    act, skipped, echoed = await _act(_dir(tmp_path / "2"), absent)
    assert (act, skipped, echoed) == ({}, ["act"], [])


async def test_a_parameter_on_a_lost_output_fails_even_when_the_when_holds(tmp_path: Path) -> None:
    """A `when` that holds whatever was lost does not excuse a parameter reading a lost output: the step fails."""
    body = ACT.replace("message: contain}", 'message: "${steps.mark.result.verdict}"}')
    kit, marker = marker_kit(tmp_path, body + f"      - any: [{HOLDS}, {LOST}]\n" + ESCALATE)
    marker.lose_replies = 1
    await kit.send()
    act = {str(b["step"]): b for b in kit.entries("step.result")}["act"]
    assert act["status"] == "failed"
    assert "its output 'verdict' was lost" in act["error"]
    assert [(p.target, p.message) for p in kit.echo.applied] == [("oncall", "act failed")]


async def test_not_of_an_all_that_fails_without_the_lost_output_runs(tmp_path: Path) -> None:
    """`not` of an `all` with a part that does not hold runs the step, whatever the lost output held."""
    act, skipped, echoed = await _act(tmp_path, f"      - not: {{all: [{FAILS}, {LOST}]}}\n")
    assert act.get("status") == "ok"
    assert (skipped, echoed) == ([], [("t2", "contain")])


async def test_any_of_an_all_known_to_hold_beside_the_lost_output_runs(tmp_path: Path) -> None:
    """`any` whose known `all` part holds runs the step, whatever the lost output held."""
    act, skipped, echoed = await _act(tmp_path, f"      - any: [{{all: [{HOLDS}, {HOLDS}]}}, {LOST}]\n")
    assert act.get("status") == "ok"
    assert (skipped, echoed) == ([], [("t2", "contain")])

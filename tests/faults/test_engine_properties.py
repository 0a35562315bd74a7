"""A hypothesis state machine drives the engine through its public entry points (Pipeline.handle, Engine.decide,
Engine.expire, Engine.recover from the timeline, Undoer.undo) over a fake cloud ledger, with interleaved events,
redeliveries, transient faults, crashes, approvals and undo. It checks:

* at most one effect per idempotency key (counted in the ledger, not in the timeline);
* every intent ends with a result once the uncommitted events are redelivered after the last crash;
* undo restores the before-state the timeline recorded;
* while the kill switch is on, a step acts only when a human approved a request that named the switch;
* the state rebuilt from the durable timeline (as after a restart) has the same parked, released and continuing steps,
  results, intents and used decisions as the live state, whatever the kill switch and approvals did;
* after the last restart, no released step and no run a decision began is left unfinished.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import tempfile
import weakref
from collections import Counter
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from responder.actuators.registry import Registry
from responder.catalog import load_runbooks
from responder.engine import Engine
from responder.engine.approvals import MemoryPublisher, Parked
from responder.engine.guards import GuardPolicy, Guards
from responder.engine.recovery import fold
from responder.engine.state import EngineState
from responder.engine.undo import Undoer
from responder.models import RawRecord
from responder.models.plan import idempotency_key
from responder.models.timeline import EntryKind
from responder.pipeline import Pipeline
from responder.timeline import MemoryStore, Recorder
from tests.faults.ledger import Crash, Ledger, LedgerRestore, LedgerSet
from tests.findings import envelope_bytes, guardduty_finding
from tests.kit import APPROVER_KEYS, Clock, Kit, decision

KEYS = ["AKIAPROPERTY00000001", "AKIAPROPERTY00000002", "AKIAPROPERTY00000003"]
RUNBOOK = """\
id: contain
trigger: {source: guardduty, type: "*IAMUser/*"}
group_by: "${event.resource.access_key.id}"
steps:
  - id: close
    actuator: ledger.set
    with: {target: "${event.resource.access_key.id}", value: closed}
    retries: 2
  - id: gated
    actuator: ledger.set
    with: {target: "G${event.resource.access_key.id}", value: locked}
    approval: {required: true, approvers: [alice], timeout: 10m, on_timeout: deny}
  - id: follow
    actuator: ledger.set
    with: {target: "F${event.resource.access_key.id}", value: locked}
  - id: unattended
    actuator: ledger.set
    with: {target: "U${event.resource.access_key.id}", value: locked}
    approval: {required: true, approvers: [alice], timeout: 10m, on_timeout: approve}
on_failure:
  - id: tell
    actuator: ledger.set
    with: {target: "E${event.resource.access_key.id}", value: told}
"""
FAULTS = ["lost_reply:after", "error:before", "crash:before", "crash:after"]


class EngineMachine(RuleBasedStateMachine):
    """One engine over one durable store; a crash keeps only what was synced and rebuilds from it."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.dir = Path(tempfile.mkdtemp(prefix="props-"))
        # removed by teardown(), or when a machine a plain test built (without teardown) is collected
        self.discard = weakref.finalize(self, shutil.rmtree, self.dir, ignore_errors=True)
        (self.dir / "contain.yaml").write_text(RUNBOOK, encoding="utf-8")
        self.ledger = Ledger()
        self.registry = Registry()
        self.registry.add(LedgerSet(self.ledger))
        self.registry.add(LedgerRestore(self.ledger))
        self.store = MemoryStore()
        self.clock = Clock()
        self.delivered: list[bytes] = []  # alerts since the last "commit": redelivered after a crash
        self.decisions: list[tuple[bytes, str, str]] = []  # decisions since the last commit, likewise
        self.crashes = 0
        self.killed = False  # the kill switch (a setting: it survives a restart)
        self.late: list[tuple[bytes, str, str]] = []  # decisions signed, not delivered yet
        self.kill_marks: list[tuple[int, bool]] = []  # (durable entries when the switch was set, on or off)
        self._start()

    def _start(self) -> None:
        self.engine = Engine(Recorder(self.store), self.registry, None,  # type: ignore[arg-type]  # no AWS
                             guards=Guards(GuardPolicy(kill_switch=self.killed)), publisher=MemoryPublisher(),
                             approval_keys=APPROVER_KEYS, clock=self.clock)
        self.engine.recover()
        self.pipeline = Pipeline(load_runbooks(self.dir, self.registry), self.engine)

    def _run(self, work) -> None:
        """Run one entry point; a Crash kills the process: keep what was synced, rebuild, redeliver."""
        try:
            self.loop.run_until_complete(self._then_flush(work))
        except Crash:
            self.crashes += 1
            self.store.rollback()
            self._start()
            self._redeliver()

    async def _then_flush(self, work) -> None:
        await work
        await self.engine.recorder.flush()

    def _redeliver(self) -> None:
        for value in list(self.delivered):
            self._run(self.pipeline.handle(RawRecord(topic="alerts", value=value)))
        for signed in list(self.decisions):
            self._run(self.engine.decide(*signed))

    def _entries(self):
        return list(Recorder(self.store).entries())

    @rule(key=st.sampled_from(KEYS), variant=st.integers(0, 2))
    def deliver(self, key: str, variant: int) -> None:
        """An alert (or a distinct finding about the same key) arrives."""
        value = envelope_bytes(guardduty_finding(key, finding_id=f"f-{key}-{variant}"))
        self.delivered.append(value)
        self._run(self.pipeline.handle(RawRecord(topic="alerts", value=value)))

    @rule()
    def commit(self) -> None:
        """Both consumers commit: what was handled is not redelivered."""
        self.delivered.clear()
        self.decisions.clear()

    @rule(fault=st.sampled_from(FAULTS))
    def arm(self, fault: str) -> None:
        """The next cloud call fails, loses its reply, or the process dies around it."""
        self.ledger.armed, self.ledger.only = fault, ""

    @rule(fault=st.sampled_from(FAULTS))
    def arm_after_approval(self, fault: str) -> None:
        """Likewise, but for the next call of the step after the approved one (`follow`): the run a decision began
        is cut short past the decided step."""
        self.ledger.armed, self.ledger.only = fault, "F"

    @rule(key=st.sampled_from(KEYS))
    def reopen(self, key: str) -> None:
        """Someone re-opens a gated target by hand: a new, distinct alert finds it drifted and asks again."""
        self.ledger.state[f"G{key}"] = "open"

    @rule()
    def crash(self) -> None:
        """SIGKILL between records."""
        self._run(self._raise_crash())

    async def _raise_crash(self) -> None:
        raise Crash("between records")

    @precondition(lambda self: bool(self.engine.state.parked_steps()))
    @rule(data=st.data(), verdict=st.sampled_from(["approve", "deny"]))
    def decide(self, data: st.DataObject, verdict: str) -> None:
        """A human decides a parked step (signed)."""
        parked = sorted((p.incident, p.step) for p in self.engine.state.parked_steps())
        incident, step = data.draw(st.sampled_from(parked))
        kit = Kit.__new__(Kit)
        kit.pipeline, kit.clock = self.pipeline, self.clock  # type: ignore[assignment]
        signed = decision(kit, incident, step, verdict, ttl=3000)  # within the default maximum decision lifetime (1 h)
        self.decisions.append(signed)
        self._run(self.engine.decide(*signed))

    @precondition(lambda self: bool(self.engine.state.parked_steps()))
    @rule(data=st.data())
    def sign_late(self, data: st.DataObject) -> None:
        """A human signs an approval of a parked step's request now; it reaches the engine later (`deliver_late`),
        maybe after the step was released by its timeout and parked again."""
        parked = sorted((p.incident, p.step) for p in self.engine.state.parked_steps())
        incident, step = data.draw(st.sampled_from(parked))
        kit = Kit.__new__(Kit)
        kit.pipeline, kit.clock = self.pipeline, self.clock  # type: ignore[assignment]
        self.late.append(decision(kit, incident, step, "approve", ttl=2999))  # not the bytes `decide` signs

    @precondition(lambda self: bool(self.late))
    @rule()
    def deliver_late(self) -> None:
        """The decision signed first arrives."""
        signed = self.late.pop(0)
        self.decisions.append(signed)
        self._run(self.engine.decide(*signed))

    @rule(on=st.booleans())
    def kill_switch(self, on: bool) -> None:
        """An operator turns the kill switch on or off: every step then needs a human (a timeout never waives it)."""
        self.killed = on
        self.engine.guards.policy = GuardPolicy(kill_switch=on)
        self.kill_marks.append((len(self._entries()), on))  # every entry before it is durable (each rule flushes)

    @rule()
    def expire(self) -> None:
        """Ten minutes pass: parked steps past their deadline are denied (or released, for `on_timeout: approve`)."""
        self.clock.now += 601
        self._run(self.engine.expire())

    @precondition(lambda self: any(r.ok for r in self.engine.state.results()))
    @rule(data=st.data())
    def undo(self, data: st.DataObject) -> None:
        """An operator undoes an incident: each undone step's target gets its recorded before-state back."""
        incidents = sorted({e.incident for e in self._entries() if e.kind == EntryKind.STEP_RESULT and e.incident})
        incident = data.draw(st.sampled_from(incidents))
        undoer = Undoer(self.engine.recorder, self.registry, None)  # type: ignore[arg-type]
        outcomes: list[dict[str, object]] = []

        async def go() -> None:
            outcomes.extend(await undoer.undo(incident))

        self._run(go())
        # the result an undo reverses: the newest of its key with a recorded prior (a re-applied step whose reply
        # was lost has none, and the undo skips it for the one before it, under the same key)
        results = {str(e.body["key"]): e.body for e in self._entries()
                   if e.kind == EntryKind.STEP_RESULT and (e.body.get("prior") or {}).get("value") is not None}
        for out in outcomes:
            if out.get("status") == "ok":
                prior = results[str(out["undoes"])]["prior"]
                assert self.ledger.state[str(out["target"])] == prior["value"], (out, prior)  # type: ignore[index]

    @invariant()
    def at_most_one_effect_per_key(self) -> None:
        """No idempotency key reached the cloud more often than the timeline has durable intents for it.

        A key gets a second intent only on purpose: a new, distinct alert found a succeeded step's state drifted
        (undo, or a human) and re-applied it (issue 12 hole 15). Retries, lost replies, crashes and redeliveries
        must never add an effect under the same intent.
        """
        intents = Counter(str(e.body["key"]) for e in self._entries()
                          if e.kind in (EntryKind.STEP_INTENT, "undo.intent"))
        twice = {k: n for k, n in self.ledger.effects.items() if n > max(1, intents[k])}
        assert not twice, twice

    @invariant()
    def only_a_human_asked_about_the_kill_switch_runs_a_step_over_it(self) -> None:
        """A step acts (a new intent) while the kill switch is on only when a human approved a request that named the
        switch: never under a timeout, a crash resumption, or an approval of a request read before the switch."""
        asked: dict[object, list[str]] = {}  # request id → the reasons it named
        cleared: set[tuple[str | None, str]] = set()  # (incident, step) a human released over the switch
        open_keys: set[str] = set()
        marks = iter(self.kill_marks)
        mark, killed = next(marks, None), False
        for at, e in enumerate(self._entries()):
            while mark is not None and mark[0] <= at:
                killed, mark = mark[1], next(marks, None)
            body = e.body
            if e.kind == EntryKind.APPROVAL_REQUESTED:
                asked[body.get("request_id")] = list(body["reasons"])  # type: ignore[arg-type]
            elif e.kind == EntryKind.APPROVAL_DECIDED and body["decision"] == "approve" \
                    and any(str(r).startswith("kill_switch:") for r in asked.get(body.get("request_id"), [])):
                cleared.add((e.incident, str(body["step"])))
            elif e.kind == EntryKind.STEP_RESULT:
                open_keys.discard(str(body.get("key")))
            elif e.kind == EntryKind.STEP_INTENT and str(body["key"]) not in open_keys:
                open_keys.add(str(body["key"]))
                if killed:
                    assert (e.incident, str(body["step"])) in cleared, (at, body)
                    cleared.discard((e.incident, str(body["step"])))

    @invariant()
    def replay_rebuilds_the_live_state(self) -> None:
        """The durable timeline, replayed, gives the state the engine holds: parked and released steps (with how they
        were released), step results and intents, the decisions each incident used and the escalations it owes."""
        replayed = EngineState()
        for entry in self._entries():
            fold(replayed, entry)
        live = self.engine.state

        def canonical(parked: Parked) -> bytes:  # the event's keys come back sorted from the timeline
            return orjson.dumps(dataclasses.asdict(parked), option=orjson.OPT_SORT_KEYS)

        def view(state: EngineState) -> tuple[object, ...]:
            return (sorted(map(canonical, state.parked_steps())), sorted(map(canonical, state.granted())),
                    sorted((canonical(p), ok, escalated) for p, ok, escalated in state.continuing()),
                    sorted((r.key, r.status) for r in state.results()), sorted(i.key for i in state.inflight()),
                    sorted((i.id, sorted(i.decisions), sorted(i.owed.items())) for i in state.incidents.all()))

        assert view(replayed) == view(live)

    def teardown(self) -> None:
        """Redeliver what was not committed (as after a restart) and resume the released steps a crash cut short (as
        the approvals loop does within 200 ms); then every intent has its result, but one a human is asked about again
        (parked under the kill switch after a crash cut it short before it acted)."""
        try:
            self._settle_and_check()
        finally:
            self.loop.close()
            self.discard()

    def _settle_and_check(self) -> None:
        self.ledger.armed = None
        self.store.rollback()
        self._start()
        self._redeliver()
        self._run(self.engine.decisions.resolve_granted())
        entries = self._entries()
        intents = {str(e.body["key"]) for e in entries if e.kind == EntryKind.STEP_INTENT}
        results = {str(e.body["key"]) for e in entries if e.kind == EntryKind.STEP_RESULT}
        # a step whose intent a crash left open, parked again for a human since (the kill switch is on and the
        # approval was for the run the crash ended), waits for them with its intent open: verify() showed it not applied
        waiting = {idempotency_key(p.incident, p.runbook, p.step, p.target) for p in self.engine.state.parked_steps()}
        assert intents - waiting <= results, f"intents without a result: {sorted(intents - waiting - results)}"
        assert not [k for k in (intents & waiting) - results if self.ledger.effects.get(k)]  # and it did not act
        assert not self.engine.state.granted()
        assert not self.engine.state.continuing()
        self.at_most_one_effect_per_key()


EngineMachine.TestCase.settings = settings(max_examples=50, stateful_step_count=20, deadline=None,
                                           suppress_health_check=[HealthCheck.too_slow])
test_engine_state_machine = EngineMachine.TestCase


class LongEngineMachine(EngineMachine):
    """The same machine, longer runs (make soak)."""


LongEngineMachine.TestCase.settings = settings(max_examples=400, stateful_step_count=40, deadline=None,
                                               suppress_health_check=[HealthCheck.too_slow])
test_engine_state_machine_long = pytest.mark.timeout(3600)(pytest.mark.soak(LongEngineMachine.TestCase))


def test_undo_after_a_crash_mid_undo_applies_once():
    """An undo killed after its reverse applied, then run again, does not apply the reverse a second time."""
    m = EngineMachine()
    m.deliver(KEYS[0], 0)
    incident = next(iter(m.engine.state.incidents.by_id))
    m.ledger.armed = "crash:after"
    undoer = Undoer(m.engine.recorder, m.registry, None)  # type: ignore[arg-type]
    m._run(undoer.undo(incident))
    m._run(Undoer(m.engine.recorder, m.registry, None).undo(incident))  # type: ignore[arg-type]
    m.at_most_one_effect_per_key()


def _approved_with(fault: str, only: str = "") -> tuple[EngineMachine, str]:
    """A committed alert's gated step approved with `fault` armed for the next apply (of a target starting with
    `only`), then a later sweep; every intent then has its result. The machine, and the step approved."""
    m = EngineMachine()
    m.deliver(KEYS[0], 0)
    m.commit()
    [(incident, step)] = [(p.incident, p.step) for p in m.engine.state.parked_steps()]
    kit = Kit.__new__(Kit)
    kit.pipeline, kit.clock = m.pipeline, m.clock  # type: ignore[assignment]
    signed = decision(kit, incident, step, "approve", ttl=3000)  # within the default maximum decision lifetime (1 h)
    m.decisions.append(signed)
    m.ledger.armed, m.ledger.only = fault, only
    m._run(m.engine.decide(*signed))
    m._run(m.engine.expire())  # a later sweep
    entries = m._entries()
    intents = {str(e.body["key"]) for e in entries if e.kind == EntryKind.STEP_INTENT}
    assert intents <= {str(e.body["key"]) for e in entries if e.kind == EntryKind.STEP_RESULT}
    return m, step


@pytest.mark.parametrize("fault", ["crash:after", "crash:before"])
def test_crash_inside_an_approved_step_is_resolved_once_on_redelivery(fault):
    """An approved step killed before or after it applied is resolved (verify, apply if needed) once, on restart."""
    m, step = _approved_with(fault)  # dies inside the step; restarts; the decision is redelivered
    entries = m._entries()
    results = [e.body for e in entries if e.kind == EntryKind.STEP_RESULT and e.body.get("step") == step]
    assert [r["status"] for r in results] == ["ok"]
    assert m.ledger.state[f"G{KEYS[0]}"] == "locked"
    assert m.ledger.effects[str(results[0]["key"])] == 1
    assert not m.engine.state.granted()


@pytest.mark.parametrize("fault", ["crash:after", "crash:before"])
def test_a_crash_inside_the_step_after_an_approved_one_is_resolved_once(fault):
    """A crash inside the step after an approved one is resolved once on restart, and the later steps run."""
    m, _ = _approved_with(fault, only="F")  # dies inside `follow`; restarts; the decision is redelivered, refused
    entries = m._entries()
    assert m.ledger.state[f"F{KEYS[0]}"] == "locked"
    [follow] = [e.body for e in entries if e.kind == EntryKind.STEP_RESULT and e.body.get("step") == "follow"]
    assert m.ledger.effects[str(follow["key"])] == 1
    assert [p.step for p in m.engine.state.parked_steps()] == ["unattended"]
    assert not m.engine.state.granted()
    assert not m.engine.state.continuing()

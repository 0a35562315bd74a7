"""A step naming an IAM role while both a protected id that may name its unique id and a protected tag are set is read
with one `iam:GetRole`, shared by the engine's principals and tags readers (responder/engine/iamrecords.py); each
reader answers, keeps and refuses exactly as a reader of its own does, and a waiter cancelled leaves the read to the
other."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import responder.actuators.aws  # noqa: F401  # registers the AWS actuators
from responder.actuators import registry
from responder.engine import Engine
from responder.engine.guards import GuardPolicy, Guards
from responder.engine.iamprincipals import PrincipalForms
from responder.engine.iamrecords import one_check
from responder.engine.tagreads import ResourceTags
from responder.errors import PermanentActuationError, TransientActuationError
from responder.models.runbook import Protected, Runbook
from responder.timeline import MemoryStore, Recorder
from tests.guard_kit import event_naming, let_tasks_run

NAME, ACTUATOR = "app-worker", "aws.iam.revoke_sessions"
PARAMS = {"principal_type": "role", "principal_name": NAME}
TARGET, ROLE, TAGGED = f"role/{NAME}", f"role/{NAME}", f"role {NAME}"  # the step's target, the two readers' keys
PROTECTED = Protected(ids=["AROAPROTECTED*"], tags={"responder:protected": "*"})  # a unique id: read; a tag: read
RB = Runbook.model_validate({"id": "rb", "trigger": {"source": "guardduty"}, "group_by": "${event.id}",
                             "steps": [{"id": "s", "actuator": ACTUATOR, "with": PARAMS}]})
PLAIN = {"RoleName": NAME, "RoleId": "AROAOTHER00000000000", "Path": "/", "Tags": [{"Key": "team", "Value": "ml"}],
         "Arn": f"arn:aws:iam::123456789012:role/{NAME}"}
ROLES = {"neither": PLAIN, "unique id": {**PLAIN, "RoleId": "AROAPROTECTED0000000"},
         "tag": {**PLAIN, "Tags": [{"Key": "responder:protected", "Value": "yes"}]}}


class Iam:
    """iam:GetRole of one role (`role`), counting calls: the first `fails` raise `error`; each waits for `gate` (else
    yields once) and records whether it was cancelled."""

    def __init__(self, role: dict[str, Any], error: Exception | None = None, fails: int = 0,
                 gate: asyncio.Event | None = None) -> None:
        self.role, self.error, self.fails, self.gate = role, error, fails, gate
        self.calls = 0
        self.cancelled = 0

    async def call(self, service: str, operation: str, **kw: Any) -> dict[str, Any]:
        """The role's record, after `fails` failures."""
        assert (service, operation, kw) == ("iam", "get_role", {"RoleName": NAME})
        self.calls += 1
        failing = self.calls <= self.fails and self.error is not None
        try:
            await (self.gate.wait() if self.gate is not None else asyncio.sleep(0))
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        if failing and self.error is not None:
            raise self.error
        return {"Role": dict(self.role)}


def _readers(guards: Guards) -> tuple[PrincipalForms, ResourceTags]:
    assert guards.principals is not None
    assert guards.tags is not None
    for reader in (guards.principals, guards.tags):
        reader.BACKOFF_S, reader.DEADLINE_S = 0.01, 1.0  # the retries' waits, short
    return guards.principals, guards.tags


def _engine_guards(aws: Iam) -> Guards:
    """The guards as the engine builds them over `aws`: its own principals and tags readers."""
    return Engine(Recorder(MemoryStore()), registry, aws, guards=Guards(GuardPolicy(protected=PROTECTED))).guards


def _own_guards(aws: Iam) -> Guards:
    """The guards with a principals and a tags reader each reading on its own: the answers the shared read must give."""
    return Guards(GuardPolicy(protected=PROTECTED), principals=PrincipalForms(aws), tags=ResourceTags(aws))


async def _check(guards: Guards) -> tuple[str | None, set[str], set[str]]:
    principals, tags = _readers(guards)
    found = await guards.protected(RB, ACTUATOR, TARGET, PARAMS, event_naming())
    return found, principals.kept([ROLE]), tags.kept([TAGGED])


@pytest.mark.parametrize("case", sorted(ROLES))
def test_one_get_role_serves_both_readers_with_the_same_answer(case: str) -> None:
    """A unique id hit, tag hit or neither takes one GetRole for both readers, each answering as if reading alone."""
    shared, own = Iam(ROLES[case]), Iam(ROLES[case])
    got, want = asyncio.run(_check(_engine_guards(shared))), asyncio.run(_check(_own_guards(own)))
    assert got == want
    assert (got[0] is None) == (case == "neither")
    assert (shared.calls, own.calls) == (1, 2)


DENIED = PermanentActuationError("AccessDenied: not authorized to perform iam:GetRole", code="AccessDenied")
THROTTLED = TransientActuationError("Throttling: Rate exceeded", code="Throttling")


@pytest.mark.parametrize(("error", "fails", "calls"), [(DENIED, 100, 1), (THROTTLED, 1, 2),
                                                       (THROTTLED, 100, PrincipalForms.ATTEMPTS)])
def test_a_failing_or_retried_read_is_shared_and_each_reader_answers_in_its_own_words(
        error: Exception, fails: int, calls: int) -> None:
    """A denied or throttled read is made once for both readers, each answering in its own words."""

    async def answers(guards: Guards) -> tuple[str | None, list[set[str] | str]]:
        principals, tags = _readers(guards)
        found = await guards.protected(RB, ACTUATOR, TARGET, PARAMS, event_naming())
        checked.append(shared.calls)
        for reader in (principals, tags):
            assert isinstance(reader.aws, Iam)
            reader.aws.calls = 0  # the readers' own reads, together, fail as the first did
        with one_check():  # both readers' reads of one check: shared again (only given one `IamRecords`)
            return found, list(await asyncio.gather(principals.forms({ROLE}), tags.forms({TAGGED})))

    checked: list[int] = []  # the shared IAM's calls after the step's check

    shared, own = Iam(ROLES["tag"], error, fails), [Iam(ROLES["tag"], error, fails) for _ in range(2)]
    got = asyncio.run(answers(_engine_guards(shared)))
    want = asyncio.run(answers(Guards(GuardPolicy(protected=PROTECTED), principals=PrincipalForms(own[0]),
                                      tags=ResourceTags(own[1]))))
    assert got == want
    assert checked[0] == calls  # the step's check: before, 2 * calls
    assert (shared.calls, own[0].calls, own[1].calls) == (calls, calls, calls)  # before: 2 * calls shared
    if error is THROTTLED and fails == 1:  # retried, then read: the role's protected tag refuses
        assert "carry protected tag responder:protected=yes" in str(got[0])
        return
    assert str(got[1][0]).startswith(f"IAM {ROLE!r} could not be read")
    assert str(got[1][1]).startswith(f"role {NAME!r}: its tags could not be read")
    assert got[0] == got[1][0]  # the guard's refusal: the principals reader's, first in order


def test_the_checks_of_two_steps_do_not_share_a_read() -> None:
    """Two steps on one role checked at once make one GetRole per check, never one shared by both."""

    async def scenario() -> tuple[int, int, list[str | None]]:
        aws = Iam(ROLES["neither"], gate=asyncio.Event())
        guards = _engine_guards(aws)
        checks = [asyncio.create_task(guards.protected(RB, ACTUATOR, TARGET, PARAMS, event_naming())) for _ in range(2)]
        await let_tasks_run()
        in_flight = aws.calls
        assert aws.gate is not None
        aws.gate.set()
        return in_flight, aws.calls, list(await asyncio.gather(*checks))

    assert asyncio.run(scenario()) == (2, 2, [None, None])


@pytest.mark.parametrize("cancelled", ["principals", "tags"])
def test_cancelling_one_waiter_leaves_the_read_to_the_other(cancelled: str) -> None:
    """Cancelling either reader of a shared read in flight leaves the read to the other: one GetRole, no task left."""

    async def scenario() -> tuple[Iam, set[str] | str, bool, set[asyncio.Task[Any]]]:
        aws = Iam(ROLES["tag"], gate=asyncio.Event())
        principals, tags = _readers(_engine_guards(aws))
        with one_check():  # as the guard's reads of one step (`Guards._read_protected`): the tasks in its check
            waiting = {"principals": asyncio.create_task(principals.forms({ROLE})),
                       "tags": asyncio.create_task(tags.forms({TAGGED}))}
        await let_tasks_run()
        assert aws.calls == 1  # before: 2, one read each
        victim, other = waiting.pop(cancelled), next(iter(waiting.values()))
        victim.cancel()
        await let_tasks_run()
        assert aws.gate is not None
        aws.gate.set()
        answer = await other
        return aws, answer, victim.cancelled(), asyncio.all_tasks() - {asyncio.current_task()}

    aws, answer, victim_cancelled, left = asyncio.run(scenario())
    assert victim_cancelled
    assert (aws.calls, aws.cancelled) == (1, 0)
    assert isinstance(answer, set)
    assert ("aroaother00000000000" in answer) if cancelled == "tags" else (answer == {"responder:protected\x1fyes"})
    assert not left


def test_cancelling_every_waiter_cancels_the_read() -> None:
    """Both readers cancelled: the shared read is cancelled and ended (no task left), and a later read starts anew."""

    async def scenario() -> tuple[Iam, set[asyncio.Task[Any]], set[str] | str]:
        aws = Iam(ROLES["neither"], gate=asyncio.Event())
        principals, tags = _readers(_engine_guards(aws))
        with one_check():  # as the guard's reads of one step
            waiting = [asyncio.create_task(principals.forms({ROLE})), asyncio.create_task(tags.forms({TAGGED}))]
        await let_tasks_run()
        assert aws.calls == 1  # before: 2, one read each
        for task in waiting:
            task.cancel()
        async with asyncio.timeout(5):  # the test fails rather than hang on a read no one cancelled
            await asyncio.gather(*waiting, return_exceptions=True)
        left = asyncio.all_tasks() - {asyncio.current_task()}
        assert aws.gate is not None
        aws.gate.set()
        return aws, left, await principals.forms({ROLE})

    aws, left, again = asyncio.run(scenario())
    assert not left
    assert (aws.calls, aws.cancelled) == (2, 1)
    assert isinstance(again, set)
    assert "aroaother00000000000" in again


def test_readers_asking_outside_a_check_share_no_read() -> None:
    """Two readers asked at once outside a guard check (`one_check`) each read on their own: two GetRole calls."""

    async def scenario() -> tuple[int, list[set[str] | str]]:
        aws = Iam(ROLES["tag"], gate=asyncio.Event())
        principals, tags = _readers(_engine_guards(aws))
        waiting = [asyncio.create_task(principals.forms({ROLE})), asyncio.create_task(tags.forms({TAGGED}))]
        await let_tasks_run()
        in_flight = aws.calls
        assert aws.gate is not None
        aws.gate.set()
        return in_flight, list(await asyncio.gather(*waiting))

    in_flight, (forms, tagged) = asyncio.run(scenario())
    assert in_flight == 2
    assert isinstance(forms, set)
    assert "aroaother00000000000" in forms
    assert tagged == {"responder:protected\x1fyes"}


@pytest.mark.parametrize("kind", ["principals", "tags"])
def test_a_check_reading_one_kind_of_iam_records_reads_them_in_its_own_task(kind: str) -> None:
    """A check needing one kind of IAM record reads it in the reader's own task, starting no task for it."""

    async def scenario() -> tuple[set[asyncio.Task[Any]], str | None, int]:
        aws = Iam(ROLES["neither"], gate=asyncio.Event())
        protected = Protected(ids=["AROAPROTECTED*"]) if kind == "principals" else Protected(
            tags={"responder:protected": "*"})
        guards = Engine(Recorder(MemoryStore()), registry, aws, guards=Guards(GuardPolicy(protected=protected))).guards
        _readers(guards)
        check = asyncio.create_task(guards.protected(RB, ACTUATOR, TARGET, PARAMS, event_naming()))
        await let_tasks_run()
        running = asyncio.all_tasks() - {asyncio.current_task(), check}
        assert aws.gate is not None
        aws.gate.set()
        return running, await check, aws.calls

    assert asyncio.run(scenario()) == (set(), None, 1)  # before: the shared read's task running

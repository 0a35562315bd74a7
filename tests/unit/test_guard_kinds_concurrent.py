"""The kinds of guard reads a step needs (KMS aliases, IAM principals, resource tags) run concurrently, and the answer
is the one reading them in turn gives: the refusal of the first kind in the order KMS, IAM, tags that refuses, else
None; a kind that refuses cancels the kinds after it, never those before it; cancelling the caller cancels every read
(responder/engine/guards.py, responder/engine/inorder.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest

import responder.actuators.aws  # noqa: F401  # registers the AWS actuators
from responder.engine.guards import GuardPolicy, Guards
from responder.engine.iamprincipals import PrincipalForms
from responder.engine.inorder import in_order
from responder.engine.kmsaliases import KeyAliases
from responder.engine.tagreads import SEP, ResourceTags
from responder.errors import PermanentActuationError, ReadCancelled
from responder.models.runbook import Protected, Runbook
from tests.guard_kit import KMS_KEY, KMS_KEY_ARN, Boom, NoAws, SettableClock, event_naming, let_tasks_run

ACTUATOR = "aws.kms.disable_key"
PARAMS = {"key_id": KMS_KEY_ARN, "role_name": "app-worker"}  # a KMS key (its aliases, its tags) and an IAM role
ROLE, TAGGED = "role/app-worker", f"key {KMS_KEY_ARN}"  # the keys of the IAM and the tag reads
PROTECTED = Protected(ids=["alias/prod-key", "AROA*"], tags={"responder:protected": "*"})  # each needs its kind
RB = Runbook.model_validate({"id": "rb", "trigger": {"source": "guardduty"}, "group_by": "${event.id}",
                             "steps": [{"id": "s", "actuator": ACTUATOR, "with": PARAMS}]})
NOTHING: frozenset[str] = frozenset({"nothing-protected"})
ALIAS = frozenset({"alias/prod-key"})  # the KMS kind's hit
TAG = frozenset({f"responder:protected{SEP}yes"})  # the tag kind's hit


def _denied() -> PermanentActuationError:
    return PermanentActuationError("AccessDenied: not granted", code="AccessDenied")


class Gated:
    """A reader whose reads wait for `gate`, then answer `answer` (forms, or raise it); records what they did."""

    def __init__(self, answer: frozenset[str] | BaseException = NOTHING) -> None:
        super().__init__(NoAws(), clock=SettableClock())  # type: ignore[call-arg]  # the KeptReads it is mixed into
        self.answer = answer
        self.gate = asyncio.Event()
        self.started: list[str] = []
        self.finished: list[str] = []
        self.cancelled: list[str] = []

    async def _read(self, key: str) -> frozenset[str]:
        self.started.append(key)
        try:
            await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled.append(key)
            raise
        self.finished.append(key)
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer


class Kms(Gated, KeyAliases):
    """KMS aliases read behind a gate."""


class Iam(Gated, PrincipalForms):
    """IAM principals read behind a gate."""


class Tags(Gated, ResourceTags):
    """Resource tags read behind a gate."""


def _check(kms: Kms, iam: Iam, tags: Tags, protected: Protected = PROTECTED) -> Coroutine[Any, Any, str | None]:
    guards = Guards(GuardPolicy(protected=protected), aliases=kms, principals=iam, tags=tags)
    return guards.protected(RB, ACTUATOR, KMS_KEY_ARN, PARAMS, event_naming())


def test_the_three_kinds_are_read_together() -> None:
    """A step needing KMS, IAM and tag reads has all three in flight at once; none refusing, it is not refused."""

    async def scenario() -> tuple[list[list[str]], str | None]:
        kms, iam, tags = Kms(), Iam(), Tags()
        task = asyncio.create_task(_check(kms, iam, tags))
        await let_tasks_run()
        started = [list(r.started) for r in (kms, iam, tags)]
        for reader in (kms, iam, tags):
            reader.gate.set()
        return started, await task

    started, found = asyncio.run(scenario())
    assert started == [[KMS_KEY], [ROLE], [TAGGED]]  # one after another: [[KMS_KEY], [], []]
    assert found is None


def test_a_later_kind_refusing_first_is_answered_only_once_the_earlier_kinds_refuse_nothing() -> None:
    """When IAM refuses while KMS still reads, the step waits for KMS, then gets IAM's refusal; the tag read stops."""

    async def scenario() -> tuple[bool, list[str], list[str], str | None, Kms]:
        kms, iam, tags = Kms(), Iam(_denied()), Tags(TAG)
        task = asyncio.create_task(_check(kms, iam, tags))
        await let_tasks_run()
        iam.gate.set()
        await let_tasks_run()
        waiting = not task.done()
        iam_done, tags_cancelled = list(iam.finished), list(tags.cancelled)
        kms.gate.set()
        return waiting, iam_done, tags_cancelled, await task, kms

    waiting, iam_done, tags_cancelled, found, kms = asyncio.run(scenario())
    assert waiting  # KMS's read may still refuse first
    assert iam_done == [ROLE]  # one after another: [] (IAM read only once KMS has answered)
    assert tags_cancelled == [TAGGED]  # the tags cannot change the answer once IAM refused
    assert kms.finished == [KMS_KEY]
    assert found is not None
    assert found.startswith(f"IAM {ROLE!r} could not be read (no permission")


@pytest.mark.parametrize(("kms_answer", "iam_first"), [(ALIAS, True), (ALIAS, False), (_denied(), False)])
def test_the_first_kind_refusing_in_order_wins_and_the_later_reads_are_cancelled(
        kms_answer: frozenset[str] | BaseException, iam_first: bool) -> None:
    """The first kind in order that refuses, KMS before IAM, gives the answer and the reads after it are cancelled."""

    async def scenario() -> tuple[str | None, Iam, Tags]:
        kms, iam, tags = Kms(kms_answer), Iam(_denied()), Tags(TAG)
        task = asyncio.create_task(_check(kms, iam, tags))
        await let_tasks_run()
        if iam_first:
            iam.gate.set()
            await let_tasks_run()
        kms.gate.set()  # the tags' gate is never set
        await let_tasks_run()
        assert task.done()  # the tag read never answers: the step's answer does not wait for it
        return await task, iam, tags

    found, iam, tags = asyncio.run(scenario())
    assert found is not None
    assert ("alias/prod-key" if kms_answer is ALIAS else "its aliases could not be read") in found
    assert found.startswith(f"{KMS_KEY_ARN!r} (as" if kms_answer is ALIAS else f"KMS key {KMS_KEY!r}")
    assert tags.started == [TAGGED]
    assert tags.cancelled == [TAGGED]
    assert (iam.finished, iam.cancelled) == (([ROLE], []) if iam_first else ([], [ROLE]))


def test_cancelling_the_caller_cancels_the_reads_of_every_kind() -> None:
    """The caller cancelled while the three kinds read: each read is cancelled, and no read task is left."""

    async def scenario() -> tuple[Kms, Iam, Tags, set[asyncio.Task[Any]]]:
        kms, iam, tags = Kms(), Iam(), Tags()
        task = asyncio.create_task(_check(kms, iam, tags))
        await let_tasks_run()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return kms, iam, tags, asyncio.all_tasks() - {asyncio.current_task()}

    kms, iam, tags, left = asyncio.run(scenario())
    assert [r.cancelled for r in (kms, iam, tags)] == [[KMS_KEY], [ROLE], [TAGGED]]  # one after another: KMS's only
    assert not left


def test_the_reads_deadline_cancels_every_kind_and_leaves_no_cancel_request() -> None:
    """At the reads' deadline every kind's read is cancelled, the step is refused, and no cancel request is left."""

    async def scenario() -> tuple[str | None, int, Kms, Iam, Tags]:
        kms, iam, tags = Kms(), Iam(), Tags()
        guards = Guards(GuardPolicy(protected=PROTECTED), aliases=kms, principals=iam, tags=tags)
        guards.reads_deadline = 0.05
        async with asyncio.timeout(5):  # the test fails rather than hang
            found = await guards.protected(RB, ACTUATOR, KMS_KEY_ARN, PARAMS, event_naming())
        task = asyncio.current_task()
        assert task is not None
        return found, task.cancelling(), kms, iam, tags

    found, cancelling, kms, iam, tags = asyncio.run(scenario())
    assert found is not None
    assert "did not end within 0.05s" in found
    assert cancelling == 0
    assert [r.cancelled for r in (kms, iam, tags)] == [[KMS_KEY], [ROLE], [TAGGED]]  # one after another: KMS's only


def test_an_exception_a_kind_lets_through_cancels_the_others_and_leaves_no_cancel_request() -> None:
    """A `BaseException` from the IAM read ends the check, cancels the other reads, and leaves no cancel request."""

    async def caller(kms: Kms, iam: Iam, tags: Tags) -> int:
        with pytest.raises(Boom):
            await _check(kms, iam, tags)
        async with asyncio.timeout(5):  # with a leaked cancel request this ends in CancelledError
            await asyncio.sleep(0)
        task = asyncio.current_task()
        assert task is not None
        return task.cancelling()

    async def scenario() -> tuple[bool, int | None, Kms, Tags, set[asyncio.Task[Any]]]:
        kms, iam, tags = Kms(), Iam(Boom("iam")), Tags()
        task = asyncio.create_task(caller(kms, iam, tags))
        await let_tasks_run()
        iam.gate.set()
        await let_tasks_run()
        done = task.done()
        if not done:
            task.cancel()
        cancelling = await task if done else None
        return done, cancelling, kms, tags, asyncio.all_tasks() - {asyncio.current_task()}

    done, cancelling, kms, tags, left = asyncio.run(scenario())
    assert done  # one after another: IAM not read while KMS waits
    assert cancelling == 0
    assert (kms.cancelled, tags.cancelled) == ([KMS_KEY], [TAGGED])
    assert not left


def test_a_step_needing_one_kind_reads_it_in_its_own_task() -> None:
    """Only the tags needed (no protected id): the read runs in the caller's task, no task is started for it."""

    async def scenario() -> tuple[set[asyncio.Task[Any]], str | None, Tags]:
        kms, iam, tags = Kms(), Iam(), Tags(TAG)
        task = asyncio.create_task(_check(kms, iam, tags, Protected(tags={"responder:protected": "*"})))
        await let_tasks_run()
        running = asyncio.all_tasks() - {asyncio.current_task()}
        tags.gate.set()
        found = await task
        assert task in running
        return running - {task}, found, tags

    others, found, tags = asyncio.run(scenario())
    assert not others
    assert tags.finished == [TAGGED]
    assert found is not None
    assert "carry protected tag responder:protected=yes" in found


def test_an_exception_a_read_lets_through_keeps_its_own_cause() -> None:
    """in_order raises a read's exception as it was raised: its cause kept, not the task group's context."""
    async def failing() -> str | None:
        try:
            raise ValueError("the underlying error")
        except ValueError as exc:
            raise RuntimeError("mapped") from exc

    async def waiting() -> str | None:
        await asyncio.sleep(10)
        return None

    async def main() -> None:
        with pytest.raises(RuntimeError) as raised:
            await in_order([failing, waiting], lambda hit: hit is not None)
        assert isinstance(raised.value.__cause__, ValueError)

    asyncio.run(main())


async def _stray() -> str | None:
    """A read ending in a CancelledError nobody asked for (as a library's inner task's, raised into it)."""
    await asyncio.sleep(0)
    raise asyncio.CancelledError


async def _nothing() -> str | None:
    await asyncio.sleep(0)
    return None


async def _refusing() -> str | None:
    await asyncio.sleep(0.01)  # after the stray read ended
    return "refused"


@pytest.mark.parametrize(("reads", "which"), [([_stray, _nothing, _nothing], 1), ([_nothing, _stray, _refusing], 2)],
                         ids=["no-refusal", "before-the-refusal"])
def test_a_read_cancelled_when_nobody_asked_fails_in_order_with_a_clear_error(reads: list[Any], which: int) -> None:
    """A read cancelled when nobody asked makes in_order raise ReadCancelled naming it; the caller is not cancelled."""
    async def main() -> int:
        with pytest.raises(ReadCancelled, match=rf"read {which} of 3 \(_stray\) was cancelled"):
            await in_order(reads, lambda hit: hit is not None)
        task = asyncio.current_task()
        assert task is not None
        return task.cancelling()

    assert asyncio.run(main()) == 0


def test_a_read_cancelled_after_the_first_refusal_does_not_change_the_answer() -> None:
    """A read cancelled after the first refusing one does not change the answer, which is that refusal."""
    async def first() -> str | None:
        return "refused"

    assert asyncio.run(in_order([first, _stray, _nothing], lambda hit: hit is not None)) == ["refused"]

"""Guard checks without AWS: an event naming resources, a step's guard trips as the engine resolves them, fake IAM
and KMS answers (ids, paths), a settable monotonic clock for the reads' caches, and a way to let every task run."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from responder.actuators.registry import registry
from responder.engine.arnforms import ANYWHERE, Home
from responder.engine.guards import GuardPolicy, Guards, QuotaWindows, Trip
from responder.engine.iamprincipals import PrincipalForms
from responder.engine.resolution import Resolved, resolve_step
from responder.errors import PermanentActuationError
from responder.models.event import Event, Resource, Severity, SeverityLabel
from responder.models.runbook import Protected, Runbook, Step

KMS_KEY = "1234abcd-12ab-34cd-56ef-1234567890ab"
KMS_KEY_ARN = f"arn:aws:kms:us-east-1:123456789012:key/{KMS_KEY}"
ROLE_ID, USER_ID = "AROA3XFRBF535PLBIFPI4", "AIDA3XFRBF535PLBIFPI5"
QUARANTINE = "aws.iam.quarantine_principal"
DEPLOYER = {"principal_type": "role", "principal_name": "prod-deployer"}
IDS = {"role/prod-deployer": ROLE_ID, "user/ml-training": USER_ID}  # any other: an id of its own
IAM_PATHS = {"role/prod-deployer": "/", "role/break-glass": "/admins/", "role/app-worker": "/", "user/ml-training": "/"}
YIELDS = 200  # a read waiting for another one gives up after this many turns of the loop (one after another: never)


def event_naming(*resources: Resource, account: str | None = "123456789012") -> Event:
    """A GuardDuty event in `account` naming `resources`."""
    return Event(id="e", source="guardduty", type="t", severity=Severity(score=8, label=SeverityLabel.HIGH),
                 time=datetime.now(UTC), account=account, resources=resources, incident_key="k")


class SettableClock:
    """A settable monotonic clock."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def step_trips(protected: list[str], actuator: str, with_: dict[str, Any], event: Event | None = None,
               tags: dict[str, str] | None = None, home: Home = ANYWHERE,
               principals: PrincipalForms | None = None) -> list[Trip]:
    """The guard trips of one step of `actuator`, resolved and validated as the engine does (`principals`: the reader
    of IAM roles and users, if any)."""
    event = event or event_naming()
    step = Step.model_validate({"id": "s", "actuator": actuator, "with": with_})
    resolved = resolve_step(step, {"event": event.model_dump(mode="json")}, registry)
    assert isinstance(resolved, Resolved), resolved
    rb = Runbook.model_validate({"id": "rb", "trigger": {"source": "guardduty"}, "group_by": "${event.id}",
                                 "steps": [step.model_dump(by_alias=True)]})
    guards = Guards(GuardPolicy(protected=Protected(ids=protected, tags=tags or {}), home=home), principals=principals)
    return asyncio.run(guards.check_step(rb, actuator, resolved.target, resolved.values, event, QuotaWindows(), 0.0,
                                         not_identifiers=resolved.actuator.not_identifiers))


def step_refused(*args: Any, **kw: Any) -> bool:
    """Whether `step_trips(*args, **kw)` holds a hard trip."""
    return any(t.hard for t in step_trips(*args, **kw))


class IamPaths:
    """GetRole/GetUser over fixed principals (`role/NAME` → path; ids: `IDS`), counting reads; `fail` fails them."""

    def __init__(self, paths: dict[str, str], fail: Exception | None = None) -> None:
        self.paths, self.fail, self.reads = dict(paths), fail, 0  # its own: a test moving a principal moves no other's

    async def call(self, service: str, operation: str, **kwargs: Any) -> dict[str, Any]:
        """Answer iam.get_role / iam.get_user as IAM does, NoSuchEntity for a principal it does not hold."""
        assert (service, operation) in (("iam", "get_role"), ("iam", "get_user"))
        self.reads += 1
        if self.fail is not None:
            raise self.fail
        kind, field = ("role", "Role") if operation == "get_role" else ("user", "User")
        name = kwargs[f"{field}Name"]
        if f"{kind}/{name}" not in self.paths:
            raise PermanentActuationError(f"NoSuchEntity: The {kind} with name {name} cannot be found.",
                                          code="NoSuchEntity")
        path = self.paths[f"{kind}/{name}"]
        unique = IDS.get(f"{kind}/{name}", f"{field[0]}IDA{name.upper().replace('-', '')}0000000"[:21])
        return {field: {f"{field}Name": name, f"{field}Id": unique, "Path": path,
                        "Arn": f"arn:aws:iam::123456789012:{kind}{path}{name}"}}


class Boom(BaseException):
    """An exception `KeptReads._of` does not catch (not an `Exception`)."""


class NoAws:
    """Never called: the fake reads answer by themselves."""

    async def call(self, service: str, operation: str, **kwargs: Any) -> dict[str, Any]:
        """Not reached."""
        raise AssertionError(f"{service}.{operation} called")


async def let_tasks_run() -> None:
    """Let every task that can run, run (bounded: no wall clock)."""
    for _ in range(YIELDS):
        await asyncio.sleep(0)

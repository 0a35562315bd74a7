"""Guards: limits on what automation may do unattended.

* quotas: sliding-window counts of executions per actuator (glob), per runbook and global. A run is
  counted when its intent is written (so concurrent steps cannot overrun a quota) and refunded when
  its result is a permanent failure that changed nothing, typically because the target does not exist,
  so bogus alerts naming missing targets cannot use up a quota. Successes, transient failures
  (whose effect is unknown) and failures after a partial change (`changed: true`) stay counted. The
  windows (`QuotaWindows`, responder/engine/quotas.py) keep each run as long as the longest configured
  quota that can count it looks back. While some of the windows are not in yet (a fleet replica restoring a
  partition, `Guards.uncounted`), a quota that applies and is not full trips `quota_uncounted`: the step is
  parked, and taken up again by itself once the count is complete (`Decisions.recheck`);
* max targets: distinct targets in one plan;
* protected resources: ids/ARNs/names (globs, over every identifier form of the target, see
  `protection`; a KMS key also by its aliases, `kmsaliases`; an IAM role or user by its unique id and path,
  `iamprincipals`) or tags (on the event's resources, and on each resource the step acts on, read through AWS
  whatever the event carries, `tagreads`): never touched; an IAM name outside IAM's character set is refused the
  same way;
* kill switch: a setting, or a file whose existence turns every step into an approval request;
* account: a step never acts on a resource of another account than responder's own (`aws_account_id`; the event's
  while unknown): a finding about another account, or an ARN of another account the step names (`accounts`).

A *soft* trip (quota, max targets, kill switch) turns the step into an approval request; a *hard* trip
(protected resource, another account) refuses the step outright, approval or not. Both are recorded on the timeline.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from functools import partial
from pathlib import Path
from typing import Any

import structlog

from responder.actuators.base import ModelConfig
from responder.bounds import READS_DEADLINE_S
from responder.engine.accounts import account_refusal
from responder.engine.actedon import acted_on
from responder.engine.arnforms import ANYWHERE, Home
from responder.engine.guardreads import by_reads, matching, refuses
from responder.engine.iamprincipals import PrincipalForms, principal_kinds
from responder.engine.iamrecords import one_check
from responder.engine.inorder import in_order
from responder.engine.kmsaliases import KeyAliases, key_ids, names_alias
from responder.engine.protection import identifier_forms, identifying, invalid_iam_name, principals
from responder.engine.quotas import QuotaWindows
from responder.engine.tagreads import ResourceTags, tag_refusal
from responder.models.event import Event, Resource
from responder.models.runbook import Protected, Quota, Runbook

log = structlog.get_logger(__name__)

# READS_DEADLINE_S (responder/bounds.py): seconds one step's guard reads through AWS (KMS aliases, IAM principals and
# tags, the kinds read concurrently and the keys of each, `Guards._read_protected`, each read retried within
# `KeptReads.DEADLINE_S`) may take in all; past it the step is refused, as when a read fails (fail closed). A released
# decision's step reads under the batch gate: this bounds how long it holds the lanes (docs/fleet.md).
UNCOUNTED = "quota_uncounted"
"""The guard of a quota that cannot be counted yet: its parked steps are checked again once it can."""
_COUNTS = re.compile(r"(?<= ran )\d+(?= time\(s\))"  # a quota's runs in its window
                     r"|(?<= cannot be counted while ).*(?= \(\d+ counted here)"  # the partitions not restored yet
                     r"|\d+(?= counted here)")


def reason_shape(reason: str) -> str:
    """A parked step's reason without what it counts now: what a human who approved a request naming it waived. The
    same guard in the same scope, with the same limits (the runbook's quota of 3 an hour, not its quota of 1 a minute,
    the global or the fleet-wide one; the local kill switch, not the fleet's), however many runs it counts now, and
    whichever partitions are still not restored."""
    return _COUNTS.sub("#", reason)


def only_uncounted(reasons: list[str]) -> bool:
    """Whether a step was parked for these reasons only because a quota could not be counted yet."""
    return bool(reasons) and all(r.startswith(f"{UNCOUNTED}:") for r in reasons)


HARD_TRIPS = frozenset({"protected", "account"})  # the guards whose trip refuses the step outright


@dataclass(frozen=True)
class Trip:
    """One guard that refused unattended execution."""

    guard: str
    detail: str
    hard: bool = False

    def body(self) -> dict[str, Any]:
        """The timeline body of a guard.tripped entry."""
        return {"guard": self.guard, "detail": self.detail, "hard": self.hard}


@dataclass(frozen=True)
class GuardPolicy:
    """The global guards (from settings), applied on top of each runbook's own."""

    quotas: Sequence[Quota] = ()
    max_targets: int | None = None
    protected: Protected = field(default_factory=Protected)
    kill_switch: bool = False
    kill_switch_file: Path | None = None
    home: Home = field(default_factory=Home)
    """Where responder acts (`aws_account_id`, `aws_region`): the account and region a protected id is matched in
    for a target given by name."""
    models: ModelConfig = field(default_factory=ModelConfig)
    """The model registry (`model_registry`, `model_ssm_prefix`): what a model rollback or switch changes (tagreads)."""

    def killed(self) -> bool:
        """Whether the kill switch is on now (the file is checked on every step)."""
        return self.kill_switch or (self.kill_switch_file is not None and self.kill_switch_file.exists())


@dataclass(frozen=True)
class Matched:
    """A step's protection check before any read through AWS (`protected_hit`): why what it gives is protected (`hit`),
    or None, and what the reads go on (`Guards.protected`)."""

    hit: str | None
    identified: Mapping[str, Any]
    """The step's parameters read as forms of its target (`identifying`): its forms' and its principals' source."""
    forms: set[str]
    named: list[Resource]


def protected_hit(protected: Sequence[Protected], target: str, params: Mapping[str, Any], event: Event,
                  actuator: str = "", home: Home = ANYWHERE, not_identifiers: Collection[str] = ()) -> Matched | None:
    """The check `Guards.protected` makes first, before any read through AWS (KMS aliases, IAM principals, tags): why
    the step (of `actuator`, acting in `home`; `not_identifiers`: its actuator's) would touch a protected resource by
    the forms it gives and the tags the event gives what it names, with those forms; None when nothing is protected.
    `identifying` is computed once here, for the forms and the principals."""
    if not any(p.ids or p.tags for p in protected):  # nothing protected: skip expanding the target's forms
        return None
    identified = identifying(params, not_identifiers)
    forms, named = identifier_forms(target, identified, event, actuator, home)
    return Matched(matching(protected, target, forms, named), identified, forms, named)


class Guards:
    """Evaluates guards against the policy and the engine's quota windows, at the engine's clock."""

    def __init__(self, policy: GuardPolicy | None = None, aliases: KeyAliases | None = None,
                 principals: PrincipalForms | None = None, tags: ResourceTags | None = None) -> None:
        self.policy = policy or GuardPolicy()
        self.aliases = aliases
        """Reads the aliases of the KMS keys steps name, while a protected id can name an alias (an engine gives its
        guards one over its AWS client; without one such a step is refused)."""
        self.principals = principals
        """Reads the unique id and path of the IAM roles and users steps name, while a protected id may name those
        (as `aliases`)."""
        self.tags = tags
        """Reads the tags of the resources steps act on, while a protected tag is set (as `aliases`)."""
        self.uncounted: Callable[[], str | None] | None = None
        """Why some quota windows are not counted now (None when all are): a fleet replica's partitions still being
        restored carry theirs. Set by the service in fleet mode."""
        self.global_shared = False
        """Whether the global quotas are also counted fleet-wide (the DynamoDB guard), which needs no local windows."""
        self.reads_deadline = READS_DEADLINE_S
        """Seconds one step's guard reads through AWS may take in all (`READS_DEADLINE_S`)."""

    def limits_targets(self, rb: Runbook) -> bool:
        """Whether any max-targets guard applies to `rb` (otherwise no plan is needed up front)."""
        return rb.guards.max_targets is not None or self.policy.max_targets is not None

    def check_plan(self, rb: Runbook, targets: Sequence[str]) -> list[Trip]:
        """Blast radius of a whole plan."""
        trips = []
        distinct = len(set(targets))
        for scope, limit in (("runbook", rb.guards.max_targets), ("global", self.policy.max_targets)):
            if limit is not None and distinct > limit:
                trips.append(Trip("max_targets", f"{scope} limit {limit}, plan has {distinct} targets"))
        return trips

    async def protected(self, rb: Runbook, actuator: str, target: str, params: Mapping[str, Any],
                        event: Event, not_identifiers: Collection[str] = ()) -> str | None:
        """Why the step would touch a protected resource, or None; read through AWS when a protected id needs it, and
        refused when that read fails: a KMS key it names is also known by its aliases while a protected id can name
        one (`kmsaliases`), an IAM role or user by its unique id and path while a protected id may name those
        (`iamprincipals`), and each resource the step acts on by its tags while a protected tag is set (`tagreads`).
        The parameters in `not_identifiers` (its actuator's) are no forms of its target (`identifying`)."""
        protected = (rb.guards.protected, self.policy.protected)
        matched = protected_hit(protected, target, params, event, actuator, self.policy.home, not_identifiers)
        if matched is None or matched.hit is not None:  # nothing protected, or what the step gives is
            return None if matched is None else matched.hit
        timer = asyncio.timeout(self.reads_deadline)
        try:
            async with timer:
                return await self._read_protected(protected, actuator, target, params, matched)
        except TimeoutError:
            if not timer.expired():
                raise
            log.warning("guard_reads_deadline_passed", target=target, actuator=actuator,
                        deadline_s=self.reads_deadline)
            return (f"{target!r}: the guard's reads through AWS did not end within {self.reads_deadline:g}s, so it "
                    "cannot tell that the target is not protected (refused: fail closed)")

    async def _read_protected(self, protected: tuple[Protected, Protected], actuator: str, target: str,
                              params: Mapping[str, Any], matched: Matched) -> str | None:
        """`protected`'s reads through AWS, on what `protected_hit` found (`matched`: its forms, the event resources it
        names, and for the principals the step's `params` read as forms of its target; the tags read all of `params`,
        `acted_on` picking what names a resource). The kinds the step needs (aliases, principals, tags) are read
        concurrently, each kind's keys too (`KeptReads.forms`), and answer as read in that order (`in_order`): the
        first kind that refuses (a hit, or why a read failed), or None; a kind refusing cancels the kinds after it, and
        is no answer until those before it refuse nothing. One kind is read in this task (no task). Their total is
        bounded by the caller, whose deadline cancels them all."""
        ids = [i for p in protected for i in p.ids]
        forms, named = matched.forms, matched.named
        kinds: list[Callable[[], Awaitable[str | None]]] = []
        if any(names_alias(i) for i in ids) and (keys := key_ids(forms)):
            kinds.append(partial(by_reads, self.aliases, "KMS key(s)", protected, target, forms, named, keys))
        record_kinds = 0  # the kinds that may read an IAM record (`iamrecords`): the principals, the tags
        if (iam_kinds := {k for i in ids for k in principal_kinds(i, self.policy.home.account)}) and (
                names := {n for n in principals(target, matched.identified, named) if n.split("/", 1)[0] in iam_kinds}):
            kinds.append(partial(by_reads, self.principals, "IAM principal(s)", protected, target, forms, named,
                                 names))
            record_kinds += 1
        if any(p.tags for p in protected) and acted_on(actuator, params, self.policy.models) != set():  # else None
            kinds.append(partial(tag_refusal, self.tags, [p.tags for p in protected], actuator, params,
                                 self.policy.models))
            record_kinds += 1
        # a role's or user's record read once for its id and its tags (`iamrecords`); one of those kinds alone has
        # nothing to share (its keys name distinct records): it reads them in its own tasks, as a reader on its own
        with one_check() if record_kinds == 2 else nullcontext():
            return next((hit for hit in await in_order(kinds, refuses) if hit is not None), None)

    async def check_step(self, rb: Runbook, actuator: str, target: str, params: Mapping[str, Any],
                         event: Event, windows: QuotaWindows, now: float, *, escalating: bool = False,
                         notifies: bool = False, not_identifiers: Collection[str] = ()) -> list[Trip]:
        """Guards on one step about to run; hard trips first. An `on_failure` step (`escalating`: it tells a human
        that containment failed) is not held for a count that may be short, only for a full quota. A step that only
        tells a human (`notifies`: its actuator's `Actuator.notifies`) touches no resource: no protected-id/tag or
        IAM-name trip, so a refusal's page naming the protected id goes out. The parameters in `not_identifiers` (its
        actuator's `Actuator.not_identifiers`) are not matched against protected ids, only checked as IAM names."""
        trips: list[Trip] = []
        hit = None if notifies else invalid_iam_name(params) or await self.protected(rb, actuator, target, params,
                                                                                      event, not_identifiers)
        if hit:
            trips.append(Trip("protected", hit, hard=True))
        elsewhere = None if notifies else account_refusal(target, params, event, actuator, self.policy.home,
                                                           not_identifiers)
        if elsewhere:
            trips.append(Trip("account", elsewhere, hard=True))
        if self.policy.killed():
            trips.append(Trip("kill_switch", "automation is switched off: every step needs a human"))
        for scope, quotas in ((rb.id, rb.guards.quotas), ("*", self.policy.quotas)):
            for q in quotas:
                if not fnmatchcase(actuator, q.actuator):
                    continue
                used = windows.count(scope, q.actuator, q.window, now)
                where = "global" if scope == "*" else f"runbook {rb.id}"
                if used >= q.max:
                    trips.append(Trip("quota", f"{where}: {q.actuator} ran {used} time(s) in {q.window:g}s "
                                               f"(max {q.max})"))
                elif self.uncounted is not None and not escalating and not (scope == "*" and self.global_shared):
                    missing = self.uncounted()  # fails safe: a count that may be short waits (parked)
                    if missing is not None:
                        trips.append(Trip(UNCOUNTED, f"{where}: {q.actuator} cannot be counted while {missing} "
                                                     f"({used} counted here, max {q.max})"))
        return trips

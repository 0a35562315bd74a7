"""Publishing a parked step's approval request, and again until Kafka has it (docs/runbooks.md, "Approvals").

A step publishes its request when it parks, and again when it escalates. Kafka may not take it (a broker down:
`approval_request_unsent`): the step stays parked, the request is kept in `unsent` and published again at most every
ASK_AGAIN_S seconds (`ask_again`) until Kafka takes it or the step stops waiting.

What a process keeps is lost with it. A replica restarted, rejoined after a fence (a broker outage fences replicas
too), or given a partition another replica held, does not know which of the steps it recovered parked had their
requests published. Each of them is therefore published once more (`recovered`, then `ask_again`, logged
`approval_request_republished`) under the same request id, so an approver sees it within one turn of the approvals
loop, not at its timeout. A request published twice is still one request: `approvals pending` counts a step's latest
one, a decision names its request id, and an escalation publishes the same id again. Requests from before request
ids are not published again: for them a decision older than the step's latest request answers nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import structlog

from responder.actuators.base import Publisher
from responder.engine.approvals import Parked, publish_request
from responder.engine.state import EngineState
from responder.timeline.checkpoint import Signer

log = structlog.get_logger(__name__)

ASK_AGAIN_S = 30.0
"""Seconds between two attempts to publish the approval requests Kafka did not take (`Asking.ask_again`)."""

REPUBLISH_PER_TURN = 100
"""At most this many requests of steps recovered parked are published again by one `ask_again`, the rest at the
next turns: a partition move in a fleet holding many parked steps (a kill switch on in an alert storm) does not hold
the approvals loop's decisions up for one send each."""

Key = tuple[str, str]  # (incident, step)


class Asking:
    """The approval requests of one engine's parked steps that Kafka did not take, or may not have."""

    def __init__(self, state: EngineState, publisher: Publisher | None, topic: str, clock: Callable[[], float],
                 signer: Callable[[], Signer | None]) -> None:
        self.state, self.publisher, self.topic, self.clock, self.signer = state, publisher, topic, clock, signer
        self.unsent: dict[Key, str | None] = {}  # the request ids Kafka did not take (a gauge counts them)
        self.restored: dict[Key, str] = {}  # recovered parked: published again once
        self._ask_at = 0.0  # when `ask_again` may try next (ASK_AGAIN_S after a failed attempt)

    async def publish(self, parked: Parked) -> bool:
        """Publish `parked`'s request; one Kafka did not take is kept for `ask_again`, as is any while the last attempt
        failed less than ASK_AGAIN_S ago (not tried: a chunk parking several steps on a down broker waits for the
        publisher's deadline once, not once a step)."""
        waiting = bool(self.unsent) and self.clock() < self._ask_at
        sent = not waiting and await publish_request(self.publisher, parked, self.topic, self.signer())
        key = (parked.incident, parked.step)
        self.restored.pop(key, None)  # published now, or kept in `unsent`
        if sent:  # Kafka has the step's latest request: one kept unsent is this parking's or an earlier one's
            self.unsent.pop(key, None)
        elif self.publisher is not None:
            self.unsent[key] = parked.request_id
            if waiting:
                log.warning("approval_request_deferred", step=parked.step, incident=parked.incident)
            else:  # it took the publisher's deadline: not again before ASK_AGAIN_S
                self._ask_at = self.clock() + ASK_AGAIN_S
        return sent

    def recovered(self, parked: Iterable[Parked]) -> int:
        """Steps recovered parked (a timeline replay, a partition's changelog restore): each is published again by the
        next `ask_again`, once. How many (those without a request id are not)."""
        if self.publisher is None:
            return 0
        count = 0
        for p in parked:
            if p.request_id is not None and (p.incident, p.step) not in self.unsent:
                self.restored[(p.incident, p.step)] = p.request_id
                count += 1
        return count

    async def ask_again(self) -> int:
        """Publish the requests Kafka did not take (at most every ASK_AGAIN_S seconds: `approval_request_sent_late`)
        and those of steps recovered parked (`approval_request_republished`), each while its step is still parked
        under the same request id and before its deadline (its timeout decides it at this turn; an escalation publishes
        it again), at most REPUBLISH_PER_TURN recovered ones; the first that fails ends the round (it is then unsent).
        How many went."""
        now = self.clock()
        if not (self.unsent or self.restored) or now < self._ask_at:
            return 0
        sent = again = 0
        for pending, say in ((self.unsent, _late), (self.restored, _again)):
            for key, request_id in list(pending.items()):
                if pending.get(key) != request_id:
                    continue  # a lane published it (parked again, escalated) while this round awaited a send
                parked = self.state.parked(*key)
                if parked is not None and parked.request_id == request_id:
                    if parked.deadline <= now:
                        continue
                    if pending is self.restored and again >= REPUBLISH_PER_TURN:
                        return sent
                    deadline = parked.deadline  # an escalation moves it, in place, while the copy is sent
                    if not await publish_request(self.publisher, parked, self.topic, self.signer()):
                        self._forget(pending, key, request_id)
                        self.unsent.setdefault(key, request_id)  # not over a parking a lane made meanwhile
                        self._ask_at = self.clock() + ASK_AGAIN_S
                        return sent
                    sent += 1
                    again += pending is self.restored
                    say(parked)
                    if parked.deadline != deadline:
                        continue  # escalated while this copy was sent: its own copy, if unsent, is still to go
                self._forget(pending, key, request_id)  # sent, or decided, expired or parked again meanwhile
        return sent

    @staticmethod
    def _forget(pending: dict[Key, str | None] | dict[Key, str], key: Key, request_id: str | None) -> None:
        """Drop `key` from `pending` unless it was parked again meanwhile (another request id)."""
        if pending.get(key) == request_id:
            del pending[key]


def _late(parked: Parked) -> None:
    log.warning("approval_request_sent_late", step=parked.step, incident=parked.incident, request_id=parked.request_id)


def _again(parked: Parked) -> None:
    log.info("approval_request_republished", step=parked.step, incident=parked.incident, request_id=parked.request_id)

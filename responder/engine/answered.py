"""What the operator remembers of the requests it handled, kept only while a request could still be acted on.

A request past its `expires_at` is refused as expired whatever its id (responder/engine/permissions.py), so once the
request that owns an id has expired (plus `FORGET_MARGIN_S`), nothing is lost by forgetting the id: the same bytes sent
again are refused as expired (judged on `Handled.now`, which never goes back), never run again, and a fleet member asks
the fleet store again. Memory is so bounded by the requests handled within one request lifetime, not by history. An id
whose request's expiry is not known (recovered from an entry written before 2026-12-05, which does not record it) is
kept, as every id was before.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from responder.models.operator import OperatorReply
from responder.models.timeline import EntryKind, TimelineEntry

OPERATOR_REQUESTED = "operator.requested"
OPERATOR_COMPLETED = "operator.completed"
OPERATOR_REJECTED = "operator.rejected"
OPERATOR_REFUSED = "operator.refused"
"""A validly signed request not run, bounded as forged ones are: expired or not granted to its key (`final`, with the
request's digest and expiry: its answer, remembered as a completed one is), or the fleet store that says whether it ran
already unreachable, its id answered another request (not remembered: a redelivery is checked again)."""
OPERATOR_KEY = "operator-"
"""Prefix of an operator request's step key (then the request id)."""
FORGET_MARGIN_S = 300.0
"""Seconds an id is kept past its request's expiry (slack: the expiry itself is judged on `Handled.now`, which never
goes back, so a wall clock stepped back by more than this still finds a forgotten request expired)."""


class Handled:
    """Handled request ids: the digest of the request handled under each, its answer, the params of its step cut short.

    The three maps are read and written directly (`Operator.answered`, `.done`, `.started`); `keep_until` says when an
    id may be forgotten, `forget_expired` forgets every id past that time (from all three)."""

    def __init__(self, clock: Callable[[], float] = time.time, lifetime: float = float("inf")) -> None:
        self.clock = clock
        self.lifetime = lifetime
        """Seconds a request may be valid from its `issued_at` (responder/engine/permissions.py's `lifetime`)."""
        self.digests: dict[str, str] = {}
        self.replies: dict[str, OperatorReply] = {}
        self.started: dict[str, dict[str, Any]] = {}
        self._until: dict[str, float] = {}  # request id → when it may be forgotten (absent: kept)
        self._queue: list[tuple[float, str]] = []  # (until, id), a heap; stale pairs are skipped when popped
        self._latest = float("-inf")  # the latest wall-clock time read

    def __len__(self) -> int:
        return len(self.digests.keys() | self.replies.keys() | self.started.keys())

    def keep_until(self, request_id: str, expires_at: datetime | float) -> None:
        """The request that owns `request_id` expires at `expires_at`: its id may be forgotten `FORGET_MARGIN_S` after
        (a later expiry given for the same id wins)."""
        at = expires_at.timestamp() if isinstance(expires_at, datetime) else expires_at
        until = at + FORGET_MARGIN_S
        if until > self._until.get(request_id, float("-inf")):
            self._until[request_id] = until
            heapq.heappush(self._queue, (until, request_id))

    def now(self) -> float:
        """The wall clock, never earlier than a time it gave before: a request's expiry is judged on it, so a clock
        stepped back (NTP, a resumed VM) does not make a request whose id was forgotten valid again."""
        self._latest = max(self._latest, self.clock())
        return self._latest

    def expiring(self, request_id: str) -> bool:
        """Whether `request_id` will be forgotten (its request's expiry is known)."""
        return request_id in self._until

    def forget_expired(self) -> int:
        """Forget every id whose request expired more than `FORGET_MARGIN_S` ago; how many."""
        now, queue, forgotten = self.now(), self._queue, 0
        while queue and queue[0][0] <= now:
            until, request_id = heapq.heappop(queue)
            if self._until.get(request_id) != until:
                continue  # kept longer since
            del self._until[request_id]
            self.digests.pop(request_id, None)
            self.replies.pop(request_id, None)
            self.started.pop(request_id, None)
            forgotten += 1
        return forgotten

    def recover(self, entries: Iterable[TimelineEntry]) -> None:
        """Remember what the timeline says was handled: digests (`operator.requested`, a final `operator.refused`),
        answers (`operator.completed`, that refusal) and the params of operator steps cut short, but for requests
        already expired (their `expires_at`, recorded from 2026-12-05, plus the margin), which are refused anyway."""
        gone: set[str] = set()  # expired requests' ids whose completion is still to come in `entries`
        for e in entries:
            if e.kind == OPERATOR_REQUESTED and isinstance(digest := e.body.get("request"), str):  # from 2026-12-05
                if self._kept(str(e.body.get("id")), e.body):
                    self.digests[str(e.body.get("id"))] = digest
                else:
                    gone.add(str(e.body.get("id")))
            elif e.kind == OPERATOR_COMPLETED:
                reply = OperatorReply.model_validate({**e.body, "timeline_seq": e.seq})
                self.started.pop(reply.id, None)
                if reply.id in gone:
                    gone.discard(reply.id)
                else:
                    self.replies[reply.id] = reply
            elif e.kind == OPERATOR_REFUSED and e.body.get("final") is True \
                    and isinstance(digest := e.body.get("request"), str):  # its answer (from 2026-12-05)
                if self._kept(str(e.body.get("id")), e.body):
                    self.digests[str(e.body.get("id"))] = digest
                    self.replies[str(e.body.get("id"))] = refusal_reply(e.body)
            elif e.kind == EntryKind.STEP_INTENT and str(e.body.get("key", "")).startswith(OPERATOR_KEY) \
                    and isinstance(params := e.body.get("params"), dict) \
                    and (request_id := str(e.body["key"]).removeprefix(OPERATOR_KEY)) not in gone:
                self.started[request_id] = dict(params)
        self.forget_expired()

    def _kept(self, request_id: str, body: Mapping[str, Any]) -> bool:
        """Whether a recovered request's id is remembered: its expiry is not recorded (before 2026-12-05: kept, as
        before) or not yet past, capped by its lifetime from `issued_at` when recorded, with the margin (kept until
        then)."""
        at = _time(body.get("expires_at"))
        if at is None:
            return True
        if (issued := _time(body.get("issued_at"))) is not None:
            at = min(at, issued + self.lifetime)
        if at + FORGET_MARGIN_S <= self.now():
            return False
        self.keep_until(request_id, at)
        return True


def _time(value: object) -> float | None:
    """A recorded ISO time as a timestamp, None when absent or unreadable."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None

def refusal_reply(body: Mapping[str, Any]) -> OperatorReply:
    """The reply to a request refused before it ran, from its `operator.refused` body."""
    return OperatorReply(id=str(body.get("id")), action=str(body.get("action", "")), ok=False,
                         error=str(body.get("reason")))

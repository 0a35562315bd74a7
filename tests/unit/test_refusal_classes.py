"""A refusal's class (the metric's `reason` label and its bucket) is a typed field of the refusal, set where it is
refused, not guessed from the start of its message."""

from __future__ import annotations

import copy
import pickle
from datetime import UTC, datetime

import pytest

from responder.auth import KeyRing
from responder.engine.approvals import accept_decision
from responder.engine.refusals import Refusals
from responder.errors import ApprovalRefused, Refusal
from responder.timeline.recorder import Recorder
from responder.timeline.store import MemoryStore
from tests.kit import WIPE, decision, make_kit


@pytest.mark.parametrize(("key_id", "signature", "refusal"), [
    (None, None, Refusal.UNSIGNED), ("k1", None, Refusal.UNSIGNED), ("nobody", "00", Refusal.UNKNOWN_KEY),
    ("k1", "00", Refusal.BAD_SIGNATURE)])
def test_a_signature_that_does_not_verify_says_its_class(key_id, signature, refusal):
    """`KeyRing.check` gives why a signature does not verify with its class as a field."""
    problem = KeyRing({"k1": b"s"}).check(key_id, signature, b"{}")
    assert problem is not None
    assert problem.refusal is refusal


async def test_each_refused_decision_carries_its_class(tmp_path):
    """Every way `accept_decision` refuses a decision names its class on the error, whatever its message says."""
    kit = make_kit(tmp_path, {"rb": WIPE % "deny"})
    await kit.send()
    [parked] = kit.engine.state.parked_steps()
    now = datetime.fromtimestamp(kit.clock(), UTC)
    keys = kit.engine.decisions.keys

    def refused(value: bytes, key_id: str | None, signature: str | None, ring: KeyRing = keys,
                used: bool = False) -> Refusal:
        with pytest.raises(ApprovalRefused) as caught:
            accept_decision(value, key_id, signature, ring, kit.engine.state.parked, now, lambda i, d: used)
        return caught.value.refusal

    good = decision(kit, parked.incident, "wipe")
    assert refused(*good, ring=KeyRing()) is Refusal.NO_KEYS
    assert refused(good[0], None, None) is Refusal.UNSIGNED
    assert refused(*decision(kit, parked.incident, "wipe", secret=b"wrong")) is Refusal.BAD_SIGNATURE
    assert refused(*decision(kit, parked.incident, "wipe", key_id="mallory")) is Refusal.UNKNOWN_KEY
    assert refused(*good, used=True) is Refusal.REPLAYED
    assert refused(*decision(kit, "inc-none", "wipe")) is Refusal.NOT_PENDING
    assert refused(*decision(kit, parked.incident, "wipe", digest="f" * 64)) is Refusal.REFUSED


def test_a_refusal_is_bucketed_and_counted_by_its_class_not_its_message():
    """A refusal whose message starts like another class's is counted and bucketed under the class it was given."""
    counted: list[str] = []
    refusals = Refusals(Recorder(MemoryStore()), lambda: 0.0, known=lambda key_id: False, full=1)
    refusals.counted = counted.append
    for _ in range(2):
        refusals.record("approval.rejected", {"reason": "unsigned by design"}, None, refusal=Refusal.REFUSED,
                        key_id=None)
    assert refusals.record("approval.rejected", {"reason": "x"}, None, refusal=Refusal.UNSIGNED, key_id=None)
    assert counted == ["refused", "refused", "unsigned"]


def test_why_a_signature_does_not_verify_survives_a_copy_with_its_class():
    """An `Unverified` copied or pickled keeps its text and its class."""
    problem = KeyRing({"k1": b"s"}).check("k1", "00", b"{}")
    assert problem is not None
    for copied in (copy.deepcopy(problem), pickle.loads(pickle.dumps(problem))):  # our own bytes
        assert (str(copied), copied.refusal) == (str(problem), Refusal.BAD_SIGNATURE)


def test_the_classes_are_the_metric_labels_dashboards_know():
    """The refusal classes are exactly the `reason` labels of `responder_decisions_refused_total` dashboards know."""
    assert {r.value for r in Refusal} == {"unsigned", "unknown_key", "bad_signature", "malformed", "no_keys",
                                          "not_pending", "replayed", "unreadable", "refused"}

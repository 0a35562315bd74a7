"""`only`: an error is, in every leaf of its nested exception groups, of one kind (through causes when asked); a
`Drained` group's later errors decide (`deciding`); `related` walks causes and contexts once each."""

from __future__ import annotations

import pytest

from responder.exception_groups import Drained, leaves, only, related


class Fence(Exception):
    """The kind looked for."""


class Other(Exception):
    """A kind beside it."""


def _raised_from(cause: BaseException) -> RuntimeError:
    try:
        try:
            raise cause
        except BaseException as exc:
            raise RuntimeError("wrapped") from exc
    except RuntimeError as wrapped:
        return wrapped


def test_a_plain_error_is_its_own_only_leaf() -> None:
    """No group: the error itself when it is of the kind, else None."""
    fence = Fence()
    assert only(fence, Fence) == [fence]
    assert only(Other(), Fence) is None


def test_every_leaf_of_nested_groups_must_be_of_the_kind() -> None:
    """Nested groups: the leaves in depth-first order when all are of the kind; one other leaf anywhere gives None."""
    a, b, c = Fence("a"), Fence("b"), Fence("c")
    assert only(ExceptionGroup("g", [a, ExceptionGroup("h", [b, ExceptionGroup("i", [c])])]), Fence) == [a, b, c]
    assert only(ExceptionGroup("g", [a, ExceptionGroup("h", [b, Other()])]), Fence) is None
    assert only(ExceptionGroup("g", [Other()]), Fence) is None


def test_a_tuple_of_kinds_matches_either() -> None:
    """Several kinds: each leaf may be any of them."""
    fence, other = Fence(), Other()
    assert only(ExceptionGroup("g", [fence, other]), (Fence, Other)) == [fence, other]
    assert only(ExceptionGroup("g", [fence, KeyError()]), (Fence, Other)) is None


def test_causes_are_followed_only_when_asked() -> None:
    """A leaf raised from the kind counts with `causes` (the kind is returned), not without it."""
    fence = Fence()
    wrapped = _raised_from(fence)
    assert only(ExceptionGroup("g", [wrapped]), Fence, causes=True) == [fence]
    assert only(ExceptionGroup("g", [wrapped]), Fence) is None
    assert only(ExceptionGroup("g", [wrapped, Other()]), Fence, causes=True) is None


def test_an_implicit_context_is_not_a_cause() -> None:
    """An error raised while handling the kind (`__context__`, no `from`) does not count."""
    handling = RuntimeError("while handling")
    handling.__context__ = Fence()
    assert only(handling, Fence, causes=True) is None
    assert only(_raised_from(Fence()), Fence, causes=True) is not None  # the same error raised `from` it counts


def test_a_cause_cycle_ends() -> None:
    """A `__cause__` chain that loops back is walked once: None, not a hang."""
    first, second = Other("a"), Other("b")
    first.__cause__, second.__cause__ = second, first
    assert only(first, Fence, causes=True) is None


@pytest.mark.parametrize("exc", [Fence(), ExceptionGroup("g", [Fence(), ExceptionGroup("h", [Other()])])])
def test_leaves_are_the_errors_that_are_no_group(exc: BaseException) -> None:
    """`leaves` yields the non-group errors and never a group."""
    assert all(not isinstance(leaf, BaseExceptionGroup) for leaf in leaves(exc))
    assert [type(leaf) for leaf in leaves(exc)] == ([Fence] if isinstance(exc, Fence) else [Fence, Other])


def test_related_walks_a_context_cycle_once() -> None:
    """A `__context__` chain that loops back (an error raised while handling its own cause) is walked once."""
    first, second = Other("a"), Fence("b")
    first.__context__, second.__context__ = second, first
    assert list(related(ExceptionGroup("g", [first]))) == [first, second]


def test_deciding_leaves_leave_a_drained_groups_first_error_out() -> None:
    """With `deciding` a Drained group's first error (the drained one) is no leaf, however deep the group is."""
    unsent, fence = Other("dead letter"), Fence("fenced")
    drained = ExceptionGroup("loops", [Drained("lanes failed", [ExceptionGroup("dead letters", [unsent]), fence])])
    assert list(leaves(drained)) == [unsent, fence]
    assert list(leaves(drained, deciding=True)) == [fence]
    assert only(drained, Fence, deciding=True) == [fence]
    assert only(drained, Fence) is None


def test_a_drained_group_holds_the_drained_error_and_one_that_ended_it() -> None:
    """A Drained group of one error is refused: `only(..., deciding=True)` would find no leaf to decide."""
    with pytest.raises(ValueError, match="at least one"):
        Drained("lanes failed", [Other("dead letter")])

"""`only`: an error is, in every leaf of its nested exception groups, of one kind (through causes when asked)."""

from __future__ import annotations

import pytest

from responder.exception_groups import leaves, only


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

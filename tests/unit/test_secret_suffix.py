"""A secret ARN pattern's 6-character suffix is dropped only for a secret whose suffix is not known: a step naming a
complete secret ARN is protected by exactly the patterns that ARN matches."""

from __future__ import annotations

import pytest

from responder.models.event import Resource, ResourceKind
from tests.guard_kit import event_naming, step_refused

ROTATE = "aws.secretsmanager.rotate_secret"
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:"


@pytest.mark.parametrize("pattern", [f"{SECRET}prod-abcdef", "arn:aws:secretsmanager:*:*:secret:prod-??????"])
def test_a_complete_arn_of_another_secret_is_not_protected(pattern: str) -> None:
    """A step naming a secret's complete ARN is not refused by a pattern with another suffix, even given its name."""
    secret = Resource(kind=ResourceKind.SECRET, id=f"{SECRET}prod-XyZ123", name="prod")
    if pattern.endswith("??????"):  # any suffix: the complete ARN matches the pattern itself
        assert step_refused([pattern], ROTATE, {"secret_id": f"{SECRET}prod-XyZ123"}, event_naming(secret))
        return
    assert not step_refused([pattern], ROTATE, {"secret_id": f"{SECRET}prod-XyZ123"}, event_naming(secret))
    assert not step_refused([pattern], ROTATE, {"secret_id": f"{SECRET}other-XyZ123"})


@pytest.mark.parametrize("pattern", [f"{SECRET}*-abcdef", f"{SECRET}prod*-abcdef"])
def test_a_glob_name_with_a_pinned_suffix_refuses_an_arn_its_glob_matches_whole(pattern: str) -> None:
    """A suffixed pattern whose name glob matches `prod-XyZ123` whole refuses that ARN; a literal name does not."""
    assert step_refused([pattern], ROTATE, {"secret_id": f"{SECRET}prod-XyZ123"})
    assert not step_refused([f"{SECRET}prod-abcdef"], ROTATE, {"secret_id": f"{SECRET}prod-XyZ123"})


@pytest.mark.parametrize("named", ["prod", f"{SECRET}prod", f"{SECRET}prod-abcdef"])
def test_a_secret_whose_suffix_is_not_known_is_protected_by_a_suffixed_pattern(named: str) -> None:
    """A step naming `prod` by name or partial ARN, its suffix unknown, is refused by a suffixed pattern."""
    assert step_refused([f"{SECRET}prod-abcdef"], ROTATE, {"secret_id": named})


@pytest.mark.parametrize("pattern", [f"{SECRET}prod-abcde", f"{SECRET}prod-abcdefg", f"{SECRET}prod-ab_def"])
def test_only_a_dash_and_six_letters_or_digits_are_a_suffix(pattern: str) -> None:
    """A pattern ending in 5 or 7 characters, or a character AWS never puts in a suffix, keeps them all."""
    assert not step_refused([pattern], ROTATE, {"secret_id": "prod"})


@pytest.mark.parametrize("pattern", [f"{SECRET}prod", "arn:aws:secretsmanager:*:*:secret:prod", f"{SECRET}PROD"])
def test_a_pattern_naming_a_secret_by_partial_arn_protects_its_complete_arn(pattern: str) -> None:
    """A partial-ARN pattern `…:secret:prod` refuses a step naming its complete ARN, not another secret's."""
    assert step_refused([pattern], ROTATE, {"secret_id": f"{SECRET}prod-XyZ123"})
    assert not step_refused([pattern], ROTATE, {"secret_id": f"{SECRET}prod2-XyZ123"})


@pytest.mark.parametrize("pattern", [f"{SECRET}db-backup-??????", f"{SECRET}db-backup-*", f"{SECRET}db-backup-AbC123"])
def test_a_partial_arn_of_a_name_ending_like_a_suffix_is_protected(pattern: str) -> None:
    """`…:secret:db-backup` may be the partial ARN of `db-backup`, so a pattern protecting `db-backup` refuses it."""
    assert step_refused([pattern], ROTATE, {"secret_id": f"{SECRET}db-backup"})
    assert not step_refused([pattern], ROTATE, {"secret_id": f"{SECRET}db-backup2"})

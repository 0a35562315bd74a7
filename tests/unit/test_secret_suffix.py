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
    """A step naming the complete ARN `prod-XyZ123` (its suffix known) is not refused by a pattern whose suffix
    differs, even when the finding also gives the secret's name `prod` (before: refused as `prod`)."""
    secret = Resource(kind=ResourceKind.SECRET, id=f"{SECRET}prod-XyZ123", name="prod")
    if pattern.endswith("??????"):  # any suffix: the complete ARN matches the pattern itself
        assert step_refused([pattern], ROTATE, {"secret_id": f"{SECRET}prod-XyZ123"}, event_naming(secret))
        return
    assert not step_refused([pattern], ROTATE, {"secret_id": f"{SECRET}prod-XyZ123"}, event_naming(secret))
    assert not step_refused([pattern], ROTATE, {"secret_id": f"{SECRET}other-XyZ123"})


@pytest.mark.parametrize("pattern", [f"{SECRET}*-abcdef", f"{SECRET}prod*-abcdef"])
def test_a_glob_name_with_a_pinned_suffix_refuses_an_arn_its_glob_matches_whole(pattern: str) -> None:
    """`…:secret:prod-XyZ123` may also be the partial ARN of a secret named `prod-XyZ123`, whose suffix may be
    `abcdef`: a pattern whose name glob matches `prod-XyZ123` whole refuses it (fail closed); a literal name
    (`prod-abcdef`: the secret `prod`) does not."""
    assert step_refused([pattern], ROTATE, {"secret_id": f"{SECRET}prod-XyZ123"})
    assert not step_refused([f"{SECRET}prod-abcdef"], ROTATE, {"secret_id": f"{SECRET}prod-XyZ123"})


@pytest.mark.parametrize("named", ["prod", f"{SECRET}prod", f"{SECRET}prod-abcdef"])
def test_a_secret_whose_suffix_is_not_known_is_protected_by_a_suffixed_pattern(named: str) -> None:
    """A step naming `prod` by name or partial ARN (its suffix unknown: it may be `abcdef`) is refused, and so is the
    complete ARN the pattern names."""
    assert step_refused([f"{SECRET}prod-abcdef"], ROTATE, {"secret_id": named})


@pytest.mark.parametrize("pattern", [f"{SECRET}prod-abcde", f"{SECRET}prod-abcdefg", f"{SECRET}prod-ab_def"])
def test_only_a_dash_and_six_letters_or_digits_are_a_suffix(pattern: str) -> None:
    """A pattern ending in 5 or 7 characters, or a character AWS never puts in a suffix, keeps them all."""
    assert not step_refused([pattern], ROTATE, {"secret_id": "prod"})


@pytest.mark.parametrize("pattern", [f"{SECRET}prod", "arn:aws:secretsmanager:*:*:secret:prod", f"{SECRET}PROD"])
def test_a_pattern_naming_a_secret_by_partial_arn_protects_its_complete_arn(pattern: str) -> None:
    """`…:secret:prod` (a partial ARN: the secret named `prod`) refuses a step naming its complete ARN
    `…:secret:prod-XyZ123` (before: only its name or partial ARN were refused), not another secret's."""
    assert step_refused([pattern], ROTATE, {"secret_id": f"{SECRET}prod-XyZ123"})
    assert not step_refused([pattern], ROTATE, {"secret_id": f"{SECRET}prod2-XyZ123"})


@pytest.mark.parametrize("pattern", [f"{SECRET}db-backup-??????", f"{SECRET}db-backup-*", f"{SECRET}db-backup-AbC123"])
def test_a_partial_arn_of_a_name_ending_like_a_suffix_is_protected(pattern: str) -> None:
    """`…:secret:db-backup` may be the partial ARN of the secret named `db-backup` (suffix unknown: it may be the
    pattern's) as well as a complete ARN of `db`: a pattern protecting `db-backup` refuses it (before: read as complete
    only, it escaped, while moto resolves it to `db-backup` and AWS warns of "unexpected results")."""
    assert step_refused([pattern], ROTATE, {"secret_id": f"{SECRET}db-backup"})
    assert not step_refused([pattern], ROTATE, {"secret_id": f"{SECRET}db-backup2"})

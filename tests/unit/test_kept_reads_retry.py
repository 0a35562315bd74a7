"""A guard read through AWS (KMS aliases, IAM principals, resource tags) that fails transiently is retried with the
actuators' retry policy, bounded in time, before the step is refused; a permanent error refuses at once."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from responder.engine.iamprincipals import PrincipalForms
from responder.engine.keptreads import KeptReads
from responder.engine.kmsaliases import KeyAliases
from responder.engine.tagreads import ResourceTags
from responder.errors import PermanentActuationError, TransientActuationError
from tests.guard_kit import SettableClock

KMS_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
ANSWERS: dict[str, dict[str, Any]] = {
    "get_role": {"Role": {"RoleName": "r", "RoleId": "AROAEXAMPLE000000000", "Path": "/",
                          "Arn": "arn:aws:iam::123456789012:role/r", "Tags": []}},
    "list_aliases": {"Aliases": [{"AliasName": "alias/prod"}], "Truncated": False},
    "get_bucket_tagging": {"TagSet": [{"Key": "team", "Value": "ml"}]},
}
READS = [(PrincipalForms, "role/r", "get_role"), (KeyAliases, KMS_ID, "list_aliases"),
         (ResourceTags, "bucket b", "get_bucket_tagging")]


class Flaky:
    """Fails the first `fails` calls with `error`, then answers `operation` (counting calls)."""

    def __init__(self, operation: str, fails: int, error: Exception) -> None:
        self.operation, self.fails, self.error, self.calls = operation, fails, error, 0

    async def call(self, service: str, operation: str, **kw: Any) -> dict[str, Any]:
        """The answer, after `fails` failures."""
        assert operation == self.operation
        self.calls += 1
        if self.calls <= self.fails:
            raise self.error
        return ANSWERS[operation]


def _read(cls: type[KeptReads], key: str, aws: Flaky) -> set[str] | str:
    reader = cls(aws, clock=SettableClock())
    reader.BACKOFF_S = 0.01
    reader.DEADLINE_S = 1.0
    return asyncio.run(reader.forms({key}))


@pytest.mark.parametrize(("cls", "key", "operation"), READS)
def test_a_read_throttled_twice_then_answering_lets_the_step_run(cls: type[KeptReads], key: str,
                                                                 operation: str) -> None:
    """A read throttled twice, then answering, gives the forms (the step is not refused)."""
    aws = Flaky(operation, 2, TransientActuationError("Throttling: Rate exceeded", code="Throttling"))
    assert isinstance(_read(cls, key, aws), set)
    assert aws.calls == 3


@pytest.mark.parametrize(("cls", "key", "operation"), READS)
def test_a_read_throttled_beyond_the_bound_refuses(cls: type[KeptReads], key: str, operation: str) -> None:
    """A read still throttled after the bounded retries refuses the step, within the deadline."""
    aws = Flaky(operation, 100, TransientActuationError("Throttling: Rate exceeded", code="Throttling"))
    started = time.monotonic()
    assert isinstance(_read(cls, key, aws), str)
    assert aws.calls == KeptReads.ATTEMPTS
    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize(("cls", "key", "operation"), READS)
def test_a_permanent_error_refuses_at_once(cls: type[KeptReads], key: str, operation: str) -> None:
    """Access denied refuses the step without a retry."""
    aws = Flaky(operation, 100, PermanentActuationError("AccessDenied: no", code="AccessDenied"))
    assert isinstance(_read(cls, key, aws), str)
    assert aws.calls == 1


def test_the_default_bound_is_a_few_seconds() -> None:
    """The retries of one read are bounded to a few seconds and a few attempts."""
    assert KeptReads.DEADLINE_S <= 5.0
    assert 2 <= KeptReads.ATTEMPTS <= 5


class Slow(Flaky):
    """Fails transiently after `delay` seconds each time (a call that hangs to its timeout)."""

    def __init__(self, operation: str, delay: float) -> None:
        super().__init__(operation, 100, TransientActuationError("call timed out", code="Timeout"))
        self.delay = delay

    async def call(self, service: str, operation: str, **kw: Any) -> dict[str, Any]:
        """A timeout, after `delay` seconds."""
        await asyncio.sleep(self.delay)
        return await super().call(service, operation, **kw)


@pytest.mark.parametrize(("cls", "key", "operation"), READS)
def test_a_read_that_timed_out_past_the_bound_is_not_tried_again(cls: type[KeptReads], key: str,
                                                                  operation: str) -> None:
    """A first try that hangs past the bound (a call timeout) refuses without a retry: no retry starts after it."""
    aws = Slow(operation, 0.2)
    reader = cls(aws, clock=SettableClock())
    reader.BACKOFF_S, reader.DEADLINE_S = 0.01, 0.1
    assert isinstance(asyncio.run(reader.forms({key})), str)
    assert aws.calls == 1

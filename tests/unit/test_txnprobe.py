"""The transactions probe (responder/ingest/txnprobe.py) with a scripted probe producer: only the broker's definitive
"no" (Tansu's UnknownError, a missing API) turns `auto` off, loudly; an attempt with no answer (no broker, a timeout, no
transaction coordinator yet, anything retriable) is tried again until the connect deadline, then BrokerUnreachable as
for a Kafka unreachable at start, with auto and on alike; a refused transactional id is a ConfigError naming the ACL.
Until 2026-12-07 any of those errors turned `auto` off with one info line: a replica started during a hiccup of Apache
Kafka fenced no zombie."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import pytest
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    CoordinatorLoadInProgressError,
    CoordinatorNotAvailableError,
    IncompatibleBrokerVersion,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    NodeNotReadyError,
    NotCoordinatorError,
    ProducerFenced,
    RequestTimedOutError,
    TransactionalIdAuthorizationFailed,
    UnknownError,
    UnsupportedVersionError,
)
from structlog.testing import capture_logs
from tenacity import wait_fixed

from responder.errors import BrokerUnreachable, ConfigError
from responder.ingest import txnprobe
from responder.ingest.transactions import Transactions
from responder.service.rejoinreasons import rejoin_reason

HANG = object()
"""A start that never ends (aiokafka looking for a transaction coordinator that is never found)."""


class Scripted:
    """A probe producer whose `start()` raises the next of its script's outcomes (None: it starts, HANG: never ends)."""

    script: ClassVar[list[Any]] = []
    made: ClassVar[list[Scripted]] = []

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.outcome = self.script.pop(0) if self.script else None
        self.stopped = False
        self.made.append(self)

    async def start(self) -> None:
        if self.outcome is HANG:
            await asyncio.Event().wait()
        if isinstance(self.outcome, BaseException):
            raise self.outcome

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        yield

    async def stop(self) -> None:
        self.stopped = True


@pytest.fixture(name="probes")
def _probes(monkeypatch: pytest.MonkeyPatch) -> type[Scripted]:
    """txnprobe's AIOKafkaProducer is `Scripted`, with an empty script and no producer made yet; 10 ms between tries."""
    monkeypatch.setattr(txnprobe, "BACKOFF", wait_fixed(0.01))
    monkeypatch.setattr(Scripted, "script", [])
    monkeypatch.setattr(Scripted, "made", [])
    monkeypatch.setattr(txnprobe, "AIOKafkaProducer", Scripted)
    return Scripted


def _finder_failed(cause: BaseException) -> KafkaError:
    """How aiokafka's sender raises a failed FindCoordinator: a bare KafkaError, the broker's error its cause."""
    try:
        raise KafkaError(repr(cause)) from cause
    except KafkaError as exc:
        return exc


DEFINITIVE = [UnknownError(), UnsupportedVersionError(), IncompatibleBrokerVersion("InitProducerIdRequest")]
NO_ANSWER = [KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 9)]"), NodeNotReadyError(),
             CoordinatorNotAvailableError(), NotCoordinatorError(), CoordinatorLoadInProgressError(),
             RequestTimedOutError(), KafkaTimeoutError(), TimeoutError(), ConnectionRefusedError(111, "refused"),
             _finder_failed(CoordinatorNotAvailableError()), ProducerFenced()]
REFUSALS = [TransactionalIdAuthorizationFailed("g.probe"), ClusterAuthorizationFailedError(),
            _finder_failed(TransactionalIdAuthorizationFailed("g.probe"))]


def _events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == name]


@pytest.mark.parametrize("answer", DEFINITIVE, ids=lambda e: type(e).__name__)
async def test_a_definitive_no_turns_auto_off_loudly(probes: type[Scripted], answer: BaseException) -> None:
    """A broker's "no", said three times in a row: auto runs without, a warning giving the broker's answer."""
    probes.script = [answer] * txnprobe.CONFIRMATIONS
    with capture_logs() as logs:
        assert await txnprobe.choose("auto", "127.0.0.1:9", "changelog", "g", deadline=5.0) is None
    (said,) = _events(logs, "kafka_transactions")
    assert (said["log_level"], said["enabled"], said["mode"]) == ("warning", False, "auto")
    assert type(answer).__name__ in said["reason"]
    assert _events(logs, "kafka_transactions_probe_failed") == []
    assert len(probes.made) == txnprobe.CONFIRMATIONS == 3
    assert all(p.stopped for p in probes.made)
    assert probes.made[0].kwargs["transactional_id"] == "g.probe"


@pytest.mark.parametrize("script", [
    [UnknownError(), None],
    [UnknownError(), UnknownError(), CoordinatorNotAvailableError(), UnknownError(), UnknownError(), None],
], ids=["one-no", "no-twice-no-answer-no-twice"])
async def test_a_no_not_said_three_times_in_a_row_does_not_turn_fencing_off(probes: type[Scripted],
                                                                            script: list[Any]) -> None:
    """An UnknownError or two (an Apache Kafka hiccup), then a start: transactions on; only a "no" in a row counts."""
    probes.script = list(script)
    txn = await txnprobe.choose("auto", "127.0.0.1:9", "changelog", "g", deadline=5.0)
    assert isinstance(txn, Transactions)
    assert len(probes.made) == len(script)


@pytest.mark.parametrize("answer", DEFINITIVE, ids=lambda e: type(e).__name__)
async def test_a_definitive_no_with_on_is_a_bad_setting(probes: type[Scripted], answer: BaseException) -> None:
    """With on, a broker's definitive "no" is a ConfigError (exit 3) that names the broker's answer."""
    probes.script = [answer] * txnprobe.CONFIRMATIONS
    with pytest.raises(ConfigError, match="does not run Kafka transactions") as raised:
        await txnprobe.choose("on", "127.0.0.1:9", "changelog", "g", deadline=5.0)
    assert type(raised.value) is ConfigError
    assert type(answer).__name__ in str(raised.value)
    assert len(probes.made) == txnprobe.CONFIRMATIONS


@pytest.mark.parametrize("mode", ["auto", "on"])
@pytest.mark.parametrize("error", NO_ANSWER, ids=lambda e: type(e).__name__)
async def test_no_answer_is_tried_again_and_a_later_success_runs_transactions(
        probes: type[Scripted], error: BaseException, mode: str) -> None:
    """No answer (transient, or unexpected) twice, then a start: transactions on; each failed attempt logged."""
    probes.script = [error, error, None]
    with capture_logs() as logs:
        txn = await txnprobe.choose(mode, "127.0.0.1:9", "changelog", "g", deadline=10.0)
    assert isinstance(txn, Transactions)
    failed = _events(logs, "kafka_transactions_probe_failed")
    assert [(e["attempt"], e["log_level"]) for e in failed] == [(1, "warning"), (2, "warning")]
    assert all(type(error).__name__ in e["error"] for e in failed)
    (said,) = _events(logs, "kafka_transactions")
    assert said["enabled"] is True
    assert len(probes.made) == 3
    assert all(p.stopped for p in probes.made)


@pytest.mark.parametrize("mode", ["auto", "on"])
async def test_no_answer_until_the_connect_deadline_is_an_unreachable_kafka(
        probes: type[Scripted], mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """No answer until the deadline: BrokerUnreachable naming RESPONDER_KAFKA_CONNECT_TIMEOUT, never a "no"."""
    monkeypatch.setattr(txnprobe, "BACKOFF", wait_fixed(5.0))  # cut to the deadline: the last attempt starts at it
    probes.script = [CoordinatorNotAvailableError()] * 1000
    with capture_logs() as logs, pytest.raises(BrokerUnreachable) as raised:
        await txnprobe.choose(mode, "127.0.0.1:9", "changelog", "g", deadline=0.6)
    assert len(probes.made) == 2  # the last attempt starts at the deadline, none after it
    assert "no answer in 0.6s" in str(raised.value)
    assert "CoordinatorNotAvailableError" in str(raised.value)
    assert "RESPONDER_KAFKA_CONNECT_TIMEOUT sets the wait" in str(raised.value)
    assert len(_events(logs, "kafka_transactions_probe_failed")) == 2
    assert _events(logs, "kafka_transactions") == []
    assert all(p.stopped for p in probes.made)
    assert rejoin_reason(raised.value, rebuilt=True) == "kafka_unreachable"  # a rebuilt service rejoins
    assert rejoin_reason(raised.value) is None  # a first start exits 3, as for a bootstrap never reached


async def test_each_attempt_keeps_its_own_timeout(probes: type[Scripted]) -> None:
    """A start that never ends is cut at the attempt's own timeout, tried again, BrokerUnreachable past the deadline."""
    probes.script = [HANG] * 100
    with pytest.raises(BrokerUnreachable, match="TimeoutError"):
        await asyncio.wait_for(txnprobe.unsupported("127.0.0.1:9", "g", timeout=0.2, deadline=0.5), 5.0)
    assert len(probes.made) >= 2
    assert all(p.stopped for p in probes.made)
    assert probes.made[0].kwargs["request_timeout_ms"] == 200


@pytest.mark.parametrize("mode", ["auto", "on"])
@pytest.mark.parametrize("refusal", REFUSALS, ids=lambda e: type(e).__name__ + ("" if e.__cause__ is None else "<"))
async def test_a_refused_transactional_id_is_a_bad_setting_never_a_fallback(
        probes: type[Scripted], refusal: BaseException, mode: str) -> None:
    """An ACL refusing the transactional id: a ConfigError naming the grant and the opt-out, at once, with auto too."""
    probes.script = [refusal]
    with capture_logs() as logs, pytest.raises(ConfigError) as raised:
        await txnprobe.choose(mode, "127.0.0.1:9", "changelog", "g", deadline=5.0)
    message = str(raised.value)
    assert type(raised.value) is ConfigError
    cluster = isinstance(refusal, ClusterAuthorizationFailedError)
    assert ("IDEMPOTENT_WRITE on the Cluster" if cluster else "WRITE and DESCRIBE on the TransactionalId resources "
            "prefixed g.") in message
    assert "RESPONDER_KAFKA_TRANSACTIONS=off" in message
    assert len(probes.made) == 1
    assert _events(logs, "kafka_transactions") == []


async def test_off_probes_nothing(probes: type[Scripted]) -> None:
    """With off, no probe producer is made and no transactions are used."""
    assert await txnprobe.choose("off", "127.0.0.1:9", "changelog", "g") is None
    assert probes.made == []


@pytest.mark.parametrize(("script", "expected"), [
    ([UnknownError(), None], None),
    ([UnknownError()] * 3, "UnknownError"),
], ids=["one-no-then-a-start", "three-nos"])
async def test_a_no_met_at_the_deadline_is_asked_again_past_it(probes: type[Scripted], script: list[Any],
                                                               expected: str | None) -> None:
    """A "no" being confirmed when the deadline passes is asked again: one alone never turns fencing off."""
    probes.script = list(script)
    answer = await txnprobe.unsupported("127.0.0.1:9", "g", deadline=0.0)
    assert answer is None if expected is None else expected in (answer or "")
    assert len(probes.made) == len(script)


async def test_a_probe_cancelled_while_it_waits_is_cancelled(probes: type[Scripted]) -> None:
    """A cancel of a probe under way goes on at once: never taken for no answer, retried, or a "supported"."""
    probes.script = [HANG] * 10
    probing = asyncio.create_task(txnprobe.unsupported("127.0.0.1:9", "g", timeout=30.0, deadline=60.0))
    await asyncio.sleep(0.05)
    probing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(probing, 5.0)
    assert len(probes.made) == 1


async def test_an_unexpected_error_until_the_deadline_is_an_unreachable_kafka(probes: type[Scripted]) -> None:
    """An error outside Kafka's (aiokafka's "Did we not perform bootstrap?" assertion) ends as BrokerUnreachable too."""
    probes.script = [AssertionError("Did we not perform bootstrap?")] * 1000
    with pytest.raises(BrokerUnreachable, match="AssertionError"):
        await txnprobe.unsupported("127.0.0.1:9", "g", deadline=0.1)


async def test_the_waits_stop_at_the_deadline_and_a_no_is_asked_again_at_once(
        probes: type[Scripted], monkeypatch: pytest.MonkeyPatch) -> None:
    """The backoff never sleeps past the deadline; a "no" is asked again after `CONFIRM_S`, not the backoff."""
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(txnprobe, "_sleep", sleep)
    monkeypatch.setattr(txnprobe, "BACKOFF", wait_fixed(5.0))
    probes.script = [CoordinatorNotAvailableError(), UnknownError(), UnknownError(), UnknownError()]
    assert await txnprobe.unsupported("127.0.0.1:9", "g", deadline=0.5) is not None
    assert len(slept) == 3
    assert slept[0] <= 0.5
    assert slept[1:] == [txnprobe.CONFIRM_S] * 2

"""Admin calls on a cluster that is still starting: retried on a new client until ready, then BrokerUnreachable (exit 3
at a first start, not a traceback); others raised at once."""

from __future__ import annotations

import asyncio
import os
import types
from pathlib import Path
from typing import Any, ClassVar

import aiokafka.admin
import pytest
from aiokafka.admin.client import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError, NodeNotReadyError, RequestTimedOutError
from typer.testing import CliRunner

from responder.cli import app
from responder.errors import BrokerUnreachable, ConfigError
from responder.ingest.admin import ensure_topics, refused, with_admin
from responder.ingest.changelog import ensure_changelog


class _Admin:
    """An admin client whose first `not_ready` clients' metadata has no broker yet (as a KRaft broker just up)."""

    made: ClassVar[list[_Admin]] = []
    not_ready = 0
    topics: ClassVar[dict[str, dict[str, Any]]] = {}
    replication: ClassVar[dict[str, int]] = {}

    def __init__(self, **_: Any) -> None:
        self.closed = False
        self.ready = len(_Admin.made) >= _Admin.not_ready
        _Admin.made.append(self)

    async def start(self) -> None:
        """Bootstrap succeeds: the broker answers, with no broker in its metadata."""

    async def close(self) -> None:
        self.closed = True

    async def list_topics(self) -> list[str]:
        if not self.ready:
            raise NodeNotReadyError("Attempt to send a request to node which is not ready (node id None).")
        return list(_Admin.topics)

    async def _send_request(self, request: Any) -> Any:
        """The service's topic check (a MetadataRequest): as `list_topics` while not ready."""
        await self.list_topics()
        raise AssertionError("only a cluster never ready is asked so here")

    async def create_topics(self, new: list[Any]) -> None:
        for t in new:
            assert t.name not in _Admin.topics, f"{t.name} created twice"
            _Admin.topics[t.name] = {"partitions": t.num_partitions, "configs": t.topic_configs}
            _Admin.replication[t.name] = t.replication_factor


@pytest.fixture
def admin(monkeypatch: pytest.MonkeyPatch) -> type[_Admin]:
    _Admin.made, _Admin.not_ready, _Admin.topics, _Admin.replication = [], 0, {}, {}
    monkeypatch.setattr(aiokafka.admin, "AIOKafkaAdminClient", _Admin)
    return _Admin


async def test_topics_are_created_once_the_cluster_has_brokers(admin):
    """ensure_topics waits out two clients with no broker in their metadata, then creates only what is missing."""
    admin.not_ready, admin.topics = 2, {"alerts": {}}
    await ensure_topics("127.0.0.1:9", ["alerts", "dlq"], partitions=6)
    assert admin.topics["dlq"]["partitions"] == 6
    assert len(admin.made) == 3
    assert all(a.closed for a in admin.made)


async def test_the_changelog_is_created_compacted_once_the_cluster_has_brokers(admin):
    """ensure_changelog retries the same way and creates the topic compacted."""
    admin.not_ready = 1
    await ensure_changelog("127.0.0.1:9", "changelog", 6)
    assert admin.topics["changelog"] == {"partitions": 6, "configs": {"cleanup.policy": "compact"}}
    assert len(admin.made) == 2
    assert all(a.closed for a in admin.made)


async def test_topics_are_created_with_the_brokers_default_replication_factor(admin):
    """ensure_topics and ensure_changelog ask for replication -1 (the broker's default.replication.factor), not 1."""
    await ensure_topics("127.0.0.1:9", ["operator.requests", "operator.replies"])
    await ensure_changelog("127.0.0.1:9", "changelog", 6)
    await ensure_topics("127.0.0.1:9", ["pinned"], replication=3)
    assert admin.replication == {"operator.requests": -1, "operator.replies": -1, "changelog": -1, "pinned": 3}


async def test_a_cluster_never_ready_is_unreachable_after_the_deadline(admin):
    """Past the deadline BrokerUnreachable names the bootstrap and deadline, the last NodeNotReadyError its cause."""
    admin.not_ready = 10**6
    with pytest.raises(BrokerUnreachable, match=r"Kafka at 127\.0\.0\.1:9 .*not ready within 0\.5s") as raised:
        await with_admin("127.0.0.1:9", lambda a: a.list_topics(), deadline=0.5)
    assert isinstance(raised.value.__cause__, NodeNotReadyError)
    assert len(admin.made) >= 2
    assert all(a.closed for a in admin.made)


async def test_connections_refused_through_the_deadline_are_unreachable(admin):
    """A call whose connection keeps failing (KafkaConnectionError: a broker restarting) is BrokerUnreachable too."""
    async def refused(_: Any) -> None:
        raise KafkaConnectionError("Connection at 127.0.0.1:9 closed")

    with pytest.raises(BrokerUnreachable, match="KafkaConnectionError") as raised:
        await with_admin("127.0.0.1:9", refused, deadline=0.3)
    assert isinstance(raised.value.__cause__, KafkaConnectionError)


def test_run_whose_cluster_is_never_ready_exits_3_with_one_line(admin, monkeypatch, tmp_path: Path):
    """`responder run` whose cluster is never ready within RESPONDER_KAFKA_CONNECT_TIMEOUT exits 3 with one line."""
    admin.not_ready = 10**6
    for name in [n for n in os.environ if n.startswith("RESPONDER_")]:
        monkeypatch.delenv(name)
    for name, value in {"KAFKA_BOOTSTRAP": "127.0.0.1:9", "KAFKA_CONNECT_TIMEOUT": "0.5", "RUNBOOKS_DIR": str(tmp_path),
                        "TIMELINE_PATH": str(tmp_path / "t.jsonl"), "DRY_RUN": "true"}.items():
        monkeypatch.setenv(f"RESPONDER_{name}", value)
    result = CliRunner().invoke(app, ["run"])
    assert result.exit_code == 3, result.output
    assert "cannot talk to Kafka at 127.0.0.1:9" in result.output
    assert "Traceback" not in result.output


async def test_an_error_that_is_not_about_readiness_is_raised_at_once(admin):
    """Any other error is not retried: one client, closed."""
    async def broken(_: Any) -> None:
        raise ValueError("bad request")

    with pytest.raises(ValueError, match="bad request"):
        await with_admin("127.0.0.1:9", broken)
    assert len(admin.made) == 1
    assert admin.made[0].closed


def _in_aiokafka(source: str = "def controller_id(cluster):\n    return cluster.controller.nodeId\n") -> Any:
    """The function `source` defines, its code in aiokafka's file (by default reading a controller that is not known
    yet, as the admin client)."""
    scope: dict[str, Any] = {"RequestTimedOutError": RequestTimedOutError}
    exec(compile(source, "/site-packages/aiokafka/admin/client.py", "exec"), scope)  # fixed text
    return next(v for k, v in scope.items() if callable(v) and k != "RequestTimedOutError")


async def test_aiokafkas_unknown_controller_is_waited_out(admin):
    """An AttributeError raised inside aiokafka (no controller known yet) is retried on a new client."""
    controller_id, calls = _in_aiokafka(), []

    async def create(_: Any) -> str:
        calls.append(1)
        if len(calls) < 3:
            controller_id(type("Cluster", (), {"controller": None})())
        return "created"

    assert await with_admin("127.0.0.1:9", create) == "created"
    assert len(admin.made) == 3


async def test_an_attribute_error_in_the_callers_code_is_raised_at_once(admin):
    """An AttributeError from the caller's own code is a bug: raised at once, not retried for 15 s."""
    async def buggy(_: Any) -> None:
        None.nodeId  # type: ignore[attr-defined]  # noqa: B018

    with pytest.raises(AttributeError):
        await with_admin("127.0.0.1:9", buggy)
    assert len(admin.made) == 1


class _SilentController:
    """aiokafka's client as the admin client sees it while its controller is unreachable: known, never ready."""

    _request_timeout_ms, _retry_backoff = 50, 0.01  # aiokafka's default request timeout is 40 s

    def __init__(self) -> None:
        self.cluster = type("Cluster", (), {"controller": type("Node", (), {"nodeId": 1})()})()

    async def ready(self, node_id: int) -> bool:
        return False


def _silent(request_timeout_ms: int = 50) -> AIOKafkaAdminClient:
    """aiokafka's own admin client (not started) whose controller never answers."""
    real = AIOKafkaAdminClient.__new__(AIOKafkaAdminClient)
    real._client = _SilentController()
    real._client._request_timeout_ms = request_timeout_ms
    return real


async def _to_silent_controller(_: Any) -> Any:
    """aiokafka's own `_send_to_controller` (as `create_topics`, `create_partitions`) to a controller that never
    answers: it raises the TimeoutError of aiokafka's request timeout (async_timeout, Python's on 3.11)."""
    return await _silent()._send_to_controller(object())


async def test_a_controller_that_does_not_answer_is_waited_out(admin):
    """A controller request that times out is retried on a new client, and the first answer is returned."""
    calls: list[int] = []

    async def create(a: Any) -> str:
        calls.append(1)
        if len(calls) < 3:
            await _to_silent_controller(a)
        return "created"

    assert await with_admin("127.0.0.1:9", create) == "created"
    assert len(admin.made) == 3
    assert all(a.closed for a in admin.made)


async def test_a_controller_silent_through_the_deadline_is_unreachable(admin):
    """Past the deadline a silent controller is BrokerUnreachable with aiokafka's TimeoutError as its cause."""
    with pytest.raises(BrokerUnreachable, match=r"not ready within 0\.3s: TimeoutError") as raised:
        await with_admin("127.0.0.1:9", _to_silent_controller, deadline=0.3)
    assert type(raised.value.__cause__) is TimeoutError
    assert len(admin.made) >= 2
    assert all(a.closed for a in admin.made)


async def test_aiokafkas_request_timed_out_is_waited_out(admin):
    """A RequestTimedOutError aiokafka raised (a broker connected to never answered the request) is retried too."""
    unanswered, calls = _in_aiokafka("async def send(request):\n    raise RequestTimedOutError()\n"), []

    async def create(_: Any) -> str:
        calls.append(1)
        if len(calls) < 2:
            await unanswered(object())
        return "created"

    assert await with_admin("127.0.0.1:9", create) == "created"
    assert len(admin.made) == 2


async def test_a_timeout_the_caller_set_is_raised_at_once(admin):
    """A TimeoutError from the caller's own timeout is raised at once, not retried, even if fired inside aiokafka."""
    async def impatient(_: Any) -> None:
        async with asyncio.timeout(0.05):
            await _silent(10_000)._send_to_controller(object())

    with pytest.raises(TimeoutError):
        await with_admin("127.0.0.1:9", impatient, deadline=5)
    assert len(admin.made) == 1
    assert admin.made[0].closed


async def test_a_request_timed_out_in_the_callers_code_is_raised_at_once(admin):
    """A RequestTimedOutError the caller's own code raised is not the cluster's silence: raised at once."""
    async def own(_: Any) -> None:
        raise RequestTimedOutError()

    with pytest.raises(RequestTimedOutError):
        await with_admin("127.0.0.1:9", own, deadline=5)
    assert len(admin.made) == 1


async def test_a_controller_request_hung_past_the_deadline_is_cut_there(admin):
    """A controller request hanging past the admin call's deadline is cut there: BrokerUnreachable, client closed."""
    async def hung(_: Any) -> Any:
        return await _silent(10**9)._send_to_controller(object())

    with pytest.raises(BrokerUnreachable, match=r"not ready within 0\.3s: TimeoutError") as raised:
        async with asyncio.timeout(10):  # a hang guard: without the cut the request waits 10**9 ms
            await with_admin("127.0.0.1:9", hung, deadline=0.3)
    assert type(raised.value.__cause__) is TimeoutError
    assert len(admin.made) == 1
    assert admin.made[0].closed


class _NoBroker(_Admin):
    """An admin client whose bootstrap no broker answers."""

    async def start(self) -> None:
        raise KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 9)]")


@pytest.mark.parametrize("create", [
    lambda: ensure_topics("127.0.0.1:9", ["alerts"]),
    lambda: ensure_changelog("127.0.0.1:9", "changelog", 3),
], ids=["ensure_topics", "ensure_changelog"])
async def test_an_unreachable_bootstrap_names_the_fixed_admin_deadline_not_the_setting(admin, monkeypatch, create):
    """ensure_topics' and ensure_changelog's BrokerUnreachable names their fixed admin deadline, not the setting."""
    import responder.ingest.admin as admin_module

    monkeypatch.setattr(aiokafka.admin, "AIOKafkaAdminClient", _NoBroker)
    monkeypatch.setattr(admin_module, "ADMIN_DEADLINE", 0.2)  # the start's own floor (1 s) still applies
    with pytest.raises(BrokerUnreachable) as raised:
        await create()
    message = str(raised.value)
    assert "RESPONDER_KAFKA_CONNECT_TIMEOUT sets the wait" not in message
    assert "fixed 0.2s deadline, not RESPONDER_KAFKA_CONNECT_TIMEOUT, sets the wait" in message
    assert all(a.closed for a in admin.made)


async def test_a_deadline_set_by_the_setting_names_it(admin, monkeypatch):
    """A caller whose deadline is RESPONDER_KAFKA_CONNECT_TIMEOUT (the service's topic check) says so."""
    monkeypatch.setattr(aiokafka.admin, "AIOKafkaAdminClient", _NoBroker)
    with pytest.raises(BrokerUnreachable, match="RESPONDER_KAFKA_CONNECT_TIMEOUT sets the wait"):
        await with_admin("127.0.0.1:9", lambda a: a.list_topics(), deadline=0.2,
                         wait_set_by="RESPONDER_KAFKA_CONNECT_TIMEOUT")


class _Stopped(_Admin):
    """An admin client whose bootstrap is accepted and never answered (a SIGSTOPped broker): aiokafka waits its
    request timeout, 40 s by default, per attempt."""

    async def start(self) -> None:
        await asyncio.sleep(10**6)


async def test_a_bootstrap_hung_past_the_deadline_is_cut_there(admin, monkeypatch):
    """A hung bootstrap request is cut at the admin deadline: BrokerUnreachable, no broker answered, client closed."""
    monkeypatch.setattr(aiokafka.admin, "AIOKafkaAdminClient", _Stopped)
    with pytest.raises(BrokerUnreachable, match=r"cannot reach Kafka at 127\.0\.0\.1:9 .*no answer in 0\.3s") as raised:
        async with asyncio.timeout(5):  # a hang guard: without the cut the start waits for ever
            await with_admin("127.0.0.1:9", lambda a: a.list_topics(), deadline=0.3)
    assert type(raised.value.__cause__) is TimeoutError
    assert "fixed 0.3s deadline, not RESPONDER_KAFKA_CONNECT_TIMEOUT, sets the wait" in str(raised.value)
    assert [a.closed for a in admin.made] == [True]


def test_a_topic_kafka_refuses_to_create_is_a_config_error_naming_it() -> None:
    """A CreateTopics refusal for good names its topic and error; one that exists or a retriable one is not raised."""
    answer = types.SimpleNamespace(topic_errors=[
        ("five", 38, "Replication factor: 5 larger than available brokers: 1."), ("there", 36, None),
        ("moving", 41, None), ("made", 0, None)])
    with pytest.raises(ConfigError, match=r"five: InvalidReplicationFactorError \(38\): Replication factor: 5") as e:
        refused(answer)
    assert "there" not in str(e.value)
    assert "moving" not in str(e.value)
    refused(types.SimpleNamespace(topic_errors=[("there", 36, None), ("moving", 41, None)]))
    refused(None)  # an answer without topic errors (a fake client's)


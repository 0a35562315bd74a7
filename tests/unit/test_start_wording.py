"""The service's clients wait RESPONDER_KAFKA_CONNECT_TIMEOUT when it starts them and say so; started with their
default 30 s (a tabletop's publisher), the publisher, the alert ingest and the decisions or operator consumer say
that fixed wait (`fixed_wait`), where they named the setting, which did not set it: every start says what sets its
wait (`_start_with_retry`'s `wait_set_by`, no default)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from responder.errors import BrokerUnreachable
from responder.ingest import approvals, kafka
from responder.service import Service, running
from responder.settings import Settings
from tests.connect_kit import UNSET, no_broker


@pytest.fixture(name="waits")
def _no_broker(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The publisher's, the alert ingest's and the decisions consumer's starts reach no broker (0.2 s retries); the
    deadlines they were given are listed."""
    return no_broker(monkeypatch, (approvals, kafka))


async def _publisher() -> None:
    await approvals.KafkaPublisher("127.0.0.1:9").start()


async def _decisions() -> None:
    await approvals.ApprovalIngest("127.0.0.1:9", "responder.approvals", "g").start()


async def _alerts() -> None:
    await kafka.KafkaIngest("127.0.0.1:9", ["alerts"], "g", "dlq").start()


@pytest.mark.parametrize(("start", "wait"), [
    (_publisher, "the publisher's"), (_decisions, "the responder.approvals consumer's"),
    (_alerts, "the alert ingest's"),
], ids=["publisher", "decisions", "alerts"])
async def test_a_client_started_with_its_default_wait_names_it_as_fixed(start: Any, wait: str,
                                                                        waits: list[float]) -> None:
    """A client started with its default 30 s names that fixed wait, not RESPONDER_KAFKA_CONNECT_TIMEOUT."""
    with pytest.raises(BrokerUnreachable) as raised:
        await start()
    assert waits[0] == 30.0
    assert UNSET not in str(raised.value)
    assert f"{wait} fixed 30s deadline, not RESPONDER_KAFKA_CONNECT_TIMEOUT, sets the wait" in str(raised.value)


async def test_the_service_s_clients_wait_the_setting_and_name_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, waits: list[float]) -> None:
    """The service's publisher (its first client to start) waits RESPONDER_KAFKA_CONNECT_TIMEOUT and names it."""
    async def nothing(*_: Any, **__: Any) -> None:
        return None

    async def there(*_: Any, **__: Any) -> bool:
        return True

    monkeypatch.setattr(running, "check_connection", nothing)
    monkeypatch.setattr(Service, "_writable_topics", there)
    service = Service(Settings(kafka_bootstrap="127.0.0.1:9", timeline_path=tmp_path / "t.jsonl", dry_run=True,
                               runbooks_dir=tmp_path, topics=["a"], kafka_connect_timeout=7.0), runbooks=[])
    with pytest.RaisesGroup(pytest.RaisesExc(BrokerUnreachable, match=UNSET)):  # raised in the service's task group
        await service.run()
    assert waits == [7.0]

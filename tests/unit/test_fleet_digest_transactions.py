"""Whether a fleet member writes in Kafka transactions is part of the fleet digest (responder/fleet_digest.py): a member
without them fences no zombie and is fenced by none, so among members with them it is refused. The digest is checked
once `kafka_transactions` is settled at start (responder/service/running.py `_prepare`), and only a member without
transactions digests it: a fleet with them keeps its digest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from responder.actuators import registry
from responder.catalog import load_runbooks
from responder.errors import BrokerUnreachable
from responder.fleet_digest import fleet_digest
from responder.ingest import txnprobe
from responder.service import Service, running
from responder.settings import Settings


def test_a_member_without_transactions_has_another_digest(runbooks_dir: Path) -> None:
    """Without transactions the digest differs; with them it is the digest as computed before (no upgrade needed)."""
    books, settings = load_runbooks(runbooks_dir, registry), Settings(topics=["a"], changelog_topic="changelog")
    assert fleet_digest(books, settings, transactions=True) == fleet_digest(books, settings)
    assert fleet_digest(books, settings, transactions=False) != fleet_digest(books, settings)
    assert fleet_digest(books, settings.model_copy(update={"kafka_transactions": "off"})) == fleet_digest(
        books, settings)  # the setting is not digested, what it came to is


def _member(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, choose: Any) -> tuple[Service, list[str]]:
    """A fleet member (changelog and guard table) whose Kafka and guard table are stand-ins, its transactions
    settled by `choose`; the digests it checks, in order."""
    service = Service(Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", topics=["a"],
                               runbooks_dir=tmp_path, changelog_topic="changelog", fleet_guard_table="guards",
                               dry_run=True, kafka_connect_timeout=7.0), runbooks=[])
    checked: list[str] = []

    async def nothing(*_: Any, **__: Any) -> None:
        return None

    async def check_digest(digest: str, *_: Any) -> None:
        checked.append(digest)

    monkeypatch.setattr(running, "check_connection", nothing)
    monkeypatch.setattr(txnprobe, "choose", choose)
    assert service.fleet is not None
    assert service.fleet_guard is not None
    monkeypatch.setattr(service.fleet_guard, "ensure_table", nothing)
    monkeypatch.setattr(service.fleet_guard, "refresh", nothing)
    monkeypatch.setattr(service.fleet_guard, "check_digest", check_digest)
    monkeypatch.setattr(service.fleet.changelog, "start", nothing)
    return service, checked


async def test_a_member_checks_the_digest_of_the_transactions_it_settled_on(tmp_path, monkeypatch) -> None:
    """The probe waits the connect timeout; the digest checked after it holds its outcome: one without transactions."""
    waits: list[tuple[float, str]] = []

    async def without(*_: Any, deadline: float, wait_set_by: str, **__: Any) -> None:
        waits.append((deadline, wait_set_by))
        return None

    service, checked = _member(tmp_path, monkeypatch, without)
    await service._prepare()
    await service.close_unstarted()
    assert waits == [(7.0, "RESPONDER_KAFKA_CONNECT_TIMEOUT")]  # the probe waits for Kafka as the clients do
    assert checked == [fleet_digest([], service.settings, transactions=False)]
    assert checked != [fleet_digest([], service.settings)]


async def test_no_digest_is_checked_before_the_transactions_are_settled(tmp_path, monkeypatch) -> None:
    """A probe that gets no answer ends the start (BrokerUnreachable) before any digest is checked or set."""
    async def unreachable(*_: Any, **__: Any) -> None:
        raise BrokerUnreachable("cannot reach Kafka at 127.0.0.1:1 (its transactions probe)")

    service, checked = _member(tmp_path, monkeypatch, unreachable)
    with pytest.raises(BrokerUnreachable, match="transactions probe"):
        await service.run()
    assert checked == []

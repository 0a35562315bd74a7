"""Fixtures shared by the integration test modules (the broker and moto server ones come from
responder.sandbox.fixtures, through tests/conftest.py)."""

from __future__ import annotations

import pytest

from responder.ingest.txnprobe import supported


@pytest.fixture(name="transactional")
async def _transactional(kafka_bootstrap: str, unique: str) -> str:
    """The broker (the requesting module's `kafka_bootstrap`: Apache Kafka with `on_apache_kafka()`), skipped when
    it has no transactions for aiokafka (Tansu)."""
    if not await supported(kafka_bootstrap, f"probe-{unique}"):
        pytest.skip("this broker does not run Kafka transactions for aiokafka (Tansu): docs/fleet.md")
    return kafka_bootstrap

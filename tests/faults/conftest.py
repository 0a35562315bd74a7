"""Fixtures shared by the fault test modules (the broker and moto server ones come from responder.sandbox.fixtures,
through tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from responder.sandbox import Broker
from tests.faults.brokers import stopped_after


@pytest.fixture(name="broker")
def _broker(tmp_path) -> Iterator[Broker]:
    """An embedded broker of its own (the memory engine: a stopped process keeps its data)."""
    with stopped_after(Broker(log_path=tmp_path / "broker.log")) as broker:
        yield broker

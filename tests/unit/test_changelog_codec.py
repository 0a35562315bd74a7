"""The changelog's batches are compressed with zstd, with and without transactions."""

from __future__ import annotations

from typing import Any

import pytest

from responder.ingest import changelog as changelog_module
from responder.ingest import transactions as transactions_module
from responder.ingest.changelog import Changelog
from responder.ingest.transactions import Transactions


class _Made(Exception):
    """Raised by the recording producer once it has seen its arguments."""


def _recording(made: list[dict[str, Any]]) -> type:
    class Recording:
        def __init__(self, **kwargs: Any) -> None:
            made.append(kwargs)
            raise _Made

    return Recording


async def test_every_changelog_producer_compresses_with_zstd(monkeypatch: pytest.MonkeyPatch) -> None:
    """The plain and the transactional changelog producers use zstd, a twentieth of gzip level 9's CPU per flush."""
    made: list[dict[str, Any]] = []
    monkeypatch.setattr(changelog_module, "AIOKafkaProducer", _recording(made))
    monkeypatch.setattr(transactions_module, "AIOKafkaProducer", _recording(made))
    with pytest.raises(_Made):
        Changelog("127.0.0.1:1", "changelog")
    with pytest.raises(_Made):
        await Transactions("127.0.0.1:1", "changelog", "group").assign([0])
    assert [m["compression_type"] for m in made] == ["zstd", "zstd"]

"""Stopping the changelog closes its producer even when closing the transactional ones fails."""

from __future__ import annotations

from typing import Any, cast

import pytest

from responder.ingest.changelog import Changelog
from responder.ingest.transactions import Transactions


class BrokenTransactions:
    """Transactional producers whose close fails with an error aiokafka does not wrap (a bug, a cancelled close)."""

    async def stop(self) -> None:
        raise RuntimeError("close failed")


async def test_the_producer_is_closed_when_the_transactional_ones_fail_to_close():
    """`Changelog.stop` closes the idempotent producer when `txn.stop()` raises, then raises the error."""
    log = Changelog("127.0.0.1:1", "changelog")
    log.txn = cast(Transactions, cast(Any, BrokenTransactions()))
    with pytest.raises(RuntimeError, match="close failed"):
        await log.stop()
    assert log.producer._closed

"""Fixtures shared by the unit test modules (`keys` is tests/conftest.py's)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from responder.actuators.model.local import LocalStore
from tests.modelkit import Keys, publish


@pytest.fixture(name="registry")
def _registry(tmp_path: Path, keys: Keys, monkeypatch: pytest.MonkeyPatch) -> LocalStore:
    """A local registry with v1 and v2 signed, v2 served, and settings that trust its key (no timeline key yet)."""
    store = LocalStore(tmp_path / "registry")

    async def fill() -> None:
        for v in ("v1", "v2"):
            await publish(store, tmp_path / "w", "fraud", v, keys.private)
        await store.set_serving("fraud", (await store.versions("fraud"))[-1])

    asyncio.run(fill())
    monkeypatch.setenv("RESPONDER_MODEL_REGISTRY", str(store.root))
    monkeypatch.setenv("RESPONDER_MODEL_TRUSTED_KEYS", json.dumps([str(keys.public)]))
    monkeypatch.delenv("RESPONDER_TIMELINE_SIGNING_KEY", raising=False)
    return store

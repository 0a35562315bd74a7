"""The fleet's guard table (moto) compares the model-signature settings: another trusted key is refused at start."""

from __future__ import annotations

import pytest

from responder.engine.fleetguard import FleetGuard
from responder.errors import ConfigError
from responder.fleet_digest import fleet_digest
from responder.models.runbook import Runbook
from responder.settings import Settings

pytestmark = pytest.mark.integration
BOOK = Runbook.model_validate({"id": "rb", "trigger": {"source": "guardduty"},
                               "steps": [{"id": "s", "actuator": "test.s3.put_marker", "with": {}}]})


def _settings(**model: object) -> Settings:
    return Settings(kafka_bootstrap="127.0.0.1:1", changelog_topic="changelog", **model)  # type: ignore[arg-type]


async def test_a_replica_trusting_another_model_key_is_refused_and_the_same_key_elsewhere_is_not(aws, unique, tmp_path):
    """The same model key at another path joins the fleet; another key, legacy signatures or registry is refused."""
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "k.pem").write_bytes(b"trusted public key")
    (tmp_path / "k.pem").write_bytes(b"trusted public key")
    (tmp_path / "other.pem").write_bytes(b"another public key")
    guard = FleetGuard(aws, f"guards-{unique}", [])
    await guard.ensure_table()
    await guard.check_digest(fleet_digest([BOOK], _settings(model_trusted_keys=[tmp_path / "k.pem"])), "replica-1")
    await guard.check_digest(fleet_digest([BOOK], _settings(model_trusted_keys=[tmp_path / "a" / "k.pem"])),
                             "replica-2")
    for differing in ({"model_trusted_keys": [tmp_path / "other.pem"]},
                      {"model_trusted_keys": [tmp_path / "k.pem"], "model_accept_legacy_signatures": True},
                      {"model_trusted_keys": [tmp_path / "k.pem"], "model_registry": "s3://other-models/prod"}):
        with pytest.raises(ConfigError, match="differs from the fleet's"):
            await guard.check_digest(fleet_digest([BOOK], _settings(**differing)), "replica-3")


async def test_a_replica_that_cannot_read_its_trusted_key_is_refused_naming_it_not_as_one_that_differs(aws, unique,
                                                                                                       tmp_path):
    """Through the guard table: an unreadable key is a bad setting naming the file, never a digest compared."""
    (tmp_path / "k.pem").write_bytes(b"trusted public key")
    guard = FleetGuard(aws, f"guards-{unique}", [])
    await guard.ensure_table()
    await guard.check_digest(fleet_digest([BOOK], _settings(model_trusted_keys=[tmp_path / "k.pem"])), "replica-1")
    with pytest.raises(ConfigError, match=f"RESPONDER_MODEL_TRUSTED_KEYS: cannot read {tmp_path / 'gone.pem'}"):
        await guard.check_digest(fleet_digest([BOOK], _settings(model_trusted_keys=[tmp_path / "gone.pem"])),
                                 "replica-2")

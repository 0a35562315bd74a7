"""The upgrade to the 2026-12-05 digest through moto's guard table, as docs/configuration.md tells it: a fleet that
sets none of the newly digested settings upgrades as before; one that sets approval keys is held at its first
upgraded replica (the old ones go on) until that replica adopts, after which new replicas join and old ones that
restart are refused."""

from __future__ import annotations

import pytest

from responder import fleet_digest as digest_module
from responder.engine.fleetguard import FleetGuard
from responder.errors import ConfigError
from responder.fleet_digest import fleet_digest
from responder.models.runbook import Runbook
from responder.settings import Settings

pytestmark = pytest.mark.integration
BOOK = Runbook.model_validate({"id": "rb", "trigger": {"source": "guardduty"},
                               "steps": [{"id": "s", "actuator": "test.s3.put_marker", "with": {}}]})
BEFORE = frozenset({"aws_account_id", "aws_region", "approver_identities", "event_signing_key_sources",
                    "operator_permissions", "model_trusted_keys", "model_accept_legacy_signatures",
                    "model_refuse_legacy_signatures", "verify_settle_s"})  # DIGESTED_IF_SET at a59ff2f


def _old_digest(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> str:
    """The digest a replica of the release before computes (the same function over the settings it digested)."""
    with monkeypatch.context() as m:
        m.setattr(digest_module, "DIGESTED_IF_SET", BEFORE)
        return fleet_digest([BOOK], settings)


async def test_a_fleet_that_sets_none_of_the_new_settings_upgrades_without_adopting(aws, unique, monkeypatch):
    """Every upgraded replica joins the old replicas' fleet: no RESPONDER_FLEET_ADOPT_DIGEST needed."""
    settings = Settings(kafka_bootstrap="127.0.0.1:1", protected_ids=["i-1"], aws_account_id="111122223333")
    guard = FleetGuard(aws, f"guards-{unique}", [])
    await guard.ensure_table()
    await guard.check_digest(_old_digest(settings, monkeypatch), "old-1")
    await guard.check_digest(fleet_digest([BOOK], settings), "new-1")
    await guard.check_digest(_old_digest(settings, monkeypatch), "old-2")  # an old replica restarting mid-rollout


async def test_a_fleet_with_approval_keys_is_held_at_its_first_upgraded_replica_until_it_adopts(aws, unique,
                                                                                                monkeypatch):
    """Upgraded replicas are refused until one adopts with RESPONDER_FLEET_ADOPT_DIGEST, after which old ones are."""
    settings = Settings(kafka_bootstrap="127.0.0.1:1", approval_keys={"ops": "s3cret"}, notify_keys={"n": "x"})
    old, new = _old_digest(settings, monkeypatch), fleet_digest([BOOK], settings)
    assert old != new
    guard = FleetGuard(aws, f"guards-{unique}", [])
    await guard.ensure_table()
    await guard.check_digest(old, "old-1")
    with pytest.raises(ConfigError, match="RESPONDER_FLEET_ADOPT_DIGEST=true"):
        await guard.check_digest(new, "new-1")
    await guard.check_digest(old, "old-2")  # the refused upgrade moved nothing: old replicas still (re)start
    await guard.check_digest(new, "new-1", adopt=True)
    await guard.check_digest(new, "new-2")
    with pytest.raises(ConfigError, match="differs from the fleet's"):
        await guard.check_digest(old, "old-2")

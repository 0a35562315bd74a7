"""A KMS key's aliases through the engine and moto: a key with no alias (moto answers `Aliases: []`, as AWS does) is
acted on while an alias is protected, and a protected alias created on it then refuses."""

from __future__ import annotations

import hashlib

import pytest

from tests.integration.protection_kit import one_protected_step, refused_and_escalated

pytestmark = pytest.mark.integration


async def test_a_key_without_aliases_is_acted_on_and_a_protected_alias_on_it_refuses(aws, tmp_path):
    """A key without aliases is acted on, and a protected alias pointing to it refuses disabling it."""
    key = (await aws.call("kms", "create_key"))["KeyMetadata"]["KeyId"]
    alias = f"alias/prod-key-{hashlib.sha256(str(tmp_path).encode()).hexdigest()[:8]}"
    listed = await aws.call("kms", "list_aliases", KeyId=key)
    assert (listed["Aliases"], listed.get("Truncated"), listed.get("NextMarker")) == ([], False, None)
    await aws.call("kms", "disable_key", KeyId=key)
    (tmp_path / "no-alias").mkdir()
    entries, _ = await one_protected_step(aws, tmp_path / "no-alias", "aws.kms.enable_key", {"key_id": key}, alias)
    assert not [b for k, b in entries if k == "guard.tripped"], entries
    assert [b.get("status") for k, b in entries if k == "step.result"] == ["ok"], entries
    assert (await aws.call("kms", "describe_key", KeyId=key))["KeyMetadata"]["KeyState"] == "Enabled"
    await aws.call("kms", "create_alias", AliasName=alias, TargetKeyId=key)
    (tmp_path / "aliased").mkdir()
    detail = await refused_and_escalated(aws, tmp_path / "aliased", "aws.kms.disable_key", {"key_id": key}, alias)
    assert alias.casefold() in detail
    assert (await aws.call("kms", "describe_key", KeyId=key))["KeyMetadata"]["KeyState"] == "Enabled"

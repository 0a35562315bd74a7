"""One secret, one role: which key rings of the settings may not share a secret, or a key id (`shared_keys`).

The rings, most powerful first: `approval_keys` (decisions and operator requests: release a destructive step, undo,
roll a model back), `event_signing_keys` (records that may act, straight onto Kafka), `intake_sources.<source>.keys`
(a SIEM posting to the intake, which pins its format and rate), `notify_keys` (held by whoever receives a
notification, to check it). A secret in two of them gives whoever holds it for the weaker role the stronger one: a
Splunk token could sign approvals. So no secret may be in two rings (since 2026-12-07; before, nothing refused it).
A key id may not be in both `approval_keys` and `event_signing_keys` either, whatever the secrets: both are named by
a record's `responder-key-id` header and recorded as `key_id`, so an id must say which ring it is of (an operator
who gave the approval key's id to an event producer is told the id is unknown, not that the signature is bad). The
ids of `notify_keys` and of the intake sources are never read from a record (a step names its notify key; each
intake source tries its own keys), so they may repeat (`k1` in every source).

Within one ring, two ids may share a secret only when every setting that gives ids rights gives both the same
(`same_ring_keys`, since 2026-12-08): an id being renamed. Otherwise whoever holds one signs as the other: alice's and
bob's approval keys with one secret, where `approver_identities` binds each to its holder, let either approve as both;
a viewer id with the secret of an id `operator_permissions` lets undo would send undo; an event key pinned to one
source by `event_signing_key_sources`, with the secret of an unpinned id, signs any source. `notify_keys` grant
nothing, so their ids may alias; intake sources' keys are checked by each source alone.

Secrets are compared as the key each ring signs or checks with, not as text (since 2026-12-07; before, as text): an
intake key `whsec_<base64>` is the bytes it decodes to, as the intake reads it, and HMAC-SHA256 hashes a key longer
than its 64-byte block and pads a shorter one with zeros, so `s` and `s\\x00` are one key.
"""

from __future__ import annotations

import binascii
import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from pydantic import SecretStr

from responder.intake_config import IntakeSource, key_bytes

HEADER_NAMED = ("approval_keys", "event_signing_keys")
"""The rings a record's `responder-key-id` header names a key of: their ids must be distinct."""
HMAC_BLOCK = 64
"""SHA-256's block: HMAC-SHA256 hashes a longer key, and pads a shorter one with zero bytes."""


@dataclass(frozen=True)
class Key:
    """One configured key: the setting it is in (`intake_sources` for a source's), where (`intake_sources.x.keys`),
    its id and the key HMAC uses for its secret (`hmac_key`: compared, never shown)."""

    setting: str
    ring: str
    key_id: str
    secret: bytes

    @property
    def named(self) -> str:
        """`key 'k1'`, after its ring when that is not the setting the line is of (an intake source's)."""
        return f"key {self.key_id!r}" if self.ring == self.setting else f"{self.ring} key {self.key_id!r}"


def hmac_key(secret: bytes) -> bytes:
    """The key HMAC-SHA256 signs with for `secret`, without the zero bytes it pads it with: two secrets with the same
    one sign alike."""
    return (hashlib.sha256(secret).digest() if len(secret) > HMAC_BLOCK else secret).rstrip(b"\0")


def _intake_bytes(secret: str) -> bytes:
    """An intake key's bytes as the intake reads them (`whsec_` decoded); one that is not base64 as its text (the
    intake refuses to start with it)."""
    try:
        return key_bytes(secret)
    except binascii.Error:
        return secret.encode()


def _keys(approval: Mapping[str, SecretStr], events: Mapping[str, SecretStr], notify: Mapping[str, SecretStr],
          intake: Mapping[str, IntakeSource]) -> Iterator[Key]:
    """Every key of every ring, the most powerful ring first."""
    found = [("approval_keys", "approval_keys", approval), ("event_signing_keys", "event_signing_keys", events),
             *(("intake_sources", f"intake_sources.{name}.keys", src.keys) for name, src in sorted(intake.items())),
             ("notify_keys", "notify_keys", notify)]
    for setting, ring, keys in found:
        read = _intake_bytes if setting == "intake_sources" else str.encode
        for key_id, secret in sorted(keys.items()):
            yield Key(setting, ring, key_id, hmac_key(read(secret.get_secret_value())))


def shared_keys(approval: Mapping[str, SecretStr], events: Mapping[str, SecretStr], notify: Mapping[str, SecretStr],
                intake: Mapping[str, IntakeSource]) -> list[tuple[str, str]]:
    """(setting, why) for each key whose secret is also in a weaker ring (intake sources among themselves excepted:
    one role), and for each id in both `HEADER_NAMED` rings: named by setting and id, never by secret."""
    problems: list[tuple[str, str]] = []
    keys = list(_keys(approval, events, notify, intake))
    for at, key in enumerate(keys):
        for other in keys[at + 1:]:
            if other.setting == key.setting == "intake_sources" or other.ring == key.ring:
                continue
            if other.secret == key.secret:
                problems.append((key.setting, f"{key.named} has the same secret as {other.ring} key "
                                              f"{other.key_id!r}: whoever holds that one could sign as this one; "
                                              "give each ring its own secrets (docs/security.md)"))
            elif (key.ring, other.ring) == HEADER_NAMED and key.key_id == other.key_id:
                problems.append((key.setting, f"key id {key.key_id!r} is also a key of {other.ring} (with another "
                                              f"secret): key ids must be distinct across {' and '.join(HEADER_NAMED)}, "
                                              "which a record's responder-key-id names (docs/security.md)"))
    return problems


def _aliased(ring: str, keys: Mapping[str, SecretStr],
             grants: Mapping[str, Mapping[str, object]]) -> Iterator[tuple[str, str]]:
    """(ring, why) for each pair of ids of `ring` with one secret that a setting of `grants` (each id's rights, by
    their effect; an id not in it has none) treats differently."""
    ids_of: dict[bytes, list[str]] = {}
    for key_id, secret in sorted(keys.items()):
        ids_of.setdefault(hmac_key(secret.get_secret_value().encode()), []).append(key_id)
    for ids in ids_of.values():
        for at, first in enumerate(ids):
            for other in ids[at + 1:]:
                differ = [name for name, given in grants.items() if given.get(first) != given.get(other)]
                if differ:
                    yield ring, (f"key {first!r} has the same secret as key {other!r}, and {' and '.join(differ)} "
                                 "give them different rights: whoever holds one could sign as the other; give each "
                                 "id its own secret, or both the same rights while renaming one (docs/security.md)")


def same_ring_keys(approval: Mapping[str, SecretStr], identities: Mapping[str, str],
                   permissions: Mapping[str, Sequence[str]], events: Mapping[str, SecretStr],
                   sources: Mapping[str, Sequence[str]]) -> list[tuple[str, str]]:
    """(setting, why) for two ids of `approval_keys` (or of `event_signing_keys`) sharing a secret while
    `approver_identities` or `operator_permissions` (or `event_signing_key_sources`) give them different rights,
    compared by effect as the engine and the intake apply them: permissions as a set (none granted = not named),
    sources as a set of globs (a list holding `*` = not pinned: it matches any source)."""
    granted = {key_id: frozenset(commands) for key_id, commands in permissions.items() if commands}
    pinned = {key_id: frozenset(globs) for key_id, globs in sources.items() if "*" not in globs}
    return [*_aliased("approval_keys", approval, {"approver_identities": identities, "operator_permissions": granted}),
            *_aliased("event_signing_keys", events, {"event_signing_key_sources": pinned})]

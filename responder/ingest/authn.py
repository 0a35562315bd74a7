"""HMAC authentication of records: which topics and sources must be signed, and the check itself.

Uses the shared `responder.auth.KeyRing` (several active keys at once, for rotation). A record that
carries a signature is always checked; a record without one is refused when its topic, or the source
of any event decoded from it, is listed in `require_signature` (`"*"` means every record).

A key can be bound to the event sources it may sign (`event_signing_key_sources`, globs): a record
signed by a bound key is refused when any event decoded from it comes from another source, so a key
issued to one producer cannot vouch for another's findings. A key with no binding signs any source.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase

from responder.auth import KEY_ID_HEADER, SIGNATURE_HEADER, KeyRing
from responder.errors import AuthenticationFailed
from responder.models.event import Event, RawRecord


class RecordAuthenticator:
    """Verifies `responder-key-id` + `responder-signature` headers over the record's value bytes."""

    def __init__(self, keys: Mapping[str, bytes | str] | KeyRing | None = None,
                 require: Iterable[str] = (), bindings: Mapping[str, Iterable[str]] | None = None) -> None:
        self.ring = keys if isinstance(keys, KeyRing) else KeyRing(keys)
        self.require = frozenset(require)
        self.bindings = {k: frozenset(v) for k, v in (bindings or {}).items()}

    def required_for_topic(self, topic: str) -> bool:
        """Whether every record on `topic` must be signed."""
        return "*" in self.require or topic in self.require

    def unsigned(self, record: RawRecord) -> bool:
        """Whether the record carries no signature and needs none (`verify` returns None without checking)."""
        if record.headers and (record.header(KEY_ID_HEADER) is not None or record.header(SIGNATURE_HEADER) is not None):
            return False
        return not self.required_for_topic(record.topic)

    def verify(self, record: RawRecord) -> str | None:
        """The key id that signed the record, None when unsigned and not required; raises when forged."""
        key_id = record.header(KEY_ID_HEADER)
        signature = record.header(SIGNATURE_HEADER)
        if key_id is None and signature is None and not self.required_for_topic(record.topic):
            return None
        kid = key_id.decode(errors="replace") if key_id is not None else None
        sig = signature.decode(errors="replace") if signature is not None else None
        why = self.ring.check(kid, sig, record.value)
        if why is not None:
            raise AuthenticationFailed(f"topic {record.topic}: {why}")
        return kid

    def check_sources(self, events: Iterable[Event], signed_by: str | None) -> None:
        """Refuse unsigned records from a source that requires a signature, and bound keys signing other sources."""
        allowed = self.bindings.get(signed_by) if signed_by is not None else None
        if allowed is not None:
            for event in events:
                if not any(fnmatchcase(event.source, pattern) for pattern in allowed):
                    raise AuthenticationFailed(f"key id {signed_by!r} may sign only sources {sorted(allowed)}, "
                                               f"not {event.source!r}")
        if signed_by is not None or not self.require:
            return
        for event in events:
            if event.source in self.require:
                raise AuthenticationFailed(f"source {event.source} requires a signature; the record is unsigned")

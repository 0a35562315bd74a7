"""Signed checkpoints: an Ed25519 signature over the chain head, so a rewritten chain cannot be re-signed."""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from responder.errors import ConfigError
from responder.timeline.chain import canonical_json

CHECKPOINT_VERSION = 2
"""Since 2026-12-07 a checkpoint also signs its writer's cadence (`every`, `interval_ms`); version 1, without it,
still verifies (its cadence is the verifier's setting)."""
ACK_VERSION = 3
"""A version-2 checkpoint that also signs an operator's acknowledgement of entries `verify` reports unproven
(`timeline sign --force`, since 2026-12-07): who (`ack_by`) and which runs of seqs (`acknowledges`)."""
ACK_BY_MAX = 200


@dataclass(frozen=True)
class Cadence:
    """How often the writer that signed a checkpoint signs the next: after `every` entries or `interval_ms`."""

    every: int
    interval_ms: int

    @classmethod
    def of(cls, every: int, interval: float) -> Cadence:
        """A recorder's cadence (its interval in seconds, rounded up to a whole millisecond, at most 2**53 ms)."""
        most = 2**53  # a float's exact integers: an infinite interval is "never by time"
        return cls(every, max(1, math.ceil(interval * 1000)) if interval * 1000 < most else most)


@dataclass(frozen=True)
class Ack:
    """An operator's acknowledgement, signed in a version-3 checkpoint: `by` compared the runs of seqs `segments`
    (first, last) that `verify` reports unproven with the archive or an anchor, and takes them as they are."""

    by: str
    segments: tuple[tuple[int, int], ...]

    def fields(self) -> dict[str, Any]:
        """What a checkpoint body and its signed statement carry."""
        return {"ack_by": self.by, "acknowledges": [list(s) for s in self.segments]}


def recorded_ack(body: Mapping[str, Any]) -> Ack | None:
    """The acknowledgement a version-3 checkpoint body carries (None: another version, or malformed)."""
    by, runs = body.get("ack_by"), body.get("acknowledges")
    if body.get("v") != ACK_VERSION or type(by) is not str or not 0 < len(by) <= ACK_BY_MAX or type(runs) is not list:
        return None
    segments = []
    for run in runs:
        if type(run) is not list or len(run) != 2 or any(type(x) is not int or x < 0 for x in run) or run[0] > run[1]:
            return None
        segments.append((run[0], run[1]))
    return Ack(by, tuple(segments))


def recorded_cadence(body: Mapping[str, Any]) -> Cadence | None:
    """The cadence a version-2 (or 3) checkpoint body signs (None: version 1, or not whole numbers of at least 1)."""
    every, interval = body.get("every"), body.get("interval_ms")
    if body.get("v") not in (CHECKPOINT_VERSION, ACK_VERSION) or type(every) is not int \
            or type(interval) is not int or every < 1 or interval < 1:
        return None
    return Cadence(every, interval)


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    """A short fingerprint of a public key (first 16 hex digits of its SHA-256)."""
    return hashlib.sha256(_raw_public(key)).hexdigest()[:16]


def generate_keypair() -> tuple[str, str]:
    """A new (private, public) pair, each the base64 of the raw 32-byte key."""
    private = Ed25519PrivateKey.generate()
    raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return base64.b64encode(raw).decode(), base64.b64encode(_raw_public(private.public_key())).decode()


def _decode32(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except ValueError as exc:
        raise ConfigError(f"{what} is not base64: {exc}") from exc
    if len(raw) != 32:
        raise ConfigError(f"{what} must be 32 raw bytes in base64 (got {len(raw)} bytes)")
    return raw


def load_private_key(text: str) -> Ed25519PrivateKey:
    """The signing key from its base64 form (as printed by `responder timeline keygen`)."""
    return Ed25519PrivateKey.from_private_bytes(_decode32(text, "timeline signing key"))


def load_public_key(text: str) -> Ed25519PublicKey:
    """The verification key from its base64 form."""
    return Ed25519PublicKey.from_public_bytes(_decode32(text, "timeline verify key"))


def statement(writer: str, covers: int, head: str, cadence: Cadence | None = None, ack: Ack | None = None) -> bytes:
    """The exact bytes a checkpoint signs: who wrote the chain, up to which seq, its head hash and (version 2) the
    cadence the writer keeps until its next checkpoint; version 1 without `cadence`; version 3 with an `ack`."""
    if cadence is None:
        return canonical_json({"v": 1, "writer": writer, "covers": covers, "head": head})
    return canonical_json({"v": CHECKPOINT_VERSION if ack is None else ACK_VERSION, "writer": writer,
                           "covers": covers, "head": head, "every": cadence.every, "interval_ms": cadence.interval_ms,
                           **(ack.fields() if ack is not None else {})})


class Signer:
    """Signs chain heads with one Ed25519 key."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self.public_key = private_key.public_key()
        self.key_id = key_id(self.public_key)

    @classmethod
    def from_text(cls, text: str) -> Signer:
        """A signer from the base64 private key."""
        return cls(load_private_key(text))

    def sign(self, data: bytes) -> str:
        """Base64 Ed25519 signature of `data` (tabletop scorecards)."""
        return base64.b64encode(self._key.sign(data)).decode()

    def body(self, writer: str, covers: int, head: str, cadence: Cadence | None = None,
             ack: Ack | None = None) -> dict[str, Any]:
        """The body of a checkpoint entry that signs `head`, the hash of entry `covers`, and the writer's `cadence`
        (version 2; without one, version 1 as written before 2026-12-07), and an operator's `ack` (version 3)."""
        sig = base64.b64encode(self._key.sign(statement(writer, covers, head, cadence, ack))).decode()
        if cadence is None:
            return {"v": 1, "covers": covers, "head": head, "key_id": self.key_id, "sig": sig}
        return {"v": CHECKPOINT_VERSION if ack is None else ACK_VERSION, "covers": covers, "head": head,
                "every": cadence.every, "interval_ms": cadence.interval_ms, **(ack.fields() if ack else {}),
                "key_id": self.key_id, "sig": sig}


class Checker:
    """Checks checkpoint bodies against one or more trusted public keys."""

    def __init__(self, keys: list[Ed25519PublicKey]) -> None:
        self._keys = {key_id(k): k for k in keys}

    @classmethod
    def from_text(cls, *texts: str) -> Checker:
        """A checker trusting the base64 public keys given."""
        return cls([load_public_key(t) for t in texts])

    @classmethod
    def from_setting(cls, keys: str | None) -> Checker | None:
        """A checker from `timeline_verify_key` / `--public-key`: comma-separated base64 keys; None when unset."""
        texts = [k.strip() for k in (keys or "").split(",") if k.strip()]
        return cls.from_text(*texts) if texts else None

    def verifies(self, key_id: str | None, signature: str | None, data: bytes) -> bool:
        """Whether `signature` (base64 Ed25519) over `data` is valid under the trusted key `key_id`."""
        key = self._keys.get(key_id or "")
        if key is None or not signature:
            return False
        try:
            key.verify(base64.b64decode(signature), data)
        except (InvalidSignature, ValueError):
            return False
        return True

    def problem(self, writer: str, seq: int, prev: str, body: Mapping[str, Any]) -> str | None:
        """Why this checkpoint entry does not hold (None when it does)."""
        cadence, ack = recorded_cadence(body), recorded_ack(body)
        if type(body.get("v")) is not int or body.get("v") not in (1, CHECKPOINT_VERSION, ACK_VERSION):
            return f"checkpoint has unknown version {body.get('v')!r}"
        if body.get("v") != 1 and cadence is None:
            return "checkpoint's cadence (every, interval_ms) is not whole numbers of at least 1"
        if body.get("v") == ACK_VERSION and ack is None:
            return (f"checkpoint's acknowledgement (ack_by: 1 to {ACK_BY_MAX} characters, acknowledges: runs of "
                    "[first, last] seqs) is malformed")
        if body.get("covers") != seq - 1 or body.get("head") != prev:
            return "checkpoint does not sign the entry before it"
        key = self._keys.get(str(body.get("key_id")))
        if key is None:
            return f"checkpoint signed by an untrusted key {body.get('key_id')!r}"
        try:
            key.verify(base64.b64decode(str(body.get("sig", ""))), statement(writer, seq - 1, prev, cadence, ack))
        except (InvalidSignature, ValueError):
            return "checkpoint signature is invalid (the chain before it was rewritten or the checkpoint forged)"
        return None

"""Model signing with OpenSSF model-signing, offline, with local ECDSA keys.

Every function here is synchronous and CPU- or disk-bound: async callers run it in a thread.
A verdict names *why* a version does not verify, because a rollback records that for every
candidate it rejects.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from responder.actuators.model.release import (
    RELEASE_NAME,
    Release,
    content_digest,
    release_for,
    signed_release,
    signs_release,
)
from responder.errors import ConfigError

SIGNATURE_NAME = "model.sig"
HASHES = ("sha256", "blake3")


class Reason(StrEnum):
    """Why a version was not chosen (recorded on the timeline for every rejected candidate)."""

    UNSIGNED = "unsigned"
    UNTRUSTED_KEY = "untrusted_key"
    TAMPERED = "tampered"
    BAD_SIGNATURE = "bad_signature"
    NO_TRUSTED_KEYS = "no_trusted_keys"
    QUARANTINED = "quarantined"
    MISSING_ARTIFACT = "missing_artifact"
    UNSAFE_PATH = "unsafe_path"
    NOT_DEPLOYABLE = "not_deployable"
    SAME_ARTIFACT = "same_artifact"
    LEGACY_SIGNATURE = "legacy_signature"
    OTHER_MODEL = "other_model"
    OTHER_VERSION = "other_version"
    ORDER_MISMATCH = "order_mismatch"


@dataclass(frozen=True)
class Verdict:
    """The outcome of verifying one model directory against the trusted keys."""

    ok: bool
    reason: Reason | None = None
    detail: str = ""
    key: str | None = None
    digest: str | None = None
    release: Release | None = None


def _signing() -> tuple[Any, Any, Any]:
    try:
        from model_signing import hashing, signing, verifying
    except ImportError as exc:  # pyopenssl is an undeclared dependency of model-signing 1.1.1
        raise ConfigError(
            f"model signing needs the 'signing' extra (model-signing and pyopenssl): {exc}"
        ) from exc
    return hashing, signing, verifying


class NeedsSigning:
    """Mixed into the model actuators that verify signatures (a rollback, a switch): they need the `signing` extra."""

    extra: ClassVar[str | None] = "signing"

    def unavailable(self) -> str | None:
        """The import error when model-signing (or pyopenssl, which it needs undeclared) does not import, or None."""
        try:
            _signing()
        except ConfigError as exc:
            return str(exc.__cause__ or exc)
        return None


def generate_key(private_key: Path, public_key: Path) -> str:
    """Write a new ECDSA P-256 key pair (PKCS8 and SubjectPublicKeyInfo PEM); returns the key id."""
    key = ec.generate_private_key(ec.SECP256R1())
    private_key.parent.mkdir(parents=True, exist_ok=True)
    public_key.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    private_key.touch(mode=0o600, exist_ok=False)
    private_key.write_bytes(pem)
    public_key.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return key_id(public_key)


def key_id(public_key: Path) -> str:
    """sha256 of the DER public key: the `hint` model-signing writes into the bundle."""
    try:
        loaded = serialization.load_pem_public_key(public_key.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read public key {public_key}: {exc}") from exc
    der = loaded.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def sign(model_dir: Path, private_key: Path, signature: Path, *, model: str, version: str,
         created: datetime | None = None, hash_name: str = "sha256") -> str:
    """Write the release statement (`model`, `version`, `created`, default now) into `model_dir`, then sign every
    file under it; write the sigstore bundle to `signature`; return the artifact digest (without the statement)."""
    if hash_name not in HASHES:
        raise ConfigError(f"unknown hash {hash_name!r}; valid choices: {', '.join(HASHES)}")
    if not model_dir.is_dir():
        raise ConfigError(f"{model_dir} is not a directory")
    if signature.resolve().is_relative_to(model_dir.resolve()):
        raise ConfigError(f"the signature {signature} must be outside the model directory {model_dir}")
    statement = model_dir / RELEASE_NAME
    if statement.is_symlink():
        raise ConfigError(f"{statement} is a symbolic link; remove it before signing")
    statement.write_bytes(release_for(model, version, created).encode())
    hashing, signing, _ = _signing()
    config = hashing.Config().use_file_serialization(hashing_algorithm=hash_name)
    try:
        signer = signing.Config().use_elliptic_key_signer(private_key=private_key)
        signer.set_hashing_config(config).sign(model_dir, signature)
    except (ValueError, TypeError, AttributeError, OSError) as exc:
        raise ConfigError(f"cannot sign {model_dir} with {private_key} (an ECDSA P-256/384/521 key?): {exc}") from exc
    return bundle_digest(signature.read_bytes()) or ""


def bundle_digest(data: bytes) -> str | None:
    """The artifact digest a bundle's statement names (`sha256:hex`, release statement left out), or None."""
    return content_digest(data)


def verify(model_dir: Path, signature: Path | None, trusted_keys: Sequence[Path]) -> Verdict:
    """Verify `model_dir` against its bundle with each trusted key in turn; say why when it fails."""
    if signature is None or not signature.is_file():
        return Verdict(False, Reason.UNSIGNED, "no signature bundle")
    if not model_dir.is_dir():
        return Verdict(False, Reason.MISSING_ARTIFACT, "the artifact directory is missing")
    if not trusted_keys:
        return Verdict(False, Reason.NO_TRUSTED_KEYS, "no trusted public keys configured (model_trusted_keys)")
    bundle = signature.read_bytes()
    digest = bundle_digest(bundle)
    if digest is None:
        return Verdict(False, Reason.BAD_SIGNATURE, "the signature bundle is not a model-signing bundle")
    _, _, verifying = _signing()
    mismatches: list[str] = []
    for key in trusted_keys:
        try:
            verifier = verifying.Config().use_elliptic_key_verifier(public_key=key)
            verifier.verify(model_dir, signature)
        except ValueError as exc:
            text = str(exc)
            if text.startswith("Key mismatch"):
                mismatches.append(key.name)
                continue
            if text.startswith("Signature mismatch"):
                return Verdict(False, Reason.TAMPERED, text[:500], key=key_id(key), digest=digest)
            return Verdict(False, Reason.BAD_SIGNATURE, text[:500], digest=digest)
        except (OSError, TypeError, KeyError, AttributeError) as exc:
            return Verdict(False, Reason.BAD_SIGNATURE, f"{exc.__class__.__name__}: {exc}"[:500], digest=digest)
        release = signed_release(model_dir, bundle)
        if release is None and signs_release(bundle):
            return Verdict(False, Reason.TAMPERED, f"{RELEASE_NAME} is not the signed release statement",
                           key=key_id(key), digest=digest)
        return Verdict(True, key=key_id(key), digest=digest, release=release)
    return Verdict(False, Reason.UNTRUSTED_KEY, f"signed by none of the trusted keys ({', '.join(mismatches)})",
                   digest=digest)

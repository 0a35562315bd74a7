"""Model signing with OpenSSF model-signing, offline, with local ECDSA keys.

Every function here is synchronous and CPU- or disk-bound: async callers run it in a thread.
A verdict names *why* a version does not verify, because a rollback records that for every
candidate it rejects.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import structlog
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from responder.actuators.model.coverage import Serialization, hashing_config, signed_serialization, uncovered
from responder.actuators.model.release import (
    RELEASE_NAME,
    Release,
    content_digest,
    release_for,
    signed_release,
    signs_release,
)
from responder.actuators.model.versions import printable
from responder.errors import ConfigError

log = structlog.get_logger(__name__)

SIGNATURE_NAME = "model.sig"
HASHES = ("sha256", "blake3")
_STDOUT = threading.Lock()  # held while sys.stdout is redirected around model-signing's verify (`_quietly`)
SAYS_NO = (ValueError, InvalidSignature)  # model-signing's ways to refuse a bundle (ValidationError is a ValueError)


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

    def __post_init__(self) -> None:
        # file names (undecodable bytes) and model-signing's messages reach the detail: it must encode for the timeline
        object.__setattr__(self, "detail", printable(self.detail))


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
    # every file, git-named ones too: model-signing's default leaves .git*/.github out (see coverage.py)
    config = hashing.Config().set_ignored_paths(paths=[], ignore_git_paths=False).use_file_serialization(
        hashing_algorithm=hash_name)
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
    """Verify `model_dir` against its bundle with each trusted key in turn; say why when it fails.

    Whatever model-signing raises on a forged or damaged bundle is a `bad_signature` verdict naming the
    exception's type, never an exception out of here: one bad candidate must not stop a rollback walk.
    """
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
    serialization = signed_serialization(bundle)
    if serialization is None:
        return Verdict(False, Reason.BAD_SIGNATURE, "the signature bundle names no hashing method model-signing "
                       "knows", digest=digest)
    with tempfile.TemporaryDirectory(prefix="responder-bundle-") as private:
        copy = Path(private) / SIGNATURE_NAME  # model-signing checks the very bytes read above, not a later write
        copy.write_bytes(bundle)
        return _verify_with_keys(model_dir, copy, bundle, digest, serialization, trusted_keys)


def _quietly(verify: Callable[[], object]) -> None:
    """Run model-signing's verify with what it print()s to stdout (a hintless bundle's warning) logged instead: the
    CLI's stdout carries JSON. The lock keeps concurrent verifies from swapping sys.stdout under each other."""
    said = io.StringIO()
    try:
        with _STDOUT, contextlib.redirect_stdout(said):
            verify()
    finally:
        if said.getvalue().strip():
            log.warning("model_signing_said", text=" ".join(said.getvalue().split())[:500])


def _verify_with_keys(model_dir: Path, copy: Path, bundle: bytes, digest: str, serialization: Serialization,
                      trusted_keys: Sequence[Path]) -> Verdict:
    hashing, _, verifying = _signing()
    mismatches: list[str] = []
    invalid: InvalidSignature | None = None
    for key in trusted_keys:
        try:
            verifier = verifying.Config().use_elliptic_key_verifier(public_key=key)
            verifier.set_hashing_config(hashing_config(hashing, serialization))
            _quietly(partial(verifier.verify, model_dir, copy))
        except InvalidSignature as exc:  # with no key hint in the bundle, how another key says no: try the next
            invalid = invalid or exc
            continue
        except Exception as exc:  # noqa: BLE001 - model-signing raises all kinds on a damaged bundle: each is a "no"
            text = str(exc)
            if isinstance(exc, ValueError) and text.startswith("Key mismatch"):
                mismatches.append(key.name)
                continue
            if isinstance(exc, ValueError) and text.startswith("Signature mismatch"):
                return Verdict(False, Reason.TAMPERED, text[:500], key=key_id(key), digest=digest)
            return _unverifiable(exc, digest)
        try:
            extra = uncovered(model_dir, bundle)
        except OSError as exc:  # a directory that cannot be listed may hold files nobody signed
            return Verdict(False, Reason.TAMPERED, f"cannot list every file of the artifact: {type(exc).__name__}: "
                           f"{exc}"[:500], key=key_id(key), digest=digest)
        if extra:
            more = f" and {len(extra) - 10} more" if len(extra) > 10 else ""
            return Verdict(False, Reason.TAMPERED, f"files the signature does not list: {', '.join(extra[:10])}{more}"
                           [:500], key=key_id(key), digest=digest)
        release = signed_release(model_dir, bundle)
        if release is None and signs_release(bundle):
            return Verdict(False, Reason.TAMPERED, f"{RELEASE_NAME} is not the signed release statement",
                           key=key_id(key), digest=digest)
        return Verdict(True, key=key_id(key), digest=digest, release=release)
    if invalid is not None:
        return _unverifiable(invalid, digest)
    return Verdict(False, Reason.UNTRUSTED_KEY, f"signed by none of the trusted keys ({', '.join(mismatches)})",
                   digest=digest)


def _unverifiable(exc: Exception, digest: str) -> Verdict:
    """bad_signature naming what model-signing raised, on one line. Logged; with the traceback when it is not one of
    model-signing's ways of saying no, in case the fault is a bug (ours or its) rather than the bundle."""
    kind = type(exc).__name__
    text = " ".join(str(exc).split()) or ("the signature does not match the signed statement"
                                          if isinstance(exc, InvalidSignature) else "no message")
    log.warning("model_signature_unverifiable", error=kind, digest=digest, exc_info=not isinstance(exc, SAYS_NO))
    return Verdict(False, Reason.BAD_SIGNATURE, f"{kind}: {text}"[:500], digest=digest)

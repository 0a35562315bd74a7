"""model-signing wrappers: keys, bundles, and the reason each failed verification gives."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from responder.actuators.model.signing import Reason, bundle_digest, generate_key, key_id, sign, verify
from responder.errors import ConfigError
from tests.modelkit import make_keys, make_model


def test_blake3_bundle_verifies_and_names_its_digest(tmp_path):
    """A blake3-hashed bundle verifies with the default verifier and reports the digest it signed."""
    keys = make_keys(tmp_path)
    model = make_model(tmp_path, "m")
    digest = sign(model, keys.private, tmp_path / "m.sig", model="m", version="v1", hash_name="blake3")
    verdict = verify(model, tmp_path / "m.sig", [keys.wrong_public, keys.public])
    assert verdict.ok
    assert verdict.digest == digest
    assert verdict.key == key_id(keys.public)


def test_removed_file_is_tampering(tmp_path):
    """Deleting a signed file is reported as tampered, not as a bad signature."""
    keys = make_keys(tmp_path)
    model = make_model(tmp_path, "m")
    sign(model, keys.private, tmp_path / "m.sig", model="m", version="v1")
    (model / "tokenizer" / "vocab.txt").unlink()
    assert verify(model, tmp_path / "m.sig", [keys.public]).reason is Reason.TAMPERED


def test_garbage_bundle_is_a_bad_signature(tmp_path):
    """A bundle that is not model-signing JSON is rejected as bad_signature."""
    keys = make_keys(tmp_path)
    model = make_model(tmp_path, "m")
    (tmp_path / "m.sig").write_text('{"not": "a bundle"}')
    assert bundle_digest(b"{}") is None
    assert verify(model, tmp_path / "m.sig", [keys.public]).reason is Reason.BAD_SIGNATURE


def test_ed25519_key_is_refused_with_a_clear_error(tmp_path):
    """model-signing only takes ECDSA keys; an Ed25519 key fails as a ConfigError that says so."""
    key = ed25519.Ed25519PrivateKey.generate()
    pem = tmp_path / "ed.pem"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    with pytest.raises(ConfigError, match="ECDSA"):
        sign(make_model(tmp_path, "m"), pem, tmp_path / "m.sig", model="m", version="v1")


def test_signature_inside_the_model_is_refused(tmp_path):
    """The bundle must live beside the model directory, never inside what it signs."""
    keys = make_keys(tmp_path)
    model = make_model(tmp_path, "m")
    with pytest.raises(ConfigError, match="outside"):
        sign(model, keys.private, model / "model.sig", model="m", version="v1")


def test_keygen_never_overwrites_a_private_key(tmp_path):
    """Generating into an existing private key path fails instead of replacing the key."""
    generate_key(tmp_path / "k.pem", tmp_path / "k.pub")
    before = (tmp_path / "k.pem").read_bytes()
    with pytest.raises(FileExistsError):
        generate_key(tmp_path / "k.pem", tmp_path / "k2.pub")
    assert (tmp_path / "k.pem").read_bytes() == before
    assert Path(tmp_path / "k.pem").stat().st_mode & 0o077 == 0


def test_cli_verify_prints_a_file_name_from_the_model_as_written(tmp_path):
    """`models verify` prints an extra file's name as written, not as rich markup."""
    from typer.testing import CliRunner

    from responder.cli import app

    keys = make_keys(tmp_path)
    model = make_model(tmp_path, "m")
    sign(model, keys.private, tmp_path / "m.sig", model="m", version="v1")
    (model / "evil[bold]x[red]y").write_text("x")
    out = CliRunner().invoke(app, ["models", "verify", str(model), "--key", str(keys.public), "--signature",
                                   str(tmp_path / "m.sig")])
    assert out.exit_code == 1, out.output
    assert "evil[bold]x[red]y" in out.stderr, out.stderr

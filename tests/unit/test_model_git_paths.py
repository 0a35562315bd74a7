"""Git-named files are signed like any other, and a file the signature does not list makes a version `tampered`."""

from __future__ import annotations

from pathlib import Path

import pytest
from model_signing import hashing as ms_hashing
from model_signing import signing as ms_signing

from responder.actuators.model.release import RELEASE_NAME, release_for
from responder.actuators.model.signing import Reason, sign, verify
from tests.modelkit import Keys, make_model

GIT_PATHS = (".gitattributes", ".gitignore", ".github/workflows/x.yml", ".git/hooks/post-checkout")


def _add(model: Path, name: str, text: str = "added") -> None:
    path = model / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _sign_with(model: Path, keys: Keys, signature: Path, config: ms_hashing.Config) -> None:
    """Sign as a release pipeline using the model_signing library would: statement first, then `config`."""
    (model / RELEASE_NAME).write_bytes(release_for("m", "v1").encode())
    ms_signing.Config().use_elliptic_key_signer(private_key=keys.private).set_hashing_config(config).sign(
        model, signature)


@pytest.mark.parametrize("name", GIT_PATHS)
def test_a_git_named_file_added_after_signing_is_tampering(tmp_path, keys, name):
    """A .git*/.github file added to a signed directory makes it tampered, as any other added file does."""
    model = make_model(tmp_path, "m")
    sign(model, keys.private, tmp_path / "m.sig", model="m", version="v1")
    _add(model, name)
    verdict = verify(model, tmp_path / "m.sig", [keys.public])
    assert (verdict.ok, verdict.reason) == (False, Reason.TAMPERED)
    assert name in verdict.detail


def test_git_named_files_present_at_signing_are_signed(tmp_path, keys):
    """`sign` covers .gitattributes and .git/ files: the directory verifies, and changing one is tampering."""
    model = make_model(tmp_path, "m")
    _add(model, ".gitattributes", "*.bin filter=lfs")
    _add(model, ".git/HEAD", "ref: refs/heads/main")
    sign(model, keys.private, tmp_path / "m.sig", model="m", version="v1")
    assert verify(model, tmp_path / "m.sig", [keys.public]).ok
    _add(model, ".git/HEAD", "ref: refs/heads/evil")
    assert verify(model, tmp_path / "m.sig", [keys.public]).reason is Reason.TAMPERED


def test_a_bundle_signed_with_the_old_default_config_verifies_until_a_git_file_appears(tmp_path, keys):
    """A bundle hashed with model-signing's defaults (git paths ignored) verifies; a .gitignore added is tampered."""
    model = make_model(tmp_path, "m")
    _sign_with(model, keys, tmp_path / "m.sig", ms_hashing.Config())
    before = verify(model, tmp_path / "m.sig", [keys.public])
    assert before.ok
    assert before.release is not None
    _add(model, ".gitignore", "*.tmp")
    verdict = verify(model, tmp_path / "m.sig", [keys.public])
    assert (verdict.reason, verdict.digest) == (Reason.TAMPERED, before.digest)


def test_a_path_the_signer_declared_ignored_is_not_trusted_when_present(tmp_path, keys):
    """A bundle whose signer ignored README.md verifies without it; with a README.md present it is tampered."""
    model = make_model(tmp_path, "m")
    _sign_with(model, keys, tmp_path / "m.sig", ms_hashing.Config().set_ignored_paths(paths=["README.md"]))
    assert verify(model, tmp_path / "m.sig", [keys.public]).ok
    _add(model, "README.md", "run me")
    assert verify(model, tmp_path / "m.sig", [keys.public]).reason is Reason.TAMPERED

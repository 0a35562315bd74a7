"""Verification edges: hintless bundles and several keys, model-signing's stdout, unlistable directories, odd files."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs
from typer.testing import CliRunner

from responder.actuators.model import signing
from responder.actuators.model.local import LocalStore
from responder.actuators.model.signing import Reason, sign, verify
from responder.cli.app import app
from responder.cli.output import EXIT_CONFIG
from responder.sandbox import lifeline
from tests.modelkit import Keys, legacy_sign, make_model, publish, settings_registry

ROOT = Path(__file__).resolve().parents[2]


def _drop_hint(signature: Path) -> None:
    """Rewrite a bundle as model-signing before 1.0 wrote it: no key hint."""
    bundle = json.loads(signature.read_bytes())
    bundle["verificationMaterial"]["publicKey"].pop("hint", None)
    signature.write_text(json.dumps(bundle))


@pytest.fixture(name="clean_logging")
def _clean_logging() -> Iterator[None]:
    """The CLI binds structlog to CliRunner's streams; restore the defaults for later tests."""
    yield
    structlog.reset_defaults()


def test_a_bundle_without_a_key_hint_is_tried_against_every_trusted_key(tmp_path, keys):
    """No hint, signed by the second trusted key (a key rotation): it verifies whatever the order of the keys."""
    model = make_model(tmp_path, "m")
    sign(model, keys.private, tmp_path / "m.sig", model="m", version="v1")
    _drop_hint(tmp_path / "m.sig")
    for order in ([keys.public, keys.wrong_public], [keys.wrong_public, keys.public]):
        verdict = verify(model, tmp_path / "m.sig", order)
        assert (verdict.ok, verdict.reason) == (True, None), order
    assert verify(model, tmp_path / "m.sig", [keys.wrong_public]).reason is Reason.BAD_SIGNATURE


def test_models_check_json_stays_json_for_a_bundle_without_a_key_hint(tmp_path, keys, monkeypatch, clean_logging):
    """model-signing prints a warning for a hintless bundle: `models check --json` keeps stdout JSON, and logs it."""
    store = settings_registry(tmp_path, keys, monkeypatch)
    asyncio.run(publish(store, tmp_path / "w", "fraud", "v1", keys.private))
    asyncio.run(store.set_serving("fraud", asyncio.run(store.versions("fraud"))[-1]))
    _drop_hint(store.root / "fraud" / "versions" / "v1" / "model.sig")
    out = CliRunner().invoke(app, ["models", "check", "fraud", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["ok"] is True
    assert "model_signing_said" in out.stderr


UNLISTABLE = """
import sys
from pathlib import Path
from responder.actuators.model.signing import verify
root = Path(sys.argv[1])
verdict = verify(root / "m" / "model", root / "m.sig", [root / "keys" / "trusted.pub.pem"])
print(verdict.reason, verdict.detail)
"""


def test_a_directory_that_cannot_be_listed_fails_verification(keys):
    """A 0311 directory (not listable by responder) holding an unsigned file is tampered, never verified ok."""
    as_root = os.geteuid() == 0
    if as_root and shutil.which("setpriv") is None:
        pytest.skip("running as root, which lists any directory, and no setpriv to run the check as another user")
    with tempfile.TemporaryDirectory(prefix="responder-unlistable-") as tmp:
        root = Path(tmp)
        root.chmod(0o755)
        shutil.copytree(keys.public.parent, root / "keys")
        model = make_model(root, "m")
        sign(model, root / "keys" / "trusted.pem", root / "m.sig", model="m", version="v1")
        (model / "extra").mkdir()
        (model / "extra" / "evil.py").write_text("import os  # unsigned\n")
        for path in [root, *root.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        (model / "extra").chmod(0o311)  # searchable, not listable: a loader that knows the name opens the file
        command = [sys.executable, "-c", UNLISTABLE, str(root)]
        if as_root:
            command = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", *command]
        done = lifeline.run(command, capture_output=True, text=True, check=False, cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        (model / "extra").chmod(0o755)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("tampered cannot list every file of the artifact"), done.stdout


def _old_bundle_with(tmp_path: Path, keys: Keys, name: str, make: str) -> Path:
    """A model signed with model-signing's defaults (.git/ left out), then `name` made under its .git/ as `make`."""
    model = make_model(tmp_path, "m")
    sign(model, keys.private, tmp_path / "m.sig", model="m", version="v1")
    legacy_sign(model, keys.private, tmp_path / "m.sig")  # the statement stays listed, .git/ is not hashed
    (model / ".git").mkdir()
    path = os.fsencode(model / ".git") + b"/" + os.fsencode(name)
    if make == "file":
        with open(path, "wb") as fh:
            fh.write(b"unsigned")
    elif make == "symlink":
        os.symlink(os.fsencode(model / "weights.bin"), path)
    else:
        os.mkfifo(path)
    return model


@pytest.mark.parametrize(("name", "make", "reason", "shown"), [
    ("link", "symlink", Reason.BAD_SIGNATURE, "link"),
    ("pipe", "fifo", Reason.BAD_SIGNATURE, "pipe"),
    ("\udcff-name", "file", Reason.TAMPERED, ".git/\\xff-name"),
], ids=["symlink", "fifo", "non-utf8 name"])
def test_odd_files_under_a_path_an_old_bundle_ignored_are_refused(tmp_path, keys, name, make, reason, shown):
    """A symlink or FIFO under .git/ of an old bundle is bad_signature; a non-UTF-8 name is tampered, escaped."""
    model = _old_bundle_with(tmp_path, keys, name, make)
    verdict = verify(model, tmp_path / "m.sig", [keys.public])
    assert verdict.reason is reason
    assert shown in verdict.detail
    verdict.detail.encode("utf-8")  # no lone surrogate: it can be written to the timeline


def test_resign_refuses_an_old_bundle_with_git_files_it_does_not_list(tmp_path, keys, monkeypatch):
    """`models resign` of a legacy version whose .gitattributes its bundle left out: refused as tampered, unchanged."""
    settings_registry(tmp_path, keys, monkeypatch)
    src = make_model(tmp_path / "w", "fraud-v1")
    (src / ".gitattributes").write_text("*.bin filter=lfs")
    legacy_sign(src, keys.private, src.with_name("model.sig"))
    store = LocalStore(tmp_path / "registry")
    asyncio.run(store.publish("fraud", "v1", src, src.with_name("model.sig")))
    bundle = store.root / "fraud" / "versions" / "v1" / "model.sig"
    original = bundle.read_bytes()
    out = CliRunner().invoke(app, ["models", "resign", "fraud", "v1", "--key", str(keys.private)])
    assert out.exit_code == EXIT_CONFIG, out.output
    assert "tampered" in out.output
    assert ".gitattributes" in out.output
    assert bundle.read_bytes() == original


def test_an_exception_from_our_own_code_is_logged_with_its_traceback(tmp_path, keys, monkeypatch):
    """A bug inside verification (here hashing_config) is bad_signature naming it, logged with exc_info; a no is not."""
    model = make_model(tmp_path, "m")
    sign(model, keys.private, tmp_path / "m.sig", model="m", version="v1")

    def broken(hashing: object, serialization: object) -> object:
        raise AttributeError("a bug of ours")

    monkeypatch.setattr(signing, "hashing_config", broken)
    with capture_logs() as logs:
        verdict = verify(model, tmp_path / "m.sig", [keys.public])
    assert (verdict.reason, verdict.detail) == (Reason.BAD_SIGNATURE, "AttributeError: a bug of ours")
    assert [(e["event"], e["exc_info"]) for e in logs] == [("model_signature_unverifiable", True)]
    monkeypatch.undo()
    _drop_hint(tmp_path / "m.sig")
    (model / "config.json").write_text("{}")
    with capture_logs() as logs:
        assert verify(model, tmp_path / "m.sig", [keys.wrong_public]).reason is Reason.BAD_SIGNATURE
    assert [(e["event"], e["exc_info"]) for e in logs if e["event"] == "model_signature_unverifiable"] == [
        ("model_signature_unverifiable", False)]

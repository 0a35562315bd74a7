"""The package as users get it: sdist and wheel build, and the installed wheel runs the demo."""

from __future__ import annotations

import os
import shutil
import sys
import tarfile
import zipfile
from pathlib import Path

import orjson
import pytest

import responder
from responder.sandbox import lifeline

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
UV = str(Path(sys.executable).with_name("uv"))  # from the test extra; its cache keeps the install to seconds


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    proc = lifeline.run(cmd, cwd=cwd, env=env, capture_output=True, timeout=timeout, check=False)
    output = proc.stdout.decode()[-2000:] + proc.stderr.decode()[-3000:]
    assert proc.returncode == 0, f"{cmd}: exit {proc.returncode}\n{output}"
    return proc.stdout.decode()


@pytest.fixture(scope="module", name="dist")
def _dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist, and the wheel built from it, from the Dockerfile's sources (uv builds as `python -m build` does)."""
    out = tmp_path_factory.mktemp("dist")
    src = tmp_path_factory.mktemp("src")
    # build from exactly what the Dockerfile copies before its `pip install .`, out of the committed files
    copied = [part for line in (ROOT / "Dockerfile").read_text().splitlines()  # not a later stage's --from copies
              if line.startswith("COPY ") and "--from=" not in line for part in line.split()[1:-1]]
    assert {"pyproject.toml", "responder", "runbooks"} <= set(copied)
    files = lifeline.run(["git", "ls-files", "-z", *copied], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    _run([UV, "build", "--quiet", "--out-dir", str(out), str(src)], cwd=src)
    return out


def test_sdist_and_wheel_carry_the_package_data(dist: Path) -> None:
    """The sdist and the wheel (built from it) hold the sandbox finding and the shipped runbooks, each once."""
    wheel = next(dist.glob("*.whl"))
    sdist = next(dist.glob("*.tar.gz"))
    names = zipfile.ZipFile(wheel).namelist()
    assert names.count("responder/sandbox/findings/guardduty-credential-exfiltration.json") == 1
    assert "responder/shipped_runbooks/credential-exfiltration.yaml" in names
    with tarfile.open(sdist) as tar:
        members = tar.getnames()
    assert any(m.endswith("runbooks/credential-exfiltration.yaml") for m in members)


def test_installed_wheel_runs_version_and_demo(dist: Path, tmp_path: Path) -> None:
    """A fresh venv with only the wheel (and its sandbox extra) answers --version and passes the demo."""
    env_dir = tmp_path / "venv"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RESPONDER_", "PYTHON", "VIRTUAL_ENV"))}
    _run([UV, "venv", "--quiet", "--python", sys.executable, str(env_dir)], cwd=tmp_path, env=env)
    assert "include-system-site-packages = false" in (env_dir / "pyvenv.cfg").read_text()
    wheel = next(dist.glob("*.whl"))
    _run([UV, "pip", "install", "--quiet", "--python", str(env_dir / "bin" / "python"), f"{wheel}[sandbox]"],
         cwd=tmp_path, env=env)
    workdir = tmp_path / "empty"  # no runbooks/ here: the demo must use the ones in the wheel
    workdir.mkdir()
    exe = str(env_dir / "bin" / "responder")
    assert _run([exe, "--version"], cwd=workdir, env=env).strip().endswith(responder.__version__)
    out = _run([exe, "demo", "--json"], cwd=workdir, env=env, timeout=120)
    summary = orjson.loads(out.splitlines()[-1])
    assert summary["ok"] is True
    assert summary["key_status"] == "Inactive"

"""The deployment files as the deploy tests read them (tests/unit/test_deploy.py, test_deploy_chart.py): paths,
the parsed compose file and chart values, and `helm template` when helm is installed."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from responder.sandbox import lifeline

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "deploy" / "helm" / "responder"
VALUES = yaml.safe_load((CHART / "values.yaml").read_text())
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def helm_template(*args: str) -> list[dict[str, Any]] | None:
    """The chart's objects as `helm template r CHART ARGS…` renders them; None when helm is not installed. A render
    helm refuses (a `fail` in a template) raises CalledProcessError, its message in `stderr`."""
    helm = shutil.which("helm")
    if helm is None:
        return None
    out = lifeline.run([helm, "template", "r", str(CHART), *args], capture_output=True, check=True, timeout=60,
                       text=True)
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def helm_refusal(*args: str) -> str | None:
    """What helm prints when it refuses to render with ARGS (a `fail` in a template); None when helm is not
    installed. AssertionError when it renders."""
    helm = shutil.which("helm")
    if helm is None:
        return None
    out = lifeline.run([helm, "template", "r", str(CHART), *args], capture_output=True, check=False, timeout=60,
                       text=True)
    assert out.returncode != 0, f"helm rendered {args}"
    return str(out.stderr)


def template_text(name: str) -> str:
    """One template's source (templates/NAME)."""
    return (CHART / "templates" / name).read_text()

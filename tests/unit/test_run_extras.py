"""`responder run` refuses to start (exit 3, one line) when a loaded runbook uses an actuator whose optional
dependency is not installed (a `model.*` rollback without the `signing` extra), instead of failing at incident time."""

from __future__ import annotations

import gc
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from responder.actuators.registry import registry
from responder.catalog import load_runbooks
from responder.catalog.extras import missing_extras
from responder.cli import app

SHIPPED = Path(__file__).resolve().parents[2] / "runbooks"


@pytest.fixture
def no_signing(monkeypatch: pytest.MonkeyPatch) -> None:
    """model-signing cannot be imported, as in an install without the `signing` extra."""
    monkeypatch.setitem(sys.modules, "model_signing", None)


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No RESPONDER_* variable of the caller's; a runbook directory (returned) and a timeline under tmp_path."""
    for name in [n for n in os.environ if n.startswith("RESPONDER_")]:
        monkeypatch.delenv(name)
    books = tmp_path / "runbooks"
    books.mkdir()
    monkeypatch.setenv("RESPONDER_RUNBOOKS_DIR", str(books))
    monkeypatch.setenv("RESPONDER_TIMELINE_PATH", str(tmp_path / "t.jsonl"))
    monkeypatch.setenv("RESPONDER_KAFKA_BOOTSTRAP", "127.0.0.1:9")
    return books


def test_run_without_the_signing_extra_refuses_a_model_runbook(no_signing, environment: Path) -> None:
    """A model.rollback_to_last_signed runbook without model-signing: exit 3, one line naming it and the extra."""
    shutil.copy(SHIPPED / "model-unsigned-deployed.yaml", environment)
    gc.collect()  # another test's unclosed Kafka clients, collected during the run, would log on this stderr
    result = CliRunner().invoke(app, ["run"])
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output
    [line] = [x for x in result.stderr.splitlines() if x.startswith("✗")]
    assert "model-unsigned-deployed" in line
    assert "model.rollback_to_last_signed" in line
    assert "'signing' extra" in line
    assert "incident-responder[signing]" in line


def test_only_runbooks_using_an_actuator_that_needs_the_extra_are_named(no_signing) -> None:
    """The shipped model runbooks are named; those of IAM, EC2 or notify actuators (or quarantine alone) are not."""
    missing = missing_extras(load_runbooks(SHIPPED, registry), registry)
    assert {m.runbook for m in missing} == {"model-artifact-tampered", "model-drift-sustained",
                                            "model-unsigned-deployed"}
    assert {m.actuator for m in missing} == {"model.rollback_to_last_signed"}
    assert {m.extra for m in missing} == {"signing"}


def test_with_the_extra_installed_nothing_is_missing() -> None:
    """Where model-signing imports (the image, the test install) no runbook is refused."""
    assert missing_extras(load_runbooks(SHIPPED, registry), registry) == []


def _stopped_after_the_runbooks(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """A setting the service refuses once it has loaded the runbooks (exit 3 before Kafka); the directories loaded."""
    monkeypatch.setenv("RESPONDER_TOPIC_FORMATS", '{"security.alerts": "no-such-format"}')
    loaded: list[Path] = []

    def counted(directory: Path, *args: Any, **kwargs: Any) -> Any:
        loaded.append(directory)
        return load_runbooks(directory, *args, **kwargs)

    monkeypatch.setattr("responder.catalog.load_runbooks", counted)
    monkeypatch.setattr("responder.service.core.load_runbooks", counted)
    return loaded


def test_a_dry_run_without_the_signing_extra_is_refused_too(no_signing, environment: Path) -> None:
    """`run --dry-run` refuses a model runbook without model-signing too: its rollback plan verifies signatures."""
    shutil.copy(SHIPPED / "model-unsigned-deployed.yaml", environment)
    gc.collect()
    result = CliRunner().invoke(app, ["run", "--dry-run"])
    assert result.exit_code == 3, result.output
    [line] = [x for x in result.stderr.splitlines() if x.startswith("✗")]
    assert "'signing' extra" in line


def test_run_loads_the_runbook_directory_once(environment: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`responder run` reads its runbook directory once at start (the extras check and the service share it)."""
    shutil.copy(SHIPPED / "model-unsigned-deployed.yaml", environment)
    loaded = _stopped_after_the_runbooks(monkeypatch)
    gc.collect()
    result = CliRunner().invoke(app, ["run"])
    assert result.exit_code == 3, result.output
    assert loaded == [environment]


def test_the_service_itself_serves_without_the_extra(no_signing, environment: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Only `run` refuses: `make demo` and tabletops build the service in an install without `signing`."""
    from responder.errors import ConfigError
    from responder.service import Service
    from responder.settings import Settings

    shutil.copy(SHIPPED / "model-unsigned-deployed.yaml", environment)
    _stopped_after_the_runbooks(monkeypatch)
    with pytest.raises(ConfigError, match="no-such-format"):
        Service(Settings())

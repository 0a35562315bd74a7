"""Conventions every command keeps: one `--json` option meaning one JSON document, and the old command names."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import typer
from typer.testing import CliRunner

from responder.cli import app
from responder.cli.options import JSON_HELP
from responder.sandbox import lifeline


def _commands(group: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(full name, command) for every leaf command under `group` (typer's vendored click objects)."""
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):
            yield from _commands(cmd, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}", cmd


def test_every_json_option_promises_one_document() -> None:
    """Every command's --json is the shared option, whose help says one JSON document per invocation."""
    root = typer.main.get_command(app)
    with_json = {name: cmd for name, cmd in _commands(root) if any("--json" in p.opts for p in cmd.params)}
    assert {"actuators list", "events normalise", "timeline show", "models history", "runbooks explain"} <= set(
        with_json)
    for name, cmd in with_json.items():
        option = next(p for p in cmd.params if "--json" in p.opts)
        assert option.help == JSON_HELP, name


def test_old_top_level_names_still_work() -> None:
    """`responder schema` and `responder iam-policy` still answer, as hidden aliases of their group commands."""
    runner = CliRunner()
    assert runner.invoke(app, ["schema"]).stdout == runner.invoke(app, ["runbooks", "schema"]).stdout
    assert runner.invoke(app, ["iam-policy"]).exit_code == 0


def test_help_shows_no_typer_type_metavars() -> None:
    """No help page shows `<bool>` on a flag or `<list[Path]>` on a repeatable option."""
    runner = CliRunner()
    root = typer.main.get_command(app)
    pages = [runner.invoke(app, ["--help"]).output] + [
        runner.invoke(app, [*name.split(), "--help"]).output for name, _ in _commands(root)]
    for page in pages:
        assert "<bool>" not in page
        assert "<list[" not in page


def test_version() -> None:
    """`responder --version` prints the package version."""
    from responder import __version__

    assert CliRunner().invoke(app, ["--version"]).stdout.strip() == f"responder {__version__}"


def test_make_demo_installs_only_the_sandbox_extra(tmp_path) -> None:
    """`make demo` on a fresh machine installs the package with its sandbox extra, not the dev tools."""
    import shutil
    from pathlib import Path

    if shutil.which("make") is None:  # pragma: no cover - CI has make
        return
    root = Path(__file__).resolve().parents[2]
    plan = lifeline.run(["make", "-n", "demo", f"VENV={tmp_path / 'venv'}"], cwd=root, capture_output=True,
                        text=True, check=True).stdout
    assert "-e '.[sandbox]'" in plan
    assert "[dev]" not in plan

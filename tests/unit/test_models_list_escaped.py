"""`responder models list` prints the serving pointer's text (a registry writer's) escaped, markup not interpreted."""

from __future__ import annotations

import asyncio
from pathlib import Path

from typer.testing import CliRunner

from responder.actuators.model.local import LocalStore
from responder.cli import app
from tests.modelkit import publish


def test_list_prints_the_pointer_files_escape_sequence_and_markup_as_text(tmp_path: Path, keys):
    """A pointer holding an OSC/CSI escape and rich markup: the title shows `\\x1b` and `[red]`, nothing raw."""
    store = LocalStore(tmp_path / "registry")
    asyncio.run(publish(store, tmp_path / "w", "fraud", "v1", keys.private))  # the command runs its own loop
    (tmp_path / "registry" / "fraud" / "serving").write_text("\x1b]0;pwned\x07\x1b[2J[red]v9[/red]\n")
    result = CliRunner().invoke(app, ["models", "list", "fraud", "--registry", str(tmp_path / "registry")],
                                env={"RESPONDER_MODEL_REGISTRY": str(tmp_path / "registry")})
    out = result.output.replace("\n", "").replace(" ", "")
    assert result.exit_code == 0, result.output
    assert not {"\x1b", "\x07"} & set(result.output)
    assert "\\x1b]0;pwned\\x07\\x1b[2J[red]v9[/red]" in out

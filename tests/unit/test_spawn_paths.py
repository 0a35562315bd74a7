"""Every child process the sandbox, the tests and the benchmarks start goes through responder.sandbox.lifeline, so
none outlives the process that started it (a pytest run cut by `timeout` or a cancelled CI job leaves none behind)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIFELINE = ROOT / "responder" / "sandbox" / "lifeline.py"
SUBPROCESS = {"Popen", "run", "call", "check_call", "check_output", "getoutput", "getstatusoutput"}
ASYNCIO = {"create_subprocess_exec", "create_subprocess_shell", "subprocess_exec", "subprocess_shell"}
OS = {"system", "popen", "spawnl", "spawnle", "spawnlp", "spawnlpe", "spawnv", "spawnve", "spawnvp", "spawnvpe",
      "posix_spawn", "posix_spawnp", "fork", "forkpty"}
FROM = {"subprocess": SUBPROCESS, "os": OS, "asyncio": ASYNCIO, "asyncio.subprocess": ASYNCIO}


def _spawns(source: str) -> list[str]:
    """The lines of `source` that start a child process other than through lifeline: a call, or a function handed to a
    call (`asyncio.to_thread(subprocess.run, ...)`), through the module's name or an alias of it, or a name imported."""
    tree = ast.parse(source)
    modules = {"subprocess": "subprocess", "os": "os"}  # a name in the source -> the module it stands for
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {a.asname: a.name for a in node.names if a.asname and a.name in ("subprocess", "os")}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in FROM:
            found += [(node.lineno, f"from {node.module} import {a.name}") for a in node.names
                      if a.name in FROM[node.module]]
        if not isinstance(node, ast.Call):
            continue
        for ref in [node.func, *node.args, *(k.value for k in node.keywords)]:
            owner = ref.value.id if isinstance(ref, ast.Attribute) and isinstance(ref.value, ast.Name) else ""
            name = ref.attr if isinstance(ref, ast.Attribute) else ""
            if name in ASYNCIO or name in {"subprocess": SUBPROCESS, "os": OS}.get(modules.get(owner, ""), ()):
                found.append((ref.lineno, f"{owner}.{name}"))
    return [f"{line} {what}" for line, what in sorted(found)]


def test_the_check_finds_each_way_of_starting_a_child() -> None:
    """subprocess calls, imports, aliases, functions handed on, asyncio's subprocess calls, os.system/fork: found."""
    source = ("import subprocess, os\nfrom subprocess import PIPE, Popen\nsubprocess.run(['x'])\n"
              "await asyncio.create_subprocess_exec('x')\nawait loop.subprocess_exec(f, 'x')\nos.system('x')\n"
              "await asyncio.to_thread(subprocess.check_output, ['x'])\n"
              "proc: subprocess.Popen[bytes] = lifeline.popen(['x'])\nlifeline.run(['x'], stdout=subprocess.PIPE)\n"
              "import subprocess as sp\nsp.Popen(['x'])\nfrom asyncio import create_subprocess_exec\n"
              "from os import fork, path\nos.fork()\n")
    assert _spawns(source) == ["2 from subprocess import Popen", "3 subprocess.run", "4 asyncio.create_subprocess_exec",
                               "5 loop.subprocess_exec", "6 os.system", "7 subprocess.check_output", "11 sp.Popen",
                               "12 from asyncio import create_subprocess_exec", "13 from os import fork", "14 os.fork"]


def test_every_child_is_started_through_lifeline() -> None:
    """No module of responder/, tests/ or bench/ but lifeline itself starts a child process directly."""
    paths = [p for d in ("responder", "tests", "bench") for p in sorted((ROOT / d).rglob("*.py")) if p != LIFELINE]
    bad = [f"{path.relative_to(ROOT)}:{where}" for path in paths for where in _spawns(path.read_text(encoding="utf-8"))]
    assert not bad, "children started without responder.sandbox.lifeline:\n" + "\n".join(bad)

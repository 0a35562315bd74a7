"""The project's rule for its tests: each test says in a one-line docstring the behaviour it checks."""

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def _without_one_line_docstring(source: str) -> list[str]:
    """The test functions of `source` whose body does not open with a non-empty docstring on a single line."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test"):
            first, doc = node.body[0], ast.get_docstring(node, clean=False)
            if doc is None or not doc.strip() or first.lineno != first.end_lineno:
                found.append(f"{node.lineno} {node.name}")
    return found


def test_the_check_finds_a_missing_an_empty_and_a_wrapped_docstring() -> None:
    """A test without a docstring, with an empty one or with one over two lines is reported; a one-line one is not."""
    source = ('def test_a():\n    pass\n\n\ndef test_b():\n    """"""\n\n\n'
              'async def test_c():\n    """Two\n    lines."""\n\n\ndef test_d():\n    """One line."""\n')
    assert _without_one_line_docstring(source) == ["1 test_a", "5 test_b", "9 test_c"]


def test_every_test_has_a_one_line_docstring() -> None:
    """Every test function under tests/ opens with a non-empty docstring written on a single line."""
    bad = [f"{path.relative_to(TESTS.parent)}:{where}" for path in sorted(TESTS.rglob("*.py"))
           for where in _without_one_line_docstring(path.read_text(encoding="utf-8"))]
    assert not bad, "tests without a one-line docstring:\n" + "\n".join(bad)

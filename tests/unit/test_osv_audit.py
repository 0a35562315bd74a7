"""The offline OSV audit (tools/osv_audit.py): ranges, listed versions, withdrawn advisories, ignores."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

TOOL = Path(__file__).resolve().parents[2] / "tools" / "osv_audit.py"


@pytest.fixture(scope="module")
def osv() -> ModuleType:
    spec = importlib.util.spec_from_file_location("osv_audit", TOOL)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["osv_audit"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _db(tmp_path: Path) -> Path:
    folder = tmp_path / "vulns" / "Some_Lib"
    folder.mkdir(parents=True)
    (folder / "PYSEC-1.yaml").write_text(
        "id: PYSEC-1\naliases: [CVE-1]\nmodified: '2024-01-02T00:00:00Z'\naffected:\n"
        "- package: {name: some-lib, ecosystem: PyPI}\n"
        "  ranges:\n  - type: ECOSYSTEM\n    events: [{introduced: '0'}, {fixed: '2.0'}]\n")
    (folder / "PYSEC-2.yaml").write_text(
        "id: PYSEC-2\nmodified: '2024-03-01T00:00:00Z'\naffected:\n"
        "- package: {name: some-lib, ecosystem: PyPI}\n  versions: ['3.1']\n")
    (folder / "PYSEC-3.yaml").write_text(
        "id: PYSEC-3\nwithdrawn: '2024-02-01T00:00:00Z'\nmodified: '2024-02-01T00:00:00Z'\naffected:\n"
        "- package: {name: some-lib, ecosystem: PyPI}\n"
        "  ranges:\n  - type: ECOSYSTEM\n    events: [{introduced: '0'}]\n")
    (folder / "PYSEC-4.yaml").write_text(
        "id: PYSEC-4\nmodified: '2024-01-01T00:00:00Z'\naffected:\n"
        "- package: {name: some-lib, ecosystem: PyPI}\n"
        "  ranges:\n  - type: ECOSYSTEM\n    events: [{introduced: '4.0'}, {last_affected: '4.2'}]\n")
    return tmp_path


@pytest.mark.parametrize(("version", "ids"), [
    ("1.9", ["PYSEC-1"]), ("2.0", []), ("3.1", ["PYSEC-2"]), ("4.2", ["PYSEC-4"]), ("4.3", []),
])
def test_a_version_is_flagged_by_exactly_the_advisories_whose_ranges_or_lists_hold_it(osv, tmp_path, version, ids):
    """Ranges (fixed, last_affected) and listed versions decide; a withdrawn advisory never applies."""
    findings, newest = osv.audit(_db(tmp_path), {"some-lib": version})
    assert sorted(f.id for f in findings) == ids
    assert newest.startswith("2024-03-01")


def test_an_ignored_alias_silences_its_advisory_and_other_packages_are_untouched(osv, tmp_path):
    """`--ignore` accepts an alias; a package the database does not name has no finding."""
    db = _db(tmp_path)
    assert osv.audit(db, {"some-lib": "1.0"}, frozenset({"CVE-1"}))[0] == []
    assert osv.audit(db, {"other": "1.0"})[0] == []


def test_the_command_exits_1_on_a_finding_and_2_without_a_database(osv, tmp_path, monkeypatch, capsys):
    """Exit codes: 1 when an advisory applies, 2 when the path is not an advisory database."""
    monkeypatch.setattr(osv, "installed", lambda: {"some-lib": "1.0"})
    assert osv.main(["--db", str(_db(tmp_path))]) == 1
    assert "PYSEC-1" in capsys.readouterr().out
    assert osv.main(["--db", str(tmp_path / "missing")]) == 2

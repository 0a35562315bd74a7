"""The README shows the shipped runbook exactly as it is."""

from __future__ import annotations

from tests.conftest import ROOT


def test_readme_runbook_matches_the_file():
    """The runbook printed 'in full' in README.md is byte-for-byte the file in runbooks/."""
    readme = (ROOT / "README.md").read_text()
    marker = "`runbooks/iam-credential-compromise.yaml`, in full:\n\n```yaml\n"
    start = readme.index(marker) + len(marker)
    shown = readme[start : readme.index("```", start)]
    assert shown == (ROOT / "runbooks" / "iam-credential-compromise.yaml").read_text()

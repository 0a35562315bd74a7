"""Audit the installed distributions against a local copy of an OSV advisory database (no network).

`pip-audit` needs the PyPI JSON API or OSV's web service, which this CI cannot reach (docs/security.md).
This is the equivalent that works offline: point it at a checkout of the PyPA advisory database
(https://github.com/pypa/advisory-database, `vulns/<package>/<id>.yaml`, OSV schema) and it checks every
installed distribution's version against each advisory's `versions` list and `ECOSYSTEM` ranges.

    .venv/bin/python tools/osv_audit.py --db PATH/TO/advisory-database [--ignore PYSEC-… ...] [--json]

Exit 0: no advisory applies. Exit 1: at least one does (each printed with its fixed versions). Exit 2: the
database path is not an advisory database. The result is only as fresh as the database copy: its newest
`modified` date is printed with the result.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from importlib.metadata import distributions
from pathlib import Path
from typing import Any

import yaml
from packaging.version import InvalidVersion, Version


@dataclass(frozen=True)
class Finding:
    """One advisory that applies to one installed distribution."""

    package: str
    version: str
    id: str
    aliases: tuple[str, ...]
    fixed: tuple[str, ...]


def canonical(name: str) -> str:
    """The PEP 503 normalised project name (`Jinja2` and `jinja_2` compare equal as `jinja2`, `jinja-2`)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def installed() -> dict[str, str]:
    """Every installed distribution's canonical name → version."""
    return {canonical(d.metadata["Name"]): d.version for d in distributions() if d.metadata["Name"]}


def _ranges_hit(version: Version, ranges: Iterable[dict[str, Any]]) -> bool:
    """Whether `version` lies inside an OSV `ECOSYSTEM` range (events evaluated in order, per the OSV spec)."""
    for rng in ranges:
        if rng.get("type") != "ECOSYSTEM":
            continue
        hit = False
        for event in rng.get("events", []):
            try:
                if "introduced" in event:
                    intro = str(event["introduced"])
                    if intro == "0" or version >= Version(intro):
                        hit = True
                elif _ends(event, version):
                    hit = False
            except InvalidVersion:
                continue
        if hit:
            return True
    return False


def _ends(event: dict[str, Any], version: Version) -> bool:
    """Whether a `fixed` or `last_affected` event closes the range below `version`."""
    if "fixed" in event:
        return version >= Version(str(event["fixed"]))
    return "last_affected" in event and version > Version(str(event["last_affected"]))


def _fixed_in(affected: dict[str, Any]) -> tuple[str, ...]:
    return tuple(str(e["fixed"]) for r in affected.get("ranges", []) if r.get("type") == "ECOSYSTEM"
                 for e in r.get("events", []) if "fixed" in e)


def applies(advisory: dict[str, Any], package: str, version: str) -> Finding | None:
    """The finding when `advisory` affects `package` at `version` (withdrawn advisories never do)."""
    if advisory.get("withdrawn"):
        return None
    try:
        parsed = Version(version)
    except InvalidVersion:
        parsed = None
    for affected in advisory.get("affected", []):
        pkg = affected.get("package", {})
        if pkg.get("ecosystem") != "PyPI" or canonical(str(pkg.get("name", ""))) != package:
            continue
        listed = version in {str(v) for v in affected.get("versions", [])}
        if listed or (parsed is not None and _ranges_hit(parsed, affected.get("ranges", []))):
            return Finding(package, version, str(advisory.get("id")), tuple(advisory.get("aliases") or ()),
                           _fixed_in(affected))
    return None


def advisories(db: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(canonical package name, advisory) for every advisory file under `db/vulns`."""
    for folder in sorted((db / "vulns").iterdir()):
        if folder.is_dir():
            for path in sorted(folder.glob("*.yaml")):
                yield canonical(folder.name), yaml.safe_load(path.read_text(encoding="utf-8"))


def audit(db: Path, packages: dict[str, str], ignore: frozenset[str] = frozenset()) -> tuple[list[Finding], str]:
    """The findings for `packages`, and the newest `modified` date seen in the database."""
    findings: list[Finding] = []
    newest = ""
    for package, advisory in advisories(db):
        newest = max(newest, str(advisory.get("modified", "")))
        if package not in packages:
            continue
        found = applies(advisory, package, packages[package])
        if found and found.id not in ignore and not ignore.intersection(found.aliases):
            findings.append(found)
    return findings, newest


def main(argv: list[str] | None = None) -> int:
    """Command line: print the findings and exit 1 if any."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True, help="a checkout of pypa/advisory-database")
    parser.add_argument("--ignore", nargs="*", default=[], help="advisory ids or aliases accepted (with a reason)")
    parser.add_argument("--json", action="store_true", help="one JSON document")
    args = parser.parse_args(argv)
    if not (args.db / "vulns").is_dir():
        print(f"osv_audit: {args.db} has no vulns/ folder: not an OSV advisory database", file=sys.stderr)
        return 2
    packages = installed()
    findings, newest = audit(args.db, packages, frozenset(args.ignore))
    if args.json:
        print(json.dumps({"packages": len(packages), "database_modified": newest,
                          "findings": [asdict(f) for f in findings]}, indent=2))
    else:
        for f in findings:
            print(f"{f.package} {f.version}: {f.id} ({', '.join(f.aliases)}) fixed in {', '.join(f.fixed) or '-'}")
        print(f"{len(packages)} distributions audited against advisories modified up to {newest}: "
              f"{len(findings)} finding(s)")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())

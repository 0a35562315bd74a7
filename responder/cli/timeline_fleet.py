"""`timeline verify --writers`: the fleet's expected replicas against the writers its files hold."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer

from responder.cli.output import console, err_console, print_ok
from responder.cli.timeline_files import parsable
from responder.escapes import plain
from responder.timeline.fleet_writers import FileWriters, FleetCheck, check_writers
from responder.timeline.verification import Verification

WritersOpt = Annotated[str | None, typer.Option(
    "--writers", help="the fleet's replicas, comma-separated, each the host of its writer id `host:pid` (default: "
                      "RESPONDER_TIMELINE_WRITERS): a missing or unexpected one exits 1")]


def expected_writers(option: str | None, setting: list[str]) -> list[str]:
    """The replicas `--writers` names, else the setting's (empty: no check)."""
    names = [n.strip() for n in option.split(",")] if option is not None else setting
    return [n for n in names if n]


def fleet_check(expected: list[str], files: list[Path], results: Mapping[Path, Verification], json: bool,
                ) -> FleetCheck:
    """Missing and unexpected replicas and each one's head and checkpoint coverage, printed for a human unless `json`
    (`timeline verify` puts it in its one document)."""
    found: list[FileWriters] = []
    for path in files:
        verification = results.get(path)
        if verification is not None:
            writers = verification.writers
        else:  # a file that does not verify still tells whose it is, from the entries that parse
            last: dict[str, tuple[int, str]] = {}
            try:
                for e in parsable(path):
                    last[e.writer] = (e.seq, e.hash)
            except OSError:  # unreadable: whose it is cannot be told (its replica shows as missing)
                pass
            writers = last
        found.append(FileWriters(str(path), writers, verification))
    check = check_writers(expected, found)
    if not json:
        _show(check)
    return check


def _show(check: FleetCheck) -> None:
    for w in check.writers:
        cover = (f"signed through checkpoint seq {w.last_checkpoint}" if w.signed else
                 "NOT covered by a signed checkpoint" if w.verified else "its file does NOT verify")
        console.print(plain(f"  writer {w.name}: {w.path}, last entry seq {w.last_seq}, head {w.head[:16]}…; {cover}"),
                      markup=False)  # a writer, a head: a file's text (an unsigned entry's, a broken file's)
    if check.missing:
        err_console.print(plain(f"✗ expected writers with no timeline: {', '.join(check.missing)} (a replica's file "
                                "missing or replaced)"), style="red", markup=False)
    if check.unsigned_only:
        err_console.print(plain(f"  only unsigned entries of: {', '.join(check.unsigned_only)} (after the last "
                                "checkpoint of their file: anyone who can write a file can append those, so they prove "
                                "no replica)"), style="red", markup=False)
    if check.unexpected:
        err_console.print(plain(f"✗ unexpected writers: {', '.join(check.unexpected)} (not in --writers / "
                                "RESPONDER_TIMELINE_WRITERS)"), style="red", markup=False)
    if check.ok:
        print_ok(f"every expected writer found ({len(check.expected)}), none unexpected")

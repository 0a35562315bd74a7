"""`responder tabletop validate|run`: scripted incidents through the real service against the sandbox, graded."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple

import typer
from rich.text import Text

from responder.actuators.registry import registry
from responder.catalog import check_directory
from responder.catalog.defaults import with_default_escalation
from responder.cli.options import JsonOpt, configured_default_on_failure, readable
from responder.cli.output import EXIT_CONFIG, EXIT_FAILED, console, emit_json, print_error, print_ok
from responder.cli.progress import progress_for
from responder.errors import ConfigError, RunbookError
from responder.escapes import plain

if TYPE_CHECKING:
    from responder.tabletop.models import Playbook

app = typer.Typer(help="Tabletop exercises: playbooks replayed through the real service on a sandbox cloud.",
                  no_args_is_help=True)

Targets = Annotated[list[Path] | None, typer.Argument(help="playbook files or directories (default: playbooks/)")]
RunbooksOpt = Annotated[Path, typer.Option("--runbooks", help="runbook directory the service loads")]


class Loaded(NamedTuple):
    """The playbooks found, every problem, and the service-wide escalation the drills' service uses."""

    found: list[tuple[Path, Playbook]]
    errors: list[ConfigError]
    default_on_failure: list[dict[str, Any]]


def _load(targets: list[Path] | None, runbooks: Path) -> Loaded:
    """Runbooks as `responder run` loads them (with the `default_on_failure` setting), then the playbooks."""
    from responder.tabletop.loader import check_playbooks

    books, book_errors = check_directory(runbooks, registry)
    errors: list[ConfigError] = list(book_errors)
    default: list[dict[str, Any]] = []
    try:
        configured = configured_default_on_failure()
        with_default_escalation(books, configured, registry)
        default = configured  # only a default the service would accept: the playbooks are checked with it
    except ConfigError as exc:  # a bad default stops `responder run` at start-up: the drill does not run either
        errors.append(exc)
    try:  # each playbook against the runbooks its drill runs: with the default, or none (its settings say which)
        found, problems = check_playbooks(targets or [Path("playbooks")], registry, books, default)
    except ConfigError as exc:
        return Loaded([], [*errors, exc], default)
    return Loaded(list(found), [*errors, *problems], default)


def _report_errors(errors: list[ConfigError], json: bool, ok: list[str]) -> None:
    if json:
        emit_json({"ok": not errors, "playbooks": ok, "errors": [
            {"path": getattr(e, "path", None), "line": getattr(e, "line", None),
             "column": getattr(e, "column", None), "reason": getattr(e, "reason", str(e))} for e in errors]})
        return
    for exc in errors:
        print_error(exc)


@app.command()
def validate(targets: Targets = None, runbooks: RunbooksOpt = Path("runbooks"), json: JsonOpt = False) -> None:
    """Check playbooks: schema, then references (event files, injects, world, actuators, runbooks, params, faults)."""
    found, errors, _ = _load(targets, runbooks)
    _report_errors(errors, json, [str(p) for p, _ in found])
    if not json:
        for path, _ in found:
            print_ok(path)
    if errors:
        raise typer.Exit(EXIT_CONFIG)


@app.command()
def run(
    targets: Targets = None,
    runbooks: RunbooksOpt = Path("runbooks"),
    json: JsonOpt = False,
    junit: Annotated[Path | None, typer.Option("--junit", help="write JUnit XML here")] = None,
    report: Annotated[Path | None, typer.Option("--report", help="write Markdown, HTML and JSON reports here")] = None,
    baseline: Annotated[Path | None, typer.Option("--baseline", help="an earlier --json result: show regressions",
                                                   callback=readable("--baseline"))]
    = None,
) -> None:
    """Run playbooks on the sandbox; print the scorecard; exit 1 when a must_pass expectation fails."""
    from responder import log
    from responder.tabletop import report as reports
    from responder.tabletop.suite import run_suite

    log.configure("json", "critical")
    found, errors, default = _load(targets, runbooks)
    if errors:
        _report_errors(errors, json, [])
        raise typer.Exit(EXIT_CONFIG)
    try:
        old = reports.load_baseline(baseline) if baseline else None  # refused before the run, not after it
        work = report / "work" if report else None  # timelines and registries are kept only with --report
        with progress_for(len(found), tty=sys.stdout.isatty() and not json) as progress:
            result = asyncio.run(run_suite(found, runbooks, work, progress=progress,
                                           default_on_failure=default))
    except (ConfigError, RunbookError) as exc:
        print_error(exc)
        raise typer.Exit(EXIT_CONFIG) from exc
    regressions = reports.regressions(result, old) if old is not None else []
    if report:
        reports.write_all(result, report, regressions)
    if junit:
        junit.write_text(reports.junit(result), encoding="utf-8")
    if json:
        emit_json({**result.model_dump(mode="json"), "regressions": regressions})
    else:
        reports.print_scorecard(result, console, regressions)
    if result.failed:
        raise typer.Exit(EXIT_FAILED)


@app.command()
def verify(
    scorecard: Annotated[Path, typer.Argument(help="a `tabletop run --json` result or a --report's scorecard.json",
                                              callback=readable("scorecard"))],
    public_key: Annotated[str | None, typer.Option("--public-key", help="the run's public key (base64): proves who "
                                                   "signed; default: the document's own `public_key` (proves only "
                                                   "that nothing changed since that key signed)")] = None,
    json: JsonOpt = False,
) -> None:
    """Check each card's Ed25519 signature and the signed manifest (every card, once, in order; the overall status);
    exit 1 if one does not hold, 3 if the file is no result with cards."""
    import orjson

    from responder.tabletop.signed import check_document

    try:
        checked = check_document(orjson.loads(scorecard.read_bytes()), public_key)
    except (OSError, orjson.JSONDecodeError, ConfigError) as exc:
        print_error(ConfigError(f"{scorecard}: {exc}"))
        raise typer.Exit(EXIT_CONFIG) from exc
    key = checked.key_id
    origin = "given" if checked.given else "embedded"
    if json:
        emit_json({"ok": checked.ok, "key_id": key, "key": origin, "manifest": checked.manifest,
                   "cards": [{"playbook": p, "verified": ok} for p, ok in checked.cards]})
    else:
        for playbook, ok in checked.cards:
            _say(f"{'✓' if ok else '✗'} {playbook}: " + (f"signed by {key}" if ok else f"signature does not hold "
                f"under {key}: the card was changed after it was signed, or another key signed it"))
        for problem in checked.manifest or ["✓ manifest: every card the run signed, once each, in order"]:
            _say(problem if problem.startswith("✓") else f"✗ manifest: {problem}")
        if not checked.given:
            _say(f"key {key} is the document's own `public_key`: this proves nothing changed since it signed, not who "
                "signed; pass --public-key, or compare the key id with the one the run printed")
    if not checked.ok:
        raise typer.Exit(EXIT_FAILED)


def _say(text: str) -> None:
    """One line of a result's text, as written (it may quote a playbook's name)."""
    console.print(plain(text), highlight=False, markup=False, soft_wrap=True)


top = typer.Typer()  # `responder replay` sits at the root, beside `run`


@top.command()
def replay(
    events: Annotated[Path, typer.Argument(help="a JSON record, or JSON Lines (an alert export, the dead-letter topic)",
                                           callback=readable("event file"))],
    runbooks: RunbooksOpt = Path("runbooks"),
    baseline_runbooks: Annotated[Path | None, typer.Option(
        "--baseline-runbooks", help="runbooks to compare with: print new, removed and changed actions")] = None,
    json: JsonOpt = False,
) -> None:
    """Back-test recorded events against runbooks in dry-run: incidents that would open, steps that would run, steps
    that would fail and who would hear of it (the `default_on_failure` setting applies, as in `responder run`)."""
    from responder import log
    from responder.catalog import load_runbooks
    from responder.cli.events import _record_values
    from responder.tabletop.replay import backtest, difference

    log.configure("json", "critical")
    values = _record_values(events, split_lines=False)
    try:
        default = configured_default_on_failure()
        result = asyncio.run(backtest(values, with_default_escalation(load_runbooks(runbooks, registry), default,
                                                                      registry), registry))
        base = asyncio.run(backtest(values, with_default_escalation(load_runbooks(baseline_runbooks, registry),
                                                                    default, registry), registry)) \
            if baseline_runbooks else None
    except ConfigError as exc:
        print_error(exc)
        raise typer.Exit(EXIT_CONFIG) from exc
    diff = difference(result, base) if base is not None else None
    if json:
        emit_json({**result.model_dump(mode="json"), **({"difference": diff} if diff is not None else {})})
        return
    console.print(f"{result.records} record(s): {len(result.incidents)} incident(s) would open, "
                  f"{len(result.planned)} step(s) would run, {len(result.failed)} would fail; "
                  f"rejected {result.rejected or 'none'}", highlight=False)
    for p in result.planned:  # a target, an error or a guard's reason may hold an alert's text: shown through plain
        gate = plain(f"  (approval: {'; '.join(p.would_require_approval)})") if p.would_require_approval else ""
        console.print(Text.assemble(plain(f"  record {p.record} {p.runbook} {p.step}: {p.actuator} on {p.target}"),
                                    (gate, "yellow")), highlight=False)
    for f in result.failed:
        again = f"not told again: {', '.join(f.already_done)} (already done for an earlier record)" \
            if f.already_done else ""
        told = f"nobody told (escalation.missed: {f.missed})" if f.missed else "; ".join(
            [f"escalated: {', '.join(f.escalation)}"] * bool(f.escalation) + [again] * bool(again)) \
            or "not escalated (an escalation step)"
        verb = "be refused" if f.status == "refused" else "fail"
        console.print(plain(f"  record {f.record} {f.runbook} {f.step} would {verb}: {f.error}; {told}"),
                      highlight=False, markup=False, soft_wrap=True)
    if diff is not None:
        for kind in ("new", "removed", "changed"):
            for item in diff[kind]:
                a, was = item.get("action", item), item.get("was", {})
                before, after = ("; ".join(x) or "none" for x in (was.get("would_require_approval", []),
                                                                   a["would_require_approval"]))
                gate = f" (approval: {before} → {after})" if was and before != after else ""
                console.print(plain(f"  {kind}: record {a['record']} {a['runbook']} {a['step']} {a['actuator']} "
                                    f"on {a['target']}{gate}"), highlight=False, markup=False)
        console.print(f"difference: {len(diff['new'])} new, {len(diff['removed'])} removed, "
                      f"{len(diff['changed'])} changed", highlight=False)

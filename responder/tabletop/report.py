"""Scorecard outputs: the console table, Markdown after-action report, HTML with SVG timelines, JSON, JUnit."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET  # nosec B405 # only writes JUnit XML; nothing is parsed

from pydantic import BaseModel, Field, ValidationError
from rich.console import Console
from rich.table import Table
from rich.text import Text

from responder.errors import ConfigError
from responder.escapes import plain, xml_text
from responder.tabletop.grading import Card, Figures, Status
from responder.tabletop.suite import SuiteResult
from responder.timeline.markdown import cell, code

COLOURS = {"PASS": "green", "FAIL": "red", "PARTIAL": "yellow"}  # nosec B105 # grade colours


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:g}s"


def _first(f: Figures) -> str:
    """Time to first action: virtual, and the real processing time behind it."""
    wall = f" (+{f.wall_to_first_action:.3f}s wall)" if f.wall_to_first_action is not None else ""
    return _secs(f.time_to_first_action) + wall


def _deliveries(card: Card) -> str:
    """How each inject reached the service: transport, auth, HTTP answer, records produced."""
    out = []
    for d in card.deliveries:
        via = f"webhook ({cell(d.get('auth'))}) → HTTP {d.get('http_status')}" if d["transport"] == "webhook" \
            else "kafka"
        out.append(f"{code(d['inject'])} t+{d['at']:g}s via {via}, {d['produced']} produced")
    return "; ".join(out)


def print_scorecard(result: SuiteResult, console: Console, regressions: list[str]) -> None:
    """One row per scenario, then every expectation that did not pass with what happened instead; text from playbooks,
    the sandbox and the timeline printed as it is, never as markup, an escape sequence or a bidi override
    (responder.escapes.plain)."""
    table = Table(title=Text(plain(f"tabletop scorecard (signed by {result.key_id})")))
    for col in ("playbook", "status", "score", "first action", "contain", "actions", "collateral", "wall"):
        table.add_column(col, overflow="fold")
    for c in result.cards:
        f = c.figures
        table.add_row(Text(plain(c.playbook)), Text(c.status, style=COLOURS[c.status]), f"{c.score:.0%}",
                      _first(f), _secs(f.time_to_contain), str(f.actions),
                      Text(plain(", ".join(f.collateral) or "-")), f"{f.wall_seconds:.1f}s")
    console.print(table)
    for c in result.cards:
        if c.defaulted:
            _line(console, Text(plain(f"{c.playbook}: default_on_failure escalates for {', '.join(c.defaulted)}")))
        for failure in c.failures:
            _line(console, Text(plain(f"{c.playbook}: step {failure.line()}")))
        if c.error:
            _line(console, Text(plain(f"✗ {c.playbook}: {c.error}"), style="red"))
        for g in c.grades:
            if g.status != "PASS":
                must = " (must pass)" if g.must_pass else ""
                _line(console, Text.assemble((g.status, COLOURS[g.status]),
                                             plain(f" {c.playbook}/{g.id}{must}: {g.instead}")))
    for line in regressions:
        _line(console, Text.assemble(("regression", "red"), plain(f" {line}")))
    passed = sum(c.status == "PASS" for c in result.cards)
    console.print(f"{passed}/{len(result.cards)} scenarios passed in {result.wall_seconds:.1f}s wall", highlight=False)


def _line(console: Console, text: Text) -> None:
    """One line of the scorecard: a Text (never markup), not highlighted, not cut."""
    console.print(text, highlight=False, soft_wrap=True)


class _Grade(BaseModel):
    id: str
    status: Status


class _Figures(BaseModel):
    time_to_contain: float | None = None
    collateral: list[str] = Field(default_factory=list)


class _Card(BaseModel):
    playbook: str
    status: Status
    grades: list[_Grade] = Field(default_factory=list)
    figures: _Figures = Field(default_factory=_Figures)


class _Baseline(BaseModel):
    """What `regressions` reads of a baseline (other keys are ignored)."""

    cards: list[_Card]


def load_baseline(path: Path) -> dict[str, Any]:
    """An earlier `--json` result (ConfigError when it cannot be read as one, or lacks what `regressions` reads)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        _Baseline.model_validate(data)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"baseline {path}: {exc}") from exc
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ConfigError(f"baseline {path}: not a `tabletop run --json` result: "
                          f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}") from exc
    return dict(data)


RANK = {"PASS": 2, "PARTIAL": 1, "FAIL": 0}  # nosec B105 # grade order


def regressions(result: SuiteResult, baseline: dict[str, Any]) -> list[str]:
    """Scenarios and expectations that got worse than in the baseline, and figures that grew."""
    old = {c["playbook"]: c for c in baseline.get("cards", [])}
    out: list[str] = []
    for c in result.cards:
        before = old.get(c.playbook)
        if before is None:
            continue
        if RANK[c.status] < RANK[before["status"]]:
            out.append(f"{c.playbook}: {before['status']} → {c.status}")
        grades = {g["id"]: g["status"] for g in before.get("grades", [])}
        for g in c.grades:
            if g.id in grades and RANK[g.status] < RANK[grades[g.id]]:
                out.append(f"{c.playbook}/{g.id}: {grades[g.id]} → {g.status} ({g.instead})")
        was = before.get("figures", {}).get("time_to_contain")
        now = c.figures.time_to_contain
        if was is not None and (now is None or now > was):
            out.append(f"{c.playbook}: time to contain {was}s → {_secs(now)}")
        new_collateral = set(c.figures.collateral) - set(before.get("figures", {}).get("collateral", []))
        if new_collateral:
            out.append(f"{c.playbook}: new collateral {sorted(new_collateral)}")
    return out


def markdown(result: SuiteResult, regress: list[str]) -> str:
    """The after-action report: summary table, each scenario's grades with evidence, an improvement list; text from
    playbooks and timelines as inert Markdown (responder/timeline/markdown.py)."""
    lines = ["# Tabletop after-action report", "",
             f"Scorecards signed with Ed25519 key `{result.key_id}` and appended to each scenario's timeline; "
             "`responder tabletop verify scorecard.json` checks the signatures.", "",
             "| playbook | status | score | first action | contain | actions | collateral |",
             "|---|---|---|---|---|---|---|"]
    for c in result.cards:
        f = c.figures
        lines.append(f"| {cell(c.playbook)} | {c.status} | {c.score:.0%} | {_first(f)} | "
                     f"{_secs(f.time_to_contain)} | {f.actions} | {cell(', '.join(f.collateral) or '-')} |")
    for c in result.cards:
        lines += ["", f"## {cell(c.playbook)}: {cell(c.title)}", "", f"Status **{c.status}**, score {c.score:.0%}, "
                  f"{c.figures.virtual_seconds:g} virtual s in {c.figures.wall_seconds:g} wall s.", ""]
        if c.deliveries:
            lines += [f"Injects: {_deliveries(c)}.", ""]
        if c.defaulted:
            lines += ["Escalating through the service's `default_on_failure` (runbooks without `on_failure`): "
                      f"{', '.join(code(r) for r in c.defaulted)}.", ""]
        if c.failures:
            lines += ["Failed steps and who heard of each:", "",
                      *[f"- {cell(failure.line())}" for failure in c.failures], ""]
        if c.error:
            lines += [f"Stopped: {cell(c.error)}", ""]
        for g in c.grades:
            lines.append(f"- **{g.status}** {code(g.id)} ({g.kind}{', must pass' if g.must_pass else ''})")
            lines += [f"  - evidence: {cell(e)}" for e in g.evidence[:5]]
            if g.instead:
                lines.append(f"  - instead: {cell(g.instead)}")
    improvements = [i for c in result.cards for i in (f"{c.playbook}: {x}" for x in c.improvements)]
    lines += ["", "## Improvement list", ""] + ([f"{n}. {cell(i)}" for n, i in enumerate(improvements, 1)] or
                                                 ["Nothing to improve: every expectation passed."])
    if regress:
        lines += ["", "## Regressions against the baseline", "", *[f"- {cell(r)}" for r in regress]]
    return "\n".join(lines) + "\n"


def svg_timeline(card: Card) -> str:
    """One inline SVG per incident: injects, matches, approvals and actions on a virtual-time axis."""
    parts: list[str] = []
    for inc in card.incidents:
        points = [*inc["injects"], *inc["entries"]]
        span = max([p["t"] for p in points] + [1.0])
        width, rows = 900, sorted({p["kind"] for p in points})
        height = 30 + 22 * len(rows)
        out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width + 200}" height="{height}" '
               f'role="img" aria-label="timeline of {html.escape(inc["incident"])}">']
        for i, kind in enumerate(rows):
            y = 20 + 22 * i
            out.append(f'<text x="0" y="{y + 4}" font-size="11">{html.escape(kind)}</text>')
            out.append(f'<line x1="190" y1="{y}" x2="{190 + width}" y2="{y}" stroke="#ddd"/>')
        for p in points:
            x = 190 + width * p["t"] / span
            y = 20 + 22 * rows.index(p["kind"])
            fill = {"ok": "#2a2", "failed": "#c22", "refused": "#c22", "denied": "#c80"}.get(
                str(p.get("status")), "#36c" if p["kind"] != "inject" else "#888")
            title = html.escape(p.get("evidence") or f"inject {p['label']} at t+{p['t']:g}s")
            out.append(f'<circle cx="{x:.1f}" cy="{y}" r="5" fill="{fill}"><title>{title}</title></circle>')
        out.append(f'<text x="190" y="{height - 2}" font-size="10">t+0s</text>'
                   f'<text x="{width + 150}" y="{height - 2}" font-size="10">t+{span:g}s</text></svg>')
        parts.append(f"<h3>incident {html.escape(inc['incident'])}</h3>" + "".join(out))
    return "".join(parts) or "<p>no incident opened</p>"


def html_report(result: SuiteResult) -> str:
    """A self-contained HTML page: the scorecard and a timeline per incident."""
    body = [f"<h1>Tabletop scorecard</h1><p>signed by <code>{result.key_id}</code></p>"]
    for c in result.cards:
        grades = "".join(f"<li><b>{g.status}</b> {html.escape(g.id)}: "
                         f"{html.escape('; '.join(g.evidence[:3]) or g.instead)}</li>" for g in c.grades)
        body.append(f"<h2>{html.escape(c.playbook)}: {c.status} ({c.score:.0%})</h2><ul>{grades}</ul>"
                    f"{svg_timeline(c)}")
    return ("<!doctype html><html><head><meta charset='utf-8'><title>tabletop</title></head><body>"
            + "".join(body) + "</body></html>\n")


def junit(result: SuiteResult) -> str:
    """JUnit XML: one testsuite per playbook, one testcase per expectation (and a `scenario` one when the scenario
    did not finish, counted in `tests` as in `failures`); text XML 1.0 forbids (an escape sequence in an error) written
    as a visible escape (responder.escapes.xml_text), so the document always parses."""
    root = ET.Element("testsuites", name="tabletop")
    for c in result.cards:
        failures = sum(g.status != "PASS" for g in c.grades) + (1 if c.error else 0)
        suite = ET.SubElement(root, "testsuite", name=xml_text(c.playbook), tests=str(len(c.grades) + bool(c.error)),
                              failures=str(failures), time=f"{c.figures.wall_seconds:.3f}")
        if c.error:
            case = ET.SubElement(suite, "testcase", classname=xml_text(c.playbook), name="scenario")
            ET.SubElement(case, "failure", message=xml_text(c.error))
        for g in c.grades:
            case = ET.SubElement(suite, "testcase", classname=xml_text(c.playbook), name=xml_text(g.id))
            if g.status != "PASS":
                ET.SubElement(case, "failure", message=xml_text(f"{g.status}: {g.instead}"[:2000]),
                              type=xml_text(g.kind))
    return ET.tostring(root, encoding="unicode") + "\n"


def write_all(result: SuiteResult, directory: Path, regress: list[str]) -> None:
    """after-action.md, scorecard.html, scorecard.json and junit.xml under `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "after-action.md").write_text(markdown(result, regress), encoding="utf-8")
    (directory / "scorecard.html").write_text(html_report(result), encoding="utf-8")
    (directory / "scorecard.json").write_text(result.model_dump_json(indent=2), encoding="utf-8")
    (directory / "junit.xml").write_text(junit(result), encoding="utf-8")

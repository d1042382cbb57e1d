"""report.html: one self-contained page that explains a run to a person, with no network.

Everything comes from the run directory (report.json, state.json, findings.jsonl and the files
beside them) and is escaped, because findings quote logs. A partial or damaged run directory
still renders: what cannot be read becomes a note at the top of the page.

This module assembles the page and writes it; html_data reads the run directory, and
html_findings, html_timeline and html_inventory draw the page's larger sections.
"""

from __future__ import annotations

import base64
import hashlib
import os
import string
import time
from importlib import resources
from pathlib import Path

from grenadier.errors import EnvironmentProblem, UsageError
from grenadier.host import write_atomic
from grenadier.model.findings import ALSO_WITHOUT_UPGRADE, INTRODUCED
from grenadier.model.result import is_failed_test
from grenadier.releases.constraints import described
from grenadier.report.html_data import RunData, dicts, esc, load_run, num, text_of, texts
from grenadier.report.html_findings import Item, collect_items, concerns_html, rich_text
from grenadier.report.html_inventory import inventory_html
from grenadier.report.html_timeline import event_times, timeline_html
from grenadier.report.html_upstream import upstream_html

__all__ = ["REPORT_HTML", "SCRIPT", "load_run", "page_body", "render_html", "render_page"]

REPORT_HTML = "report.html"
# The only script of the page: it proves to a browser test that the page rendered and that the
# key sections exist. The page's CSP allows exactly this script (by hash) and nothing remote.
SCRIPT = ('(function () { var need = ["verdict", "timeline", "findings", "inventory", "files"];'
          ' var missing = need.filter(function (id) { return !document.getElementById(id); });'
          ' document.body.setAttribute("data-ok", missing.length ? "missing " + '
          'missing.join(" ") : "yes"); })();')
STANDARD_FILES = ("report.json", "junit.xml", "impact.md", "findings.jsonl", "run.json",
                  "state.json")
FILE_GROUPS = (("logs", "*.log"), ("junit", "*.xml"), ("releases", "*.txt"))


def _clock(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def _span(data: RunData) -> tuple[float, float] | None:
    times = event_times(data.steps, data.timeline)
    return (min(times), max(times)) if times else None


def _verdict_class(data: RunData) -> str:
    # 1 is "the upgrade broke something"; other codes say the run itself could not finish
    code = data.header.get("exit_code")
    return {0: "ok", 1: "bad"}.get(code, "unknown") if isinstance(code, int) else "unknown"


def _counts(data: RunData, items: list[Item]) -> str:
    passed = sum(1 for s in data.steps if s.get("status") in ("passed", "skipped"))
    tests = [t for s in data.steps for t in dicts(s.get("tests"))]
    failed = sum(1 for t in tests if is_failed_test(t.get("status")))
    sev = {k: sum(1 for i in items if i.severity == k) for k in ("error", "warning", "info")}
    parts = [f"steps passed: {passed} of {len(data.steps)}",
             f"tests failed: {failed} of {len(tests)}",
             f"errors: {sev['error']}", f"warnings: {sev['warning']}", f"info: {sev['info']}"]
    return "".join(f"<span>{esc(p)}</span>" for p in parts)


def _verdict_html(data: RunData, items: list[Item]) -> str:
    header = data.header
    verdict = text_of(header, "verdict") or "no verdict: the run did not finish"
    code = header.get("exit_code")
    first = next((i for i in items if i.severity == "error"), None)
    lines = [f'<section id="verdict" class="verdict {_verdict_class(data)}">',
             f'<div class="big">{esc(verdict)}</div>',
             f'<p class="counts">{_counts(data, items)}'
             + (f"<span>exit code: {esc(str(code))}</span>" if code is not None else "")
             + "</p>"]
    if first is not None:
        lines.append(f'<p>First problem: <a href="#concern-{first.concern}">'
                     f"{esc(first.what)}</a> "
                     f"(step {esc(first.step or '?')})</p>")
    lines.append(_control_html(data, items))
    lines.append("</section>")
    return "\n".join(lines)


def _control_html(data: RunData, items: list[Item]) -> str:
    """The control run (base -> base) the run was compared with, and what it explained."""
    control = data.header.get("control")
    if not isinstance(control, dict):
        return ""
    counts = {origin: sum(1 for i in items if i.origin == origin)
              for origin in (INTRODUCED, ALSO_WITHOUT_UPGRADE)}
    where = text_of(control, "run_dir")
    page = Path(where) / REPORT_HTML
    link = os.path.relpath(page, data.run_dir) if where else ""
    shown = f'<a href="{esc(link)}">{esc(link)}</a>' if where and page.is_file() else esc(where)
    return (f"<p>Control run (the base release restarted on its own database, no upgrade): "
            f"{esc(text_of(control, 'verdict') or '?')}; {shown}. "
            f"{counts[INTRODUCED]} finding(s) {esc(INTRODUCED)}, "
            f"{counts[ALSO_WITHOUT_UPGRADE]} {esc(ALSO_WITHOUT_UPGRADE)}.</p>")


def _meta_html(data: RunData) -> str:
    options = data.header.get("options")
    options = options if isinstance(options, dict) else {}
    parts = [f"run {data.run_dir.name}", f"database {text_of(options, 'db') or '?'}",
             f"shutdown {text_of(options, 'shutdown') or '?'}"]
    span = _span(data)
    if span is not None:
        parts.append(f"started {_clock(span[0])}, {span[1] - span[0]:.0f} s in all")
    return f'<p class="meta">{esc(" · ".join(parts))}</p>' + _environments_html(data)


def _environments_html(data: RunData) -> str:
    """Which libraries each release venv was built with: the run is only as repeatable as
    that."""
    releases = data.header.get("releases")
    rows = []
    for role, release in (releases.items() if isinstance(releases, dict) else []):
        if isinstance(release, dict):
            environment = release.get("environment")
            rows.append(f"{role} {text_of(release, 'label') or '?'}: "
                        f"{described(environment if isinstance(environment, dict) else None)}")
    return "".join(f'<p class="meta">{esc(row)}</p>' for row in rows)


def _notes_html(notes: list[str]) -> str:
    if not notes:
        return ""
    rows = "".join(f"<li>{esc(n)}</li>" for n in notes)
    return (f'<section id="notes" class="notes"><strong>This run directory is incomplete:'
            f"</strong><ul>{rows}</ul></section>")


def _link(run_dir: Path, rel: str) -> str:
    if (run_dir / rel).exists():
        return f'<li><a href="{esc(rel)}">{esc(rel)}</a></li>'
    return f'<li class="missing">{esc(rel)} (missing)</li>'


def _files_html(run_dir: Path) -> str:
    links = [_link(run_dir, name) for name in STANDARD_FILES]
    for folder, pattern in FILE_GROUPS:
        try:
            found = sorted((run_dir / folder).glob(pattern))
        except OSError:
            found = []
        links += [_link(run_dir, f"{folder}/{p.name}") for p in found if p.is_file()]
    return ('<section id="files"><h2>Files of this run</h2>'
            f'<ul class="files">{"".join(links)}</ul></section>')


def _steps_table(data: RunData) -> str:
    rows = []
    for step in data.steps:
        status = text_of(step, "status") or "?"
        tests = dicts(step.get("tests"))
        passed = sum(1 for t in tests if t.get("status") == "passed")
        msgs = "".join(f"<li>{rich_text(m, data.run_dir)}</li>" for m in texts(step, "messages"))
        rows.append(
            f"<tr><td>{esc(text_of(step, 'name'))}</td>"
            f'<td class="st {esc(status)}">{esc(status)}</td>'
            f'<td class="num">{num(step, "duration"):.1f} s</td>'
            f'<td class="num">{f"{passed} / {len(tests)}" if tests else ""}</td>'
            f'<td><ul class="msgs">{msgs}</ul></td></tr>')
    if not rows:
        return '<p class="empty">No step finished.</p>'
    return ("<table><tr><th>step</th><th>status</th><th>duration</th><th>tests passed</th>"
            f"<th>messages</th></tr>{''.join(rows)}</table>")


def page_body(data: RunData) -> str:
    items = collect_items(data.steps, data.test_findings)
    title = f"grenadier: {text_of(data.header, 'base') or '?'} → " \
            f"{text_of(data.header, 'target') or '?'}"
    return "\n".join([
        f"<header><h1>{esc(title)}</h1>{_meta_html(data)}</header>",
        _verdict_html(data, items),
        _notes_html(data.notes),
        '<section id="timeline"><h2>Timeline</h2>',
        timeline_html(data.steps, data.timeline, data.run_dir),
        _steps_table(data), "</section>",
        concerns_html(items, data.steps, data.facts, data.run_dir),
        upstream_html(data.steps),
        inventory_html(data.before, data.after),
        _files_html(data.run_dir),
        f"<footer>written {esc(time.strftime('%Y-%m-%d %H:%M:%S'))} by grenadier report"
        "</footer>",
    ])


def _csp() -> str:
    digest = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
    return (f"default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
            f"script-src 'sha256-{digest}'")


def render_page(data: RunData) -> str:
    template = resources.files("grenadier.report").joinpath("template.html")
    title = f"grenadier {text_of(data.header, 'base')} → {text_of(data.header, 'target')}: " \
            f"{text_of(data.header, 'verdict') or 'unfinished'}"
    return string.Template(template.read_text(encoding="utf-8")).substitute(
        csp=_csp(), title=esc(title), body=page_body(data), script=SCRIPT)


def render_html(run_dir: Path) -> Path:
    """Write ``<run_dir>/report.html`` from what the run directory holds; return its path."""
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir} is not a directory")
    page = render_page(load_run(run_dir))
    path = run_dir / REPORT_HTML
    try:
        write_atomic(path, page)
    except OSError as exc:
        raise EnvironmentProblem(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path

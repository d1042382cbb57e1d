"""The upstream tests section of report.html: each of Heat's own tests, base against target.

One row per upstream test (the ``upstream`` name the phases recorded), one column per phase
that ran them; the verdict column says what the comparison made of the row.
"""

from __future__ import annotations

from typing import Any

from grenadier.model.result import FAILED_TESTS
from grenadier.report.html_data import dicts, esc, text_of

PHASES = ("smoke-base", "smoke-target", "post-upgrade")


def _verdict(row: dict[str, dict[str, Any]]) -> str:
    base = text_of(row.get("smoke-base"), "status")
    targets = [text_of(row.get(p), "status") for p in PHASES[1:] if p in row]
    if any(t in FAILED_TESTS for t in targets):
        if base == "passed":
            return "regression: passed on the base, fails on the target"
        return "fails on the base too" if base in FAILED_TESTS else "fails on the target"
    if base in FAILED_TESTS and targets and all(t == "passed" for t in targets):
        return "fixed by the target"
    return ""


def _cell(test: dict[str, Any] | None) -> str:
    if test is None:
        return '<td class="st">—</td>'
    status = text_of(test, "status") or "?"
    title = text_of(test, "message").splitlines()[0] if text_of(test, "message") else ""
    return f'<td class="st {esc(status)}" title="{esc(title)}">{esc(status)}</td>'


def upstream_html(steps: list[dict[str, Any]]) -> str:
    """The section, or nothing when no phase ran upstream tests."""
    rows: dict[str, dict[str, dict[str, Any]]] = {}
    for step in steps:
        phase = text_of(step, "name")
        for test in dicts(step.get("tests")):
            name = text_of(test, "upstream")
            if name and phase in PHASES:
                rows.setdefault(name, {})[phase] = test
    if not rows:
        return ""
    ran = [p for p in PHASES if any(p in row for row in rows.values())]
    head = "".join(f"<th>{esc(p)}</th>" for p in ran)
    body = []
    for name, row in rows.items():
        cells = "".join(_cell(row.get(p)) for p in ran)
        body.append(f"<tr><td>{esc(name)}</td>{cells}<td>{esc(_verdict(row))}</td></tr>")
    counts = {p: sum(1 for row in rows.values() if text_of(row.get(p), "status") == "passed")
              for p in ran}
    summary = "; ".join(f"{p}: {counts[p]} of {len(rows)} passed" for p in ran)
    return ('<section id="upstream"><h2>Heat\'s upstream tests, base against target</h2>'
            f'<p class="empty">heat-tempest-plugin API gabbits: {esc(summary)}</p>'
            f"<table><tr><th>test</th>{head}<th>verdict</th></tr>{''.join(body)}</table>"
            "</section>")

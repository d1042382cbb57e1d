"""The findings section of report.html: every finding, grouped by the concern it is about.

A deployer reads a run by concern (is my database fine? my stacks?), not by step, so findings,
failed tests and failed steps are regrouped here and the evidence behind "no finding" is shown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grenadier.model.findings import ALSO_WITHOUT_UPGRADE
from grenadier.report.html_data import dicts, esc, num, text_of, texts

CONCERNS = (
    ("database", "Database", "migration, schema drift, data kept, heat-status upgrade check"),
    ("stacks", "Old stacks", "stacks the base made, operated on by the target; stuck stacks"),
    ("physical", "Physical resources", "resources checked while the control plane was down"),
    ("config", "Configuration", "the old heat.conf under the new release"),
    ("rolling", "Rolling upgrade", "mixed versions and workloads during the upgrade"),
    ("other", "Other", "smoke tests, setup, teardown and the rest"),
)
DB_CHECKS = ("migration", "schema-drift", "data-preserved", "upgrade-status")
CONFIG_CHECKS = ("config-options", "config-file", "deprecation-warnings")
SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}
FAILED = ("failed", "error", "interrupted")


@dataclass(frozen=True)
class Item:
    """One thing to show under a concern: a check's finding, a failed test or a failed step."""

    severity: str
    check: str
    what: str
    step: str
    where: str = ""
    expected: str = ""
    found: str = ""
    remedy: str = ""
    #: introduced by the upgrade, or also without upgrade (a control run was compared)
    origin: str = ""

    @property
    def concern(self) -> str:
        return concern_of(self.check, self.step)


def concern_of(check: str, step: str) -> str:
    bare = check.rsplit(".", 1)[-1]  # plugin checks are named "<plugin>.<check>"
    if bare.startswith(("rolling", "workload")):
        return "rolling"
    if bare in DB_CHECKS:
        return "database"
    if bare in CONFIG_CHECKS:
        return "config"
    if step == "during-upgrade":
        return "physical"
    if step == "post-upgrade" or "stack" in bare:
        return "stacks"
    return "database" if step == "upgrade" else "other"


def _finding(data: dict[str, Any], step: str) -> Item:
    severity = text_of(data, "severity")
    return Item(severity if severity in SEVERITY_ORDER else "error", text_of(data, "check"),
                text_of(data, "what"), step, *(text_of(data, k) for k in
                                               ("where", "expected", "found", "remedy",
                                                "origin")))


def _phase_log(step: str) -> str:
    # during-upgrade runs one pytest process (one log) per test file: phases/suite.py
    return "logs/during-upgrade-watch-*.log" if step == "during-upgrade" \
        else f"logs/pytest-{step}.log"


def _step_items(step: dict[str, Any]) -> list[Item]:
    name = text_of(step, "name")
    items = [_finding(f, name) for f in dicts(step.get("findings"))]
    for test in dicts(step.get("tests")):
        if test.get("status") in FAILED:
            items.append(Item("error", "test", f"{text_of(test, 'name')} failed", name,
                              "", "the test passes", text_of(test, "message") or "no message",
                              f"read {_phase_log(name)} for the full output",
                              text_of(test, "origin")))
    if step.get("status") in FAILED and not any(i.severity == "error" for i in items):
        messages = texts(step, "messages")
        items.append(Item("error", "step", f"step {name} {text_of(step, 'status')}", name, "",
                          "the step passes", "\n".join(messages[-3:]) or "no message recorded",
                          "read the log named above; fix the cause; `grenadier run --resume "
                          "RUN_DIR` continues from this step", text_of(step, "origin")))
    return items


def collect_items(steps: list[dict[str, Any]], extra: list[dict[str, Any]]) -> list[Item]:
    """Every finding of every step, failed tests and steps, then findings tests reported."""
    items = [item for step in steps for item in _step_items(step)]
    seen = {(i.check, i.what, i.where) for i in items}
    for record in extra:
        item = _finding(record, text_of(record, "phase"))
        if (item.check, item.what, item.where) not in seen:
            seen.add((item.check, item.what, item.where))
            items.append(item)
    return sorted(items, key=lambda i: SEVERITY_ORDER.get(i.severity, 0))


def rich_text(text: str, run_dir: Path) -> str:
    """Escaped text where files of the run directory become short relative links.

    A path is recognised by the run directory's name, so links still work when the run
    directory was moved or copied after the run (its messages hold the old absolute path).
    """
    pattern = re.compile(rf"[^\s'\"]*/{re.escape(run_dir.name)}/([\w.+/-]*[\w+-])"
                         r"|\b((?:logs|junit|releases)/[\w.+-]*[\w+-])")
    out, last = [], 0
    for match in pattern.finditer(text):
        rel = match.group(1) or match.group(2)
        if ".." not in Path(rel).parts and (run_dir / rel).is_file():
            out += [esc(text[last:match.start()]), f'<a href="{esc(rel)}">{esc(rel)}</a>']
            last = match.end()
    return "".join([*out, esc(text[last:])])


def _item_html(item: Item, run_dir: Path) -> str:
    rows = [("where", item.where)] if item.where else []
    rows += [("expected", item.expected), ("found", item.found), ("what to do", item.remedy)]
    fields = "".join(f"<dt>{label}</dt><dd>{rich_text(value, run_dir) if value else '—'}</dd>"
                     for label, value in rows)
    return (f'<article class="finding {esc(item.severity)}"><span class="sev '
            f'{esc(item.severity)}">{esc(item.severity)}</span> <code>{esc(item.check)}</code> '
            f'<span class="what">{esc(item.what)}</span> <span class="from">step '
            f"{esc(item.step or '?')}</span>{_origin_html(item.origin)}<dl>{fields}</dl>"
            "</article>")


def _origin_html(origin: str) -> str:
    if not origin:
        return ""
    also = " also" if origin == ALSO_WITHOUT_UPGRADE else ""
    return f' <span class="origin{also}">{esc(origin)}</span>'


def _checks_run(steps: list[dict[str, Any]], concern: str) -> str:
    """Which checks ran for this concern, from the steps' "check NAME: ok (...)" messages."""
    ran = [m for s in steps for m in texts(s, "messages") if m.startswith("check ")]
    mine = [m[6:] for m in ran if concern_of(m[6:].split(":")[0], "") == concern]
    return f'<p class="empty">checks run: {esc("; ".join(mine))}</p>' if mine else ""


def _joined(value: Any) -> str:
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value or "?")


def _db_facts(facts: dict[str, Any]) -> str:
    """The evidence behind "no finding": schema versions, rows compared, heat-status results."""
    data, version = facts.get("data"), facts.get("db_version")
    tables = dicts(list(data.values())) if isinstance(data, dict) else []
    lines = []
    if isinstance(version, dict):
        lines.append(f"schema version {_joined(version.get('before'))} → "
                     f"{_joined(version.get('after'))}")
    if tables:
        lost, changed = (int(sum(num(t, k) for t in tables)) for k in ("lost", "changed"))
        lines.append(f"{len(tables)} tables compared; rows lost: {lost}; rows changed: {changed}")
    lines += [f"heat-status {text_of(r, 'check')}: {text_of(r, 'result')}"
              for r in dicts(facts.get("upgrade-status"))]
    return "".join(f'<p class="empty">{esc(line)}</p>' for line in lines)


def _concern_html(key: str, title: str, about: str, items: list[Item], extra: str,
                  run_dir: Path) -> str:
    counts = {s: sum(1 for i in items if i.severity == s) for s in SEVERITY_ORDER}
    badges = "".join(f'<span class="sev {s}">{n} {s}</span>' for s, n in counts.items() if n)
    body = "".join(_item_html(i, run_dir) for i in items) or '<p class="empty">no findings</p>'
    opened = " open" if counts["error"] else ""
    badges = badges or '<span class="sev none">no findings</span>'
    return (f'<details class="concern" id="concern-{key}"{opened}><summary><h3>{esc(title)}</h3>'
            f'{badges}<span class="about">'
            f'{esc(about)}</span></summary><div class="body">{extra}{body}</div></details>')


def concerns_html(items: list[Item], steps: list[dict[str, Any]], facts: dict[str, Any],
                  run_dir: Path) -> str:
    sections = []
    for key, title, about in CONCERNS:
        mine = [i for i in items if i.concern == key]
        if key == "other" and not mine:
            continue
        extra = _checks_run(steps, key) + (_db_facts(facts) if key == "database" else "")
        sections.append(_concern_html(key, title, about, mine, extra, run_dir))
    return ('<section id="findings"><h2>Findings by concern</h2>'
            f"{''.join(sections)}</section>")

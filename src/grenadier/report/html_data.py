"""The run directory as the report page sees it: read tolerantly, and read back safely.

``load_run`` never fails on a partial or damaged run directory: what it cannot read becomes a
note. The small accessors below are shared by every section of the page, because the JSON they
read may be any shape a damaged or older run left behind.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from grenadier.model.steps import STEPS
from grenadier.state import RUNNER, StateStore, StoreCorrupt


def dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def esc(value: object) -> str:
    return escape(str(value), quote=True)


def text_of(data: Any, key: str) -> str:
    """``data[key]`` as text; empty when ``data`` is not a mapping or the value is missing."""
    value = data.get(key) if isinstance(data, dict) else None
    return "" if value is None else str(value)


def texts(data: dict[str, Any], key: str) -> list[str]:
    value = data.get(key)
    return [str(v) for v in value if v] if isinstance(value, list) else []


def num(data: dict[str, Any], key: str) -> float:
    value = data.get(key)
    return float(value) if isinstance(value, (int, float)) else 0.0


@dataclass
class RunData:
    """What the page shows, read tolerantly from a run directory."""

    run_dir: Path
    header: dict[str, Any] = field(default_factory=dict)
    steps: list[dict[str, Any]] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    before: Any = None
    after: Any = None
    test_findings: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _read_json(path: Path, notes: list[str], missing: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        notes.append(missing)
    except json.JSONDecodeError as exc:
        notes.append(f"{path.name} is corrupt (not JSON: {exc.msg} at line {exc.lineno})")
    except (OSError, UnicodeDecodeError) as exc:
        notes.append(f"{path.name} cannot be read: {getattr(exc, 'strerror', None) or exc}")
    return None


def _runner_state(run_dir: Path, notes: list[str]) -> dict[str, Any]:
    path = run_dir / "state.json"
    if not path.exists():
        notes.append("state.json is missing: no stack inventory was recorded")
        return {}
    try:
        return StateStore(path).namespace(RUNNER)
    except StoreCorrupt as exc:
        notes.append(exc.one_line())
        return {}


def _step_order(step: dict[str, Any]) -> tuple[float, int]:
    name = step.get("name")
    started = step.get("started_at")
    index = STEPS.index(name) if name in STEPS else len(STEPS)
    return (float(started) if isinstance(started, (int, float)) and started else 1e18, index)


def _test_findings(run_dir: Path, notes: list[str]) -> list[dict[str, Any]]:
    """Findings upgrade tests reported without failing (one JSON object a line)."""
    try:
        lines = (run_dir / "findings.jsonl").read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        notes.append(f"findings.jsonl cannot be read: {exc}")
        return []
    found, bad = [], 0
    for line in filter(str.strip, lines):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        if isinstance(record, dict):
            found.append(record)
    if bad:
        notes.append(f"findings.jsonl: {bad} line(s) are not JSON and are not shown")
    return found


def load_run(run_dir: Path) -> RunData:
    data = RunData(run_dir)
    report = _read_json(run_dir / "report.json", data.notes,
                        "report.json is missing: the run did not finish (killed, or still "
                        "running); what follows comes from state.json")
    if isinstance(report, dict):
        data.header = report
        data.steps = dicts(report.get("steps"))
        data.timeline = dicts(report.get("timeline"))
        facts = report.get("facts")
        data.facts = facts if isinstance(facts, dict) else {}
    elif report is not None:
        data.notes.append("report.json is not a JSON object")
    runner = _runner_state(run_dir, data.notes)
    if not data.steps and isinstance(runner.get("results"), dict):
        data.steps = sorted(dicts(list(runner["results"].values())), key=_step_order)
        if data.steps:
            data.notes.append("steps shown from state.json (the steps the run finished)")
    if not data.header:
        options = _read_json(run_dir / "run.json", data.notes, "run.json is missing")
        data.header = {"base": text_of(options, "base"), "target": text_of(options, "target"),
                       "options": options if isinstance(options, dict) else {}}
    data.before = runner.get("inventory-before")
    data.after = runner.get("inventory-after")
    if not data.facts and isinstance(runner.get("upgrade-facts"), dict):
        data.facts = runner["upgrade-facts"]
    data.test_findings = _test_findings(run_dir, data.notes)
    return data

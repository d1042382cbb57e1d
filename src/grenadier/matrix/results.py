"""What the paths of a matrix came to: per-path results, the exit code, matrix.json, summary.md."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grenadier.errors import ExitCode
from grenadier.host import write_atomic
from grenadier.matrix.paths import UpgradePath
from grenadier.model.findings import ALSO_WITHOUT_UPGRADE
from grenadier.model.result import StepResult
from grenadier.report.html_data import load_run, num, text_of

MATRIX_JSON = "matrix.json"
SUMMARY_MD = "summary.md"
#: what a path's exit code is called in the table, matrix.json and summary.md
RESULT_WORDS: dict[ExitCode, str] = {
    ExitCode.OK: "passed", ExitCode.UPGRADE_FAILED: "failed", ExitCode.USAGE: "bad input",
    ExitCode.ENVIRONMENT: "environment", ExitCode.INTERRUPTED: "interrupted"}


def result_word(code: int) -> str:
    """``passed``, ``failed`` ... for a documented exit code; ``exit N`` for any other."""
    try:
        return RESULT_WORDS[ExitCode(code)]
    except ValueError:
        return f"exit {code}"


@dataclass
class StepSummary:
    """One step of a path's run, as its report.json (or state.json) tells it."""

    name: str
    status: str
    duration: float
    errors: int = 0
    warnings: int = 0
    failed_tests: int = 0
    #: errors and failed tests a control run (no upgrade) shows too
    also_without_upgrade: int = 0

    @classmethod
    def of(cls, step: StepResult) -> StepSummary:
        origins = [f.origin for f in step.failed_findings] + \
            [t.origin for t in step.tests if t.failed]
        return cls(step.name, step.status.value, step.duration,
                   errors=len(step.failed_findings),
                   warnings=sum(1 for f in step.findings if f.severity == "warning"),
                   failed_tests=sum(1 for t in step.tests if t.failed),
                   also_without_upgrade=origins.count(ALSO_WITHOUT_UPGRADE))


def read_steps(run_dir: Path) -> list[StepSummary]:
    """A run's steps, read by the report page's tolerant loader: a damaged run never raises.

    A step that is not a whole ``StepResult`` still shows its name, status and duration.
    """
    steps = []
    for data in load_run(run_dir).steps:
        try:
            steps.append(StepSummary.of(StepResult.from_dict(data)))
        except (KeyError, ValueError, TypeError, AttributeError):
            steps.append(StepSummary(text_of(data, "name") or "?",
                                     text_of(data, "status") or "?", num(data, "duration")))
    return steps


@dataclass
class PathResult:
    """What one path's run came to."""

    path: UpgradePath
    exit_code: int | None  # None: never started
    duration: float = 0.0
    run_dir: Path | None = None
    log: Path | None = None
    steps: list[StepSummary] = field(default_factory=list)
    note: str = ""
    interrupted: bool = False
    #: the base and target the run was given: the installed releases, pinned
    releases: tuple[str, str] | None = None
    #: the control run (base -> base) whose findings labelled this path's
    control: PathResult | None = None

    @property
    def result(self) -> str:
        if self.interrupted:
            return result_word(ExitCode.INTERRUPTED)
        if self.exit_code is None:
            return "not run"
        return result_word(self.exit_code)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def report(self, name: str = "report.json") -> Path | None:
        path = self.run_dir / name if self.run_dir else None
        return path if path is not None and path.is_file() else None

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path.label, "base": self.path.base, "target": self.path.target,
                "db": self.path.db, "result": self.result, "exit_code": self.exit_code,
                "duration": round(self.duration, 1), "note": self.note,
                "run_dir": str(self.run_dir) if self.run_dir else None,
                "log": str(self.log) if self.log else None,
                "releases": {"base": self.releases[0], "target": self.releases[1]}
                if self.releases else None,
                "steps": [vars(step) for step in self.steps],
                **({"control": self.control.to_dict()} if self.control else {})}


def exit_code(results: Sequence[PathResult]) -> ExitCode:
    """Interrupted beats a broken upgrade, which beats an environment or input problem."""
    codes = {r.exit_code for r in results}
    if ExitCode.INTERRUPTED in codes or any(r.interrupted for r in results):
        return ExitCode.INTERRUPTED
    if ExitCode.UPGRADE_FAILED in codes:
        return ExitCode.UPGRADE_FAILED
    bad = sorted(c for c in codes if c is not None and c != 0)
    if bad:
        try:
            return ExitCode(bad[0])
        except ValueError:  # a child killed by a signal, or a code we do not know
            return ExitCode.ENVIRONMENT
    return ExitCode.ENVIRONMENT if None in codes else ExitCode.OK


def write_results(directory: Path, results: Sequence[PathResult]) -> None:
    """matrix.json (machine-readable) and summary.md (a CI job summary) in the matrix folder."""
    data = {"grenadier": "matrix", "exit_code": int(exit_code(results)),
            "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "paths": [r.to_dict() for r in results]}
    write_atomic(directory / MATRIX_JSON, json.dumps(data, indent=1))
    write_atomic(directory / SUMMARY_MD, markdown(results))


def step_cell(result: PathResult) -> str:
    """The steps that did not pass, and what the others found: ``upgrade: 2 warnings``."""
    parts = []
    for step in result.steps:
        bits = [step.status.upper()] if step.status not in ("passed", "skipped") else []
        bits += [f"{count} {what}" for count, what in (
            (step.failed_tests, "failed tests"), (step.errors, "errors"),
            (step.warnings, "warnings"), (step.also_without_upgrade, "also without upgrade"))
            if count]
        if bits:
            parts.append(f"{step.name}: {', '.join(bits)}")
    if result.control is not None:
        parts.append(f"control {result.control.result}")
    return "; ".join(parts) or ("no findings" if result.steps else result.note or "-")


def markdown(results: Sequence[PathResult]) -> str:
    lines = ["| path | result | time | findings per step | report |", "|---|---|---|---|---|"]
    for r in results:
        report = r.report() or r.log or ""
        lines.append(f"| {r.path.label} | {r.result} | {r.duration:.0f} s | "
                     f"{step_cell(r).replace('|', '/')} | {report} |")
    return f"## grenadier matrix: {verdict(results)}\n\n" + "\n".join(lines) + "\n"


def verdict(results: Sequence[PathResult]) -> str:
    code = exit_code(results)
    if code == ExitCode.INTERRUPTED:
        return "interrupted"
    return "all paths passed" if code == ExitCode.OK else "some paths FAILED"

"""The control: the same scenario without the upgrade (base -> base), to tell the upgrade's
failures from Heat's own behaviour.

Some findings are Heat's whether or not anything is upgraded: a stack whose engine was stopped
mid-operation stays IN_PROGRESS under the new release, and after a plain restart of the base
release too. A control run stops the base, runs its db_sync and starts the same release again,
with everything else as the run; every finding and failed test of the run is then labelled
*introduced by the upgrade* or *also without upgrade*, and only the first kind fails it.

A control is an ordinary run in its own run directory (``<run>/control`` for ``run
--control``; the matrix shares one per base), started as a ``grenadier run`` child process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from grenadier.errors import ExitCode
from grenadier.execute import ExecuteRequest, reaper
from grenadier.execute.run import popen
from grenadier.host import write_atomic
from grenadier.model.findings import ALSO_WITHOUT_UPGRADE, INTRODUCED, Finding
from grenadier.model.result import StepResult
from grenadier.model.steps import BASE_STEPS
from grenadier.options.run import OPTIONS_FILE, RunOptions
from grenadier.report.files import REPORT_JSON
from grenadier.report.publish import publish
from grenadier.runner.runner import VERDICTS
from grenadier.services.api import reap_recorded

CONTROL_DIR = "control"
#: how a control run is started; tests substitute a small script
CHILD_COMMAND: tuple[str, ...] = (sys.executable, "-m", "grenadier")
#: a control asked to stop stops its Heat and database first; after this long it is killed
STOP_GRACE = 90.0
#: what varies between two runs of one scenario: ids, random name suffixes, numbers
_VOLATILE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
                       r"|(?<=-)[a-z0-9]{12}\b|(?<=-)[0-9a-f]{6}\b|\d+(?:\.\d+)*")


def start_beside(run_dir: Path, options: RunOptions, invocation: Sequence[str] = ()
                 ) -> ControlRun:
    """Start the control of the run in ``run_dir`` (resume it, when an earlier invocation of
    the run made it) in ``<run_dir>/control``."""
    control_dir = run_dir / CONTROL_DIR
    if not (control_dir / OPTIONS_FILE).is_file():
        control_dir.mkdir(exist_ok=True)
        # the run's options, with the base as the target too and a port of its own
        mine = dataclasses.replace(options, target=options.base, control=False, port=None)
        mine.save(control_dir)
    return ControlRun.start(control_dir, invocation)


def compare(control: ControlRun, results: Sequence[StepResult],
            code: ExitCode) -> tuple[ExitCode, str, dict[str, Any]]:
    """Wait for the control, label ``results`` by it and judge the run again: the exit code,
    a note for the verdict, and what the report says of the control."""
    returncode = control.wait()
    shown = summary(control.run_dir, returncode)
    theirs = read_results(control.run_dir) if returncode in (0, 1) else None
    if theirs is None:  # a control that could not run the scenario tells nothing
        return code, f" (no control: {shown['verdict'] or f'exit {returncode}'})", shown
    label(results, theirs)
    code, note = judge(results, code)
    return code, note, shown


class ControlRun:
    """A control run in ``run_dir``, running as a child process beside this one."""

    def __init__(self, run_dir: Path, proc: subprocess.Popen[str]) -> None:
        self.run_dir = run_dir
        self.proc = proc

    @classmethod
    def start(cls, run_dir: Path, invocation: Sequence[str] = ()) -> ControlRun:
        """Start (or resume) the control whose run.json is in ``run_dir``; ``invocation``:
        ``--stop-after``/``--only`` as the run was given them."""
        cmd = [*CHILD_COMMAND, "run", "--resume", str(run_dir), *invocation]
        with (run_dir / "grenadier.log").open("a", encoding="utf-8") as log:
            log.write(f"$ {ExecuteRequest(cmd).shell_cmd}\n")
            log.flush()
            # its own session (popen): a terminal's Ctrl-C reaches only us, who stop it
            proc = popen(ExecuteRequest(cmd), stdin=subprocess.DEVNULL, stdout=log,
                         stderr=subprocess.STDOUT)
        return cls(run_dir, proc)

    def wait(self) -> int:
        code = self.proc.wait()
        reaper.forget(self.proc.pid)  # ended: grenadier's watcher has nothing left to stop
        return code

    def stop(self, grace: float = STOP_GRACE) -> list[str]:
        """Ask the control to stop (it stops its own services), kill it after ``grace``; the
        services it left are stopped through its services.json. Returns their names."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.wait()
                return reap_recorded(self.run_dir / "services.json")
        self.wait()
        return []


# -- comparing ---------------------------------------------------------------------------------

def _finding_key(step: str, finding: Finding) -> tuple[str, ...]:
    return step, finding.check, finding.kind, _VOLATILE.sub("#", finding.what)


def label(results: Sequence[StepResult], control: Sequence[StepResult]) -> None:
    """Label every finding and failed test of ``results`` (and every failed step) by whether
    the control, the same scenario without the upgrade, found it too."""
    findings = {_finding_key(r.name, f) for r in control for f in r.findings}
    tests = {(r.name, t.name) for r in control for t in r.tests if t.failed}
    failed_steps = {r.name for r in control if not r.status.ok}
    for result in results:
        result.findings = [dataclasses.replace(f, origin=ALSO_WITHOUT_UPGRADE
                                               if _finding_key(result.name, f) in findings
                                               else INTRODUCED) for f in result.findings]
        for test in result.tests:
            if test.failed:
                test.origin = ALSO_WITHOUT_UPGRADE if (result.name, test.name) in tests \
                    else INTRODUCED
        if not result.status.ok:
            result.origin = INTRODUCED if _introduced(result, failed_steps) \
                else ALSO_WITHOUT_UPGRADE


def _origins(result: StepResult, failed_only: bool = True) -> list[str]:
    """The labels of a step's failures (error findings, failed tests), or of all its
    findings and failed tests."""
    findings = result.failed_findings if failed_only else result.findings
    return [f.origin for f in findings] + [t.origin for t in result.tests if t.failed]


def _introduced(result: StepResult, control_failed: set[str]) -> bool:
    """Whether a failed step failed for something the control did not see."""
    origins = _origins(result)
    if origins:
        return INTRODUCED in origins
    return result.name not in control_failed  # a step that failed with a message only


def judge(results: Sequence[StepResult], code: ExitCode) -> tuple[ExitCode, str]:
    """The run's exit code and verdict once its failures are labelled.

    Only failures introduced by the upgrade fail a run. When every failure is also without
    upgrade, the run passes, unless one of them stopped it: what followed was never tested,
    and the base release fails the same way without an upgrade (exit 3).
    """
    failed = [r for r in results if not r.status.ok and r.name not in BASE_STEPS]
    also = sum(_origins(r, failed_only=False).count(ALSO_WITHOUT_UPGRADE) for r in results)
    note = f" ({also} finding(s) and failed test(s) also without upgrade)" if also else ""
    if code != ExitCode.UPGRADE_FAILED or any(r.origin == INTRODUCED for r in failed):
        return code, note
    # teardown runs whatever happened before it: only a step before it can have stopped a run
    names = [r.name for r in results if r.name != "teardown"]
    stopped = [r.name for r in failed if r.name != "teardown"]
    if stopped and stopped[-1] == names[-1] != "post-upgrade":
        return ExitCode.ENVIRONMENT, (": the base release fails the same way without an "
                                      "upgrade (see the control run)")
    return ExitCode.OK, note


def read_results(run_dir: Path) -> list[StepResult] | None:
    """A finished run's step results from its report.json; None when it has none."""
    try:
        report = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
        return [StepResult.from_dict(step) for step in report["steps"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def summary(run_dir: Path, returncode: int | None) -> dict[str, Any]:
    """What a report says of its control: where it is, its exit code and verdict."""
    try:
        report = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
        verdict = str(report.get("verdict", ""))
    except (OSError, ValueError, AttributeError):
        verdict = "no report (the control did not finish)"
    return {"run_dir": str(run_dir), "exit_code": returncode, "verdict": verdict}


def relabel(run_dir: Path, control_dir: Path, control_code: int | None,
            say: Callable[[str], None]) -> ExitCode | None:
    """Label a finished run by a control that ran apart from it (the matrix shares one control
    per base): its report.json, junit.xml and report.html are written again. Returns the run's
    exit code once judged; None when the run or the control cannot be compared."""
    report_path = run_dir / REPORT_JSON
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
        code = ExitCode(report["exit_code"])
        results = [StepResult.from_dict(step) for step in report["steps"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    theirs = read_results(control_dir) if control_code in (0, 1) else None
    if theirs is None:
        return None
    label(results, theirs)
    judged, note = judge(results, code)
    verdict = str(report.get("verdict", "")) if judged == code else VERDICTS[judged]
    report.update(steps=[r.to_dict() for r in results], exit_code=int(judged),
                  verdict=verdict + note, control=summary(control_dir, control_code))
    write_atomic(report_path, json.dumps(report, indent=1, default=str))
    publish(run_dir, report, results, None, say=say)
    return judged

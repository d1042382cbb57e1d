"""Live progress on the console and the final summary table."""

from __future__ import annotations

import time
from collections.abc import Sequence

from rich.console import Console
from rich.status import Status as Spinner
from rich.table import Table

from grenadier.cli.causes import cause_lines
from grenadier.model.findings import ALSO_WITHOUT_UPGRADE
from grenadier.model.result import Status, StepResult, TestOutcome

STYLE = {Status.PASSED: "green", Status.FAILED: "red", Status.ERROR: "red",
         Status.INTERRUPTED: "yellow", Status.SKIPPED: "dim"}
WARNINGS_SHOWN = 3
#: failed tests named as a step ends (the summary names them all)
TESTS_SHOWN = 5
MARK = {Status.PASSED: "ok", Status.FAILED: "FAILED", Status.ERROR: "ERROR",
        Status.INTERRUPTED: "INTERRUPTED", Status.SKIPPED: "skipped"}


class ConsoleReporter:
    """Prints a line as each step starts and ends; a spinner with elapsed time in a terminal."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True, highlight=False, soft_wrap=True,
                                         emoji=False)
        self._spinner: Spinner | None = None
        self._started = 0.0
        self.run_started = time.monotonic()

    def say(self, message: str) -> None:
        self.console.print(f"  {message}", markup=False)

    def step_started(self, name: str) -> None:
        self._started = time.monotonic()
        if self.console.is_terminal:
            self._spinner = self.console.status(f"{name} ...")
            self._spinner.start()
        else:
            self.console.print(f"[bold]>>[/] {name} ...")

    def step_finished(self, result: StepResult) -> None:
        if self._spinner is not None:
            self._spinner.stop()
            self._spinner = None
        total = time.monotonic() - self.run_started
        if result.background and result.status.ok:
            self.console.print(f"[dim]{'...':>6}[/] {result.name:<15} runs in the background "
                               "until the upgrade step ends")
            return
        style = STYLE[result.status]
        self.console.print(
            f"[{style}]{MARK[result.status]:>6}[/] {result.name:<15} {result.duration:6.1f} s"
            f"   [dim](run {total:5.1f} s)[/]")
        failing = [t for t in result.tests if t.failed]
        for test in failing[:TESTS_SHOWN]:
            self._cause(test)
        if len(failing) > TESTS_SHOWN:
            self.console.print(f"         ... and {len(failing) - TESTS_SHOWN} more failed "
                               "tests (report.json)", markup=False)
        if not result.status.ok:
            for message in result.shown_messages[-3:]:
                self.console.print(f"         {message}", markup=False)

    def summary(self, results: Sequence[StepResult], verdict: str, run_dir: str) -> None:
        table = Table(title=f"grenadier: {verdict}", title_justify="left")
        for column in ("step", "result", "time", "tests", "findings"):
            table.add_column(column, justify="right" if column == "time" else "left")
        for result in results:
            tests = f"{sum(t.status == 'passed' for t in result.tests)}/{len(result.tests)}" \
                if result.tests else ""
            errors = len(result.failed_findings)
            also = sum(f.origin == ALSO_WITHOUT_UPGRADE for f in result.failed_findings)
            findings = f"{errors} errors{f' ({also} also w/o upgrade)' if also else ''}, " \
                f"{len(result.findings) - errors} notes" if result.findings else ""
            table.add_row(result.name, f"[{STYLE[result.status]}]{result.status.value}[/]",
                          f"{result.duration:.1f} s", tests, findings)
        self.console.print(table)
        for result in results:
            self._failed_tests(result)
            self._findings(result)
        self.console.print(f"run directory: {run_dir} (report.html, report.json, junit.xml)",
                           markup=False)

    def _failed_tests(self, result: StepResult) -> None:
        """A step's failed tests, those a control run also saw apart (they do not fail it)."""
        failing = [t for t in result.tests if t.failed]
        for origin in dict.fromkeys(t.origin for t in failing):
            mine = [t for t in failing if t.origin == origin]
            said = f" {origin}" if origin else ""
            style = "yellow" if origin == ALSO_WITHOUT_UPGRADE else "red"
            self.console.print(f"[{style}]{result.name}[/]: {len(mine)} failed test(s){said}",
                               highlight=False)
            for test in mine:
                self._cause(test, indent=2)

    def _cause(self, test: TestOutcome, indent: int = 9) -> None:
        """The test and the cause of its failure, in lines that fit the console."""
        for line in cause_lines(test.name, test.message, self.console.width, indent):
            self.console.print(line, markup=False, highlight=False)

    def _findings(self, result: StepResult) -> None:
        """Errors in full with their labelled context; warnings one line each, a few per check."""
        for finding in result.failed_findings:
            for line in finding.lines():
                self.console.print(line, markup=False)
        warnings = [f for f in result.findings if f.severity == "warning"]
        by_check: dict[str, list[str]] = {}
        for finding in warnings:
            said = f" ({finding.origin})" if finding.origin else ""
            by_check.setdefault(finding.check, []).append(finding.what + said)
        for check, whats in by_check.items():
            for what in whats[:WARNINGS_SHOWN]:
                self.console.print(f"[warning] {check}: {what}", markup=False)
            if len(whats) > WARNINGS_SHOWN:
                self.console.print(f"[warning] {check}: ... and {len(whats) - WARNINGS_SHOWN} "
                                   "more in report.json", markup=False)

"""Walks the steps in order; always tears down; records every step's result."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Protocol

from grenadier.errors import ExitCode, GrenadierError
from grenadier.execute.signals import shielded
from grenadier.model.result import Status, StepResult
from grenadier.model.steps import BASE_STEPS
from grenadier.phases.context import RunContext
from grenadier.phases.crash import post_upgrade
from grenadier.phases.install import install
from grenadier.phases.rolling import rolling_upgrade
from grenadier.phases.save_state import save_state
from grenadier.phases.setup import setup_base, start_target
from grenadier.phases.shutdown import shutdown
from grenadier.phases.suite import finish_watch, prestart_phase, run_phase, start_watch
from grenadier.phases.teardown import teardown
from grenadier.phases.upgrade import upgrade
from grenadier.state import RUNNER, StoreCorrupt

StepFunction = Callable[[RunContext], StepResult]
#: what a run's exit code says, as its reports put it
VERDICTS = {ExitCode.OK: "upgrade OK", ExitCode.UPGRADE_FAILED: "upgrade BROKE something",
            ExitCode.USAGE: "bad input", ExitCode.ENVIRONMENT: "environment problem",
            ExitCode.INTERRUPTED: "interrupted",
            ExitCode.BUG: "internal error (a bug in grenadier)"}


def _phase(name: str) -> StepFunction:
    return lambda ctx: run_phase(ctx, name)


STEP_FUNCTIONS: dict[str, StepFunction] = {
    "install": install, "setup-base": setup_base, "smoke-base": _phase("smoke-base"),
    "pre-upgrade": _phase("pre-upgrade"), "save-state": save_state, "shutdown": shutdown,
    "during-upgrade": start_watch, "upgrade": upgrade, "start-target": start_target,
    "smoke-target": _phase("smoke-target"),
    # after --shutdown crash, the suite is framed by the recovery of the stuck stacks
    "post-upgrade": post_upgrade, "teardown": teardown,
    # --mode rolling: replaces shutdown, during-upgrade, upgrade and start-target
    "rolling-upgrade": rolling_upgrade,
}
#: what must be running before a step starts (a resumed run starts from nothing)
NEEDS: dict[str, str] = {
    "smoke-base": "base", "pre-upgrade": "base", "save-state": "base",
    "during-upgrade": "down", "upgrade": "down",
    "smoke-target": "target", "post-upgrade": "target", "rolling-upgrade": "base",
}


#: steps whose services start ahead, held, during one of the steps before them: the role
#: they start, and the steps it may start in (from shutdown on: Heat stopping takes seconds
#: in which the machine mostly waits)
PRESTARTED_ROLES = {"start-target": ("target", ("shutdown", "during-upgrade", "upgrade"))}
#: steps whose failure lets the run go on while the target is up (see Runner._goes_on)
GOES_ON = ("start-target", "smoke-target")


class Reporter(Protocol):
    def step_started(self, name: str) -> None: ...
    def step_finished(self, result: StepResult) -> None: ...


def _recorded_results(ctx: RunContext) -> dict[str, StepResult]:
    """The step results a previous invocation of this run recorded."""
    recorded = ctx.store.get(RUNNER, "results") or {}
    try:
        return {name: StepResult.from_dict(data) for name, data in recorded.items()}
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise StoreCorrupt(f"state store {ctx.store.path}: the recorded step results are "
                           f"corrupt ({exc!r})", hint="start a new run") from exc


class Runner:
    def __init__(self, ctx: RunContext, reporter: Reporter) -> None:
        self.ctx = ctx
        self.reporter = reporter
        self.exit_code = ExitCode.OK
        #: the expected failure that ended the run early, printed as one line by the CLI
        self.error: GrenadierError | None = None
        #: a bug (any other exception) in a step: re-raised, with its traceback, after teardown
        self.bug: Exception | None = None
        self.results = _recorded_results(ctx)

    def _record(self, result: StepResult) -> None:
        self.results[result.name] = result
        self.save()

    def save(self) -> None:
        """Record the step results in the state store (a resumed run starts from them)."""
        self.ctx.store.save(RUNNER, "results",
                            {name: r.to_dict() for name, r in self.results.items()})

    def _prepare(self, step: str) -> None:
        need = NEEDS.get(step)
        if need in ("base", "target"):
            self.ctx.start_project(need)
        elif need == "down":
            self.ctx.require_db()
            if self.ctx.running_role is not None:
                self.ctx.stop_project()

    def _run_step(self, step: str) -> StepResult:
        self.reporter.step_started(step)
        started, wall = time.monotonic(), time.time()
        try:
            self._prepare(step)
            result = STEP_FUNCTIONS[step](self.ctx)
        except GrenadierError as exc:
            result = StepResult(step, Status.ERROR, messages=[exc.one_line()])
            if self.error is None:
                self.error, self.exit_code = exc, exc.exit_code
        except KeyboardInterrupt:
            result = StepResult(step, Status.INTERRUPTED, messages=["interrupted (SIGINT)"])
            self.exit_code = ExitCode.INTERRUPTED
        except Exception as exc:
            # recorded like any failed step, so teardown and the reports still happen
            result = StepResult(step, Status.ERROR, messages=[f"internal error: {exc!r}"])
            self.bug = self.bug or exc
        for name in self.ctx.supervisor.died():
            # a during-upgrade watcher ends by itself (all its tests skipped, or done): its
            # exit code and tests are judged when the watch finishes
            if name not in self.ctx.watchers:
                result.messages.append(f"{name} died during this step (see its log)")
        result.duration, result.started_at = time.monotonic() - started, wall
        self._record(result)
        self.reporter.step_finished(result)
        return result

    def _prestart(self, step: str, following: list[str]) -> None:
        """The next step's pytest, and a later step's services, import while ``step`` runs
        (best effort: what cannot start now, its own step starts as usual)."""
        starts: list[Callable[[], None]] = [
            functools.partial(self.ctx.prestart_project, role)
            for later, (role, during) in PRESTARTED_ROLES.items()
            if later in following and step in during]
        starts += [functools.partial(prestart_phase, self.ctx, phase) for phase in following[:1]]
        for start in starts:
            try:
                start()
            except (GrenadierError, OSError) as exc:
                self.ctx.say(f"a later step not started ahead: {exc}")

    def _finish_watch(self) -> None:
        watched = finish_watch(self.ctx)
        if watched is not None:
            previous = self.results.get("during-upgrade")
            if previous is not None:
                watched.duration = time.time() - previous.started_at
                watched.started_at = previous.started_at
                watched.messages = previous.messages + watched.messages
            self._record(watched)
            self.reporter.step_finished(watched)

    def _goes_on(self, result: StepResult) -> bool:
        """Whether the run goes on after ``result`` failed: the upgrade's verdict is already
        1, and the steps after it show every other broken behaviour (which old stacks can no
        longer be updated or deleted) instead of stopping at the first failure.

        Only after a failure (not an error) of a step that leaves something to test: the
        upgrade when the database migrated, start-target and smoke-target when the target is
        up. ``--fail-fast`` stops at the first failure.
        """
        if self.ctx.options.fail_fast or result.status is not Status.FAILED \
                or self.exit_code != ExitCode.OK:
            return False
        if result.name == "upgrade":
            return not any(f.check == "migration" for f in result.failed_findings)
        return result.name in GOES_ON and self.ctx.running_role == "target"

    def run(self, steps: list[str]) -> ExitCode:
        """Run ``steps`` then teardown; return the run's exit code."""
        try:
            for index, step in enumerate(steps):
                self._prestart(step, steps[index + 1:])
                result = self._run_step(step)
                if step == "upgrade":
                    self._finish_watch()
                if (not result.status.ok or self.exit_code != ExitCode.OK) \
                        and not self._goes_on(result):
                    break
        finally:
            # teardown runs to its end: a Ctrl-C (or a second one) meanwhile only marks the run
            with shielded(reraise=False) as shield:
                try:
                    self._finish_watch()
                finally:
                    self._run_step("teardown")
            if shield.signals and self.exit_code == ExitCode.OK:
                self.exit_code = ExitCode.INTERRUPTED
        return self.verdict()

    def verdict(self) -> ExitCode:
        if self.bug is not None:
            return ExitCode.BUG
        if self.exit_code != ExitCode.OK:
            return self.exit_code
        failed = [r for r in self.results.values() if not r.status.ok]
        if any(r.name in BASE_STEPS for r in failed):
            return ExitCode.ENVIRONMENT  # nothing was upgraded yet
        return ExitCode.UPGRADE_FAILED if failed else ExitCode.OK

    def base_failed(self) -> bool:
        """Whether the run ended because the base release did not work (before the upgrade)."""
        return any(not r.status.ok for r in self.results.values() if r.name in BASE_STEPS)

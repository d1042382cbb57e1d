"""The runner records every step, whatever ends it, and always tears down."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from grenadier.errors import EnvironmentProblem, ExitCode
from grenadier.execute import ExecuteRequest, Outcome
from grenadier.model.findings import Finding
from grenadier.model.result import Status, StepResult
from grenadier.options.run import RunOptions
from grenadier.releases import Release
from grenadier.runner import runner as runner_module
from grenadier.runner.runner import Runner
from grenadier.services import ServiceSpec, Supervisor
from grenadier.state import StateStore


class FakeContext:
    def __init__(self, tmp_path: Path) -> None:
        self.store = StateStore(tmp_path / "state.json")
        self.supervisor = Supervisor()
        self.options = RunOptions()
        self.watchers: dict[str, str] = {}
        self.running_role: str | None = None
        #: what happened, in order: roles started ahead (``held <role>``), steps run
        self.events: list[str] = []

    def prestart_project(self, role: str) -> None:
        self.events.append(f"held {role}")


class Recorder:
    def __init__(self) -> None:
        self.finished: list[StepResult] = []

    def step_started(self, name: str) -> None:
        pass

    def step_finished(self, result: StepResult) -> None:
        self.finished.append(result)


def _runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, install: object,
            prestarted: list[str] | None = None) -> Runner:
    monkeypatch.setattr(runner_module, "prestart_phase",
                        lambda _ctx, step: (prestarted if prestarted is not None else []
                                            ).append(step))
    monkeypatch.setitem(runner_module.STEP_FUNCTIONS, "install", install)
    monkeypatch.setitem(runner_module.STEP_FUNCTIONS, "teardown",
                        lambda ctx: StepResult("teardown", Status.PASSED))
    return Runner(FakeContext(tmp_path), Recorder())  # type: ignore[arg-type]


def test_a_bug_in_a_step_is_recorded_and_teardown_still_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(ctx: object) -> StepResult:
        raise ValueError("a bug")

    runner = _runner(tmp_path, monkeypatch, broken)
    code = runner.run(["install", "setup-base"])
    assert isinstance(runner.bug, ValueError)
    assert code == ExitCode.BUG  # never read as "the upgrade broke"
    assert {n: r.status for n, r in runner.results.items()} == {
        "install": Status.ERROR, "teardown": Status.PASSED}
    assert runner.results["install"].messages == ["internal error: ValueError('a bug')"]
    recorded = StateStore(tmp_path / "state.json").get("runner", "results")
    assert set(recorded) == {"install", "teardown"}


def test_an_expected_failure_sets_its_exit_code(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    def no_index(ctx: object) -> StepResult:
        raise EnvironmentProblem("the package index is unreachable")

    runner = _runner(tmp_path, monkeypatch, no_index)
    assert runner.run(["install"]) == ExitCode.ENVIRONMENT
    assert runner.bug is None
    assert runner.results["install"].messages == ["the package index is unreachable"]


def test_corrupt_recorded_results_are_a_clear_error(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.json")
    store.save("runner", "results", {"install": {"status": "weird"}})
    with pytest.raises(EnvironmentProblem, match="recorded step results are corrupt"):
        Runner(FakeContext(tmp_path), Recorder())  # type: ignore[arg-type]


class _FailingDbSync:
    """A project whose db_sync fails, as a base release that cannot create its schema."""

    def configure(self, release: object, deployment: object) -> list[Path]:
        return []

    def db_sync(self, release: object, deployment: object) -> Outcome:
        request = ExecuteRequest(["heat-manage", "db_sync"])
        return Outcome(request, 1, "", "ImportError: Backend class not found", 0.0, 1.0)


def test_a_base_whose_db_sync_fails_is_the_environment_not_the_upgrade(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = FakeContext(tmp_path)
    ctx.release = lambda role: Release("26.0.2", "26.0.2", tmp_path, "pypi")  # type: ignore[attr-defined]
    ctx.require_db = lambda: None  # type: ignore[attr-defined]
    ctx.project = _FailingDbSync()  # type: ignore[attr-defined]
    ctx.deployment = None  # type: ignore[attr-defined]
    monkeypatch.setitem(runner_module.STEP_FUNCTIONS, "teardown",
                        lambda ctx: StepResult("teardown", Status.PASSED))
    monkeypatch.setattr(runner_module, "prestart_phase", lambda _ctx, _step: None)
    runner = Runner(ctx, Recorder())  # type: ignore[arg-type]
    assert runner.run(["setup-base", "smoke-base"]) == ExitCode.ENVIRONMENT
    assert runner.base_failed()
    assert runner.results["setup-base"].messages == [
        "the base release does not work here: its db_sync (26.0.2) failed (exit 1): "
        "ImportError: Backend class not found"]


@pytest.mark.parametrize(("step", "code"), [
    ("smoke-base", ExitCode.ENVIRONMENT), ("pre-upgrade", ExitCode.ENVIRONMENT),
    ("smoke-target", ExitCode.UPGRADE_FAILED), ("post-upgrade", ExitCode.UPGRADE_FAILED)])
def test_a_failed_step_blames_the_base_only_before_the_upgrade(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str, code: ExitCode) -> None:
    monkeypatch.setitem(runner_module.STEP_FUNCTIONS, step,
                        lambda ctx: StepResult(step, Status.FAILED))
    runner = _runner(tmp_path, monkeypatch, lambda ctx: StepResult("install", Status.PASSED))
    monkeypatch.setattr(runner, "_prepare", lambda step: None)
    assert runner.run(["install", step]) == code


def _service_until(supervisor: Supervisor, name: str, flag: Path) -> None:
    """A service that runs until ``flag`` exists, then ends by itself."""
    code = f"import os, time\nwhile not os.path.exists({str(flag)!r}): time.sleep(0.05)"
    supervisor.start(ServiceSpec(name, [sys.executable, "-c", code], flag.with_suffix(".log"),
                                 ready=lambda: True))


def test_a_watcher_that_ends_by_itself_did_not_die(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    def watch_and_crash(ctx: FakeContext) -> StepResult:
        for name in ("during-upgrade-watch-1-x", "heat-target"):
            _service_until(ctx.supervisor, name, tmp_path / "end")
        ctx.watchers["during-upgrade-watch-1-x"] = "1-x"
        (tmp_path / "end").touch()
        for name in ("during-upgrade-watch-1-x", "heat-target"):
            ctx.supervisor.get(name).proc.wait()
        return StepResult("install", Status.PASSED)

    runner = _runner(tmp_path, monkeypatch, watch_and_crash)
    monkeypatch.setattr(runner_module, "finish_watch", lambda ctx: None)
    try:
        runner.run(["install"])
    finally:
        runner.ctx.supervisor.stop_all()
    assert runner.results["install"].messages == [
        "heat-target died during this step (see its log)"]


def _steps_failing(monkeypatch: pytest.MonkeyPatch, failing: str, findings: list[Finding],
                   ran: list[str]) -> None:
    for step in ("upgrade", "start-target", "smoke-target", "post-upgrade"):
        def function(ctx: object, step: str = step) -> StepResult:
            ran.append(step)
            status = Status.FAILED if step == failing else Status.PASSED
            return StepResult(step, status, findings=findings if step == failing else [])
        monkeypatch.setitem(runner_module.STEP_FUNCTIONS, step, function)


@pytest.mark.parametrize(("failing", "target_up", "findings", "ran"), [
    # the target is up: the post-upgrade tests show what else broke
    ("start-target", True, [], ["start-target", "smoke-target", "post-upgrade"]),
    ("smoke-target", True, [], ["start-target", "smoke-target", "post-upgrade"]),
    ("upgrade", True, [Finding("schema-drift", "error", "drift")],
     ["upgrade", "start-target", "smoke-target", "post-upgrade"]),
    # nothing left to test: the target did not start, the database did not migrate
    ("start-target", False, [], ["start-target"]),
    ("upgrade", True, [Finding("migration", "error", "db_sync failed")], ["upgrade"]),
])
def test_a_failure_with_the_target_up_lets_the_run_go_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str, target_up: bool,
        findings: list[Finding], ran: list[str]) -> None:
    done: list[str] = []
    _steps_failing(monkeypatch, failing, findings, done)
    runner = _runner(tmp_path, monkeypatch, lambda ctx: StepResult("install", Status.PASSED))
    runner.ctx.running_role = "target" if target_up else None  # type: ignore[attr-defined]
    monkeypatch.setattr(runner, "_prepare", lambda step: None)
    steps = ["upgrade", "start-target", "smoke-target", "post-upgrade"]
    assert runner.run(steps[steps.index(ran[0]):]) == ExitCode.UPGRADE_FAILED
    assert done == ran


def test_fail_fast_stops_at_the_first_failure(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    done: list[str] = []
    _steps_failing(monkeypatch, "smoke-target", [], done)
    runner = _runner(tmp_path, monkeypatch, lambda ctx: StepResult("install", Status.PASSED))
    runner.ctx.running_role = "target"  # type: ignore[attr-defined]
    runner.ctx.options.fail_fast = True
    monkeypatch.setattr(runner, "_prepare", lambda step: None)
    assert runner.run(["start-target", "smoke-target", "post-upgrade"]) == \
        ExitCode.UPGRADE_FAILED
    assert done == ["start-target", "smoke-target"]


def test_each_step_starts_the_next_steps_tests_ahead(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    prestarted: list[str] = []
    for step in ("smoke-base", "pre-upgrade"):
        monkeypatch.setitem(runner_module.STEP_FUNCTIONS, step,
                            lambda ctx, step=step: StepResult(step, Status.PASSED))
    runner = _runner(tmp_path, monkeypatch, lambda ctx: StepResult("install", Status.PASSED),
                     prestarted)
    runner.run(["install", "smoke-base", "pre-upgrade"])
    # while install runs, smoke-base's pytest starts; while smoke-base runs, pre-upgrade's
    assert prestarted == ["smoke-base", "pre-upgrade"]


@pytest.mark.parametrize(("steps", "held_before"), [
    (["pre-upgrade", "shutdown", "during-upgrade", "upgrade", "start-target"], "shutdown"),
    (["upgrade", "start-target"], "upgrade"),  # a resumed run
    (["shutdown", "during-upgrade", "upgrade"], None),  # --stop-after upgrade
])
def test_the_targets_services_start_ahead_from_the_shutdown_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, steps: list[str],
        held_before: str | None) -> None:
    prestarted: list[str] = []
    runner = _runner(tmp_path, monkeypatch, lambda ctx: StepResult("install", Status.PASSED),
                     prestarted)
    for step in steps:
        monkeypatch.setitem(runner_module.STEP_FUNCTIONS, step,
                            lambda ctx, step=step: ctx.events.append(step)
                            or StepResult(step, Status.PASSED))
    monkeypatch.setattr(runner, "_prepare", lambda step: None)
    assert runner.run(steps) == ExitCode.OK
    events: list[str] = runner.ctx.events  # type: ignore[attr-defined]
    if held_before is None:
        assert "held target" not in events
    else:  # asked for again in each later step before start-target (it starts once)
        assert events[events.index("held target") + 1] == held_before
        assert "held target" not in events[:events.index(held_before) - 1]

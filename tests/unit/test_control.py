"""The control run (base -> base): every finding and failed test labelled by whether the same
scenario without the upgrade shows it; only failures introduced by the upgrade fail a run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from grenadier.errors import ExitCode, UsageError
from grenadier.model.findings import ALSO_WITHOUT_UPGRADE, INTRODUCED, Finding
from grenadier.model.result import Status, StepResult, TestOutcome
from grenadier.options.run import RunOptions
from grenadier.report.files import write_junit
from grenadier.runner import control as control_module
from grenadier.runner.control import ControlRun, compare, judge, label, start_beside

STUCK = Finding("heat.stack-left-in-progress", "error", "a stack whose engine died "
                "mid-operation is still IN_PROGRESS under the new release",
                where="stack grenadier-in-progress-b2b373 (fdcb050d-d480-49ca-a95c-bfb64db7d332)")


def _post(*failed: str, findings: tuple[Finding, ...] = ()) -> StepResult:
    tests = [TestOutcome(f"test_heat_upgrade::{name}", "failed", 1.0, "boom") for name in failed]
    tests.append(TestOutcome("test_heat_upgrade::test_outputs_unchanged", "passed", 1.0))
    return StepResult("post-upgrade", Status.FAILED if failed else Status.PASSED,
                      findings=list(findings), tests=tests)


def _run(*steps: StepResult) -> list[StepResult]:
    passed = [StepResult(n, Status.PASSED) for n in ("upgrade", "start-target", "smoke-target")]
    return [*passed, *steps, StepResult("teardown", Status.PASSED)]


def test_failures_the_control_shares_are_labelled_and_do_not_fail_the_run() -> None:
    # the stuck stack's finding names another stack in the control: the same finding
    theirs = STUCK.__class__(**{**STUCK.to_dict(), "where": "stack grenadier-in-progress-9f0a1c"})
    mine = _run(_post("test_stack_left_in_progress_by_dead_engine", findings=(STUCK,)))
    label(mine, _run(_post("test_stack_left_in_progress_by_dead_engine", findings=(theirs,))))
    post = mine[3]
    assert post.findings[0].origin == ALSO_WITHOUT_UPGRADE
    assert post.tests[0].origin == ALSO_WITHOUT_UPGRADE
    assert post.tests[1].origin == ""  # a passed test is not labelled
    assert post.origin == ALSO_WITHOUT_UPGRADE
    code, note = judge(mine, ExitCode.UPGRADE_FAILED)
    assert code == ExitCode.OK
    assert note == " (2 finding(s) and failed test(s) also without upgrade)"


def test_a_failure_only_the_upgrade_shows_fails_the_run() -> None:
    drift = Finding("schema-drift", "error", "column stack.x is in the models, not the database")
    mine = _run(_post("test_stack_left_in_progress_by_dead_engine", "test_delete_old_stacks",
                      findings=(STUCK,)))
    mine[0] = StepResult("upgrade", Status.FAILED, findings=[drift])
    label(mine, _run(_post("test_stack_left_in_progress_by_dead_engine", findings=(STUCK,))))
    assert mine[0].findings[0].origin == INTRODUCED
    assert mine[0].origin == INTRODUCED
    assert [t.origin for t in mine[3].tests] == [ALSO_WITHOUT_UPGRADE, INTRODUCED, ""]
    assert mine[3].origin == INTRODUCED
    assert judge(mine, ExitCode.UPGRADE_FAILED)[0] == ExitCode.UPGRADE_FAILED


def test_a_shared_failure_that_stopped_the_run_is_the_base_not_a_pass() -> None:
    start = Finding("target-start", "error", "the target does not start on the base "
                                             "configuration")
    failed = StepResult("start-target", Status.FAILED, findings=[start])
    mine = [StepResult("upgrade", Status.PASSED), failed, StepResult("teardown", Status.PASSED)]
    label(mine, [StepResult("start-target", Status.FAILED, findings=[start])])
    code, note = judge(mine, ExitCode.UPGRADE_FAILED)
    assert code == ExitCode.ENVIRONMENT
    assert "the base release fails the same way without an upgrade" in note


def test_a_shared_failure_of_teardown_after_a_shared_post_upgrade_one_passes() -> None:
    # teardown runs whatever happened before it: its failure never stopped the run
    mine = _run(_post("test_stack_left_in_progress_by_dead_engine", findings=(STUCK,)))
    mine[-1] = StepResult("teardown", Status.FAILED, findings=[STUCK])
    control = _run(_post("test_stack_left_in_progress_by_dead_engine", findings=(STUCK,)))
    control[-1] = StepResult("teardown", Status.FAILED, findings=[STUCK])
    label(mine, control)
    assert mine[-1].origin == ALSO_WITHOUT_UPGRADE
    assert judge(mine, ExitCode.UPGRADE_FAILED)[0] == ExitCode.OK


def test_a_step_failed_with_a_message_only_compares_the_step() -> None:
    mine = [StepResult("during-upgrade", Status.FAILED, messages=["pytest exited with code 3"])]
    label(mine, [StepResult("during-upgrade", Status.PASSED)])
    assert mine[0].origin == INTRODUCED
    label(mine, [StepResult("during-upgrade", Status.FAILED)])
    assert mine[0].origin == ALSO_WITHOUT_UPGRADE


def test_junit_shows_a_shared_failure_as_skipped_with_why(tmp_path: Path) -> None:
    mine = _run(_post("test_stack_left_in_progress_by_dead_engine", "test_delete_old_stacks"))
    label(mine, _run(_post("test_stack_left_in_progress_by_dead_engine")))
    text = write_junit(tmp_path, "run", mine).read_text()
    assert '<skipped message="failed also without upgrade: boom"' in text
    assert text.count("<failure") == 2  # the step and the test the upgrade broke


FAKE_CONTROL = '''
import json, sys, time
from pathlib import Path
args = sys.argv[1:]
run_dir = Path(args[args.index("--resume") + 1])
(run_dir / "args.json").write_text(json.dumps(args))
if "--stop-after" in args and args[args.index("--stop-after") + 1] == "hang":
    time.sleep(600)
steps = [{"name": "post-upgrade", "status": "failed", "findings": [], "tests": [
    {"name": "test_heat_upgrade::test_a", "status": "failed", "duration": 1, "message": "x"}]}]
(run_dir / "report.json").write_text(json.dumps({"verdict": "upgrade BROKE something",
                                                 "steps": steps}))
sys.exit(1)
'''


@pytest.fixture
def fake_child(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "fake_control.py"
    script.write_text(FAKE_CONTROL)
    monkeypatch.setattr(control_module, "CHILD_COMMAND", (sys.executable, str(script)))


@pytest.mark.usefixtures("fake_child")
def test_the_control_runs_base_to_base_beside_the_run(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    options = RunOptions(base="26.0.2", target="27.0.1", port=8004, control=True)
    control = start_beside(run_dir, options, ["--stop-after", "post-upgrade"])
    mine = [StepResult("post-upgrade", Status.FAILED, tests=[
        TestOutcome("test_heat_upgrade::test_a", "failed", 1.0, "x"),
        TestOutcome("test_heat_upgrade::test_b", "failed", 1.0, "y")])]
    code, note, shown = compare(control, mine, ExitCode.UPGRADE_FAILED)
    saved = RunOptions.load(run_dir / "control")
    assert (saved.base, saved.target, saved.port, saved.control) == ("26.0.2", "26.0.2", None,
                                                                      False)
    assert json.loads((run_dir / "control" / "args.json").read_text()) == [
        "run", "--resume", str(run_dir / "control"), "--stop-after", "post-upgrade"]
    assert [t.origin for t in mine[0].tests] == [ALSO_WITHOUT_UPGRADE, INTRODUCED]
    assert code == ExitCode.UPGRADE_FAILED
    assert shown == {"run_dir": str(run_dir / "control"), "exit_code": 1,
                     "verdict": "upgrade BROKE something"}
    assert note == " (1 finding(s) and failed test(s) also without upgrade)"


@pytest.mark.usefixtures("fake_child")
def test_a_control_cut_short_is_stopped(tmp_path: Path) -> None:
    (tmp_path / "control").mkdir()
    RunOptions().save(tmp_path / "control")
    control = ControlRun.start(tmp_path / "control", ["--stop-after", "hang"])
    assert control.proc.poll() is None
    control.stop(grace=30)
    assert control.proc.returncode is not None


def test_a_control_cannot_share_the_runs_database_or_bus() -> None:
    with pytest.raises(UsageError, match="--control cannot be combined with --db-url"):
        RunOptions(control=True, db_url="postgresql://heat@db.example/heat")
    with pytest.raises(UsageError, match="--bus-url"):
        RunOptions(control=True, bus_url="rabbit://guest:guest@127.0.0.1:5672/")

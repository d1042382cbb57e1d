"""Every check of the built-in Heat suite fails when its condition is broken.

Two real runs break things with crafted situations, not mocks: data/tamper.py, given as a user test
directory (``--tests``), runs in the real during-upgrade phase (Heat down, its DB up) and
changes Heat's DB and the target's config (see its docstring). Each check is broken on a stack
of its own, so that one run shows them all:

* ``tampered``: one crafted situation per post-upgrade check; each targeted test must fail
  with the message that names what was broken.
* ``vanished``: rows vanish while the during-upgrade watch runs (and are put back after the
  upgrade step); a stack is hidden from the stack list; ``--fail-on-stuck``. Everything not
  targeted must still pass: the detectors do not fire on what was left alone.

The clean default run (shared with the other e2e tests) shows every check quiet.
"""

from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from grenadier.pytest_plugin import namespace_for
from tests.e2e.conftest import BASE, TARGET, Run, grenadier

TAMPER = Path(__file__).with_name("data") / "tamper.py"
SUITE = "test_heat_upgrade"
SUITE_NAMESPACE = namespace_for(f"{SUITE}.py")
WATCH_TEST = f"{SUITE}::test_stacks_and_resources_stay_in_db"
STUCK_TEST = "test_stack_left_in_progress_by_dead_engine"
STUCK_CHECK = "heat.stack-left-in-progress"
#: GRENADIER_SETTLE_SECONDS of the tampered run: how long its stuck stack is waited for
SETTLE = "10"

Record = dict[str, Any]
Records = dict[str, Record]


@dataclass
class Crafted:
    """A real run with tamper.py's scenario: the run, what tamper.py did, what the suite saved."""

    run: Run
    done: dict[str, Any]
    records: Records

    def tests(self, step: str) -> dict[str, str]:
        """Test name (``module::test``) -> status, from report.json."""
        tests = self.run.steps()[step]["tests"]
        return {str(t["name"]): str(t["status"]) for t in tests}  # type: ignore[attr-defined]

    def failure_text(self, step: str, name: str) -> str:
        """The whole failure report of one test (message and element text) from the JUnit file."""
        root = ET.parse(self.run.run_dir / "junit" / f"{step}.xml").getroot()
        for case in root.iter("testcase"):
            if case.get("name") == name:
                node = case.find("failure")
                if node is None:
                    node = case.find("error")
                assert node is not None, f"{name} did not fail in {step}"
                return f"{node.get('message') or ''}\n{node.text or ''}"
        raise AssertionError(f"no test {name} in junit/{step}.xml")


def crafted_run(name: str, workdir: Path, cache_dir: Path, *args: str,
                env: dict[str, str] | None = None) -> Crafted:
    tests = workdir / f"tamper-{name}"
    tests.mkdir()
    shutil.copy(TAMPER, tests / "test_tamper.py")
    config = workdir / f"tamper-{name}.conf"
    config.write_text("[DEFAULT]\n", encoding="utf-8")
    (tests / "scenario.json").write_text(json.dumps({"scenario": name, "config": str(config)}),
                                         encoding="utf-8")
    run = grenadier("run", "--base", BASE, "--target", TARGET, "--tests", str(tests),
                    "--config", str(config), *args, workdir=workdir, cache_dir=cache_dir,
                    env=env)
    assert (run.run_dir / "report.json").is_file(), run.err[-3000:]
    done_file = tests / "crafted.json"
    done = json.loads(done_file.read_text(encoding="utf-8")) if done_file.is_file() else {}
    return Crafted(run, done, suite_records(run))


def suite_records(run: Run) -> Records:
    """What the built-in suite's pre-upgrade test recorded, by stack key."""
    state = json.loads((run.run_dir / "state.json").read_text(encoding="utf-8"))
    return {key.split(":", 1)[1]: value for key, value in
            state["namespaces"].get(SUITE_NAMESPACE, {}).items() if key.startswith("stack:")}


@pytest.fixture(scope="module")
def tampered(workdir: Path, cache_dir: Path) -> Crafted:
    return crafted_run("tampered", workdir, cache_dir,
                       env={"GRENADIER_SETTLE_SECONDS": SETTLE})


@pytest.fixture(scope="module")
def vanished(workdir: Path, cache_dir: Path) -> Crafted:
    # rows deleted during the upgrade step would (rightly) fail the upgrade's own data check
    return crafted_run("vanished", workdir, cache_dir, "--fail-on-stuck",
                       "--skip-checks", "data-preserved")


def ref(rec: Record) -> str:
    """How the suite names a stack in its messages."""
    return f"{rec['name']} ({rec['id']})"


def pid(rec: Record, resource: str) -> str:
    return str(rec["resources"][f"{rec['name']}/{resource}"]["physical_resource_id"])


# -- what each broken check must say ----------------------------------------------------------

def _shown(r: Records) -> list[str]:
    was = r["in_progress"]["show"]["disable_rollback"]
    return [f"stack show / template of stack {ref(r['in_progress'])} changed across the upgrade",
            f"disable_rollback: expected {json.dumps(was)}, found {json.dumps(not was)}",
            # the parameter update's crafted template shows too
            f"stack show / template of stack {ref(r['params'])} changed across the upgrade",
            "template.resources.echo.properties.fail: expected false, found true"]


def _outputs(r: Records) -> list[str]:
    kept = r["retain"]["outputs"]["kept_out"]["value"]
    return [f"outputs of stack {ref(r['retain'])} changed across the upgrade",
            f'kept_out.value: expected "{kept}", found "kept-TAMPER"']


def _resources(r: Records) -> list[str]:
    return [f"resources of stack {ref(r['suspended'])} changed across the upgrade",
            f"{r['suspended']['name']}/marker.resource_status_reason: expected ",
            'found "crafted reason"']


def _parameter_update(r: Records) -> list[str]:
    return [f"- params {r['params']['name']}: StackWaitError: stack {ref(r['params'])}: "
            "wanted UPDATE_COMPLETE, failed",
            "status: UPDATE_FAILED",
            "status reason: Resource UPDATE failed: ValueError: resources.echo: "
            "Test Resource failed echo",
            "last events:"]


def _template_update(r: Records) -> list[str]:
    return [f"resource 'first' replaced by an update that did not change it: "
            f"{pid(r['evolve'], 'first')} -> "]


def _suspend_resume(r: Records) -> list[str]:
    return [f"- suspended {r['suspended']['name']}: StackWaitError: stack {ref(r['suspended'])}"
            ": wanted RESUME_COMPLETE, failed",
            "status: RESUME_FAILED", "Cannot resume child, stack not created"]


def _signal(r: Records) -> list[str]:
    # the crafted failure signal fails the update within milliseconds: the suite's poll for the
    # wait resource in UPDATE_IN_PROGRESS mostly finds it UPDATE_FAILED, but may catch it in
    # progress, signal it, and find the stack UPDATE_FAILED; either way it says this
    return [f"stack {ref(r['wait_condition'])}", "UPDATE_FAILED",
            "WaitConditionFailure: resources.wait: crafted failure"]


def _check(r: Records) -> list[str]:
    return [f"- group {r['group']['name']}: StackWaitError: stack {ref(r['group'])}: "
            "wanted CHECK_COMPLETE, failed",
            "status: CHECK_FAILED", "Resource not created"]


def _new_stack(r: Records) -> list[str]:
    return ["Recursion depth exceeds 0"]


def _in_progress(r: Records) -> list[str]:
    return [f"still IN_PROGRESS after {SETTLE} s",
            f"{ref(r['nested'])}: UPDATE_IN_PROGRESS"]


def _delete(r: Records) -> list[str]:
    config = r["software_config"]["db"]["software_configs"][0]
    return [f"- software_config {r['software_config']['name']}: StackWaitError: stack "
            f"{ref(r['software_config'])}: wanted DELETE_COMPLETE, failed",
            "status: DELETE_FAILED",
            f"Software config with id {config} can not be deleted as it is referenced",
            f"- retain {r['retain']['name']}: AssertionError: deletion_policy Retain not "
            f"honoured: nested stack {pid(r['retain'], 'kept')} (resource 'kept') is "]


#: test -> (crafted situation, what its failure must say)
TAMPERED: dict[str, tuple[str, Callable[[Records], list[str]]]] = {
    "test_old_stacks_listed_and_shown": ("disable_rollback flipped", _shown),
    "test_outputs_unchanged": ("random value and its cached attribute rewritten", _outputs),
    "test_resources_unchanged": ("status reason rewritten", _resources),
    "test_update_with_parameter_change": ("stored template sets fail: true", _parameter_update),
    "test_update_with_template_change": ("resource `first` marked FAILED", _template_update),
    "test_suspend_and_resume": ("nested-stack resource lost its physical id", _suspend_resume),
    "test_signal_wait_condition_again": ("handle carries a FAILURE signal", _signal),
    "test_stack_check": ("group member lost its physical id", _check),
    "test_create_and_delete_new_stack": ("max_nested_stack_depth = 0, target only", _new_stack),
    "test_no_stack_left_in_progress": ("stack row set UPDATE_IN_PROGRESS", _in_progress),
    "test_delete_old_stacks": ("config referenced by a deployment; Retain -> Delete", _delete),
}


def _listed(r: Records) -> list[str]:
    return [f"old stacks missing from the stack list: "
            f"['software_config {r['software_config']['name']}']"]


def _stuck(r: Records) -> list[str]:
    return ["[error] heat.stack-left-in-progress: a stack whose engine died mid-operation is "
            "still IN_PROGRESS under the new release",
            f"where: stack {ref(r['in_progress'])}",
            "(remedy verified; failing because GRENADIER_STUCK_STACKS=fail)"]


#: the checks broken in the vanished run (all others must pass there)
VANISHED: dict[str, tuple[str, Callable[[Records], list[str]]]] = {
    "test_old_stacks_listed_and_shown": ("stack hidden by a tag (hidden_stack_tags)", _listed),
    STUCK_TEST: ("--fail-on-stuck", _stuck),
}


def assert_failed_saying(crafted: Crafted, step: str, name: str, expected: list[str]) -> None:
    status = crafted.tests(step).get(f"{SUITE}::{name}")
    assert status == "failed", f"{name}: {status} in {step}, expected failed"
    text = crafted.failure_text(step, name)
    missing = [line for line in expected if line not in text]
    assert not missing, f"{name} failed without saying {missing}:\n{text[-4000:]}"


# -- the clean run: every detector quiet ---------------------------------------------------

def test_every_check_has_a_crafted_failure(default_run: Run) -> None:
    post = {name.split("::")[1] for name in _tests(default_run, "post-upgrade")
            if name.startswith(f"{SUITE}::")}
    assert post == set(TAMPERED) | set(VANISHED), "post-upgrade checks without a crafted failure"


def test_clean_run_detectors_stay_quiet(default_run: Run) -> None:
    for step in ("during-upgrade", "post-upgrade"):
        suite = {n: s for n, s in _tests(default_run, step).items() if n.startswith(SUITE)}
        assert suite, f"no built-in tests ran in {step}"
        assert set(suite.values()) == {"passed"}, suite


def _tests(run: Run, step: str) -> dict[str, str]:
    tests = run.steps()[step]["tests"]
    return {str(t["name"]): str(t["status"]) for t in tests}  # type: ignore[attr-defined]


def assert_stuck_stack_reported(run: Run, severity: str) -> None:
    """The stuck-stack test wrote one finding naming the in_progress stack, in findings.jsonl
    and in report.json's post-upgrade step."""
    stack = ref(suite_records(run)["in_progress"])
    lines = (run.run_dir / "findings.jsonl").read_text(encoding="utf-8").splitlines()
    written = [f for f in map(json.loads, lines) if f["check"] == STUCK_CHECK]
    assert len(written) == 1, written
    assert written[0]["phase"] == "post-upgrade", written
    assert written[0]["test"].endswith(f"{SUITE}.py::{STUCK_TEST}"), written
    assert (written[0]["severity"], written[0]["where"]) == (severity, f"stack {stack}"), written
    assert written[0]["found"].startswith("CREATE_IN_PROGRESS"), written
    reported = [f for f in run.steps()["post-upgrade"]["findings"]  # type: ignore[attr-defined]
                if f["check"] == STUCK_CHECK]
    assert [(f["severity"], f["where"]) for f in reported] == [(severity, f"stack {stack}")]


def test_clean_run_reports_the_stuck_stack_as_a_warning(default_run: Run) -> None:
    """Report mode (the default): the test passes, and its warning is in the run's findings."""
    assert _tests(default_run, "post-upgrade")[f"{SUITE}::{STUCK_TEST}"] == "passed"
    assert_stuck_stack_reported(default_run, "warning")


# -- the tampered run: each post-upgrade check fails with its message ---------------------------

def test_tampered_run_crafted_everything(tampered: Crafted) -> None:
    assert tampered.done.get("crafted"), f"tamper.py did not run: {tampered.run.err[-3000:]}"
    assert tampered.tests("during-upgrade")["test_tamper::test_craft"] == "passed"
    status = tampered.run.status()
    assert status["upgrade"] == status["smoke-target"] == "passed", status
    assert status["post-upgrade"] == "failed", status
    assert tampered.run.returncode != 0


@pytest.mark.parametrize("name", list(TAMPERED), ids=[n[5:] for n in TAMPERED])
def test_tampered_check_fails(tampered: Crafted, name: str) -> None:
    _, expected = TAMPERED[name]
    assert_failed_saying(tampered, "post-upgrade", name, expected(tampered.records))


def test_tampered_run_stuck_stack_is_still_only_reported(tampered: Crafted) -> None:
    """The stuck stack's show was crafted (and the read-only check fails on it), yet the
    stuck-stack test still finds it stuck, reports its warning and passes on the remedy."""
    assert tampered.tests("post-upgrade")[f"{SUITE}::{STUCK_TEST}"] == "passed"
    assert_stuck_stack_reported(tampered.run, "warning")


# -- the vanished run --------------------------------------------------------------------------

VANISH = re.compile(r"(\d+) row\(s\) vanished or changed in Heat's DB between "
                    r"(?P<since>\S+) and (?P<until>\S+) UTC "
                    r"\(pass (?P<pass>\d+), (?P<elapsed>[\d.]+) s into the upgrade step\)")


def _at(clock: str, near: datetime) -> datetime:
    """The UTC time of day ``clock`` (as the watch prints it) on the day nearest ``near``, so
    that a window crossing midnight compares right."""
    at = datetime.combine(near.date(), datetime.strptime(clock, "%H:%M:%S.%f").time(),
                          near.tzinfo)
    return min((at + timedelta(days=d) for d in (-1, 0, 1)), key=lambda t: abs(t - near))


def test_rows_vanishing_during_the_upgrade_are_caught(vanished: Crafted) -> None:
    gone = vanished.done.get("vanished")
    assert gone, f"tamper.py did not delete anything: {vanished.run.err[-3000:]}"
    assert vanished.tests("during-upgrade")["test_tamper::test_rows_vanished_while_watched"] \
        == "passed"
    assert vanished.tests("during-upgrade")[WATCH_TEST] == "failed"
    text = vanished.failure_text("during-upgrade", WATCH_TEST.split("::")[1])
    found = VANISH.search(text)
    assert found, text
    assert found.group(1) == "2", text
    assert f"resource row {gone['resource']} of stack {gone['stack']} is gone" in text
    assert (f"resource {gone['pid_resource']} of stack {gone['pid_stack']}: physical id was "
            f"{gone['pid']}, is empty") in text
    # caught by a later pass of the continuous watch, in the window that holds the deletion
    assert int(found.group("pass")) >= 2, text
    assert float(found.group("elapsed")) >= 1.0, text
    started = datetime.fromisoformat(gone["started"])
    committed = datetime.fromisoformat(gone["committed"])
    assert _at(found.group("since"), committed) <= committed, (found.group(0), gone)
    assert started <= _at(found.group("until"), started), (found.group(0), gone)


@pytest.mark.parametrize("name", list(VANISHED), ids=[n[5:] for n in VANISHED])
def test_vanished_run_check_fails(vanished: Crafted, name: str) -> None:
    _, expected = VANISHED[name]
    assert_failed_saying(vanished, "post-upgrade", name, expected(vanished.records))


def test_vanished_run_reports_the_stuck_stack_as_an_error(vanished: Crafted) -> None:
    """--fail-on-stuck: the same finding, as an error."""
    assert_stuck_stack_reported(vanished.run, "error")


def test_vanished_run_untouched_checks_pass(vanished: Crafted) -> None:
    """The rows were put back after the upgrade step: every other check passes."""
    assert vanished.done.get("crafted") == ["restored", "listed"], vanished.done
    status = vanished.run.status()
    assert status["upgrade"] == status["smoke-target"] == "passed", status
    post = {name.split("::")[1]: s for name, s in vanished.tests("post-upgrade").items()
            if name.startswith(f"{SUITE}::")}
    others = {name: s for name, s in post.items() if name not in VANISHED}
    assert others, post
    assert set(others.values()) == {"passed"}, others


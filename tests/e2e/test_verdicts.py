"""Verdicts a voting job can trust, through the real CLI: targets crafted from the real 26.0.2
source tree that do not start on the base configuration, or whose API fails on old stacks, are
upgrade failures (exit 1) whose cause is on the console."""

from __future__ import annotations

from pathlib import Path

from grenadier.state import RUNNER, StateStore
from tests.e2e.conftest import BASE, TARGET, Run, grenadier, heat_processes
from tests.helpers import crafted


def _findings(run: Run, step: str, check: str) -> list[dict[str, str]]:
    return [f for f in run.steps()[step]["findings"]  # type: ignore[union-attr]
            if f["check"] == check and f["severity"] == "error"]


def test_a_target_that_does_not_start_on_the_base_configuration(
        tree: Path, workdir: Path, cache_dir: Path) -> None:
    crafted.patch_required_option(tree)
    run = grenadier("run", "--base", BASE, "--target", str(tree), workdir=workdir,
                    cache_dir=cache_dir)
    assert run.returncode == 1, run.err[-3000:]
    assert run.status()["start-target"] == "failed"
    assert "smoke-target" not in run.status()  # nothing to test: the target is not up
    (finding,) = _findings(run, "start-target", "target-start")
    cause = crafted.REQUIRED_MESSAGE.format(name="grenadier_required")
    assert finding["what"] == "the target does not start on the base configuration"
    assert cause in finding["found"]
    assert "[error] target-start: the target does not start on the base configuration" \
        in run.err
    assert f"found: heat.common.exception.Error: {cause}" in run.err
    assert "grenadier: error:" not in run.err  # a finding, not an environment problem
    assert run.report["verdict"] == "upgrade BROKE something"
    assert heat_processes(run.run_dir) == []


def test_a_target_whose_api_fails_on_old_stacks(tree: Path, workdir: Path,
                                               cache_dir: Path) -> None:
    crafted.patch_drop_resource_type(tree, "random_string", "OS::Heat::RandomString")
    run = grenadier("run", "--base", BASE, "--target", str(tree), workdir=workdir,
                    cache_dir=cache_dir, timeout=1800,
                    # old stacks that cannot be read fail their operations: waited 20 s each
                    env={"GRENADIER_SETTLE_SECONDS": "10", "GRENADIER_OPERATION_SECONDS": "20",
                         "COLUMNS": "80"})
    assert run.returncode == 1, run.err[-3000:]
    status = run.status()
    assert status["start-target"] == "failed"
    found = _findings(run, "start-target", "target-api")
    inventory = StateStore(run.run_dir / "state.json").get(RUNNER, "inventory-before")
    before = {s["name"]: s for s in inventory["stacks"]}
    uses = {name for name, s in before.items()
            if any(r["type"] == "OS::Heat::RandomString" for r in s["resources"])}
    assert {f["where"].split()[1] for f in found} == uses  # one finding per such stack
    assert all("-> 400: " in f["found"] and "OS::Heat::RandomString" in f["found"]
               for f in found)
    # the target is up: the run goes on, and the report shows what else broke
    assert status["smoke-target"] == "failed"
    assert status["post-upgrade"] == "failed"
    assert status["teardown"] == "passed"
    post = {t["name"].split("::")[-1]: t  # type: ignore[index]
            for t in run.steps()["post-upgrade"]["tests"]}  # type: ignore[union-attr]
    assert post["test_resources_unchanged"]["status"] == "failed"
    # the console names each failure's cause without a log
    lines = run.err.splitlines()
    assert any(line.lstrip().startswith("x test_create: setup: POST stacks -> 400:")
               for line in lines), run.err[-3000:]
    assert any("test_resources_unchanged:" in line and " of 8 failed:" in line
               for line in lines)
    assert any(line.lstrip().startswith("- params grenadier-params-") and "-> 400" in line
               for line in lines)
    assert all(len(line) <= 80 for line in lines if line.lstrip().startswith(("x ", "- ")))
    assert heat_processes(run.run_dir) == []


def test_a_control_run_tells_heats_own_behaviour_from_the_upgrades(workdir: Path,
                                                                  cache_dir: Path) -> None:
    """The stack a graceful stop leaves IN_PROGRESS stays so under the target and after a
    plain restart of the base: with --fail-on-stuck it fails the control (base -> base) as it
    fails the run, so it is not the upgrade's failure and the run passes."""
    run = grenadier("run", "--base", BASE, "--target", TARGET, "--control", "--fail-on-stuck",
                    workdir=workdir, cache_dir=cache_dir, timeout=1800)
    assert run.returncode == 0, run.err[-3000:]
    control = run.report["control"]
    assert control["exit_code"] == 1  # type: ignore[index]
    assert control["run_dir"] == str(run.run_dir / "control")  # type: ignore[index]
    post = run.steps()["post-upgrade"]
    (stuck,) = [f for f in post["findings"]  # type: ignore[union-attr]
                if f["check"] == "heat.stack-left-in-progress"]
    assert (stuck["severity"], stuck["origin"]) == ("error", "also without upgrade")
    failed = [t for t in post["tests"] if t["status"] == "failed"]  # type: ignore[union-attr]
    assert [t["origin"] for t in failed] == ["also without upgrade"]
    silent = [f for f in run.steps()["upgrade"]["findings"]  # type: ignore[union-attr]
              if f["kind"] == "removed-without-notice"]
    assert silent
    assert all(f["origin"] == "introduced by the upgrade" for f in silent)
    assert "also without upgrade)" in run.report["verdict"]  # type: ignore[operator]
    assert "post-upgrade: 1 failed test(s) also without upgrade" in run.err
    assert "[error] heat.stack-left-in-progress: a stack whose engine died mid-operation is " \
           "still IN_PROGRESS under the new release (also without upgrade)" in run.err
    junit = (run.run_dir / "junit.xml").read_text()
    assert 'skipped message="failed also without upgrade: ' in junit
    page = (run.run_dir / "report.html").read_text()
    assert '<a href="control/report.html">control/report.html</a>' in page
    assert heat_processes(run.run_dir) == []

"""start-target: a target that does not start on the base configuration, or whose API fails on
old stacks, is a finding of the upgrade (exit 1) naming the cause; a port taken by another
program stays the machine's problem."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from grenadier.errors import EnvironmentProblem
from grenadier.model.result import Status
from grenadier.phases.save_state import save_state
from grenadier.phases.setup import API_CHECK, START_CHECK, cause_line, start_target
from grenadier.services.api import ServiceFailedToStart
from grenadier.services.heat_client import HeatError
from grenadier.state import RUNNER, StateStore

TRACEBACK = """\
2026-12-06 19:30:01.123 4242 INFO heat.engine.worker Starting engine_worker
2026-12-06 19:30:01.200 4242 ERROR grenadier.launcher startup failed: Error('x')
2026-12-06 19:30:01.200 4242 ERROR grenadier.launcher Traceback (most recent call last):
2026-12-06 19:30:01.200 4242 ERROR grenadier.launcher   File "config.py", line 9, in check
2026-12-06 19:30:01.200 4242 ERROR grenadier.launcher heat.common.exception.Error: heat.conf \
misconfigured, [DEFAULT] grenadier_required must be set
"""


class FakeContext:
    def __init__(self, tmp_path: Path, start: Exception | None = None,
                 inventory: Any = None) -> None:
        self.store = StateStore(tmp_path / "state.json")
        logs = tmp_path / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.deployment = SimpleNamespace(logs=logs, etc=tmp_path / "etc")
        self.started: list[str] = []
        self._start = start
        self._inventory = inventory
        self.project = SimpleNamespace(name="heat", inventory=self.inventory)
        service = SimpleNamespace(spec=SimpleNamespace(name="heat-target"), ready_after=1.0)
        self.supervisor = SimpleNamespace(running=lambda: [service])
        self.db = SimpleNamespace(snapshot=self.snapshot, restore_command=lambda path: "")
        self.run_dir = tmp_path

    def start_project(self, role: str) -> None:
        if self._start is not None:
            raise self._start
        self.started.append(role)

    def inventory(self, deployment: object) -> Any:
        if isinstance(self._inventory, Exception):
            raise self._inventory
        return self._inventory

    def snapshot(self, dest: Path, timeout: float) -> Path:
        dest.mkdir()
        (dest / "db.dump").write_text("")
        return dest / "db.dump"


def _failed(tmp_path: Path, stdout: str, heat_log: str = "") -> ServiceFailedToStart:
    out = tmp_path / "logs" / "heat-target.stdout.log"
    out.parent.mkdir(exist_ok=True)
    out.write_text(stdout)
    if heat_log:
        (tmp_path / "logs" / "heat-target.log").write_text(heat_log)
    return ServiceFailedToStart("heat-target exited with code 1 while starting: x",
                                service="heat-target", log=out, returncode=1)


def test_a_target_that_does_not_start_is_a_finding_with_its_cause(tmp_path: Path) -> None:
    exc = _failed(tmp_path, "$ python launcher.py\nlauncher: startup failed: Error('x')\n",
                  TRACEBACK)
    ctx = FakeContext(tmp_path, start=exc)
    result = start_target(ctx)  # type: ignore[arg-type]
    assert result.status is Status.FAILED
    (finding,) = result.failed_findings
    assert (finding.check, finding.what) == (START_CHECK, "the target does not start on the "
                                                          "base configuration")
    assert finding.found == ("heat.common.exception.Error: heat.conf misconfigured, [DEFAULT] "
                             "grenadier_required must be set")
    assert "heat-target.stdout.log" in finding.where


def test_without_a_traceback_the_last_line_is_the_cause(tmp_path: Path) -> None:
    exc = _failed(tmp_path, "$ python launcher.py\nlauncher: value required for option "
                            "grenadier_required in group [DEFAULT]\n")
    assert cause_line([exc.log]) == ("launcher: value required for option grenadier_required "
                                     "in group [DEFAULT]")


def test_a_port_taken_by_another_program_stays_the_machines_problem(tmp_path: Path) -> None:
    exc = _failed(tmp_path, "launcher: cannot bind 127.0.0.1:8004: Address already in use\n")
    with pytest.raises(ServiceFailedToStart):
        start_target(FakeContext(tmp_path, start=exc))  # type: ignore[arg-type]


def _stack(name: str, error: str = "") -> dict[str, Any]:
    return {"id": f"id-{name}", "name": name, "status": "CREATE_COMPLETE", "resources": [],
            **({"error": error} if error else {})}


def test_each_old_stack_the_api_fails_on_is_a_finding(tmp_path: Path) -> None:
    gone = "GET /v1/p/stacks/a/id-a/resources -> 400: The Resource Type could not be found."
    inventory = {"stacks": [_stack("a", gone), _stack("b"), _stack("c", gone)]}
    ctx = FakeContext(tmp_path, inventory=inventory)
    result = start_target(ctx)  # type: ignore[arg-type]
    assert ctx.started == ["target"]
    assert result.status is Status.FAILED
    assert [(f.check, f.where, f.found) for f in result.failed_findings] == [
        (API_CHECK, "stack a (id-a)", gone), (API_CHECK, "stack c (id-c)", gone)]
    assert ctx.store.get(RUNNER, "inventory-after") == inventory


def test_a_stack_list_the_target_refuses_is_a_finding(tmp_path: Path) -> None:
    refused = HeatError("GET", "/v1/p/stacks", 500, "boom")
    problem = EnvironmentProblem("cannot take the inventory")
    problem.__cause__ = refused
    result = start_target(FakeContext(tmp_path, inventory=problem))  # type: ignore[arg-type]
    (finding,) = result.failed_findings
    assert finding.found == "GET /v1/p/stacks -> 500: boom"
    unreachable = EnvironmentProblem("cannot take the inventory: connection refused")
    with pytest.raises(EnvironmentProblem):
        start_target(FakeContext(tmp_path / "2", inventory=unreachable))  # type: ignore[arg-type]


def test_the_base_api_failing_on_a_stack_is_the_environment(tmp_path: Path) -> None:
    inventory = {"stacks": [_stack("a", "GET ... -> 400: no")]}
    with pytest.raises(EnvironmentProblem, match="the base release's API fails on stack a"):
        save_state(FakeContext(tmp_path, inventory=inventory))  # type: ignore[arg-type]
    assert save_state(FakeContext(tmp_path / "ok", inventory={"stacks": [_stack("b")]})  # type: ignore[arg-type]
                      ).status is Status.PASSED

"""ONE real cold upgrade with ``--shutdown crash``, 26.0.2 -> 27.0.1 on the embedded PostgreSQL.

heat-engine is SIGKILLed while stack operations are in flight (a create, an update and a delete
started just before the kill, and the built-in suite's stack left IN_PROGRESS); post-upgrade
finds the stacks left IN_PROGRESS, applies the documented remedy, and the reports show both.
Every test reads the same run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from grenadier.model.steps import STEPS
from tests.e2e.conftest import BASE, TARGET, Run, grenadier, heat_processes

KINDS = {"create": "CREATE_IN_PROGRESS", "update": "UPDATE_IN_PROGRESS",
         "delete": "DELETE_IN_PROGRESS"}


@pytest.fixture(scope="module")
def crash_run(workdir: Path, cache_dir: Path) -> Run:
    return grenadier("run", "--base", BASE, "--target", TARGET, "--shutdown", "crash",
                     workdir=workdir, cache_dir=cache_dir)


def _crash(run: Run) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((run.run_dir / "crash.json").read_text())
    return data


def _step(run: Run, name: str) -> dict[str, Any]:
    step: dict[str, Any] = run.steps()[name]
    return step


def test_crash_run_passes_with_the_stuck_stacks_recovered(crash_run: Run) -> None:
    assert crash_run.returncode == 0, crash_run.out[-3000:] + crash_run.err[-3000:]
    assert crash_run.status() == dict.fromkeys(STEPS, "passed")


def test_heat_was_killed_with_sigkill(crash_run: Run) -> None:
    timeline: list[dict[str, Any]] = crash_run.report["timeline"]  # type: ignore[assignment]
    events = [(e["service"], e["event"]) for e in timeline]
    # the supervisor records "crash" for a SIGKILL it sent, with the signal as the exit code
    [killed] = [e for e in timeline if e["service"] == "heat-base" and e["event"] == "crash"]
    assert killed["detail"] == "exit code -9"
    assert ("heat-base", "stop") not in events, "heat-base was stopped gracefully too"
    assert events.index(("heat-base", "ready")) < events.index(("heat-base", "crash")) \
        < events.index(("heat-target", "start"))
    assert "killed (SIGKILL): heat-base" in _step(crash_run, "shutdown")["messages"]


def test_operations_were_in_flight_at_the_kill(crash_run: Run) -> None:
    crash = _crash(crash_run)
    assert [s["kind"] for s in crash["started"]] == list(KINDS)
    flying = {s["id"]: s for s in crash["in_flight"]}
    # each operation started before the kill was running in the engine when it was killed
    for started in crash["started"]:
        assert flying[started["id"]]["status"] == KINDS[started["kind"]], crash
    # and the built-in suite's stack left IN_PROGRESS: four operations cut short in all
    suite = [s for s in flying.values() if s["name"].startswith("grenadier-in-progress-")]
    assert [s["status"] for s in suite] == ["CREATE_IN_PROGRESS"]
    assert len(flying) == 4, flying
    shutdown = _step(crash_run, "shutdown")["messages"]
    assert sum(m.startswith("in flight at the kill:") for m in shutdown) == 4, shutdown
    print("\n".join(shutdown))  # the figures, for -rP


def test_post_upgrade_finds_the_stuck_stacks_and_recovers_them(crash_run: Run) -> None:
    crash = _crash(crash_run)
    found = {s["id"]: s for s in crash["found"]}
    # nothing moved them while Heat was down and the target started: all still IN_PROGRESS
    assert {s["id"]: s["status"] for s in crash["in_flight"]} == \
        {i: s["status"] for i, s in found.items()}
    assert crash["recovered"] == len(found) == 4
    for stack in found.values():
        assert stack["recovered"], stack
        assert stack["error"] == ""
        if stack["kind"] == "delete":
            assert (stack["remedy"], stack["after"]) == ("delete sent again", "DELETE_COMPLETE")
        elif stack["kind"]:
            assert stack["remedy"].startswith("update")
            assert stack["after"] == "UPDATE_COMPLETE"
        else:  # the suite's own stack: its test applied the remedy, then deleted it
            assert not stack["after"].endswith("_IN_PROGRESS"), stack
    post = _step(crash_run, "post-upgrade")
    tests = {t["name"].rsplit("::", 1)[-1]: t["status"] for t in post["tests"]}
    assert tests["test_stack_left_in_progress_by_dead_engine"] == "passed"
    assert tests["test_no_stack_left_in_progress"] == "passed"
    print("\n".join(post["messages"]))


def test_reports_show_the_stuck_stacks_and_their_recovery(crash_run: Run) -> None:
    crash = _crash(crash_run)
    post = _step(crash_run, "post-upgrade")
    mine = [f for f in post["findings"] if f["check"] == "crash.stack-left-in-progress"]
    assert sorted(f["severity"] for f in mine) == ["warning"] * 3
    for started in crash["started"]:
        [finding] = [f for f in mine if started["id"] in f["where"]]
        assert KINDS[started["kind"]] in finding["found"]
        assert "recovered by the remedy" in finding["what"]
        assert "heat-manage reset_stack_status" in finding["remedy"]
    assert [f["check"] for f in post["findings"]].count("heat.stack-left-in-progress") == 1
    assert "crash recovery: 4 stack(s) found IN_PROGRESS under the target, 4 recovered" \
        in post["messages"]
    html = (crash_run.run_dir / "report.html").read_text()
    console = crash_run.out + crash_run.err
    for stack in crash["started"]:
        assert f"recovered: {stack['name']}" in html
        assert stack["name"] in console
    assert console.count("[warning] crash.stack-left-in-progress:") == 3
    assert console.count("recovered by the remedy") == 3


def test_nothing_left_running(crash_run: Run) -> None:
    assert heat_processes(crash_run.run_dir) == []

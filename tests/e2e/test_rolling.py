"""Real rolling upgrades, 26.0.2 -> 27.0.1, 2 engines on RabbitMQ, under a live workload: ONE
clean run read by most tests, and ONE run where the test hook GRENADIER_TEST_KILL_BASE_ENGINE
SIGKILLs base engine 1 at its step instead of stopping it gracefully.

Needs the Debian package rabbitmq-server (skipped without it).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from grenadier.phases.rolling_kill import KILL_ENV
from tests.e2e.conftest import BASE, TARGET, Run, grenadier, heat_processes

needs_rabbit = pytest.mark.skipif(
    not Path("/usr/lib/rabbitmq/bin/rabbitmq-server").is_file()
    and not Path("/usr/sbin/rabbitmq-server").is_file(),
    reason="needs rabbitmq-server (apt-get install rabbitmq-server)")

PROCEDURE = ["before", "db-sync", "start-target-engines", "stop-base-engine-1",
             "stop-base-engine-2", "switch-api", "after"]


@pytest.fixture(scope="module")
def rolling_run(workdir: Path, cache_dir: Path) -> Run:
    return grenadier("run", "--base", BASE, "--target", TARGET, "--bus", "rabbit",
                     "--topology", "split", "--engines", "2", "--mode", "rolling",
                     "--workload-rate", "3", "--workload-min-ops", "100",
                     workdir=workdir, cache_dir=cache_dir)


def _workload(run: Run) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((run.run_dir / "workload.json").read_text())
    return data


@needs_rabbit
def test_rolling_run_replaces_the_cold_steps_and_passes(rolling_run: Run) -> None:
    status = rolling_run.status()
    assert "rolling-upgrade" in status, rolling_run.out + rolling_run.err
    assert not {"shutdown", "during-upgrade", "upgrade", "start-target"} & set(status)
    report = _workload(rolling_run)["report"]
    # zero failed operations is the pass bar (a failure fails the step: unit-tested in
    # tests/unit/test_workload.py); the real runs had none, so this one must have none either
    assert (report["failed"], report["failures"], report["in_progress"]) == (0, [], []), report
    assert status["rolling-upgrade"] == "passed", rolling_run.steps()["rolling-upgrade"]
    findings: list[dict[str, str]] = rolling_run.steps()["rolling-upgrade"]["findings"]  # type: ignore[assignment]
    assert [f for f in findings if f["severity"] == "error"] == []
    assert rolling_run.returncode == 0, rolling_run.out + rolling_run.err
    assert set(status.values()) == {"passed"}


@needs_rabbit
def test_report_shows_every_step_with_operations_failures_and_latencies(
        rolling_run: Run) -> None:
    data = _workload(rolling_run)
    report = data["report"]
    assert report["total"] >= 100
    assert data["steps"] == PROCEDURE
    steps = {s["step"]: s for s in report["steps"]}
    assert list(steps) == PROCEDURE
    for stats in steps.values():
        assert stats["attempted"] == stats["succeeded"] + stats["failed"]
        if stats["succeeded"]:
            assert 0 < stats["p50"] <= stats["p95"]
    assert sum(s["attempted"] for s in steps.values()) == report["total"]
    assert steps["before"]["attempted"] > 0
    assert steps["after"]["attempted"] > 0
    for failure in report["failures"]:
        assert failure["error"]
        assert failure["step"] in PROCEDURE
    step: dict[str, Any] = rolling_run.steps()["rolling-upgrade"]
    messages = "\n".join(step["messages"])
    print(messages)  # the figures, for -rP
    assert "workload [stop-base-engine-1]:" in messages
    assert "p95" in messages


@needs_rabbit
def test_base_and_target_engines_both_served_operations(rolling_run: Run) -> None:
    data = _workload(rolling_run)
    engines = data["report"]["engines"]
    roles = {re.fullmatch(r"heat-(base|target)-engine-[12]", name) for name in engines}
    assert None not in roles, engines
    assert {match.group(1) for match in roles if match} == {"base", "target"}, engines
    assert data["rpc_api_versions"] == {"base": "1.36", "target": "1.36"}
    # after the API switch only target engines are left to serve
    after = {s["step"]: s for s in data["report"]["steps"]}["after"]["engines"]
    assert after
    assert all(name.startswith("heat-target-engine-") for name in after)


@needs_rabbit
def test_timeline_records_the_procedure_in_order(rolling_run: Run) -> None:
    timeline: list[dict[str, Any]] = rolling_run.report["timeline"]  # type: ignore[assignment]
    events = [(e["service"], e["event"]) for e in timeline]
    steps = [event for service, event in events if service == "rolling-upgrade"]
    assert steps == PROCEDURE[1:]
    order = [events.index(x) for x in [
        ("rolling-upgrade", "db-sync"), ("heat-target-engine-1", "ready"),
        ("heat-target-engine-2", "ready"), ("heat-base-engine-1", "stop"),
        ("heat-base-engine-2", "stop"), ("heat-base-api", "stop"),
        ("heat-target-api", "ready")]]
    assert order == sorted(order)


@needs_rabbit
def test_rolling_run_left_nothing_running(rolling_run: Run) -> None:
    assert heat_processes(rolling_run.run_dir) == []


# -- a base engine killed without draining (the test hook) --------------------------------------

KILLED, KILL_STEP = "heat-base-engine-1", "stop-base-engine-1"
#: seconds a workload operation may take in the killed run (--workload-op-timeout)
OP_TIMEOUT = 60


@pytest.fixture(scope="module")
def killed_engine_run(workdir: Path, cache_dir: Path) -> Run:
    return grenadier("run", "--base", BASE, "--target", TARGET, "--bus", "rabbit",
                     "--topology", "split", "--engines", "2", "--mode", "rolling",
                     "--workload-rate", "3", "--workload-min-ops", "60",
                     # the operation the kill cuts short hangs until this timeout
                     "--workload-op-timeout", str(OP_TIMEOUT),
                     workdir=workdir, cache_dir=cache_dir, env={KILL_ENV: "1"})


@needs_rabbit
def test_the_kill_is_recorded_in_the_timeline_at_its_step(killed_engine_run: Run) -> None:
    timeline: list[dict[str, Any]] = killed_engine_run.report["timeline"]  # type: ignore[assignment]
    events = [(e["service"], e["event"]) for e in timeline]
    step = timeline[events.index(("rolling-upgrade", KILL_STEP))]
    assert step["detail"] == f"{KILLED} (SIGKILL, not drained: test hook {KILL_ENV})"
    [crash] = [e for e in timeline if e["service"] == KILLED and e["event"] == "crash"]
    assert crash["detail"] == "exit code -9"
    assert (KILLED, "stop") not in events
    assert events.index(("rolling-upgrade", KILL_STEP)) < events.index((KILLED, "crash")) \
        < events.index(("rolling-upgrade", "stop-base-engine-2"))
    # the other base engine is still stopped gracefully
    assert ("heat-base-engine-2", "stop") in events
    assert ("heat-base-engine-2", "crash") not in events
    killed = _workload(killed_engine_run)["killed"]
    assert (killed["service"], killed["step"]) == (KILLED, KILL_STEP)
    # the hook kills the engine while it works on an operation of the workload (its request
    # id in the engine's log), so that something really is in flight
    assert killed["busy_with"] in killed["in_flight"], killed


@needs_rabbit
def test_what_the_kill_did_is_reported_at_its_step(killed_engine_run: Run) -> None:
    # the measured behaviour of this run (docs/rolling-upgrade.md): the engine killed between
    # "Triggering resource" lines takes the rest of that operation's traversal with it, no
    # other engine takes it over, so the operation fails and its stack is left IN_PROGRESS;
    # the step fails, and the run with it
    data = _workload(killed_engine_run)
    report, killed = data["report"], data["killed"]
    step: dict[str, Any] = killed_engine_run.steps()["rolling-upgrade"]
    messages = "\n".join(step["messages"])
    print(messages)  # the figures, for -rP
    assert killed_engine_run.returncode == 1, killed_engine_run.err[-3000:]
    assert killed_engine_run.status()["rolling-upgrade"] == "failed"
    assert "post-upgrade" not in killed_engine_run.status()
    assert f"{KILLED} was killed (SIGKILL, test hook {KILL_ENV}) at step {KILL_STEP} with " \
           f"{len(killed['in_flight'])} workload operation(s) in flight" in messages
    fault = f"in flight when {KILLED} was killed at step {KILL_STEP}"
    whats = [f["what"] for f in step["findings"] if f["severity"] == "error"]
    assert report["failures"], report
    assert report["failed"] == len(report["failures"])
    for failure in report["failures"]:
        # each failure was in flight when the engine was killed, and is reported as such,
        # with its message
        assert failure["seq"] in killed["in_flight"], failure
        assert failure["op"] in ("create", "update", "delete"), failure
        assert KILL_STEP in failure["steps"]
        assert failure.get("fault") == fault
        assert failure["error"]
        assert f"{failure['op']} of {failure['stack']} failed during step {failure['step']}, " \
               f"{fault}" in whats
    assert any(f"timed out after {OP_TIMEOUT} s" in f["error"] for f in report["failures"])
    assert report["in_progress"], report
    assert {s["name"] for s in report["in_progress"]} <= {f["stack"] for f in report["failures"]}
    for stack in report["in_progress"]:
        assert stack["status"].endswith("_IN_PROGRESS"), stack
        assert stack.get("fault") == fault, stack
        assert f"stack {stack['name']} left {stack['status']}, {fault}" in whats
    # nothing failed but what the kill cut short
    assert len(whats) == len(report["failures"]) + len(report["in_progress"]), whats


@needs_rabbit
def test_killed_engine_run_left_nothing_running(killed_engine_run: Run) -> None:
    assert heat_processes(killed_engine_run.run_dir) == []

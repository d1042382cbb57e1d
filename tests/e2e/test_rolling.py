"""Real rolling upgrades, 26.0.2 -> 27.0.1, 2 engines on RabbitMQ, under a live workload: ONE
clean run read by most tests, and ONE run where the test hook GRENADIER_TEST_KILL_BASE_ENGINE
SIGKILLs base engine 1 at its step instead of stopping it gracefully.

An operation that waited for an answer a gracefully stopping engine never gave (``known``: Heat's
behaviour at any engine stop, reported as a warning, docs/rolling-upgrade.md) is the one failure
a clean run may have.

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
             "stop-base-engine-2", "held-target-only", "held-mixed", "stop-base-engines",
             "switch-api", "after"]
WINDOWS = ("held-target-only", "held-mixed")
KINDS = {"create", "show", "update", "signal", "delete"}


def _workload(run: Run) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((run.run_dir / "workload.json").read_text())
    return data


@needs_rabbit
def test_rolling_run_replaces_the_cold_steps_and_passes(rolling_run: Run) -> None:
    status = rolling_run.status()
    assert "rolling-upgrade" in status, rolling_run.out + rolling_run.err
    assert not {"shutdown", "during-upgrade", "upgrade", "start-target"} & set(status)
    report = _workload(rolling_run)["report"]
    # no failed operation but those an engine's graceful stop lost (a failure fails the step:
    # unit-tested in tests/unit/test_rolling_report.py)
    unknown = [(f["seq"], f["op"], f["step"], f["end_step"], f["error"][:500])
               for f in report["failures"] if not f.get("known")]
    assert unknown == [], unknown
    assert [s for s in report["in_progress"] if not s.get("known")] == [], report["in_progress"]
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
        # the workload fills every step: 10 operations at least, every kind, 4 in flight
        assert stats["attempted"] >= 10, stats
        assert set(stats["ops"]) == KINDS, stats
        assert stats["in_flight_min"] >= 4, stats
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
    stalls = [line for line in step["messages"] if line.startswith("stall: p95 ")]
    assert [line.split(" during ")[1].split(",")[0] for line in stalls] == [
        "stop-base-engine-1", "stop-base-engine-2", "stop-base-engines"]


@needs_rabbit
def test_base_and_target_engines_both_served_operations(rolling_run: Run) -> None:
    data = _workload(rolling_run)
    # every operation is attributed to the engines that served it, shows included (the RPC
    # calls the API logged for it), but those an engine's stop lost before any engine took them
    records = data["records"]
    assert [(r["seq"], r["op"]) for r in records if not r["engines"] and not r["lost"]] == []
    assert {r["op"] for r in records if r["engines"]} == KINDS
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
def test_held_windows_ran_their_operations_on_the_engines_of_their_state(
        rolling_run: Run) -> None:
    windows = _workload(rolling_run)["windows"]
    for window in WINDOWS:
        records = windows[window]["records"]
        ops = {r["op"] for r in records}
        assert {"list", "show", "outputs", "resources", "update", "signal", "suspend-resume",
                "check", "smoke"} <= ops, ops
        assert all(r["ok"] for r in records), [r for r in records if not r["ok"]]
        assert [r for r in records if not r["engines"]] == [], window
        assert {t["status"] for t in windows[window]["tests"]} == {"passed"}
    only = {e for r in windows["held-target-only"]["records"] for e in r["engines"]}
    assert only <= {"heat-target-engine-1", "heat-target-engine-2"}, only
    mixed = {e.split("-")[1] for r in windows["held-mixed"]["records"] for e in r["engines"]}
    assert mixed == {"base", "target"}


@needs_rabbit
def test_timeline_records_the_procedure_in_order(rolling_run: Run) -> None:
    timeline: list[dict[str, Any]] = rolling_run.report["timeline"]  # type: ignore[assignment]
    events = [(e["service"], e["event"]) for e in timeline]
    steps = [event for service, event in events if service == "rolling-upgrade"]
    assert steps == PROCEDURE[1:]
    again = len(events) - events[::-1].index(("heat-base-engine-1", "ready")) - 1
    order = [events.index(x) for x in [
        ("rolling-upgrade", "db-sync"), ("heat-target-engine-1", "ready"),
        ("heat-target-engine-2", "ready"), ("heat-base-engine-1", "stop"),
        ("heat-base-engine-2", "stop"), ("rolling-upgrade", "held-target-only"),
        ("rolling-upgrade", "held-mixed")]]
    order += [again, events.index(("rolling-upgrade", "stop-base-engines")),
              events.index(("heat-base-api", "stop")), events.index(("heat-target-api", "ready"))]
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
    at, until = (events.index(("rolling-upgrade", KILL_STEP)),
                 events.index(("rolling-upgrade", "stop-base-engine-2")))
    # not stopped at its step (the held-mixed window starts it again, stop-base-engines
    # stops that one)
    assert (KILLED, "stop") not in events[at:until]
    assert at < events.index((KILLED, "crash")) < until
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
    # what a later graceful stop lost is known behaviour, a warning (docs/rolling-upgrade.md)
    failures = [f for f in report["failures"] if not f.get("known")]
    stuck = [s for s in report["in_progress"] if not s.get("known")]
    assert failures, report
    assert report["failed"] == len(report["failures"])
    for failure in failures:
        # each failure was in flight when the engine was killed, and is reported as such,
        # with its message
        assert failure["seq"] in killed["in_flight"], failure
        assert failure["op"] in ("create", "update", "delete"), failure
        assert KILL_STEP in failure["steps"]
        assert failure.get("fault") == fault
        assert failure["error"]
        assert f"{failure['op']} of {failure['stack']} failed during step {failure['step']}, " \
               f"{fault}" in whats
    # how a cut-short operation ends varies from run to run (the workload's own timeout,
    # OP_TIMEOUT; the API's read of an RPC call the dead engine never answers; Heat's answer
    # while it waits for the stack): each failure above carries its message, whichever it is
    assert stuck, report
    assert {s["name"] for s in stuck} <= {f["stack"] for f in failures}
    for stack in stuck:
        assert stack["status"].endswith("_IN_PROGRESS"), stack
        assert stack.get("fault") == fault, stack
        assert f"stack {stack['name']} left {stack['status']}, {fault}" in whats
    # nothing failed but what the kill cut short
    assert len(whats) == len(failures) + len(stuck), whats


@needs_rabbit
def test_killed_engine_run_left_nothing_running(killed_engine_run: Run) -> None:
    assert heat_processes(killed_engine_run.run_dir) == []

"""The workload's report (statistics, failure attribution) and the rolling mode's options."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from grenadier.errors import EnvironmentProblem, UsageError
from grenadier.model.result import Status, StepResult
from grenadier.model.steps import STEPS
from grenadier.options.run import RunOptions
from grenadier.phases import rolling
from grenadier.phases.rolling_report import WORKLOAD_FILE, attribute_engines
from grenadier.runner.plan import plan_steps
from grenadier.workload import (
    DEFAULT_MIX,
    OpRecord,
    Workload,
    WorkloadLimits,
    build_report,
    parse_mix,
    percentile,
)
from tests.helpers.fake_heat import FakeHeat
from tests.helpers.rolling import op_record, rolling_context, rolling_report


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 50) == 0.0
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.0
    assert percentile([4.0, 1.0, 3.0, 2.0], 95) == 4.0
    assert percentile([float(i) for i in range(1, 101)], 95) == 95.0


def test_report_counts_and_latencies_per_step_in_procedure_order() -> None:
    records = [op_record(i, "before", 0.1 * i) for i in range(1, 11)]
    records += [op_record(20, "switch-api", 2.0), op_record(21, "switch-api", 9.0, ok=False,
                                                  error="ConnectError: refused")]
    report = build_report(records, ["before", "db-sync", "switch-api", "after"])
    steps = {s.step: s for s in report.steps}
    assert [s.step for s in report.steps] == ["before", "db-sync", "switch-api", "after"]
    assert (steps["before"].attempted, steps["before"].succeeded, steps["before"].failed) \
        == (10, 10, 0)
    assert steps["before"].p50 == pytest.approx(0.5)
    assert steps["before"].p95 == pytest.approx(1.0)
    assert steps["db-sync"].attempted == 0
    # a failed operation's latency is not a latency of the service
    assert (steps["switch-api"].failed, steps["switch-api"].p95) == (1, 2.0)
    assert (report.total, report.succeeded, report.failed, report.ok) == (12, 11, 1, False)


def test_failure_is_attributed_to_the_step_it_started_in_with_its_message() -> None:
    record = op_record(7, "stop-base-engine-1", 30.0, ok=False, op="update",
                  error="StackWaitError: stack wl-0007: wanted UPDATE_COMPLETE, failed")
    record.end_step = "stop-base-engine-2"
    report = build_report([op_record(1, "before", 1.0), record])
    [failure] = report.failures
    assert failure["step"] == "stop-base-engine-1"
    assert failure["end_step"] == "stop-base-engine-2"
    assert failure["op"] == "update"
    assert "UPDATE_COMPLETE" in failure["error"]
    assert any("during stop-base-engine-1" in line and "UPDATE_COMPLETE" in line
               for line in report.lines())


def test_stacks_left_in_progress_fail_the_report() -> None:
    stuck = {"name": "wl-0003", "id": "abc", "status": "UPDATE_IN_PROGRESS", "reason": ""}
    report = build_report([op_record(1, "before", 1.0)], in_progress=[stuck])
    assert not report.ok
    assert "workload stack left UPDATE_IN_PROGRESS: wl-0003 (abc)" in report.lines()


def test_engines_counted_per_step_and_in_total() -> None:
    records = [op_record(1, "before", 1.0, engines=["heat-base-engine-1"]),
               op_record(2, "after", 1.0, engines=["heat-target-engine-1", "heat-target-engine-2"])]
    report = build_report(records)
    assert report.engines == {"heat-base-engine-1": 1, "heat-target-engine-1": 1,
                              "heat-target-engine-2": 1}
    assert {s.step: s.engines for s in report.steps}["after"] == {
        "heat-target-engine-1": 1, "heat-target-engine-2": 1}


def test_engine_attribution_from_request_ids_in_engine_logs(tmp_path: Path) -> None:
    rid = "req-0f0e0d0c-0b0a-4909-8807-060504030201"
    base, target = tmp_path / "base.log", tmp_path / "target.log"
    base.write_text(f"2026 INFO heat.engine.service [{rid} - - - - -] Creating stack wl-1\n")
    target.write_text("2026 INFO heat.engine.service [req-other - -] nothing\n")
    records = [op_record(1, "before", 1.0), op_record(2, "before", 1.0)]
    records[0].request_ids = [rid]
    attribute_engines(records, {"heat-base-engine-1": base, "heat-target-engine-1": target,
                                "heat-target-engine-2": tmp_path / "missing.log"})
    assert records[0].engines == ["heat-base-engine-1"]
    assert records[1].engines == []


def test_mix_parsing() -> None:
    assert parse_mix("create=1,show=0") == {"create": 1, "show": 0}
    with pytest.raises(UsageError):
        parse_mix("create=1,explode=2")
    with pytest.raises(UsageError):
        parse_mix("show=3")


def test_rolling_needs_a_bus_and_split_topology() -> None:
    with pytest.raises(UsageError, match="--mode rolling needs a message bus"):
        RunOptions(mode="rolling")
    with pytest.raises(UsageError, match="--mode rolling needs"):
        RunOptions(mode="rolling", bus="rabbit", topology="all-in-one")
    assert RunOptions(mode="rolling", bus="rabbit", engines=2).topology == "split"
    with pytest.raises(UsageError):
        RunOptions(mode="sideways")


def test_cold_steps_unchanged_and_rolling_replaces_the_cold_block() -> None:
    assert RunOptions().step_names == STEPS
    rolling = RunOptions(mode="rolling", bus="rabbit").step_names
    assert rolling == ("install", "setup-base", "smoke-base", "pre-upgrade", "save-state",
                       "rolling-upgrade", "smoke-target", "post-upgrade", "teardown")
    # a resumed rolling run restarts at the rolling step, and knows it for --stop-after
    done = {s: StepResult(s, Status.PASSED) for s in rolling[:5]}
    assert plan_steps(stop_after=None, only=None, done=done, steps=rolling) \
        == ["rolling-upgrade", "smoke-target", "post-upgrade"]
    assert plan_steps(stop_after="rolling-upgrade", only=None, done=done, steps=rolling) \
        == ["rolling-upgrade"]


def test_options_without_mode_load_as_cold() -> None:
    data = RunOptions().to_dict()
    for key in ("mode", "workload_ops", "workload_rate", "workload_mix"):
        data.pop(key)
    assert RunOptions.from_dict(data).mode == "cold"


def _wait_for_records(workload: Any, count: int, seconds: float = 30.0) -> None:
    """Until the workload has started ``count`` operations; it must still be running then."""
    deadline = time.monotonic() + seconds
    while len(workload.records) < count and not workload.done:
        assert time.monotonic() < deadline, f"{len(workload.records)} of {count} ops in {seconds} s"
        time.sleep(0.01)
    assert not workload.done, f"the workload ended after {len(workload.records)} ops"


def test_generator_attributes_an_injected_failure_to_its_step() -> None:
    heat = FakeHeat()
    workload = Workload(heat.client,
                        WorkloadLimits(max_ops=60, rate=100, workers=2, op_timeout=5,
                                       min_in_flight=0),  # paced only
                        {"create": 1, "update": 3})
    workload.start()
    _wait_for_records(workload, 20)
    workload.set_step("stop-base-engine-1")
    heat.fail_updates = True
    _wait_for_records(workload, 40)
    heat.fail_updates = False
    workload.set_step("after")
    records = workload.stop()
    assert 40 <= len(records) <= 60
    report = build_report(records, ["before", "stop-base-engine-1", "after"])
    assert report.failures, "no update failed while Heat was broken"
    assert {f["op"] for f in report.failures} == {"update"}
    assert {f["step"] for f in report.failures} <= {"stop-base-engine-1", "before"}
    assert any(f["step"] == "stop-base-engine-1" and "UPDATE_FAILED" in f["error"]
               for f in report.failures)
    assert all(r.request_ids for r in records)


def test_a_stack_whose_operation_failed_is_never_used_again() -> None:
    # what a failure left (a stack a dead engine holds IN_PROGRESS) stays as it was for the
    # report: a later update could take the stack over and finish it
    heat = FakeHeat()
    workload = Workload(heat.client,
                        WorkloadLimits(max_ops=80, rate=100, workers=2, op_timeout=5,
                                       min_in_flight=0),  # paced only
                        {"create": 1, "update": 3, "show": 1})
    workload.start()
    _wait_for_records(workload, 10)
    heat.fail_updates = True
    _wait_for_records(workload, 20)
    heat.fail_updates = False
    _wait_for_records(workload, 50)
    records = workload.stop()
    failed = [r for r in records if not r.ok]
    assert failed
    assert any(r.ok for r in records if r.start > failed[-1].end)
    for failure in failed:
        later = [r.seq for r in records if r.stack == failure.stack and r.start >= failure.end]
        assert later == [], f"#{failure.seq} {failure.op} of {failure.stack} failed, then {later}"


def test_a_change_whose_answer_was_lost_is_sent_again_and_succeeds() -> None:
    heat = FakeHeat()
    workload = Workload(heat.client,
                        WorkloadLimits(max_ops=400, rate=200, workers=1, op_timeout=5,
                                       min_in_flight=0),  # paced: it must not end first
                        {"create": 2, "update": 1, "signal": 1, "delete": 2})
    heat.lose_every = 2  # so that a change sent again is answered
    workload.start()
    _wait_for_records(workload, 40)
    records = workload.stop()
    assert set(heat.lost) == {"POST", "PATCH", "DELETE"}, heat.lost
    report = build_report(records)
    assert report.failures == [], report.failures
    resent = [r for r in records if r.resent]
    assert {r.op for r in resent} >= {"create", "update", "delete"}, resent
    assert report.resent == len(resent) == report.to_dict()["resent"]
    assert f"{len(resent)} sent a change again after its answer was lost" in report.lines()[-1]


def test_a_change_whose_answer_is_always_lost_fails() -> None:
    from grenadier.workload.generator import RESENDS

    heat = FakeHeat()
    heat.lose_every = 1
    workload = Workload(heat.client,
                        WorkloadLimits(max_ops=1, rate=200, workers=1, op_timeout=5),
                        {"delete": 1, "create": 1}, seed=1)
    workload.start()
    [record] = workload.stop()
    assert record.op == "create"
    assert not record.ok
    assert record.resent == RESENDS
    assert record.error.startswith("RemoteProtocolError:")


# -- the rolling step's wiring: services, RPC versions, report ---------------------------------


def test_rolling_services_come_from_the_project_specs(tmp_path: Path) -> None:
    ctx = rolling_context(tmp_path)
    services = rolling._Services.of(ctx)
    assert services.base.api.name == "heat-base-api"
    assert services.target.api.name == "heat-target-api"
    assert [s.name for s in services.target.engines] == ["heat-target-engine-1",
                                                         "heat-target-engine-2"]
    logs = ctx.deployment.logs
    assert services.engine_logs() == {
        f"heat-{role}-engine-{i}": logs / f"heat-{role}-engine-{i}.log"
        for role in ("base", "target") for i in (1, 2)}
    assert [services.roles().get(n, "") for n in ("heat-base-engine-2", "heat-target-api",
                                                  "keystone")] \
        == ["base", "target", ""]


def test_rolling_refuses_a_project_without_one_api_and_its_engines(tmp_path: Path) -> None:
    ctx = rolling_context(tmp_path)
    ctx.deployment.topology = "all-in-one"  # one process: nothing to upgrade piece by piece
    with pytest.raises(EnvironmentProblem, match="one API and 2 engine services"):
        rolling._Services.of(ctx)


def test_rpc_api_versions_are_read_from_each_release(tmp_path: Path) -> None:
    assert rolling.rpc_api_versions(rolling_context(tmp_path, target_rpc="1.37")) == \
        {"base": "1.36", "target": "1.37"}
    assert rolling.rpc_api_versions(rolling_context(tmp_path / "x", target_rpc=None)) == \
        {"base": "1.36", "target": "unknown"}


def errors(result: StepResult) -> list[Any]:
    return [f for f in result.findings if f.severity == "error"]


def test_rolling_report_fails_the_step_on_a_failed_operation_or_a_stuck_stack(
        tmp_path: Path) -> None:
    ctx = rolling_context(tmp_path)
    stuck = {"name": "wl-0002", "id": "i2", "status": "UPDATE_IN_PROGRESS", "reason": "r"}
    records = [op_record(1, "before", 1.0, engines=["heat-base-engine-1"]),
               op_record(2, "switch-api", 2.0, ok=False, op="update", error="boom")]
    result = rolling_report(ctx, records, ["before", "switch-api"], in_progress=[stuck],
                    versions={"base": "1.36"})
    assert result.status == Status.FAILED
    assert [(f.check, f.severity) for f in errors(result)] == [("workload", "error")] * 2
    assert "update of wl-0002 failed during step switch-api" in errors(result)[0].what
    assert any(line.startswith("mixed versions NOT shown") for line in result.messages)
    data = json.loads((ctx.run_dir / WORKLOAD_FILE).read_text())
    assert data["steps"] == ["before", "switch-api"]
    assert data["rpc_api_versions"] == {"base": "1.36"}
    assert (data["report"]["total"], data["report"]["failed"]) == (2, 1)
    assert [r["seq"] for r in data["records"]] == [1, 2]


def test_rolling_report_passes_with_every_operation_ok_on_both_releases(
        tmp_path: Path) -> None:
    ctx = rolling_context(tmp_path)
    records = [op_record(1, "before", 1.0), op_record(2, "after", 11.0)]
    logs = ctx.deployment.logs
    logs.mkdir()
    for record, engine in zip(records, ("heat-base-engine-2", "heat-target-engine-1"),
                              strict=True):
        record.request_ids = [f"req-0f0e0d0c-0b0a-4909-8807-06050403020{record.seq}"]
        (logs / f"{engine}.log").write_text(f"INFO [{record.request_ids[0]} - -] Updating\n")
    result = rolling_report(ctx, records, ["before", "after"])
    assert (result.status, errors(result)) == (Status.PASSED, [])
    assert not any("mixed versions NOT shown" in line for line in result.messages)
    assert any(line.startswith("workload slow #2 show") for line in result.messages)
    assert [r.engines for r in records] == [["heat-base-engine-2"], ["heat-target-engine-1"]]
    assert "operations attributed to an engine: 2 of 2" in result.messages


# -- filling every step: the floor in flight, every kind, the report of both -------------------


def test_in_flight_counts_the_fewest_and_the_mean_ignoring_instant_gaps() -> None:
    from grenadier.workload.report import GAP, in_flight

    a = OpRecord(1, "create", "a", start=0.0, end=10.0)
    b = OpRecord(2, "update", "b", start=0.0, end=5.0)
    c = OpRecord(3, "update", "c", start=5.0 + GAP / 2, end=10.0)  # replaces b at once
    assert in_flight([a, b, c], 0.0, 10.0) == pytest.approx((2, 2.0 - GAP / 20))
    late = OpRecord(4, "show", "d", start=5.5, end=10.0)  # b's end leaves a real gap
    assert in_flight([a, b, late], 0.0, 10.0)[0] == 1
    # records that span the window count, whatever their start
    assert in_flight([a], 2.0, 3.0) == pytest.approx((1, 1.0))


def test_the_floor_keeps_operations_in_flight_whatever_the_rate() -> None:
    heat = FakeHeat(hold_creates=True)
    # one paced start per 1000 s: only the floor can start the others
    workload = Workload(heat.client,
                        WorkloadLimits(max_ops=12, rate=0.001, workers=6, min_in_flight=4,
                                       op_timeout=5))
    workload.start()
    _wait_for_records(workload, 4)
    time.sleep(0.2)  # no fifth: the four are in flight, the next paced start is far away
    assert [(r.op, r.end) for r in workload.records] == [("create", 0.0)] * 4
    heat.go.set()
    deadline = time.monotonic() + 30
    while len(workload.records) < 12 and time.monotonic() < deadline:
        time.sleep(0.01)
    records = workload.stop()
    assert len(records) == 12, "the floor did not replace the operations that ended"
    assert all(r.ok for r in records)


def test_each_step_is_filled_with_every_kind_of_the_mix() -> None:
    heat = FakeHeat()
    workload = Workload(heat.client,
                        WorkloadLimits(max_ops=2000, rate=200, workers=4, min_in_flight=0,
                                       step_min_ops=10, op_timeout=5),
                        DEFAULT_MIX)
    workload.start()
    steps = ["before", "db-sync", "switch-api", "after"]
    for step in steps[1:]:
        assert workload.fill_step(30), f"step {workload.records[-1].step} not filled"
        workload.set_step(step)
    assert workload.fill_step(30)
    records = workload.stop()
    report = build_report(records, steps, marks=workload.marks, end=workload.stopped_at)
    for stats in report.steps:
        assert stats.attempted >= 10, stats
        assert set(stats.ops) == set(DEFAULT_MIX), stats
        assert stats.seconds >= 0
    assert [label for label, _ in workload.marks] == steps


def test_drain_waits_for_the_operations_of_a_step_only() -> None:
    heat = FakeHeat(hold_creates=True)
    workload = Workload(heat.client,
                        WorkloadLimits(max_ops=6, rate=0.001, workers=6, min_in_flight=2,
                                       op_timeout=5))
    workload.start()
    _wait_for_records(workload, 2)
    workload.set_step("switch-api")
    assert workload.drain("before", 0.2) is False  # its creates are held
    release = threading.Timer(0.3, heat.go.set)
    release.start()
    assert workload.drain("before", 10) is True
    assert all(r.end for r in workload.records if r.step == "before")
    release.join()
    workload.stop()

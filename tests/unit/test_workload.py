"""The workload's report (statistics, failure attribution) and the rolling mode's options."""

from __future__ import annotations

from pathlib import Path

import pytest

from grenadier.errors import UsageError
from grenadier.phases.options import STEPS, RunOptions
from grenadier.phases.rolling import attribute_engines
from grenadier.workload import OpRecord, build_report, parse_mix, percentile


def _rec(seq: int, step: str, latency: float, ok: bool = True, op: str = "show",
         error: str = "", engines: list[str] | None = None) -> OpRecord:
    return OpRecord(seq, op, f"wl-{seq:04d}", start=100.0, end=100.0 + latency, ok=ok,
                    error=error, step=step, end_step=step, engines=engines or [])


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 50) == 0.0
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.0
    assert percentile([4.0, 1.0, 3.0, 2.0], 95) == 4.0
    assert percentile([float(i) for i in range(1, 101)], 95) == 95.0


def test_report_counts_and_latencies_per_step_in_procedure_order() -> None:
    records = [_rec(i, "before", 0.1 * i) for i in range(1, 11)]
    records += [_rec(20, "switch-api", 2.0), _rec(21, "switch-api", 9.0, ok=False,
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
    record = _rec(7, "stop-base-engine-1", 30.0, ok=False, op="update",
                  error="StackWaitError: stack wl-0007: wanted UPDATE_COMPLETE, failed")
    record.end_step = "stop-base-engine-2"
    report = build_report([_rec(1, "before", 1.0), record])
    [failure] = report.failures
    assert failure["step"] == "stop-base-engine-1"
    assert failure["end_step"] == "stop-base-engine-2"
    assert failure["op"] == "update"
    assert "UPDATE_COMPLETE" in failure["error"]
    assert any("during stop-base-engine-1" in line and "UPDATE_COMPLETE" in line
               for line in report.lines())


def test_stacks_left_in_progress_fail_the_report() -> None:
    stuck = {"name": "wl-0003", "id": "abc", "status": "UPDATE_IN_PROGRESS", "reason": ""}
    report = build_report([_rec(1, "before", 1.0)], in_progress=[stuck])
    assert not report.ok
    assert "workload stack left UPDATE_IN_PROGRESS: wl-0003 (abc)" in report.lines()


def test_engines_counted_per_step_and_in_total() -> None:
    records = [_rec(1, "before", 1.0, engines=["heat-base-engine-1"]),
               _rec(2, "after", 1.0, engines=["heat-target-engine-1", "heat-target-engine-2"])]
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
    records = [_rec(1, "before", 1.0), _rec(2, "before", 1.0)]
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
    planned = [s for s in STEPS if s != "teardown"]
    assert RunOptions().steps(planned) == planned
    rolling = RunOptions(mode="rolling", bus="rabbit").steps(planned)
    assert rolling == ["install", "setup-base", "smoke-base", "pre-upgrade", "save-state",
                       "rolling-upgrade", "smoke-target", "post-upgrade"]
    # a resumed rolling run that stopped inside the block restarts the rolling step
    assert RunOptions(mode="rolling", bus="rabbit").steps(["upgrade", "start-target",
                                                           "smoke-target"]) \
        == ["rolling-upgrade", "smoke-target"]


def test_options_without_mode_load_as_cold() -> None:
    data = RunOptions().to_dict()
    for key in ("mode", "workload_ops", "workload_rate", "workload_mix"):
        data.pop(key)
    assert RunOptions.from_dict(data).mode == "cold"


class _FakeHeat:
    """Heat's stack API in memory: operations complete at once; ``broken`` fails updates."""

    def __init__(self) -> None:
        import itertools

        self.stacks: dict[str, dict[str, str]] = {}
        self.broken = False
        self._ids = itertools.count(1)

    def __call__(self, request: object) -> object:
        import json as _json

        import httpx

        assert isinstance(request, httpx.Request)
        parts = request.url.path.split("/")[3:]  # after /v1/<project>/
        headers = {"x-openstack-request-id": f"req-{next(self._ids):08d}"}
        if request.method == "POST" and parts == ["stacks"]:
            body = _json.loads(request.content)
            sid = f"id-{body['stack_name']}"
            self.stacks[sid] = {"id": sid, "stack_name": body["stack_name"],
                                "stack_status": "CREATE_COMPLETE", "updated_time": ""}
            return httpx.Response(201, json={"stack": {"id": sid}}, headers=headers)
        if parts == ["stacks"]:
            return httpx.Response(200, json={"stacks": list(self.stacks.values())})
        sid = parts[2] if len(parts) > 2 else ""
        stack = self.stacks.get(sid)
        if stack is None:
            return httpx.Response(404, json={"error": {"message": "not found"}})
        if request.method == "GET" and parts[3:] == ["events"]:
            return httpx.Response(200, json={"events": []})
        if request.method == "GET":
            return httpx.Response(200, json={"stack": stack}, headers=headers)
        if request.method == "PATCH":
            stack["stack_status"] = "UPDATE_FAILED" if self.broken else "UPDATE_COMPLETE"
            stack["updated_time"] = str(next(self._ids))
            return httpx.Response(202, headers=headers)
        if request.method == "DELETE":
            del self.stacks[sid]
            return httpx.Response(204, headers=headers)
        return httpx.Response(200, headers=headers)  # signal


def test_generator_attributes_an_injected_failure_to_its_step() -> None:
    import time

    import httpx

    from grenadier.plugins.heat.client import HeatClient
    from grenadier.workload import Workload, WorkloadLimits

    heat = _FakeHeat()
    transport = httpx.MockTransport(heat)  # type: ignore[arg-type]
    workload = Workload(lambda: HeatClient("http://heat", "p", transport=transport),
                        WorkloadLimits(max_ops=60, rate=200, workers=2, op_timeout=5),
                        {"create": 1, "update": 3})
    workload.start()
    while len(workload.records) < 20:
        time.sleep(0.01)
    workload.set_step("stop-base-engine-1")
    heat.broken = True
    while len(workload.records) < 40:
        time.sleep(0.01)
    heat.broken = False
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

"""The rolling step's report: which engine served what (request ids, and the RPC calls the API
logged for them), operations lost at a graceful engine stop, steps not filled, the stall."""

from __future__ import annotations

from pathlib import Path

from grenadier.phases.rolling_kill import Kill
from grenadier.phases.rolling_report import (
    GracefulStop,
    attribute_engines,
    engine_errors,
    failure_findings,
    fill_findings,
    mark_lost,
    stall_lines,
)
from grenadier.workload import DEFAULT_MIX, OpRecord, build_report

RID = "req-0f0e0d0c-0b0a-4909-8807-060504030201"
MSG = "469fa706482d4fffa018a66c1a5d4ef0"


def rec(seq: int, step: str, start: float = 100.0, latency: float = 1.0, ok: bool = True,
        op: str = "show", error: str = "") -> OpRecord:
    return OpRecord(seq, op, f"wl-{seq:04d}", start=start, end=start + latency, ok=ok,
                    error=error, step=step, end_step=step)


def test_a_read_is_attributed_through_the_rpc_call_the_api_logged_for_it(tmp_path: Path) -> None:
    other = "5" * 32
    api = tmp_path / "heat-base-api.log"
    api.write_text(f"DEBUG oslo_messaging._drivers.amqpdriver [{RID} req-local u p] CALL msg_id: "
                   f"{MSG} exchange 'heat' topic 'engine'\n"
                   f"DEBUG oslo_messaging._drivers.amqpdriver [{RID} req-local u p] CALL msg_id: "
                   f"{other} exchange 'heat' topic 'engine'\n")
    engines = {name: tmp_path / f"{name}.log" for name in ("heat-base-engine-1",
                                                            "heat-target-engine-1")}
    engines["heat-target-engine-1"].write_text(
        f"DEBUG oslo_messaging.rpc.server [None req-stale-context u p] Receive incoming message "
        f"with id {MSG} and method: show_stack.\n"
        f"DEBUG oslo_messaging.rpc.server [{RID} req-local u p] Replied success message with "
        f"id {MSG} and method: show_stack. Time elapsed: 0.01\n")
    engines["heat-base-engine-1"].write_text("INFO nothing of ours\n")
    show = rec(1, "held-target-only")
    show.request_ids = [RID]
    stranger = rec(2, "held-target-only")
    stranger.request_ids = ["req-11111111-2222-4333-8444-555555555555"]
    # the second call of the show was never answered by any engine
    assert attribute_engines([show, stranger], engines, [api]) == {1: 1}
    assert show.engines == ["heat-target-engine-1"]
    assert stranger.engines == []
    # without the API's log only the request ids themselves count
    assert attribute_engines([show], engines) == {}
    assert show.engines == ["heat-target-engine-1"]  # its id is on the reply's line


def test_what_an_engine_s_graceful_stop_cost_is_known_behaviour_and_a_warning() -> None:
    stop = GracefulStop("heat-base-engine-1", "stop-base-engine-1", 200.0, 202.0)
    unanswered = rec(3, "start-target-engines", start=199.0, latency=60.0, ok=False,
                     op="update", error="ReadTimeout: timed out")
    rescued = rec(6, "stop-base-engine-1", start=201.0, latency=17.0, op="update")
    cut = rec(7, "stop-base-engine-1", start=201.0, latency=180.0, ok=False, op="delete",
              error="StackWaitError: wanted DELETE_COMPLETE, timed out after 180 s")
    broken = rec(4, "stop-base-engine-1", start=201.0, latency=0.2, ok=False, op="show",
                 error="HeatError: GET ... -> 500: TypeError: show_stack() got an unexpected "
                       "keyword argument 'resolve_outputs'")
    late = rec(5, "after", start=400.0, latency=60.0, ok=False, op="update",
               error="ReadTimeout: timed out")
    # no answer, and no trace of a call an engine dropped: an API that held it (a stall)
    held = rec(9, "stop-base-engine-1", start=201.0, latency=60.0, ok=False, op="show",
               error="ReadTimeout: timed out")
    stalled = rec(8, "stop-base-engine-1", start=201.0, latency=15.0)  # answered, just slow
    quick = [rec(10 + i, "stop-base-engine-1", start=201.0, latency=1.0) for i in range(5)]
    records = [unanswered, rescued, cut, broken, late, held, stalled, *quick]
    lines = mark_lost([stop], records, {3: 1, 6: 1, 5: 1})
    assert [line.split(" (")[0] for line in lines] == [
        "lost at a graceful engine stop: #3 update wl-0003",
        "lost at a graceful engine stop: #6 update wl-0006",
        "lost at a graceful engine stop: #7 delete wl-0007"]
    assert lines[1].endswith("1 RPC call(s) never answered): ok after 17.0 s")
    assert lines[2].endswith("its stack never settled): failed")
    stuck = {"name": "wl-0007", "id": "i7", "status": "DELETE_IN_PROGRESS", "reason": "r"}
    report = build_report(records, in_progress=[stuck])
    findings = failure_findings(report)
    severities = {f.what.split(" failed")[0].split(" left")[0]: f.severity for f in findings}
    assert severities == {"update of wl-0003": "warning", "delete of wl-0007": "warning",
                          "show of wl-0004": "error", "update of wl-0005": "error",
                          "show of wl-0009": "error", "stack wl-0007": "warning"}
    assert all(f.kind == "lost-at-engine-stop" for f in findings if f.severity == "warning")
    # --fail-on-stuck: the same findings are errors
    assert {f.severity for f in failure_findings(report, strict=True)} == {"error"}
    # the rescued operation's wait is the lost message's; the answered slow one is a stall
    [during] = [s for s in report.steps if s.step == "stop-base-engine-1"]
    assert (during.lost, during.p95) == (2, 15.0)


def test_what_was_in_flight_at_the_test_hook_s_kill_is_the_kill_s() -> None:
    stop = GracefulStop("heat-base-engine-2", "stop-base-engine-2", 200.0, 202.0)
    cut = rec(3, "stop-base-engine-1", start=150.0, latency=180.0, ok=False, op="update",
              error="StackWaitError: ... timed out after 180 s")
    cut.engines = ["heat-base-engine-2"]
    kill = Kill("heat-base-engine-1", "stop-base-engine-1", 160.0)
    assert mark_lost([stop], [cut], {3: 1}, kill) == []
    assert cut.lost == ""


def test_a_step_the_workload_did_not_fill_is_a_warning_and_a_filled_one_is_not() -> None:
    kinds = ["create", "show", "update", "signal", "delete"]
    full = [rec(i, "full", op=kinds[i % 5]) for i in range(10)]
    thin = [rec(20 + i, "thin") for i in range(3)]
    report = build_report([*full, *thin], ["full", "thin"])
    [warning] = fill_findings(report, dict(DEFAULT_MIX), 10, 4)
    assert warning.severity == "warning"
    assert warning.what == ("the workload did not fill step thin: 3 operations (wanted 10); "
                            "no create, delete, signal, update")
    assert fill_findings(build_report(full, ["full"]), dict(DEFAULT_MIX), 10, 4) == []


def test_the_stall_line_compares_each_engine_stop_with_before() -> None:
    records = [rec(i, "before") for i in range(1, 21)]
    records += [rec(30 + i, "stop-base-engine-1", latency=1.5) for i in range(20)]
    assert stall_lines(build_report(records)) == [
        "stall: p95 1.50 s during stop-base-engine-1, +0.50 s from the p95 before the upgrade "
        "(1.00 s)"]


def test_what_an_engine_raised_for_a_failed_request_is_found_in_its_log(tmp_path: Path) -> None:
    log = tmp_path / "heat-target-engine-1.log"
    prefix = "2026-12-06 20:40:01.100 4242 ERROR oslo_messaging.rpc.server"
    log.write_text(
        f"{prefix} [{RID} req-local u p] Exception during message handling: "
        "TypeError: EngineService.list_stack_resources() got an unexpected keyword argument "
        "'with_detail'\n"
        f"{prefix} Traceback (most recent call last):\n"
        f'{prefix}   File "/x/oslo_messaging/rpc/server.py", line 174, in _process_incoming\n'
        f"{prefix}     res = self.dispatcher.dispatch(message)\n"
        f"{prefix} TypeError: EngineService.list_stack_resources() got an unexpected keyword "
        "argument 'with_detail'\n")
    failed = rec(1, "held-target-only", ok=False, op="resources", error="HeatError: 500")
    failed.request_ids = [RID]
    fine = rec(2, "held-target-only")
    fine.request_ids = [RID]
    assert engine_errors([failed, fine], {"heat-target-engine-1": log}) == {
        1: "heat-target-engine-1: TypeError: EngineService.list_stack_resources() got an "
           "unexpected keyword argument 'with_detail'"}
    assert engine_errors([fine], {"heat-target-engine-1": log}) == {}

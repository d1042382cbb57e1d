"""The rolling step's test hook (a base engine SIGKILLed instead of stopped gracefully) and how
what it does to the workload is attributed to the step it happened in."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from grenadier.errors import UsageError
from grenadier.model.result import Status, StepResult
from grenadier.phases import rolling, rolling_kill
from grenadier.phases.rolling_kill import KILL_ENV
from grenadier.phases.rolling_report import WORKLOAD_FILE
from grenadier.workload.report import spanned
from tests.helpers.rolling import op_record, rolling_context, rolling_report

KILLED = "heat-base-engine-1"
ORDER = ["before", "db-sync", "start-target-engines", "stop-base-engine-1",
         "stop-base-engine-2", "switch-api", "after"]
RID = "req-0f0e0d0c-0b0a-4909-8807-060504030201"
TRIG = "Triggering resource 39 for update"


def test_hook_unset_means_graceful_and_a_bad_value_is_a_usage_error() -> None:
    assert rolling_kill.engine_to_kill(2, {}) is None
    assert rolling_kill.engine_to_kill(2, {KILL_ENV: " "}) is None
    assert rolling_kill.engine_to_kill(2, {KILL_ENV: "2"}) == 2
    for bad in ("0", "3", "one", "-1"):
        with pytest.raises(UsageError, match=KILL_ENV):
            rolling_kill.engine_to_kill(2, {KILL_ENV: bad})


class _Supervisor:
    def __init__(self) -> None:
        self.stopped: list[tuple[str, bool]] = []
        self.notes: list[tuple[str, str, str]] = []

    def stop(self, name: str, *, crash: bool = False) -> int:
        self.stopped.append((name, crash))
        return -9 if crash else 0

    def note(self, service: str, event: str, detail: str = "") -> None:
        self.notes.append((service, event, detail))


def _stop(tmp_path: Path, kill: int | None) -> tuple[_Supervisor, Any]:
    """Stop the base engines while update #7 is in flight on engine 1 (its log says so)."""
    ctx = rolling_context(tmp_path)
    ctx.supervisor, ctx.say = _Supervisor(), lambda line: None
    busy = op_record(7, "start-target-engines", 0.0, op="update")
    busy.end, busy.request_ids = 0.0, [RID]
    ctx.deployment.logs.mkdir()
    log = ctx.deployment.logs / f"{KILLED}.log"
    log.write_text("INFO started\n")
    # the engine logs the update's request once the hook waits for it
    logger = threading.Timer(0.2, lambda: log.write_text(f"INFO started\nINFO [{RID}] {TRIG}\n"))
    logger.start()
    workload = SimpleNamespace(set_step=lambda label: None, fill_step=lambda timeout: True,
                               records=[op_record(6, "before", 1.0), busy])
    timeline = rolling._Timeline(ctx, workload, StepResult(rolling.STEP, Status.PASSED))  # type: ignore[arg-type]
    rolling._stop_base_engines(ctx, rolling._Services.of(ctx), timeline, kill)
    logger.join()
    return ctx.supervisor, timeline


def test_the_hooked_engine_is_sigkilled_at_its_own_step(tmp_path: Path) -> None:
    supervisor, timeline = _stop(tmp_path, kill=1)
    assert supervisor.stopped == [(KILLED, True), ("heat-base-engine-2", False)]
    assert timeline.killed.service == KILLED
    assert timeline.killed.step == "stop-base-engine-1"
    assert supervisor.notes[0] == (rolling.STEP, "stop-base-engine-1",
                                   f"{KILLED} (SIGKILL, not drained: test hook {KILL_ENV})")
    assert supervisor.notes[1][2] == "heat-base-engine-2 (graceful, SIGTERM)"
    assert (timeline.killed.busy_with, timeline.killed.waited < 5) == (7, True)
    assert any(line.startswith(f"{KILLED} killed while working on #7 update wl-0007 (after ")
               and line.endswith("exit code -9") for line in timeline.result.messages)


def test_without_the_hook_every_engine_stops_gracefully(tmp_path: Path) -> None:
    supervisor, timeline = _stop(tmp_path, kill=None)
    assert supervisor.stopped == [(KILLED, False), ("heat-base-engine-2", False)]
    assert timeline.killed is None
    assert all("graceful" in note[2] for note in supervisor.notes)


def test_the_hook_waits_for_the_first_leaf_of_an_operation_in_flight(tmp_path: Path) -> None:
    log = tmp_path / "engine.log"
    other = "req-11111111-2222-4333-8444-555555555555"
    done, idle, busy = (op_record(i, "before", 1.0, op="update") for i in (1, 2, 3))
    done.request_ids, idle.request_ids, busy.request_ids = [RID], [other], [other[:-1] + "6"]
    idle.end = busy.end = 0.0
    # logged before the wait: the engine may be done with it, whatever its client still waits
    log.write_text(f"INFO [{RID}] {TRIG}\nINFO [{other}] {TRIG}\n")
    assert rolling_kill.wait_until_busy(lambda: [done, idle, busy], log, timeout=0.2) is None

    def engine_logs() -> None:
        time.sleep(0.2)
        with log.open("a") as stream:
            # idle's SECOND leaf (its first was before the wait): killed now, the engine has
            # sent its whole traversal, which goes on on the workers (CI saw that)
            stream.write(f"INFO [{RID}] {TRIG}\nINFO [{other}] {TRIG}\n"
                         f"INFO [{busy.request_ids[0]}] Updating stack\n"
                         f"INFO [{busy.request_ids[0]}")
            stream.flush()
            time.sleep(0.2)  # a line half written is not read yet
            stream.write(f"] {TRIG}\n")

    writer = threading.Thread(target=engine_logs)
    writer.start()
    try:
        started = time.monotonic()
        assert rolling_kill.wait_until_busy(lambda: [done, idle, busy], log, timeout=5) is busy
        assert time.monotonic() - started >= 0.35
    finally:
        writer.join()
    assert rolling_kill.wait_until_busy(list, tmp_path / "missing.log", timeout=0.1) is None


def test_the_hook_does_not_kill_after_the_moment_has_passed(tmp_path: Path) -> None:
    # the first leaf read FRESH s ago or more: the engine may have sent the second one already
    log = tmp_path / "engine.log"
    busy = op_record(1, "before", 1.0, op="delete")
    busy.request_ids, busy.end = [RID], 0.0
    begun = time.monotonic()

    def records() -> list[Any]:
        # the client learns the request id late (its answer was slow)
        return [busy] if time.monotonic() - begun > rolling_kill.FRESH + 0.3 else []

    def engine_logs() -> None:
        time.sleep(0.1)
        log.write_text(f"INFO [{RID}] {TRIG}\n")

    writer = threading.Thread(target=engine_logs)
    writer.start()
    try:
        assert rolling_kill.wait_until_busy(records, log, timeout=1.5) is None
    finally:
        writer.join()


def test_failures_keep_every_step_they_were_in_flight_in() -> None:
    assert spanned(ORDER, "start-target-engines", "switch-api") == ORDER[2:6]
    assert spanned(ORDER, "after", "after") == ["after"]
    assert spanned(ORDER, "elsewhere", "after") == ["elsewhere", "after"]


def _records() -> list[Any]:
    """#1 done before the kill at t=200; #2 (failed) and #3 (ok, on the killed engine) in
    flight at it; #4 started after it and failed."""
    records = [op_record(1, "before", 1.0),
               op_record(2, "start-target-engines", 180.0, ok=False, op="update",
                    error="StackWaitError: stack wl-0002: wanted UPDATE_COMPLETE\n  status: x"),
               op_record(3, "start-target-engines", 150.0),
               op_record(4, "switch-api", 1.0, ok=False, op="show", error="boom")]
    records[1].end_step = records[2].end_step = "after"
    records[2].request_ids = [RID]
    for record, start in zip(records, (100.0, 150.0, 190.0, 300.0), strict=True):
        record.end, record.start = start + record.latency, start
    return records


def _report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
            killed: rolling.Kill | None) -> tuple[StepResult, dict[str, Any]]:
    ctx = rolling_context(tmp_path)
    stuck = {"name": "wl-0002", "id": "i2", "status": "UPDATE_IN_PROGRESS", "reason": "r"}
    ctx.deployment.logs.mkdir()
    (ctx.deployment.logs / f"{KILLED}.log").write_text(f"INFO [{RID} - -] Updating stack\n")
    result = rolling_report(ctx, _records(), ORDER, in_progress=[stuck], killed=killed)
    return result, json.loads((ctx.run_dir / WORKLOAD_FILE).read_text())


def test_what_was_in_flight_at_the_kill_is_blamed_on_its_step(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kill = rolling_kill.Kill(KILLED, "stop-base-engine-1", 200.0)
    result, data = _report(tmp_path, monkeypatch, kill)
    fault = f"in flight when {KILLED} was killed at step stop-base-engine-1"
    assert result.status == Status.FAILED
    whats = [f.what for f in result.findings if f.severity == "error"]
    assert whats == [f"update of wl-0002 failed during step start-target-engines, {fault}",
                     "show of wl-0004 failed during step switch-api",
                     f"stack wl-0002 left UPDATE_IN_PROGRESS, {fault}"]
    failures = {f["seq"]: f for f in data["report"]["failures"]}
    assert failures[2]["steps"] == ORDER[2:]
    assert "fault" not in failures[4]
    assert data["killed"] == {"service": KILLED, "step": "stop-base-engine-1", "at": 200.0,
                              "busy_with": None, "waited": 0.0, "in_flight": [2, 3]}
    assert f"{KILLED} was killed (SIGKILL, test hook {KILL_ENV}) at step " \
           "stop-base-engine-1 with 2 workload operation(s) in flight" in result.messages
    assert "in flight at the kill: #3 show wl-0003 (logged by the killed engine), started in " \
           "start-target-engines, ended in after: ok" in result.messages
    assert any(line.startswith("in flight at the kill: #2 update wl-0002, started in "
                               "start-target-engines, ended in after: FAILED: StackWaitError")
               for line in result.messages)
    assert any(line.startswith("workload FAILED #2 update wl-0002 during start-target-engines "
                               f".. after ({fault}): ") for line in result.messages)


def test_without_a_kill_nothing_is_blamed_on_one(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    result, data = _report(tmp_path, monkeypatch, None)
    assert data["killed"] is None
    assert all("killed" not in f.what for f in result.findings)
    assert not any("in flight at the kill" in line or "was killed" in line
                   for line in result.messages)
    assert all("fault" not in f for f in data["report"]["failures"])

"""The rolling step's report: the workload and the held windows, attributed to the engines that
served them, written to ``workload.json`` and turned into the step's messages and findings."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from grenadier.host import write_atomic
from grenadier.model.findings import Finding
from grenadier.model.result import Status, StepResult
from grenadier.phases.rolling_kill import KILL_ENV, REQ, Kill, blame, in_flight_at
from grenadier.phases.rolling_window import HeldWindows
from grenadier.services.heat_client import HeatClient
from grenadier.workload.generator import OpRecord, Workload
from grenadier.workload.report import WorkloadReport, build_report

WORKLOAD_FILE = "workload.json"
#: an operation slower than this is listed (a stall, not a failure)
SLOW_SECONDS = 10.0


#: the API's line for each RPC call it sends, under the request's ids (at DEBUG)
CALL = re.compile(rb"CALL msg_id: ([0-9a-f-]{32,36})")
#: an engine's lines for each RPC message it receives, and for each call it answers
RECEIVED = re.compile(rb"Receive incoming message with id ([0-9a-f-]{32,36})")
ANSWERED = re.compile(rb"Replied (?:success message|failure for incoming message) with id "
                      rb"([0-9a-f-]{32,36})")


#: what oslo.messaging logs when an endpoint raised: a line under the request's ids, then the
#: traceback, whose last line is the exception
HANDLING = b"Exception during message handling"
RAISED = re.compile(rb" ERROR oslo_messaging\.rpc\.server (?:\[[^]]*\] )?"
                    rb"([A-Za-z_][\w.]*(?:Error|Exception)\b.*)$")


def _read(path: Path) -> bytes:
    return path.read_bytes() if path.is_file() else b""


def _calls(api_logs: Iterable[Path]) -> dict[bytes, set[bytes]]:
    """Request id (Heat's own, or the caller's global one) -> the ids of the RPC calls the API
    sent for it."""
    calls: dict[bytes, set[bytes]] = {}
    for path in api_logs:
        for line in _read(path).splitlines():
            found = CALL.search(line)
            if found:
                for rid in REQ.findall(line):
                    calls.setdefault(rid, set()).add(found.group(1))
    return calls


def attribute_engines(records: Sequence[OpRecord], logs: dict[str, Path],
                      api_logs: Iterable[Path] = ()) -> dict[int, int]:
    """Fill each record's ``engines``: the engine services whose logs carry its request ids,
    or the ids of the RPC calls the API logged for them (reads, which engines log at DEBUG
    only, are found that way). Returns, per record (seq), how many of its RPC calls no engine
    answered."""
    seen: dict[str, set[bytes]] = {}
    answered: set[bytes] = set()
    for name, path in logs.items():
        text = _read(path)
        seen[name] = set(REQ.findall(text)) | set(RECEIVED.findall(text))
        answered |= set(ANSWERED.findall(text))
    calls = _calls(api_logs)
    unanswered: dict[int, int] = {}
    for record in records:
        ids = {rid.encode() for rid in record.request_ids}
        sent = {call for rid in ids for call in calls.get(rid, ())}
        record.engines = sorted(name for name, found in seen.items() if (ids | sent) & found)
        if sent - answered:
            unanswered[record.seq] = len(sent - answered)
    return unanswered


def _raised_after(lines: list[bytes], start: int) -> str:
    for line in lines[start + 1:start + 200]:
        found = RAISED.search(line)
        if found:
            return found.group(1).decode(errors="replace").strip()[:500]
    return ""


def engine_errors(records: Sequence[OpRecord], logs: dict[str, Path]) -> dict[int, str]:
    """Per failed record (seq), the exception an engine raised while handling one of its
    requests, as its log shows it ("heat-target-engine-1: TypeError: ...")."""
    failed = {rid.encode(): r.seq for r in records if not r.ok for rid in r.request_ids}
    found: dict[int, str] = {}
    for name, path in logs.items():
        lines = _read(path).splitlines()
        for index, line in enumerate(lines):
            if HANDLING not in line:
                continue
            seqs = {failed[rid] for rid in REQ.findall(line) if rid in failed} - set(found)
            raised = _raised_after(lines, index) if seqs else ""
            if raised:
                found.update(dict.fromkeys(seqs, f"{name}: {raised}"))
    return found


def in_progress(client: HeatClient) -> list[dict[str, str]]:
    """Every top-level stack whose status ends in _IN_PROGRESS."""
    return [{"name": s["stack_name"], "id": s["id"], "status": s["stack_status"],
             "reason": s.get("stack_status_reason") or ""}
            for s in client.list_stacks() if str(s["stack_status"]).endswith("_IN_PROGRESS")]


def left_in_progress(client: Callable[[], HeatClient], prefix: str,
                     result: StepResult) -> list[dict[str, Any]]:
    """The workload's stacks left IN_PROGRESS."""
    try:
        with client() as heat:
            return [s for s in in_progress(heat) if s["name"].startswith(prefix)]
    except Exception as exc:  # the API may be down when the procedure itself failed
        result.messages.append(f"workload stacks not inspected: {exc}")
        return []


def clean_up(client: Callable[[], HeatClient], prefix: str, windows: HeldWindows | None,
             report: WorkloadReport, result: StepResult) -> int:
    """Delete the workload's and the windows' stacks, so that the post-upgrade suite sees its
    own stacks only; those an engine's stop left IN_PROGRESS too (a delete takes a dead
    engine's convergence stack over). A stack left IN_PROGRESS for another reason keeps them
    all as they are, for inspection."""
    if any(not stack.get("known") for stack in report.in_progress):
        result.messages.append("workload stacks kept for inspection: a stack is IN_PROGRESS")
        return 0
    try:
        with client() as heat:
            mine = [f"{s['stack_name']}/{s['id']}" for s in heat.list_stacks()
                    if s["stack_name"].startswith(prefix)]
            for stack in mine:
                heat.delete_stack(stack)
            for stack in mine:
                heat.wait_for(stack, {"DELETE_COMPLETE"}, 180)
            cleaned = len(mine) + (windows.cleanup(heat) if windows else 0)
    except Exception as exc:  # reported; the post-upgrade suite then meets what is left
        result.messages.append(f"workload and window stacks not all deleted: {exc}")
        return 0
    result.messages.append(f"workload and window stacks deleted after the report: {cleaned}"
                           + (f" (the {len(report.in_progress)} left IN_PROGRESS by an engine's "
                              "stop too)" if report.in_progress else ""))
    return cleaned


@dataclass(frozen=True)
class GracefulStop:
    """An engine stopped gracefully: from its stop signal (epoch s) to its exit."""

    service: str
    step: str
    began: float
    ended: float


#: how an operation fails when Heat answered its requests but its stack never settled
NEVER_SETTLED = "timed out after"


def mark_lost(stops: Sequence[GracefulStop], records: Sequence[OpRecord],
              unanswered: dict[int, int], killed: Kill | None = None) -> list[str]:
    """Mark (``lost``) the operations in flight while an engine stopped gracefully that the
    stop cost their answer: one of their RPC calls no engine answered (the API logged the call,
    no engine its reply), or they failed waiting for a stack that never settled (a message the
    stopping engine dropped, cast to a worker, leaves no trace of which engine dropped it).
    Known Heat behaviour at any engine stop, not the upgrade's: a fault of the target also
    fails operations outside the stops (the held windows, ``after``). A request that got no
    answer without any such evidence (an API that held it: a stall) is not excused. Those in
    flight at the test hook's kill are the kill's."""
    lines = []
    for record in records:
        if killed is not None and record.start <= killed.at <= (record.end or killed.at):
            continue
        settled_not = not record.ok and NEVER_SETTLED in record.error
        if record.seq not in unanswered and not settled_not:
            continue
        stop = next((s for s in stops
                     if record.start <= s.ended and (record.end or s.ended) >= s.began), None)
        if stop is None:
            continue
        record.lost = f"in flight when {stop.service} stopped gracefully at step {stop.step}"
        why = f"{unanswered[record.seq]} RPC call(s) never answered" \
            if record.seq in unanswered else "its stack never settled"
        outcome = "failed" if not record.ok else f"ok after {record.latency:.1f} s"
        lines.append(f"lost at a graceful engine stop: #{record.seq} {record.op} "
                     f"{record.stack} ({record.lost}; {why}): {outcome}")
    return lines


@dataclass
class Rolled:
    """What the procedure left for the report."""

    workload: Workload
    records: list[OpRecord]
    order: list[str]
    versions: dict[str, str]
    engine_logs: dict[str, Path]
    roles: dict[str, str]
    windows: HeldWindows | None = None
    killed: Kill | None = None
    api_logs: tuple[Path, ...] = ()
    stops: tuple[GracefulStop, ...] = ()
    #: known Heat behaviour (an engine stop's lost messages) fails the step too
    strict: bool = False


def _slow_lines(records: Sequence[OpRecord]) -> list[str]:
    lines = []
    for record in records:
        what = f"#{record.seq} {record.op} {record.stack}"
        span = f"started in {record.step}, ended in {record.end_step}"
        if record.latency > SLOW_SECONDS:
            lines.append(f"workload slow {what}: {record.latency:.1f} s, {span}")
        if record.resent:
            lines.append(f"workload re-sent {what}: its answer was lost {record.resent} "
                         f"time(s), {span}")
    return lines


def stall_lines(report: WorkloadReport) -> list[str]:
    """p95 latency while each base engine stopped, against the p95 before the upgrade."""
    steps = {s.step: s for s in report.steps}
    before = steps.get("before")
    if before is None or not before.succeeded:
        return []
    return [f"stall: p95 {s.p95:.2f} s during {s.step}, {s.p95 - before.p95:+.2f} s from the "
            f"p95 before the upgrade ({before.p95:.2f} s)"
            + (f"; {s.lost} operation(s) lost at the stop, not in the p95" if s.lost else "")
            for s in report.steps if s.step.startswith("stop-base-engine") and s.succeeded]


def fill_findings(report: WorkloadReport, mix: dict[str, int], min_ops: int,
                  min_in_flight: int) -> list[Finding]:
    """A warning per step the workload did not fill (too few operations, a kind of the mix
    missing, too few in flight): that step's state was not exercised as it should be."""
    kinds = {op for op, weight in mix.items() if weight > 0}
    found = []
    for stats in report.steps:
        short = []
        if stats.attempted < min_ops:
            short.append(f"{stats.attempted} operations (wanted {min_ops})")
        missing = sorted(kinds - set(stats.ops))
        if missing:
            short.append(f"no {', '.join(missing)}")
        if stats.in_flight_min is not None and stats.in_flight_min < min_in_flight:
            short.append(f"{stats.in_flight_min} in flight at times (wanted {min_in_flight})")
        if short:
            found.append(Finding("workload", "warning", f"the workload did not fill step "
                                 f"{stats.step}: {'; '.join(short)}", kind="not-filled"))
    return found


def _attribution_lines(rolled: Rolled, report: WorkloadReport) -> list[str]:
    records = [*rolled.records, *(rolled.windows.all_records() if rolled.windows else [])]
    nowhere = [r for r in records if not r.engines]
    lost = [r for r in nowhere if r.lost]
    others = [r for r in nowhere if not r.lost]
    line = f"operations attributed to an engine: {len(records) - len(nowhere)} of {len(records)}"
    if lost:
        line += f"; {len(lost)} lost at an engine stop before any engine took them"
    if others:
        line += "; not: " + ", ".join(f"#{r.seq} {r.op} ({r.step})" for r in others[:20])
    lines = [line]
    if not {"base", "target"} <= {rolled.roles.get(name) for name in report.engines}:
        lines.append("mixed versions NOT shown: operations were served by "
                     f"{', '.join(sorted(report.engines)) or 'no engine seen'}")
    return lines


def _window_lines(windows: HeldWindows) -> list[str]:
    lines = []
    for window, records in windows.records.items():
        served = Counter(engine for record in records for engine in record.engines)
        text = ", ".join(f"{k} {v}" for k, v in sorted(served.items())) or "none seen"
        lines.append(f"{window}: operations served per engine: {text}")
    return lines


def report_step(result: StepResult, rolled: Rolled, in_progress: list[dict[str, Any]],
                run_dir: Path) -> WorkloadReport:
    """Attribute, summarise and record what the rolling step did; fail it on any error."""
    windows = rolled.windows.all_records() if rolled.windows else []
    unanswered = attribute_engines([*rolled.records, *windows], rolled.engine_logs,
                                   rolled.api_logs)
    for seq_records in (rolled.records, windows):
        raised = engine_errors(seq_records, rolled.engine_logs)
        for record in seq_records:
            if record.seq in raised:
                record.error += f" [engine: {raised[record.seq]}]"
    workload, killed = rolled.workload, rolled.killed
    lost = mark_lost(rolled.stops, rolled.records, unanswered, killed)
    report = build_report(rolled.records, rolled.order, in_progress, workload.marks,
                          workload.stopped_at)
    flying = in_flight_at(killed, rolled.records) if killed else []
    blamed = blame(killed, flying, report) if killed else []
    result.messages.extend(report.lines())
    if killed:
        result.messages.append(f"{killed.service} was killed (SIGKILL, test hook {KILL_ENV}) "
                               f"at step {killed.step} with {len(flying)} workload "
                               "operation(s) in flight")
        result.messages.extend(blamed)
    result.messages += lost + _slow_lines(rolled.records) + stall_lines(report)
    if rolled.windows:
        result.messages += _window_lines(rolled.windows)
        result.findings += rolled.windows.findings + rolled.windows.failure_findings()
    result.messages += _attribution_lines(rolled, report)
    result.findings += failure_findings(report, rolled.strict) + fill_findings(
        report, workload.mix, workload.limits.step_min_ops, workload.limits.min_in_flight)
    data = {"report": report.to_dict(), "records": [r.to_dict() for r in rolled.records],
            "windows": rolled.windows.to_dict() if rolled.windows else {},
            "rpc_api_versions": rolled.versions, "steps": rolled.order,
            "killed": {**asdict(killed), "in_flight": [r.seq for r in flying]}
            if killed else None}
    write_atomic(run_dir / WORKLOAD_FILE, json.dumps(data, indent=1))
    if result.failed_findings:
        result.status = Status.FAILED
    return report


KNOWN = ("known Heat behaviour, not introduced by the upgrade: an engine's RPC server "
         "acknowledges each message as it receives it and one that stops drops those it had "
         "not dispatched; their callers wait the RPC timeout. --fail-on-stuck makes it an "
         "error; see docs/rolling-upgrade.md")


def failure_findings(report: WorkloadReport, strict: bool = False) -> list[Finding]:
    """An error per failed operation and per stack left IN_PROGRESS; a warning for those an
    engine's graceful stop lost (``known``), unless ``strict``."""
    def finding(item: dict[str, Any], what: str, where: str, found: str,
                remedy: str) -> Finding:
        known = bool(item.get("known"))
        return Finding("workload", "warning" if known and not strict else "error",
                       what + (f", {item['fault']}" if item.get("fault") else ""), where=where,
                       found=found, remedy=KNOWN if known else remedy,
                       kind="lost-at-engine-stop" if known else "")

    return [finding(failure, f"{failure['op']} of {failure['stack']} failed during step "
                    f"{failure['step']}", f"operation #{failure['seq']} (ended in "
                    f"{failure['end_step']})", failure["error"], "")
            for failure in report.failures] + [
        finding(stack, f"stack {stack['name']} left {stack['status']}", stack["id"],
                stack["reason"], "a stack stuck IN_PROGRESS: see docs/rolling-upgrade.md")
        for stack in report.in_progress]

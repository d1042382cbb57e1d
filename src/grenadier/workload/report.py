"""The workload's report: per step attempted / succeeded / failed, p50 / p95 latency and the
operations in flight, every failure with its message and step, the engines that served,
stacks left IN_PROGRESS."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from grenadier.workload.generator import OpRecord


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (0 for no values): p50 of [1, 2, 3, 4] is 2, p95 is 4."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass
class StepStats:
    step: str
    attempted: int = 0
    succeeded: int = 0
    failed: int = 0
    #: operations that waited for an answer an engine lost as it stopped (not in p50 / p95)
    lost: int = 0
    p50: float = 0.0
    p95: float = 0.0
    #: operations per kind, e.g. {"create": 4, "show": 6}
    ops: dict[str, int] = field(default_factory=dict)
    #: engine service -> operations of this step whose requests it logged
    engines: dict[str, int] = field(default_factory=dict)
    #: how long the step lasted, and the operations in flight during it: the fewest (dips
    #: shorter than GAP left out) and the time-weighted mean (None: no timing known)
    seconds: float = 0.0
    in_flight_min: int | None = None
    in_flight_mean: float | None = None

    def line(self) -> str:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(self.ops.items()))
        served = ", ".join(f"{k} {v}" for k, v in sorted(self.engines.items())) or "none seen"
        flying = "" if self.in_flight_min is None else \
            f"; {self.seconds:.1f} s, in flight min {self.in_flight_min} mean " \
            f"{self.in_flight_mean or 0:.1f}"
        lost = f" ({self.lost} lost at an engine stop)" if self.lost else ""
        return (f"workload [{self.step}]: {self.attempted} ops ({kinds}), {self.succeeded} ok, "
                f"{self.failed} failed{lost}, p50 {self.p50:.2f} s, p95 {self.p95:.2f} s; "
                f"engines: {served}{flying}")


@dataclass
class WorkloadReport:
    steps: list[StepStats]
    failures: list[dict[str, Any]]
    in_progress: list[dict[str, Any]]
    engines: dict[str, int]
    total: int
    succeeded: int
    #: operations that sent a change again because its answer was lost (see generator.py)
    resent: int = 0

    @property
    def failed(self) -> int:
        return self.total - self.succeeded

    @property
    def ok(self) -> bool:
        return not self.failures and not self.in_progress

    def lines(self) -> list[str]:
        out = [s.line() for s in self.steps]
        served = ", ".join(f"{k} {v}" for k, v in sorted(self.engines.items())) or "none seen"
        out.append(f"workload total: {self.total} ops, {self.succeeded} ok, {self.failed} "
                   f"failed, {self.resent} sent a change again after its answer was lost; "
                   f"operations served per engine: {served}")
        for failure in self.failures:
            span = failure["step"] if failure["step"] == failure["end_step"] else \
                f"{failure['step']} .. {failure['end_step']}"
            fault = f" ({failure['fault']})" if failure.get("fault") else ""
            out.append(f"workload FAILED #{failure['seq']} {failure['op']} {failure['stack']} "
                       f"during {span}{fault}: {failure['error']}")
        for stack in self.in_progress:
            fault = f" ({stack['fault']})" if stack.get("fault") else ""
            out.append(f"workload stack left {stack['status']}: {stack['name']} ({stack['id']})"
                       f"{fault}")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"steps": [asdict(s) for s in self.steps], "failures": self.failures,
                "in_progress": self.in_progress, "engines": self.engines,
                "total": self.total, "succeeded": self.succeeded, "failed": self.failed,
                "resent": self.resent}


#: dips in the operations in flight shorter than this (s) are not counted: the instant between
#: one operation's end and the start of the one that replaces it
GAP = 0.05


def in_flight(records: Iterable[OpRecord], start: float, end: float) -> tuple[int, float]:
    """The fewest operations in flight over [start, end) (dips shorter than GAP left out) and
    the time-weighted mean."""
    events = sorted([(r.start, 1) for r in records] + [(r.end or end, -1) for r in records])
    count, at, fewest, area = 0, start, None, 0.0
    for when, delta in [*events, (end, 0)]:
        if when > at and at < end:
            length = min(when, end) - at
            area += count * length
            if length >= GAP:
                fewest = count if fewest is None else min(fewest, count)
            at = min(when, end)
        count += delta
    span = end - start
    return (fewest if fewest is not None else count), (area / span if span > 0 else 0.0)


def spanned(order: Sequence[str], first: str, last: str) -> list[str]:
    """The steps from ``first`` to ``last`` in ``order``: those an operation was in flight in
    (a failure may be caused in any of them, e.g. by an engine killed while it waited)."""
    if first in order and last in order and order.index(first) <= order.index(last):
        return list(order[order.index(first):order.index(last) + 1])
    return list(dict.fromkeys([first, last]))


def _windows(marks: Sequence[tuple[str, float]], end: float) -> dict[str, tuple[float, float]]:
    """Each step's [start, end) from the times the steps began (a step seen twice: its last)."""
    return {step: (begun, marks[i + 1][1] if i + 1 < len(marks) else end)
            for i, (step, begun) in enumerate(marks)}


def build_report(records: Iterable[OpRecord], step_order: Sequence[str] = (),
                 in_progress: Sequence[dict[str, Any]] = (),
                 marks: Sequence[tuple[str, float]] = (), end: float = 0.0) -> WorkloadReport:
    """Group ``records`` by the step each started in (``step_order`` first, then others as
    met); a failure keeps its message, the step it started in and the one it ended in; one
    ``lost`` (and the stack it left IN_PROGRESS) is marked ``known``, with that cause.
    ``marks`` (step, when it began) and ``end`` (when the workload stopped) time the steps."""
    records = sorted(records, key=lambda r: r.seq)
    order = list(dict.fromkeys([*step_order, *(r.step for r in records)]))
    windows = _windows(marks, end or max((r.end for r in records), default=0.0))
    steps: list[StepStats] = []
    engines_total: dict[str, int] = {}
    for name in order:
        mine = [r for r in records if r.step == name]
        stats = StepStats(name, attempted=len(mine), succeeded=sum(r.ok for r in mine))
        stats.failed = stats.attempted - stats.succeeded
        stats.lost = sum(bool(r.lost) for r in mine)
        latencies = [r.latency for r in mine if r.ok and not r.lost]
        stats.p50, stats.p95 = percentile(latencies, 50), percentile(latencies, 95)
        if name in windows:
            begun, ended = windows[name]
            stats.seconds = round(ended - begun, 2)
            fewest, mean = in_flight(records, begun, ended)
            stats.in_flight_min, stats.in_flight_mean = fewest, round(mean, 2)
        for r in mine:
            stats.ops[r.op] = stats.ops.get(r.op, 0) + 1
            for engine in r.engines:
                stats.engines[engine] = stats.engines.get(engine, 0) + 1
                engines_total[engine] = engines_total.get(engine, 0) + 1
        steps.append(stats)
    failures = [{"seq": r.seq, "op": r.op, "stack": r.stack, "step": r.step,
                 "end_step": r.end_step, "steps": spanned(order, r.step, r.end_step),
                 "error": r.error, "latency": round(r.latency, 3),
                 **({"fault": r.lost, "known": True} if r.lost else {})}
                for r in records if not r.ok]
    lost = {r.stack: r.lost for r in records if r.lost and not r.ok}
    stuck = [{**s, "fault": lost[s["name"]], "known": True} if s["name"] in lost else dict(s)
             for s in in_progress]
    return WorkloadReport(steps, failures, stuck, engines_total,
                          total=len(records), succeeded=sum(r.ok for r in records),
                          resent=sum(r.resent > 0 for r in records))

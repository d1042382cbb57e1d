"""The workload's report: per step attempted / succeeded / failed and p50 / p95 latency,
every failure with its message and step, the engines that served, stacks left IN_PROGRESS."""

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
    p50: float = 0.0
    p95: float = 0.0
    #: operations per kind, e.g. {"create": 4, "show": 6}
    ops: dict[str, int] = field(default_factory=dict)
    #: engine service -> operations of this step whose requests it logged
    engines: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(self.ops.items()))
        served = ", ".join(f"{k} {v}" for k, v in sorted(self.engines.items())) or "none seen"
        return (f"workload [{self.step}]: {self.attempted} ops ({kinds}), {self.succeeded} ok, "
                f"{self.failed} failed, p50 {self.p50:.2f} s, p95 {self.p95:.2f} s; "
                f"engines: {served}")


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


def spanned(order: Sequence[str], first: str, last: str) -> list[str]:
    """The steps from ``first`` to ``last`` in ``order``: those an operation was in flight in
    (a failure may be caused in any of them, e.g. by an engine killed while it waited)."""
    if first in order and last in order and order.index(first) <= order.index(last):
        return list(order[order.index(first):order.index(last) + 1])
    return list(dict.fromkeys([first, last]))


def build_report(records: Iterable[OpRecord], step_order: Sequence[str] = (),
                 in_progress: Sequence[dict[str, Any]] = ()) -> WorkloadReport:
    """Group ``records`` by the step each started in (``step_order`` first, then others as
    met); a failure keeps its message, the step it started in and the one it ended in."""
    records = sorted(records, key=lambda r: r.seq)
    order = list(dict.fromkeys([*step_order, *(r.step for r in records)]))
    steps: list[StepStats] = []
    engines_total: dict[str, int] = {}
    for name in order:
        mine = [r for r in records if r.step == name]
        stats = StepStats(name, attempted=len(mine), succeeded=sum(r.ok for r in mine))
        stats.failed = stats.attempted - stats.succeeded
        latencies = [r.latency for r in mine if r.ok]
        stats.p50, stats.p95 = percentile(latencies, 50), percentile(latencies, 95)
        for r in mine:
            stats.ops[r.op] = stats.ops.get(r.op, 0) + 1
            for engine in r.engines:
                stats.engines[engine] = stats.engines.get(engine, 0) + 1
                engines_total[engine] = engines_total.get(engine, 0) + 1
        steps.append(stats)
    failures = [{"seq": r.seq, "op": r.op, "stack": r.stack, "step": r.step,
                 "end_step": r.end_step, "steps": spanned(order, r.step, r.end_step),
                 "error": r.error, "latency": round(r.latency, 3)}
                for r in records if not r.ok]
    return WorkloadReport(steps, failures, list(in_progress), engines_total,
                          total=len(records), succeeded=sum(r.ok for r in records),
                          resent=sum(r.resent > 0 for r in records))

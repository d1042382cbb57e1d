"""Grenadier against the bare floor: the same Heat operations without the harness, side by side.

    .venv/bin/python benchmarks/bare_floor.py [--base 26.0.2] [--target 27.0.1] [--rounds 2]
        [--cold-rounds 0] [--modes suite,minimal] [--workdir DIR] [--json FILE]

Each round runs, one after the other (the order reversed every other round, so that a drift
in the machine's load hits all alike):

- ``grenadier run --base B --target T`` (the default run, warm release cache, through
  run_steps.py's timing wrapper);
- ``bare_reference.py --ops suite``: the same Heat operations as grenadier's built-in suite
  (smoke both sides, the same stacks, the same post-upgrade operations, verify, delete) with
  nothing else: no pytest, no state store, no snapshot, no inventory, no during-upgrade DB
  watch, no config/DB checks, no impact report, no report files;
- ``bare_reference.py --ops minimal``: the issue's floor: install, db_sync, start, create the
  same stacks, stop, migrate, start, verify (show + outputs), delete.

Both bare modes reuse the warm release venvs of the cache (install = 0 s), as a warm
grenadier run does. ``--cold-rounds N`` adds N rounds of grenadier with an empty cache against
``bare_reference.py --ops suite --install fresh`` (uv venvs into its own directory; uv's
download cache stays warm for both).

Prints every run, the per-step medians side by side, the ratio grenadier / bare (medians of
wall time, and per round), and where grenadier's extra time goes: per step, and inside each
step per check / db_sync / snapshot / inventory / pytest process (from the timing wrapper).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import run_steps as rs

BARE = Path(__file__).resolve().with_name("bare_reference.py")
#: grenadier step -> the bare phase doing the same Heat work (None: grenadier only)
STEP_TO_BARE: dict[str, str | None] = {
    "install": "install", "setup-base": "setup-base", "smoke-base": "smoke-base",
    "pre-upgrade": "pre-upgrade", "save-state": None, "shutdown": "shutdown",
    "during-upgrade": None, "upgrade": "upgrade", "start-target": "start-target",
    "smoke-target": "smoke-target", "post-upgrade": "post-upgrade", "teardown": "teardown",
}
PYTEST_STEPS = ("smoke-base", "pre-upgrade", "smoke-target", "post-upgrade")


@dataclass
class BareRun:
    label: str
    ops: str
    wall: float
    ok: bool
    phases: dict[str, float]
    error: str
    load_before: str
    load_after: str
    stacks: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def serial(self) -> float:
        return sum(self.phases.values())


def run_bare(label: str, ops: str, cache: Path, *, extra: int = 0, install: str = "cached",
             timeout: float = 3600) -> BareRun:
    """bare_reference.py in a child process (wall time includes its Python start, as
    grenadier's does)."""
    out = Path(tempfile.mkstemp(prefix="bare-result-", suffix=".json")[1])
    cmd = [sys.executable, str(BARE), "--ops", ops, "--extra", str(extra), "--install", install,
           "--json", str(out), "-q"]
    before = rs.load()
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=timeout,
                          env={**os.environ, "GRENADIER_CACHE": str(cache)})
    wall = time.perf_counter() - started
    after = rs.load()
    try:
        data = json.loads(out.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {"phases": {}, "ok": False, "error": (proc.stdout + proc.stderr)[-500:]}
    out.unlink(missing_ok=True)
    if not data.get("ok"):
        print(f"  ! {label}: {data.get('error')}", flush=True)
    return BareRun(label, ops, wall, bool(data.get("ok")), dict(data.get("phases", {})),
                   str(data.get("error", "")), before, after, int(data.get("stacks", 0)))


# -- printing ------------------------------------------------------------------------------

def med(values: Sequence[float]) -> float:
    return rs.med([v for v in values if v == v])


def print_bare_runs(title: str, runs: Sequence[BareRun]) -> None:
    if not runs:
        return
    print(f"\n{title}")
    phases = [p for p in STEP_TO_BARE.values() if p]
    print(f"{'phase':<16}" + "".join(f"{r.label:>12}" for r in runs))
    for phase in phases:
        print(f"{phase:<16}" + "".join(f"{rs.fmt(r.phases.get(phase, float('nan'))):>12}"
                                       for r in runs))
    print(f"{'sum of phases':<16}" + "".join(f"{rs.fmt(r.serial):>12}" for r in runs))
    print(f"{'wall (command)':<16}" + "".join(f"{rs.fmt(r.wall):>12}" for r in runs))
    print(f"{'ok':<16}" + "".join(f"{r.ok!s:>12}" for r in runs))
    for r in runs:
        print(f"  {r.label}: load before {r.load_before}, after {r.load_after}")


def side_by_side(grenadier: Sequence[rs.GrenadierRun], bare: dict[str, list[BareRun]]) -> None:
    modes = [m for m in bare if bare[m]]
    print(f"\nmedians, seconds ({len(grenadier)} grenadier run(s); "
          + ", ".join(f"{len(bare[m])} bare {m}" for m in modes) + ")")
    head = f"{'step':<16}{'grenadier':>10}" + "".join(f"{'bare ' + m:>14}" for m in modes)
    if "suite" in modes:
        head += f"{'extra vs suite':>16}"
    print(head)
    for step in rs.STEPS:
        g = med([r.steps.get(step, float("nan")) for r in grenadier])
        phase = STEP_TO_BARE[step]
        line = f"{step:<16}{rs.fmt(g):>10}"
        values = {}
        for mode in modes:
            v = med([r.phases.get(phase, 0.0) for r in bare[mode]]) if phase else 0.0
            values[mode] = v
            line += f"{rs.fmt(v) if phase else '-':>14}"
        if "suite" in modes:
            diff = "(beside upgrade)" if step in rs.OVERLAPPED else f"{g - values['suite']:+.1f}"
            line += f"{diff:>16}"
        print(line)
    g_out = med([r.wall - r.serial for r in grenadier])
    line = f"{'outside steps':<16}{rs.fmt(g_out):>10}"
    outs = {m: med([r.wall - r.serial for r in bare[m]]) for m in modes}
    line += "".join(f"{rs.fmt(outs[m]):>14}" for m in modes)
    if "suite" in modes:
        line += f"{g_out - outs['suite']:>+16.1f}"
    print(line)
    g_wall = med([r.wall for r in grenadier])
    line = f"{'wall (command)':<16}{rs.fmt(g_wall):>10}"
    walls = {m: med([r.wall for r in bare[m]]) for m in modes}
    line += "".join(f"{rs.fmt(walls[m]):>14}" for m in modes)
    if "suite" in modes:
        line += f"{g_wall - walls['suite']:>+16.1f}"
    print(line)
    print("\nratio grenadier / bare (wall time)")
    for mode in modes:
        paired = [g.wall / b.wall for g, b in zip(grenadier, bare[mode], strict=False)]
        print(f"  vs bare {mode:<8} median {g_wall / walls[mode]:.2f}   per round: "
              + ", ".join(f"{p:.2f}" for p in paired))


def breakdown(grenadier: Sequence[rs.GrenadierRun], bare_suite: Sequence[BareRun]) -> None:
    """Inside each step: the timed parts (median over runs), pytest overhead, the rest."""
    if not grenadier or not grenadier[0].timings:
        return
    print("\nwhere grenadier's time goes, per step (medians; timing wrapper + report.json)")
    per_step: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for run in grenadier:
        seen: dict[tuple[str, str], float] = defaultdict(float)
        for t in run.timings:
            if t["what"].startswith("close") or t["what"].startswith("stop during"):
                continue
            seen[(t["step"], t["what"])] += t["seconds"]
        for (step, what), seconds in seen.items():
            per_step[step][what].append(seconds)
        for step in PYTEST_STEPS:
            tests = run.tests.get(step, [])
            if tests:
                per_step[step]["sum of test durations (JUnit)"].append(
                    sum(float(t.get("duration", 0)) for t in tests))
    order = ["(before the steps)", *rs.STEPS, "(after teardown)"]
    for step in order + sorted(set(per_step) - set(order)):
        items = per_step.get(step, {})
        total = med([r.steps.get(step, float("nan")) for r in grenadier])
        if not items and total != total:
            continue
        phase = STEP_TO_BARE.get(step)
        bare = med([b.phases.get(phase, 0.0) for b in bare_suite]) if phase else 0.0
        label = f"{step}: {rs.fmt(total)} s" if total == total else step
        if phase and bare_suite:
            label += f" (bare suite {rs.fmt(bare)} s)"
        print(f"  {label}")
        for what, values in sorted(items.items(), key=lambda kv: -med(kv[1])):
            print(f"      {med(values):6.2f}  {what}")
        pytest_key = next((k for k in items if k.startswith("pytest ")), None)
        if pytest_key and "sum of test durations (JUnit)" in items:
            overhead = med(items[pytest_key]) - med(items["sum of test durations (JUnit)"])
            print(f"      {overhead:6.2f}  = pytest process start, collection, plugin, exit")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--base", default="26.0.2")
    parser.add_argument("--target", default="27.0.1")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--cold-rounds", type=int, default=0)
    parser.add_argument("--modes", default="suite,minimal",
                        help="bare modes to run: suite, minimal or both (default both)")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="grenadier-bare-"))
    cache = rs.default_cache()
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')}, {os.cpu_count()} CPUs, load {rs.load()}; "
          f"{args.base} -> {args.target}; cache {cache}; work {workdir}", flush=True)
    os.environ["GRENADIER_SUITE_EXTRA_STACKS"] = "0"
    rs.ensure_releases(cache, args.base, args.target)
    grenadier: list[rs.GrenadierRun] = []
    bare: dict[str, list[BareRun]] = {m: [] for m in modes}
    for index in range(args.rounds):
        jobs = ["grenadier", *modes]
        if index % 2:
            jobs.reverse()
        for job in jobs:
            print(f"round {index + 1}/{args.rounds}: {job} ...", flush=True)
            if job == "grenadier":
                grenadier.append(rs.run_grenadier(f"g{index + 1}", args.base, args.target,
                                                  workdir / f"g{index + 1}", cache))
            else:
                bare[job].append(run_bare(f"{job}{index + 1}", job, cache))
    cold_g: list[rs.GrenadierRun] = []
    cold_b: list[BareRun] = []
    for index in range(args.cold_rounds):
        empty = Path(tempfile.mkdtemp(prefix="grenadier-cold-cache-"))
        print(f"cold round {index + 1}/{args.cold_rounds}: grenadier (empty cache) ...",
              flush=True)
        try:
            cold_g.append(rs.run_grenadier(f"cold{index + 1}", args.base, args.target,
                                           workdir / f"cold{index + 1}", empty))
        finally:
            shutil.rmtree(empty, ignore_errors=True)
        print(f"cold round {index + 1}/{args.cold_rounds}: bare suite --install fresh ...",
              flush=True)
        cold_b.append(run_bare(f"cold{index + 1}", "suite", cache, install="fresh"))

    rs.print_runs("grenadier runs (warm cache), seconds", grenadier)
    for mode in modes:
        print_bare_runs(f"bare {mode} runs (cached venvs), seconds", bare[mode])
    side_by_side(grenadier, bare)
    breakdown(grenadier, bare.get("suite", []))
    if cold_g:
        rs.print_runs("grenadier, cold cache, seconds", cold_g)
        print_bare_runs("bare suite, --install fresh (uv venvs in its own dir), seconds", cold_b)
        side_by_side(cold_g, {"suite": cold_b})
    if args.json:
        args.json.write_text(json.dumps({
            "grenadier": [r.to_dict() for r in grenadier],
            "bare": {m: [asdict(r) for r in runs] for m, runs in bare.items()},
            "cold_grenadier": [r.to_dict() for r in cold_g],
            "cold_bare": [asdict(r) for r in cold_b]}, indent=1), encoding="utf-8")
    ok = all(r.exit == 0 for r in [*grenadier, *cold_g]) and \
        all(r.ok for runs in [*bare.values(), cold_b] for r in runs)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

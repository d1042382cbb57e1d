"""Scale: the default run with 10, 50, 200 and 1,000 stacks in pre-upgrade, grenadier and bare.

    .venv/bin/python benchmarks/scale.py [--sizes 10,50,200,1000] [--budget-minutes 90]
        [--no-bare] [--workdir DIR] [--json FILE]

A size is the number of stacks pre-upgrade creates: the built-in suite's 9 plus
``GRENADIER_SUITE_EXTRA_STACKS = size - 9`` extra simple stacks (a RandomString and a Value,
catalog.extra_specs), which post-upgrade verifies (show, template, outputs, resources), checks
and deletes with the others. For each size: ``grenadier run`` (warm cache, through
run_steps.py's timing wrapper) and ``bare_reference.py --ops suite --extra size-9`` (the same
Heat operations without the harness). Sizes run in ascending order; a size whose estimated
time (extrapolated from the slope measured so far) would overrun ``--budget-minutes`` is
skipped and said so.

Prints each step's time per size, the slope between consecutive sizes (seconds per extra
stack) for grenadier and for bare, and whether the growth is linear (the slope between the
larger sizes against the slope between the smaller ones).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import bare_floor as bf
import run_steps as rs

BUILTIN_STACKS = 9  # catalog.SPECS


def slope(points: list[tuple[int, float]]) -> list[tuple[str, float]]:
    """Seconds per extra stack between consecutive sizes."""
    return [(f"{a}->{b}", (tb - ta) / (b - a))
            for (a, ta), (b, tb) in itertools.pairwise(points)]


def bare_value(run: bf.BareRun, phase: str) -> float:
    return run.wall if phase == "wall" else run.phases.get(phase, 0.0)


def estimate(points: list[tuple[int, float]], size: int, growth: float = 1.5) -> float:
    """A pessimistic guess of a run's wall time at ``size`` from the runs so far."""
    if not points:
        return 0.0
    if len(points) == 1:
        return points[0][1] * max(1.0, size / max(points[0][0], 1))
    (a, ta), (b, tb) = points[-2], points[-1]
    return tb + (tb - ta) / (b - a) * (size - b) * growth


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--base", default="26.0.2")
    parser.add_argument("--target", default="27.0.1")
    parser.add_argument("--sizes", default="10,50,200,1000")
    parser.add_argument("--budget-minutes", type=float, default=90.0)
    parser.add_argument("--no-bare", dest="bare", action="store_false")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    if sizes[0] < BUILTIN_STACKS:
        parser.error(f"sizes count all pre-upgrade stacks: at least {BUILTIN_STACKS}")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="grenadier-scale-"))
    cache = rs.default_cache()
    rs.ensure_releases(cache, args.base, args.target)
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')}, {os.cpu_count()} CPUs, load {rs.load()}; "
          f"{args.base} -> {args.target}; sizes {sizes}; budget {args.budget_minutes:.0f} min; "
          f"work {workdir}", flush=True)
    started = time.monotonic()
    budget = args.budget_minutes * 60
    g_runs: dict[int, rs.GrenadierRun] = {}
    b_runs: dict[int, bf.BareRun] = {}
    skipped: list[str] = []
    for index, size in enumerate(sizes):
        extra = size - BUILTIN_STACKS
        g_points = [(n, r.wall) for n, r in g_runs.items()]
        b_points = [(n, r.wall) for n, r in b_runs.items()]
        need = estimate(g_points, size) + (estimate(b_points, size) if args.bare else 0)
        left = budget - (time.monotonic() - started)
        if g_points and need > left:
            skipped.append(f"{size} stacks (estimated {need / 60:.0f} min, {left / 60:.0f} min "
                           "left in the budget)")
            print(f"skip {size} stacks: estimated {need:.0f} s > {left:.0f} s left", flush=True)
            continue
        jobs = ["grenadier", "bare"] if args.bare else ["grenadier"]
        if index % 2:
            jobs.reverse()
        for job in jobs:
            print(f"{size} stacks: {job} ... (load {rs.load()})", flush=True)
            if job == "grenadier":
                g_runs[size] = rs.run_grenadier(
                    f"{size}", args.base, args.target, workdir / f"g{size}", cache,
                    env={"GRENADIER_SUITE_EXTRA_STACKS": str(extra)})
            else:
                b_runs[size] = bf.run_bare(f"{size}", "suite", cache, extra=extra)
            print(f"   {job} {size}: "
                  f"{(g_runs[size].wall if job == 'grenadier' else b_runs[size].wall):.1f} s",
                  flush=True)

    done = sorted(g_runs)
    rs.print_runs("grenadier, seconds per step (column = stacks in pre-upgrade)",
                  [g_runs[n] for n in done])
    if b_runs:
        bf.print_bare_runs("bare suite, seconds per phase (column = stacks)",
                           [b_runs[n] for n in sorted(b_runs)])
    if len(done) > 1:
        print("\nslope, seconds per extra stack (grenadier | bare)")
        pairs = [f"{a}->{b}" for a, b in itertools.pairwise(done)]
        print(f"{'step':<16}" + "".join(f"{p:>22}" for p in pairs))
        for step in [*rs.STEPS, "wall"]:
            g_pts = [(n, g_runs[n].wall if step == "wall" else g_runs[n].steps.get(step, 0.0))
                     for n in done]
            phase = "wall" if step == "wall" else bf.STEP_TO_BARE[step]
            line = f"{step:<16}"
            for label, g_slope in slope(g_pts):
                a, b = (int(x) for x in label.split("->"))
                if phase and a in b_runs and b in b_runs:
                    b_slope = (bare_value(b_runs[b], phase) - bare_value(b_runs[a], phase)) \
                        / (b - a)
                    line += f"{g_slope:>12.3f} | {b_slope:>7.3f}"
                else:
                    line += f"{g_slope:>12.3f} | {'-':>7}"
            print(line)
    for size in done:
        run = g_runs[size]
        floor = b_runs.get(size)
        ratio = f"{run.wall / floor.wall:.2f}" if floor else "-"
        print(f"  {size} stacks: grenadier {run.wall:.1f} s (exit {run.exit}), bare "
              f"{f'{floor.wall:.1f} s (ok {floor.ok})' if floor else '-'}, ratio {ratio}")
    for line in skipped:
        print(f"  skipped: {line}")
    print(f"total benchmark time {(time.monotonic() - started) / 60:.1f} min")
    if args.json:
        args.json.write_text(json.dumps({
            "grenadier": {n: r.to_dict() for n, r in g_runs.items()},
            "bare": {n: asdict(r) for n, r in b_runs.items()}, "skipped": skipped},
            indent=1), encoding="utf-8")
    return 0 if all(r.exit == 0 for r in g_runs.values()) and \
        all(r.ok for r in b_runs.values()) else 1


if __name__ == "__main__":
    sys.exit(main())

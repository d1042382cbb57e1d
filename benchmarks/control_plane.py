"""The extra time of a real control plane: ``--bus rabbit --auth keystone`` against the default.

    .venv/bin/python benchmarks/control_plane.py [--base 26.0.2] [--target 27.0.1] [--repeat N]
        [--engines 2] [--workdir DIR]

Runs ``grenadier run`` (embedded PostgreSQL, one Heat process, in-process RPC, noauth) and
``grenadier run --bus rabbit --auth keystone --engines N`` (private RabbitMQ, heat-wsgi-api and
N heat-engines, private Keystone, the Keystone resource tests) alternately, ``--repeat`` times,
and prints each step's median time and the difference. Releases and the Keystone venv are
installed before timing (a warm cache is what every run after the first sees).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from grenadier.model.steps import STEPS
from grenadier.releases import ReleaseCache, default_cache_dir, parse_spec
from grenadier.releases.tools import ensure_tool
from grenadier.services.keystone import KEYSTONE_REQUIREMENT

CONTROL_PLANE = ("--bus", "rabbit", "--auth", "keystone")
#: step -> seconds, plus "total" (wall time of the command) and "exit"
Timings = dict[str, float]


def one_run(args: argparse.Namespace, extra: tuple[str, ...], workdir: Path) -> Timings:
    cmd = [sys.executable, "-m", "grenadier", "run", "--base", args.base, "--target",
           args.target, "--workdir", str(workdir), *extra]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=1800)
    total = time.perf_counter() - started
    runs = sorted((workdir / "runs").glob("*"), key=lambda p: p.stat().st_mtime)
    report = json.loads((runs[-1] / "report.json").read_text(encoding="utf-8"))
    timings: Timings = {s["name"]: float(s["duration"]) for s in report["steps"]}
    timings.update(total=total, exit=float(proc.returncode))
    if proc.returncode != 0:
        print(f"  ! exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}")
    return timings


def median(samples: list[Timings], key: str) -> float:
    values = [s[key] for s in samples if key in s]
    return statistics.median(values) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--base", default="26.0.2")
    parser.add_argument("--target", default="27.0.1")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--engines", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    cache = ReleaseCache(Path(os.environ["GRENADIER_CACHE"]) if "GRENADIER_CACHE" in os.environ
                         else default_cache_dir())
    for spec in (args.base, args.target):  # warm cache: not timed
        cache.ensure(parse_spec(spec))
    ensure_tool(cache, KEYSTONE_REQUIREMENT)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="grenadier-bench-"))
    plane = (*CONTROL_PLANE, "--engines", str(args.engines))
    default: list[Timings] = []
    real: list[Timings] = []
    for index in range(args.repeat):  # alternate, so that machine noise hits both alike
        print(f"round {index + 1}/{args.repeat}: default ...", flush=True)
        default.append(one_run(args, (), workdir / "default"))
        print(f"round {index + 1}/{args.repeat}: {' '.join(plane)} ...", flush=True)
        real.append(one_run(args, plane, workdir / "control-plane"))
    print(f"\n{args.base} -> {args.target}, medians of {args.repeat} run(s), seconds")
    print(f"{'step':<16}{'default':>10}{'rabbit+keystone':>17}{'extra':>9}")
    for key in [*STEPS, "total"]:
        base, other = median(default, key), median(real, key)
        print(f"{key:<16}{base:>10.1f}{other:>17.1f}{other - base:>+9.1f}")
    failed = [int(t["exit"]) for t in default + real if t["exit"]]
    if failed:
        print(f"{len(failed)} run(s) did not exit 0: {failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

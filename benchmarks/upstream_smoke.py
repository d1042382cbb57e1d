"""What Heat's upstream gabbits cost a run: the default run against ``--smoke all``, warm.

    .venv/bin/python benchmarks/upstream_smoke.py [--base 26.0.2] [--target 27.0.1]
        [--rounds 2] [--modes builtin,all] [--extra ARG ...] [--workdir DIR] [--json FILE]

Each round runs ``grenadier run --base B --target T --smoke MODE`` once per mode (the order
reversed every other round, so that a drift in the machine's load hits all alike), on the
warm release cache ($GRENADIER_CACHE; the releases and the upstream tools venv are installed
first, untimed). ``--extra`` adds arguments to every run (e.g. ``--extra=--auth
--extra=keystone``).

Prints every run's steps and wall time (run_steps.py's table), the median wall time of each
mode and the difference to the first mode, the gabbi tests of each test phase by status (read
from report.json), and the load averages around each run.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

import run_steps as rs

PHASES = ("smoke-base", "smoke-target", "post-upgrade")


def ensure_tools(cache: Path) -> None:
    from grenadier.plugins.heat.upstream.tools import ensure_tools as install
    from grenadier.releases import ReleaseCache

    install(ReleaseCache(cache))


def gabbi_counts(run: rs.GrenadierRun) -> dict[str, str]:
    found = {}
    for phase in PHASES:
        statuses = Counter(str(t["status"]) for t in run.tests.get(phase, [])
                           if t.get("upstream"))
        if statuses:
            found[phase] = ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--base", default="26.0.2")
    parser.add_argument("--target", default="27.0.1")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--modes", default="builtin,all")
    parser.add_argument("--extra", action="append", default=[])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="grenadier-upstream-"))
    cache = rs.default_cache()
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')}, load {rs.load()}; {args.base} -> "
          f"{args.target}; modes {modes}; extra {args.extra}; cache {cache}; work {workdir}",
          flush=True)
    rs.ensure_releases(cache, args.base, args.target)
    ensure_tools(cache)
    runs: dict[str, list[rs.GrenadierRun]] = {mode: [] for mode in modes}
    for index in range(args.rounds):
        for mode in modes if index % 2 == 0 else list(reversed(modes)):
            label = f"{mode}{index + 1}"
            print(f"{label} ...", flush=True)
            run = rs.run_grenadier(label, args.base, args.target, workdir / label, cache,
                                   extra_args=["--smoke", mode, *args.extra])
            runs[mode].append(run)
            for phase, counts in gabbi_counts(run).items():
                print(f"  {phase}: gabbi tests {counts}", flush=True)
    for mode in modes:
        rs.print_runs(f"--smoke {mode}, warm cache, seconds", runs[mode])
    first = rs.med([r.wall for r in runs[modes[0]]])
    print("\nmedian wall time")
    for mode in modes:
        wall = rs.med([r.wall for r in runs[mode]])
        print(f"  --smoke {mode:<9} {rs.fmt(wall):>6} s  ({wall - first:+.1f} s against "
              f"--smoke {modes[0]})")
    if args.json:
        args.json.write_text(json.dumps({m: [r.to_dict() for r in rs_] for m, rs_ in
                                         runs.items()}, indent=1), encoding="utf-8")
    return 0 if all(r.exit == 0 for rs_ in runs.values() for r in rs_) else 1


if __name__ == "__main__":
    raise SystemExit(main())

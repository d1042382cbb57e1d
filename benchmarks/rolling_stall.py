"""The stall of a rolling run's engine stops, from its ``workload.json``: p95 before the upgrade
against the p95 during each engine stop, as the report counts it and over every operation.

Usage: python benchmarks/rolling_stall.py RUN_DIR [RUN_DIR ...]

Make the runs with ``grenadier run ... --mode rolling`` (add
``GRENADIER_TEST_API_SERVER=heat-wsgi-api`` to the environment for the split API as Heat's
script serves it, one request at a time: the "before" figure). The bar: the p95 during an
engine stop at most 2 s above the p95 before it. Also prints each step's operations, kinds and
fewest operations in flight.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from grenadier.workload.report import percentile


def _p95(records: list[dict[str, Any]], step: str, every: bool) -> float:
    """p95 of the step's operations: as the report counts them (successful, not lost), or
    ``every`` one, a failed one at the time it waited (a request an API held fails after the
    client's 60 s: that is the stall too)."""
    return percentile([r["latency"] for r in records if r["step"] == step
                       and (every or (r["ok"] and not r["lost"]))], 95)


def summary(run_dir: Path) -> list[str]:
    data = json.loads((run_dir / "workload.json").read_text(encoding="utf-8"))
    records, steps = data["records"], data["report"]["steps"]
    lines = [f"{run_dir.name}: {data['report']['total']} operations"]
    for stats in steps:
        lines.append(f"  {stats['step']:<22} {stats['attempted']:4d} ops, "
                     f"{len(stats['ops'])} kinds, in flight min {stats['in_flight_min']}, "
                     f"{stats.get('lost', 0)} lost")
    before = [_p95(records, "before", lost) for lost in (False, True)]
    for stats in steps:
        if stats["step"].startswith("stop-base-engine"):
            during = [_p95(records, stats["step"], lost) for lost in (False, True)]
            lines.append(f"  stall {stats['step']:<20} p95 {during[0]:6.2f} s "
                         f"({during[0] - before[0]:+6.2f} s from before's {before[0]:.2f} s); "
                         f"every operation: {during[1]:6.2f} s ({during[1] - before[1]:+6.2f} s)")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    for run_dir in parser.parse_args().runs:
        print("\n".join(summary(run_dir)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

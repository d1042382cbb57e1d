"""The state store at scale: what saving and reading N stack records costs.

    .venv/bin/python benchmarks/state_store.py [--sizes 10,50,200,1000,5000] [--threads 16]

What pre-upgrade does with the store, without Heat: ``--threads`` threads save one record per
stack (a record as the built-in suite saves it: about 4 KB of JSON), then another process's
store reads them all back (post-upgrade's one read), then one more record is read by key.
Two ways of saving, side by side:

- ``deferred``: inside ``StateStore.deferred()``, as the pytest plugin's ``upgrade_state``
  saves (appended to the journal, folded at the end);
- ``immediate``: every save folds the whole store into ``state.json`` (what every save did
  before the journal; still what a save outside a deferred block does).

Prints seconds per size and the cost per record, so that linear growth (a flat per-record
cost) and quadratic growth (a per-record cost growing with the size) show at a glance.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from grenadier.state import StateStore

NAMESPACE = "tests/test_heat_upgrade.py"


def record(index: int) -> dict[str, Any]:
    """About the size of the suite's record of a simple stack."""
    return {"key": f"extra_{index:05d}", "name": f"grenadier-extra-{index}", "id": f"{index:036d}",
            "show": {f"field{i}": "x" * 40 for i in range(12)},
            "outputs": {"out": {"value": "y" * 60}},
            "resources": {f"grenadier-extra-{index}/r{i}": {
                "resource_type": "OS::Heat::RandomString", "physical_resource_id": "z" * 40,
                "resource_status": "CREATE_COMPLETE", "resource_status_reason": "state changed",
                "required_by": []} for i in range(6)},
            "template": {"resources": {f"r{i}": {"type": "OS::Heat::Value"} for i in range(8)}},
            "db": {"stacks": [f"{index:036d}"], "resources": [], "software_configs": []}}


def measure(size: int, threads: int, deferred: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="state-bench-") as work:
        path = Path(work) / "state.json"
        store = StateStore(path)
        store.save("runner", "port", 1)
        started = time.perf_counter()
        if deferred:
            with store.deferred(), ThreadPoolExecutor(threads) as pool:
                list(pool.map(lambda i: store.save(NAMESPACE, f"stack:{i}", record(i)),
                              range(size)))
        else:
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(lambda i: store.save(NAMESPACE, f"stack:{i}", record(i)),
                              range(size)))
        saved = time.perf_counter() - started
        started = time.perf_counter()
        reader = StateStore(path)
        assert len(reader.namespace(NAMESPACE)) == size
        read_all = time.perf_counter() - started
        started = time.perf_counter()
        reader.get(NAMESPACE, "stack:0")
        read_one = time.perf_counter() - started
        return {"save": saved, "read_all": read_all, "read_one": read_one,
                "bytes": path.stat().st_size}


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="10,50,200,1000,5000")
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--immediate-up-to", type=int, default=1000,
                        help="skip the immediate way above this size (it grows quadratically)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')}, load {os.getloadavg()[0]:.2f}, "
          f"{args.threads} threads")
    print(f"{'records':>8}{'way':>11}{'save s':>9}{'ms/record':>11}{'read all s':>12}"
          f"{'read one ms':>13}{'state.json MB':>15}")
    for size in sizes:
        for deferred in (True, False):
            if not deferred and size > args.immediate_up_to:
                continue
            m = measure(size, args.threads, deferred)
            print(f"{size:>8}{'deferred' if deferred else 'immediate':>11}{m['save']:>9.2f}"
                  f"{1000 * m['save'] / size:>11.2f}{m['read_all']:>12.3f}"
                  f"{1000 * m['read_one']:>13.2f}{m['bytes'] / 1e6:>15.2f}", flush=True)
    print(f"load after {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Concurrent stack create/delete rounds against a real Heat, counting database errors.

Shows the database backends' behaviour under the workload the suite relies on:
embedded PostgreSQL takes concurrent operations; SQLite is run one operation at a time.

    python benchmarks/db_workload.py --db postgresql --rounds 10 --stacks 8
    python benchmarks/db_workload.py --db sqlite --rounds 2 --stacks 4          # serial
    python benchmarks/db_workload.py --db sqlite --rounds 1 --stacks 4 --concurrent  # why not

Prints one line per round and a summary; exits 1 when any operation or DB error was seen.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from grenadier.services.heat_client import HeatClient, StackRef

TEMPLATE = {
    "heat_template_version": "2018-08-31",
    "resources": {
        "rand": {"type": "OS::Heat::RandomString", "properties": {"length": 8}},
        "value": {"type": "OS::Heat::Value", "properties": {"value": {"get_resource": "rand"}}},
        "none": {"type": "OS::Heat::None"},
        "test": {"type": "OS::Heat::TestResource", "properties": {"value": "x"}},
        "group": {"type": "OS::Heat::ResourceGroup",
                  "properties": {"count": 2, "resource_def": {"type": "OS::Heat::None"}}},
        "config": {"type": "OS::Heat::SoftwareConfig", "properties": {"config": "echo hi"}},
        "handle": {"type": "OS::Heat::WaitConditionHandle"},
    },
}
DB_ERRORS = re.compile(r"DBError|OperationalError|database is locked|DBDeadlock|"
                       r"DBConnectionError|deadlock detected")


def _grenadier(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "grenadier", *args], capture_output=True,
                          text=True, check=False)


def _operation(client: HeatClient, name: str) -> str:
    try:
        ref: StackRef = client.create_stack(name, TEMPLATE)
        client.wait_for(ref, {"CREATE_COMPLETE"}, timeout=300)
        client.delete_stack(ref)
        client.wait_for(ref, {"DELETE_COMPLETE"}, timeout=300)
    except Exception as exc:  # the benchmark counts failures instead of stopping
        return f"{name}: {str(exc).splitlines()[0][:200]}"
    return ""


def _round(client: HeatClient, index: int, stacks: int, workers: int) -> list[str]:
    names = [f"bench-{index}-{i}" for i in range(stacks)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return [e for e in pool.map(lambda n: _operation(client, n), names) if e]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="postgresql", choices=("postgresql", "sqlite", "mariadb"))
    parser.add_argument("--release", default="27.0.1")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--stacks", type=int, default=8)
    parser.add_argument("--concurrent", action="store_true",
                        help="on SQLite, run concurrently anyway (to show why grenadier does not)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="grenadier-bench-"))
    started = _grenadier("run", "--base", args.release, "--target", args.release, "--db",
                         args.db, "--stop-after", "setup-base", "--keep-running",
                         "--no-builtin-suite", "--workdir", str(workdir))
    run_dir = next((workdir / "runs").iterdir())
    if started.returncode != 0:
        print(started.stderr[-2000:])
        return 2
    try:
        endpoint = json.loads((run_dir / "endpoint.json").read_text())
        serial = endpoint["serial"] and not args.concurrent
        workers = 1 if serial else args.stacks
        client = HeatClient(endpoint["url"], endpoint["project"], endpoint["user"])
        failures = 0
        for index in range(args.rounds):
            t0 = time.monotonic()
            errors = _round(client, index, args.stacks, workers)
            failures += len(errors)
            print(f"round {index + 1}/{args.rounds}: {args.stacks} stacks create+delete "
                  f"({'serial' if workers == 1 else 'concurrent'}) in "
                  f"{time.monotonic() - t0:.1f} s, {len(errors)} failed", flush=True)
            for error in errors[:3]:
                print(f"    {error}")
    finally:
        _grenadier("down", str(run_dir))
    log_text = "".join(p.read_text(errors="replace") for p in (run_dir / "logs").glob("heat-*"))
    db_errors = len(DB_ERRORS.findall(log_text))
    print(f"summary: db={args.db} rounds={args.rounds} stacks/round={args.stacks} "
          f"failed operations={failures} database errors in Heat's logs={db_errors} "
          f"(run dir {run_dir})")
    return 1 if failures or db_errors else 0


if __name__ == "__main__":
    raise SystemExit(main())

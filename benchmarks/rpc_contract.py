"""Time the rpc-contract check for a release pair: cold (both probes run) and warm (cached).

Usage: python benchmarks/rpc_contract.py BASE_VENV TARGET_VENV [--repeat N]

Cold deletes ``<venv>/grenadier-rpc-contract.json`` first, so that each release's own Python
runs ``checks/rpc/probe.py`` (the two side by side, as the check runs them); warm reads the
caches, as every later run with the same venvs does. Each figure is the whole check: both
contracts loaded, every message bound both ways, the objects compared. The bar: under 3 s
added to a warm run. The machine's load is printed beside the figures (2 cores, shared).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from grenadier.checks.rpc.checks import CACHE_FILE, load_contracts
from grenadier.checks.rpc.compare import contract_findings
from grenadier.releases.release import Release


def release_of(venv: Path) -> Release:
    dist = sorted(venv.glob("lib/python3*/site-packages/openstack_heat-*.dist-info"))
    if not dist:
        raise SystemExit(f"no openstack-heat installed in {venv}")
    version = dist[-1].name[len("openstack_heat-"):-len(".dist-info")]
    return Release(label=version, version=version, venv=venv, kind="pypi")


def check_once(base: Release, target: Release, cold: bool) -> tuple[float, int, int]:
    """Seconds for the whole check, messages bound, findings."""
    if cold:
        for release in (base, target):
            (release.venv / CACHE_FILE).unlink(missing_ok=True)
    started = time.perf_counter()
    old, new = load_contracts(base, target)
    findings = contract_findings(old, new)
    return time.perf_counter() - started, len(old.messages) + len(new.messages), len(findings)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("base", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    base, target = release_of(args.base.resolve()), release_of(args.target.resolve())
    print(f"rpc-contract {base.label} -> {target.label}; load average "
          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    for label, cold in (("cold (probes run)", True), ("warm (cached)", False)):
        runs = [check_once(base, target, cold) for _ in range(args.repeat)]
        seconds = [r[0] for r in runs]
        print(f"{label:<20} median {statistics.median(seconds):7.3f} s  "
              f"max {max(seconds):7.3f} s  ({args.repeat} runs; {runs[0][1]} messages, "
              f"{runs[0][2]} findings)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

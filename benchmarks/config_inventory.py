"""Time the option inventory (cold and warm) and the diff for a release pair.

Usage: python benchmarks/config_inventory.py BASE_VENV TARGET_VENV [--skip-cold]

Cold deletes ``<venv>/grenadier-options.json`` (and the resource-type cache) first, so the
release's own ``oslo-config-generator`` (and the resource probe) runs; warm reads the caches.
The issue's bar: inventory and diff of a pair under 15 s warm. Also times the whole Upgrade
Impact build and prints the findings by kind.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from grenadier.checks.config.diff import diff_findings, diff_inventories
from grenadier.checks.config.inventory import Inventory, cache_path, load_inventory
from grenadier.releases.release import Release
from grenadier.report.impact import RESOURCE_CACHE_FILE, build_impact

T = TypeVar("T")


def release_of(venv: Path) -> Release:
    dist = sorted(venv.glob("lib/python3*/site-packages/openstack_heat-*.dist-info"))
    if not dist:
        raise SystemExit(f"no openstack-heat installed in {venv}")
    version = dist[-1].name[len("openstack_heat-"):-len(".dist-info")]
    return Release(label=version, version=version, venv=venv, kind="pypi")


def timed(what: str, func: Callable[..., T], *args: object) -> T:
    started = time.perf_counter()
    result = func(*args)
    print(f"{what:<44} {time.perf_counter() - started:8.3f} s")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("base", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--skip-cold", action="store_true", help="keep existing caches")
    args = parser.parse_args()
    base, target = release_of(args.base.resolve()), release_of(args.target.resolve())

    inventories: dict[str, Inventory] = {}
    for release in (base, target):
        if not args.skip_cold:
            cache_path(release).unlink(missing_ok=True)
            (release.venv / RESOURCE_CACHE_FILE).unlink(missing_ok=True)
            timed(f"inventory {release.label} cold", load_inventory, release)
        inventories[release.label] = timed(f"inventory {release.label} warm", load_inventory,
                                           release)
    started = time.perf_counter()
    pair = [load_inventory(base), load_inventory(target)]
    diff = diff_inventories(*pair)
    findings = diff_findings(diff)
    print(f"{'inventory x2 + diff + findings (warm)':<44} "
          f"{time.perf_counter() - started:8.3f} s")
    timed("diff only", diff_inventories, *pair)
    timed("build_impact (cold: probes resource types)", build_impact, base, target)
    timed("build_impact (warm)", build_impact, base, target)

    for label, inv in inventories.items():
        print(f"{label}: {len(inv.heat())} Heat options "
              f"({sum(o.deprecated_for_removal for o in inv.heat())} deprecated for removal), "
              f"{len(inv.library())} library options")
    print(f"Heat changes {base.label} -> {target.label}: {diff.counts(heat=True)}")
    print(f"library changes: {diff.counts(heat=False)}")
    by = Counter(f"{f.severity} {f.kind}" for f in findings)
    print("findings: " + ", ".join(f"{k}={n}" for k, n in sorted(by.items())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

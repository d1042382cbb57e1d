"""Maintainers: refresh the shipped upper-constraints from their official published copies.

    python -m grenadier.releases.refresh                 # every shipped series
    python -m grenadier.releases.refresh 2026.2 --heat 27 --keystone 30   # add or replace one

Needs internet access to the published location (``series.json``'s ``published``). Each series
fetched replaces its file in ``src/grenadier/releases/constraints/`` and its entry in
``series.json``: a published copy is the branch's own file, so a development snapshot becomes
the stable file once the branch is cut. Commit the result; releases built with the new files
get new venvs (the constraints are part of the cache key).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from grenadier.errors import GrenadierError, UsageError
from grenadier.host import write_atomic

DATA = Path(__file__).with_name("constraints")
Fetch = Callable[[str], str]


def _fetch(url: str) -> str:
    response = httpx.get(url, timeout=60.0, follow_redirects=True)
    response.raise_for_status()
    return response.text


def refresh(names: Sequence[str], majors: dict[str, int], data: Path = DATA,
            fetch: Fetch = _fetch) -> list[str]:
    """Fetch ``names`` (all shipped series when empty) into ``data``; what was written."""
    index = json.loads((data / "series.json").read_text(encoding="utf-8"))
    shipped: dict[str, Any] = index["series"]
    if majors and len(names) != 1:
        raise UsageError("--heat/--keystone describe one series: name exactly one")
    written = []
    for name in names or sorted(shipped):
        text = fetch(index["published"].format(series=name))
        if "===" not in text:
            raise UsageError(f"{name}: the published copy holds no pins; is the series "
                             "released?")
        entry = {**shipped.get(name, {"name": name, "slurp": False, "majors": {}}),
                 "file": f"{name}.txt", "branch": f"stable/{name}", "commit": "",
                 "date": time.strftime("%Y-%m-%d"), "development": False}
        entry["majors"] = {**entry.get("majors", {}), **majors}
        old = shipped.get(name, {}).get("file")
        if old and old != entry["file"]:
            (data / old).unlink(missing_ok=True)
        write_atomic(data / entry["file"], text)
        shipped[name] = entry
        written.append(entry["file"])
    write_atomic(data / "series.json", json.dumps(index, indent=1) + "\n")
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grenadier.releases.refresh",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("series", nargs="*", help="series to fetch (default: all shipped)")
    parser.add_argument("--heat", type=int, help="Heat's major version in that series")
    parser.add_argument("--keystone", type=int, help="Keystone's major version in it")
    args = parser.parse_args(argv)
    majors = {k: v for k, v in (("openstack-heat", args.heat), ("keystone", args.keystone))
              if v is not None}
    try:
        for name in refresh(args.series, majors):
            print(f"wrote {DATA / name}")
    except (GrenadierError, httpx.HTTPError) as exc:
        print(f"refresh: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

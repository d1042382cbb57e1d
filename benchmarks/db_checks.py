"""Benchmark: migration time vs database-check time on a database of 1,000 stacks.

    .venv/bin/python benchmarks/db_checks.py [--stacks 1000] [--db postgresql sqlite mariadb]

A 25.0.2 database is filled by SQL (tests/helpers/crafted.py ``populate``: per stack a template,
credentials, 5 resources with properties and data, 10 events, 5 sync points, a tag, and a
snapshot every 10th stack), then migrated with 26.0.2 exactly as the upgrade step does:
captures, the target's db_sync, the post-migration checks. The goal (issue 4): the checks'
time stays below the migration's time plus 10 s.

Release venvs: $GRENADIER_TEST_RELEASES_25 / _26, else the release cache (installed if needed).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers.crafted import populate  # noqa: E402

from grenadier.checks.api import CheckContext  # noqa: E402
from grenadier.checks.db import DB_CHECKS  # noqa: E402
from grenadier.host import free_port  # noqa: E402
from grenadier.plugins.heat.project import HeatProject  # noqa: E402
from grenadier.project.api import Deployment  # noqa: E402
from grenadier.releases import ReleaseCache, parse_spec  # noqa: E402
from grenadier.releases.release import Release  # noqa: E402
from grenadier.services.api import Supervisor  # noqa: E402
from grenadier.services.db import Database  # noqa: E402
from grenadier.services.mariadb import MariaDB  # noqa: E402
from grenadier.services.postgres import EmbeddedPostgres  # noqa: E402
from grenadier.services.sqlite import SqliteDatabase  # noqa: E402
from grenadier.state import StateStore  # noqa: E402

BACKENDS = {"postgresql": EmbeddedPostgres, "sqlite": SqliteDatabase, "mariadb": MariaDB}


def release(major: int, version: str) -> Release:
    path = os.environ.get(f"GRENADIER_TEST_RELEASES_{major}")
    if path:
        return Release(version, version, Path(path), "pypi")
    return ReleaseCache().ensure(parse_spec(version))


def timed(seconds: dict[str, float], name: str, fn: object, *args: object) -> object:
    started = time.monotonic()
    result = fn(*args)  # type: ignore[operator]
    seconds[name] = round(time.monotonic() - started, 2)
    return result


def bench(kind: str, stacks: int, base: Release, target: Release) -> dict[str, object]:
    run_dir = Path(tempfile.mkdtemp(prefix=f"grenadier-bench-{kind}-"))
    run_dir.chmod(0o755)  # the PostgreSQL system user must reach its data directory
    seconds: dict[str, float] = {}
    try:
        with Supervisor() as supervisor:
            db: Database = BACKENDS[kind](run_dir)
            db.start(supervisor)
            project, deployment = HeatProject(), Deployment(run_dir, db, free_port())
            project.configure(base, deployment)
            project.db_sync(base, deployment).assert_success("base db_sync")
            counts = timed(seconds, "populate", populate, base.python, db.url(), stacks)
            ctx = CheckContext(run_dir, base, target, project, deployment,
                               StateStore(run_dir / "state.json"))
            for check in DB_CHECKS:
                if check.capture:
                    timed(seconds, f"capture {check.name}", check.capture, ctx)
            ctx.db_sync = project.db_sync(target, deployment)
            ctx.db_sync.assert_success("target db_sync")
            seconds["migration (db_sync)"] = round(ctx.db_sync.duration, 2)
            errors = []
            for check in DB_CHECKS:
                findings = timed(seconds, f"check {check.name}", check.run, ctx)
                errors += [f.what for f in findings if f.severity == "error"]  # type: ignore[attr-defined]
            sizes = {p.name: p.stat().st_size for p in (run_dir / "checks" / "db").glob("*.json")}
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    check_time = sum(v for k, v in seconds.items() if k.startswith(("capture", "check")))
    migration = seconds["migration (db_sync)"]
    return {"backend": kind, "stacks": stacks, "rows": json.loads(str(counts)),
            "seconds": seconds, "check_time": round(check_time, 2), "migration_time": migration,
            "goal_met": check_time < migration + 10, "errors": errors, "capture_bytes": sizes,
            "revisions": ctx.facts.get("revisions")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stacks", type=int, default=1000)
    parser.add_argument("--db", nargs="+", default=["postgresql"], choices=sorted(BACKENDS))
    args = parser.parse_args()
    base, target = release(25, "25.0.2"), release(26, "26.0.2")
    ok = True
    for kind in args.db:
        result = bench(kind, args.stacks, base, target)
        print(json.dumps(result, indent=1))
        print(f"{kind}: migration {result['migration_time']} s, checks {result['check_time']} s "
              f"(goal: checks < migration + 10 s: {'met' if result['goal_met'] else 'NOT met'})")
        ok = ok and bool(result["goal_met"]) and not result["errors"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

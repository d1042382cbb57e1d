"""A realistic Heat database at scale: real stacks through the base Heat, multiplied in SQL.

    .venv/bin/python benchmarks/make_heat_db.py --stacks 20000 [--real 300]
        [--db postgresql,mariadb] [--base 25.0.2] [--out DIR] [--workers 16] [--keep]

For each database kind, in a private server under a temporary directory:

1. the base release's Heat (grenadier's own configuration, launcher and db_sync) creates
   ``--real`` root stacks through its REST API (heat_db_stacks.py: flat stacks updated and
   checked, applications with nested stacks, ResourceGroups, SoftwareConfigs with
   SoftwareDeployments, signalled WaitConditions, a stack suspended, one CREATE_FAILED, one
   deleted with its events kept, snapshots), then stops;
2. every row is copied ``factor - 1`` times in SQL with fresh ids and consistent references
   (heat_db_sql.py), ``factor`` chosen so that the database holds about ``--stacks`` root
   stacks (the stacks a project lists: deleted and failed ones included, nested ones not;
   the report gives the rows of ``stack`` too); references with no row behind them are
   counted before and after (the copies must add none of their own);
3. ``pg_dump`` (plain SQL) or ``mariadb-dump`` writes ``DIR/heat-<kind>-<stacks>.sql`` and
   ``DIR/heat-<kind>-<stacks>.json`` holds the row count of every table, before and after the
   multiplication, with the time of each stage and the load averages.

Release venvs come from the release cache ($GRENADIER_CACHE; installed if missing). Every
process is stopped by the supervisor that started it; the server's data directory is removed
unless ``--keep``. Exit 0 when every stage worked and no reference was left dangling by the
copies.
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
from typing import Any

import heat_db_sql as hsql
import heat_db_stacks

from grenadier.execute import ExecuteRequest, run
from grenadier.host import free_port
from grenadier.plugins.heat.project import HeatProject
from grenadier.project.api import Deployment
from grenadier.releases import Release, ReleaseCache, parse_spec
from grenadier.services.api import Supervisor
from grenadier.services.db import Database
from grenadier.services.mariadb import MariaDB
from grenadier.services.postgres import ADMIN, EmbeddedPostgres

BACKENDS = {"postgresql": EmbeddedPostgres, "mariadb": MariaDB}
#: runs SQL for this script with a release's python (grenadier never imports SQLAlchemy)
EXECUTOR = r'''
import json, sys, time
import sqlalchemy as sa
request = json.load(sys.stdin)
engine = sa.create_engine(request["url"], poolclass=sa.pool.NullPool)
out = {"columns": {}, "values": {}, "seconds": []}
with engine.begin() as conn:
    if request.get("columns"):
        insp = sa.inspect(conn)
        out["columns"] = {t: [c["name"] for c in insp.get_columns(t)]
                          for t in insp.get_table_names()}
    for sql in request.get("statements", []):
        started = time.monotonic()
        conn.exec_driver_sql(sql)
        out["seconds"].append(round(time.monotonic() - started, 3))
    for name, sql in request.get("values", {}).items():
        out["values"][name] = conn.exec_driver_sql(sql).scalar()
engine.dispose()
print(json.dumps(out, default=str))
'''


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def sql(python: Path, url: str, *, statements: list[str] | None = None,
        values: dict[str, str] | None = None, columns: bool = False,
        timeout: float = 3600) -> dict[str, Any]:
    request = {"url": url, "statements": statements or [], "values": values or {},
               "columns": columns}
    outcome = run(ExecuteRequest([str(python), "-c", EXECUTOR], stdin=json.dumps(request),
                                 timeout=timeout, env={"PYTHONWARNINGS": "ignore"}))
    outcome.assert_success("SQL through the release's python")
    result: dict[str, Any] = json.loads(outcome.out)
    return result


def row_counts(python: Path, url: str) -> dict[str, int]:
    tables = sql(python, url, columns=True)["columns"]
    counted = sql(python, url, values={t: f"SELECT COUNT(*) FROM {t}" for t in sorted(tables)})
    return {t: int(n) for t, n in counted["values"].items()}


class Stages:
    """Each stage's wall time and the load averages around it."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.loads: dict[str, str] = {}

    def __call__(self, name: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        before = load()
        print(f"  {name} ... (load {before})", flush=True)
        started = time.monotonic()
        result = fn(*args, **kwargs)
        self.seconds[name] = round(time.monotonic() - started, 1)
        self.loads[name] = f"{before} -> {load()}"
        print(f"  {name}: {self.seconds[name]} s", flush=True)
        return result


def create_real(project: HeatProject, release: Release, deployment: Deployment,
                supervisor: Supervisor, roots: int, workers: int) -> dict[str, Any]:
    """The base Heat up, ``roots`` root stacks made through its API, the base Heat down."""
    specs = project.services(release, deployment, "base")
    for spec in specs:
        supervisor.start(spec)
    try:
        with project.client(deployment) as heat:
            done, errors = heat_db_stacks.create_stacks(heat, roots, workers)
    finally:
        supervisor.stop_many([spec.name for spec in specs])
    for line in errors[:10]:
        print(f"    ! {line}", flush=True)
    return {"operations": done, "errors": len(errors), "error_examples": errors[:10]}


def copier_url(db: Database) -> str:
    """Where the copies are inserted from: on PostgreSQL as the private server's superuser,
    since only a superuser may switch the foreign-key triggers off for a session
    (``session_replication_role``), and Heat's own role is not one; MariaDB lets Heat's user
    turn ``FOREIGN_KEY_CHECKS`` off for its session."""
    if isinstance(db, EmbeddedPostgres):
        return (f"postgresql+psycopg2://{ADMIN}:{db.creds.admin_password}@/{db.name}"
                f"?host={db.socket_dir}")
    return db.url()


def multiply(python: Path, db: Database, target_stacks: int) -> dict[str, Any]:
    """Copy every row so that the database holds about ``target_stacks`` root stacks."""
    dialect = hsql.Dialect("postgresql" if db.kind == "postgresql" else "mysql")
    url = copier_url(db)
    columns = sql(python, url, columns=True)["columns"]
    roots = "SELECT COUNT(*) FROM stack WHERE owner_id IS NULL"
    real = int(sql(python, url, values={"n": roots})["values"]["n"])
    factor = max(1, round(target_stacks / max(real, 1)))
    spans = {t: int(v) for t, v in sql(python, url, values=hsql.span_queries(
        dialect, list(columns)))["values"].items()}
    orphans = hsql.orphan_queries(dialect, list(columns))
    before = sql(python, url, values=orphans)["values"]
    done = sql(python, url, statements=hsql.multiply(dialect, columns, spans, factor))
    after = sql(python, url, values=orphans)["values"]
    skipped = sorted(set(columns) - set(hsql.COLUMNS))
    return {"factor": factor, "root_stacks_real": real, "spans": spans,
            "orphans_before": before, "orphans_after": after, "not_multiplied": skipped,
            "statement_seconds": sum(done["seconds"])}


def build(kind: str, release: Release, args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix=f"heatdb-{kind}-", dir=args.workdir))
    work.chmod(0o755)  # the PostgreSQL system user must reach its data directory
    stages = Stages()
    report: dict[str, Any] = {"kind": kind, "base": release.label, "real_roots": args.real,
                              "requested_stacks": args.stacks, "work": str(work)}
    try:
        with Supervisor(pid_file=work / "services.json") as supervisor:
            db = BACKENDS[kind](work)
            stages("start the database", db.start, supervisor)
            project = HeatProject()
            deployment = Deployment(work, db, free_port())
            project.configure(release, deployment)
            stages("db_sync", lambda: project.db_sync(release, deployment).assert_success(
                f"{release.label} db_sync"))
            report["real"] = stages("real stacks", create_real, project, release, deployment,
                                    supervisor, args.real, args.workers)
            report["counts_real"] = row_counts(release.python, db.url())
            report["multiply"] = stages("multiply", multiply, release.python, db,
                                        args.stacks)
            report["counts"] = stages("count rows", row_counts, release.python, db.url())
            dumped = stages("dump", db.snapshot, work / "dump", 3600)
            dest = args.out / f"heat-{kind}-{args.stacks}.sql"
            shutil.move(str(dumped), dest)
            report["dump"], report["dump_bytes"] = str(dest), dest.stat().st_size
    finally:
        report["seconds"], report["loads"] = stages.seconds, stages.loads
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return report


def consistent(report: dict[str, Any]) -> bool:
    """The copies added no dangling reference: each count is the original's times the factor."""
    m = report["multiply"]
    return all(int(m["orphans_after"][k]) == int(v) * m["factor"]
               for k, v in m["orphans_before"].items())


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--stacks", type=int, default=20000,
                        help="root stacks wanted (nested stacks come on top)")
    parser.add_argument("--real", type=int, default=300, help="root stacks made through Heat")
    parser.add_argument("--db", default="postgresql,mariadb")
    parser.add_argument("--base", default="25.0.2")
    parser.add_argument("--out", type=Path, default=Path("heat-db"))
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--workdir", default=None, help="parent of the servers' directories")
    parser.add_argument("--keep", action="store_true", help="keep the servers' directories")
    args = parser.parse_args()
    kinds = [k.strip() for k in args.db.split(",") if k.strip()]
    unknown = sorted(set(kinds) - set(BACKENDS))
    if unknown or args.stacks < 1 or args.real < 1:
        parser.error(f"--db among {', '.join(BACKENDS)}; --stacks and --real positive")
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # the release venvs keep their bytecode
    args.out.mkdir(parents=True, exist_ok=True)
    release = ReleaseCache().ensure(parse_spec(args.base))
    ok = True
    for kind in kinds:
        print(f"{time.strftime('%H:%M:%S')} {kind}: {args.real} real root stacks with "
              f"{release.label}, then about {args.stacks} root stacks (load {load()})", flush=True)
        report = build(kind, release, args)
        fine = consistent(report) and not report["real"]["errors"]
        ok = ok and fine
        path = args.out / f"heat-{kind}-{args.stacks}.json"
        path.write_text(json.dumps(report, indent=1), encoding="utf-8")
        counts = report["counts"]
        print(f"{kind}: factor {report['multiply']['factor']}, "
              f"{report['multiply']['root_stacks_real'] * report['multiply']['factor']} root "
              f"stacks ({counts.get('stack')} stack rows), "
              f"{counts.get('resource')} resources, {counts.get('event')} events, dump "
              f"{report['dump_bytes'] / 1e6:.0f} MB; references consistent: "
              f"{consistent(report)}; report {path}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

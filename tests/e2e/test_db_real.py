"""The database checks against real Heat releases on real PostgreSQL, SQLite and MariaDB.

Release venvs come from GRENADIER_TEST_RELEASES_25 / _26 (paths to venvs holding openstack-heat
25.0.2 and 26.0.2; tests/e2e/conftest.py sets them). Each case migrates a populated 25.0.2
database with a 26.0.2 target, as the upgrade step does: capture, target db_sync, checks. The
broken targets are patched copies of the real 26.0.2 source tree (tests/helpers/crafted.py).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from grenadier.checks.api import CheckContext
from grenadier.checks.db import DB_CHECKS, migration_failure
from grenadier.execute import ExecuteRequest, run
from grenadier.host import free_port
from grenadier.model.findings import Finding
from grenadier.releases.cache import tree_hash
from grenadier.releases.release import Release
from grenadier.services.api import Supervisor
from grenadier.services.db import Database
from grenadier.services.external import ExternalDatabase
from grenadier.services.mariadb import MariaDB
from grenadier.services.postgres import EmbeddedPostgres
from grenadier.services.sqlite import SqliteDatabase
from tests.e2e.conftest import release
from tests.helpers import crafted

pytestmark = pytest.mark.e2e

STACKS = 20
BACKENDS = ["postgresql", "sqlite", "mariadb"]
TIMINGS: dict[str, dict[str, float]] = {}


def make_db(kind: str, run_dir: Path) -> Database:
    if kind == "mariadb" and not shutil.which("mariadbd", path="/usr/sbin:/usr/bin"):
        pytest.skip("mariadb-server is not installed")
    return {"postgresql": EmbeddedPostgres, "sqlite": SqliteDatabase,
            "mariadb": MariaDB}[kind](run_dir)


@dataclass
class Upgrade:
    """One migrated database: findings by check, seconds per check, the context."""

    ctx: CheckContext
    findings: dict[str, list[Finding]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def errors(self, check: str) -> list[Finding]:
        return [f for f in self.findings.get(check, []) if f.severity == "error"]

    def all_errors(self) -> list[str]:
        return [line for fs in self.findings.values() for f in fs if f.severity == "error"
                for line in f.lines()]


def upgrade(run_dir: Path, db: Database, base: Release, target: Release,
            *tamper: str) -> Upgrade:
    """The upgrade step's database part: populate base, capture, target db_sync, checks;
    ``tamper``: SQL run on the migrated database before the checks (what a migration could
    have done behind its own back)."""
    project, deployment = crafted.heat_database(base, db, run_dir, STACKS)
    from grenadier.state import StateStore

    ctx = CheckContext(run_dir, base, target, project, deployment,
                       StateStore(run_dir / "state.json"))
    snapshot = db.snapshot(run_dir / "snapshot", 120)
    ctx.state.save("runner", "restore-command", db.restore_command(snapshot))
    result = Upgrade(ctx)
    for check in DB_CHECKS:
        if check.capture:
            started = time.monotonic()
            check.capture(ctx)
            result.seconds[f"{check.name} (capture)"] = time.monotonic() - started
    ctx.db_sync = project.db_sync(target, deployment)
    result.seconds["db_sync (migration)"] = ctx.db_sync.duration
    if not ctx.db_sync.ok:
        return result
    if tamper:
        crafted.execute(target.python, db.url(), *tamper)
    for check in DB_CHECKS:
        started = time.monotonic()
        result.findings[check.name] = check.run(ctx)
        result.seconds[check.name] = time.monotonic() - started
    return result


@pytest.fixture
def run_dir() -> Iterator[Path]:
    """A run directory the PostgreSQL system user can reach, outside pytest's own tmp root.

    pytest resets its tmp root to 0700 whenever a session starts (a concurrent one included),
    which cuts the server off its data directory; and execute.popen drops to that user
    without dropping root's group, so each parent must be group-traversable too.
    """
    path = Path(tempfile.mkdtemp(prefix="grenadier-dbtest-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def supervisor() -> Iterator[Supervisor]:
    with Supervisor() as sup:
        yield sup


@pytest.fixture(scope="module")
def base() -> Release:
    return release(25)


@pytest.fixture(scope="module")
def target() -> Release:
    return release(26)


@pytest.fixture(scope="module", autouse=True)
def print_timings() -> Iterator[None]:
    yield
    if TIMINGS:
        print("\nseconds per check (25.0.2 -> 26.0.2, populated DB):")
        print(json.dumps(TIMINGS, indent=1))


# --- the real 25.0.2 -> 26.0.2 upgrade --------------------------------------------------------
@pytest.mark.parametrize("kind", BACKENDS)
def test_clean_upgrade_is_green(kind: str, run_dir: Path, supervisor: Supervisor,
                                base: Release, target: Release) -> None:
    db = make_db(kind, run_dir)
    db.start(supervisor)
    result = upgrade(run_dir, db, base, target)
    TIMINGS[kind] = {k: round(v, 2) for k, v in result.seconds.items()}
    assert result.ctx.db_sync is not None
    assert result.ctx.db_sync.ok, result.ctx.db_sync.err
    assert result.all_errors() == []
    revisions = result.ctx.facts["revisions"]
    assert [(r["revision"], r["title"]) for r in revisions] == [  # type: ignore[union-attr]
        ("d2db381e3324", "Add extra_data column to sync_point table"),
        ("88be64598c0f", "Add resource_snapshot table"),
        ("97b2a986f922", "make snapshot state aware"),
    ]
    assert all(r["duration_s"] is not None for r in revisions)  # type: ignore[union-attr]
    print(f"\n{kind} revisions: {json.dumps(revisions)}")
    data = result.ctx.facts["data"]
    assert data["stack"]["before"] == data["stack"]["after"] == STACKS  # type: ignore[index]
    # 97b2a986f922 adds snapshot.action and fills it: a deliberate change, not a finding
    assert data["snapshot"]["changed"] == 0  # type: ignore[index]


@pytest.mark.parametrize("kind", BACKENDS)
def test_lost_changed_and_swapped_rows_are_counted_and_named(
        kind: str, run_dir: Path, supervisor: Supervisor, base: Release,
        target: Release) -> None:
    """data-preserved compares SQL aggregates per table; where they differ, the database
    joins the rows kept at capture to count and name the lost and changed ones. A swap of
    two rows' values keeps each column's set of values: it must show all the same."""
    db = make_db(kind, run_dir)
    db.start(supervisor)
    first, second = uuid.UUID(int=1).hex, uuid.UUID(int=2).hex  # populate's resource_data
    result = upgrade(
        run_dir, db, base, target,
        "DELETE FROM event WHERE id IN (3, 7)",
        "UPDATE resource SET name = 'renamed' WHERE id = 5",
        f"UPDATE resource_data SET value = CASE WHEN id = 1 THEN '{second}' ELSE '{first}' "
        "END WHERE id IN (1, 2)")
    errors = result.errors("data-preserved")
    assert sorted(f.what for f in errors) == [
        f"2 of {STACKS * crafted.EVENTS_PER_STACK} rows of table event lost",
        "values changed in 1 rows of table resource: name (1)",
        "values changed in 2 rows of table resource_data: value (2)"]
    found = {f.where: f.found for f in errors}
    assert "lost keys e.g. 3, 7" in found["table event"]
    assert found["table resource"] == "changed keys e.g. 5"
    assert found["table resource_data"] == "changed keys e.g. 1, 2"
    assert result.errors("schema-drift") == []
    # the rows kept for the comparison are gone again: nothing of grenadier's stays behind
    tables = crafted.table_names(target.python, db.url())
    assert "event" in tables
    assert [t for t in tables if t.startswith("grenadier")] == []
    print(f"\n{kind} tampered: " + " | ".join(line for f in errors for line in f.lines()))


@pytest.mark.parametrize("kind", ["postgresql", "mariadb"])
def test_external_url_to_a_running_server(kind: str, run_dir: Path, supervisor: Supervisor,
                                          base: Release, target: Release) -> None:
    """--db-url: a server grenadier did not start (here: a private one started beforehand)."""
    server = make_db(kind, run_dir / "server")
    server.start(supervisor)
    if isinstance(server, MariaDB):
        # the operator's server lets Heat's user create the comparison database (grenadier's
        # own private MariaDB grants it Heat's databases only)
        server._sql("".join(f"GRANT ALL PRIVILEGES ON *.* TO '{server.creds.user}'@'{host}';\n"
                            for host in ("127.0.0.1", "localhost")))
    db = ExternalDatabase(run_dir, server.url())
    db.start(supervisor)
    result = upgrade(run_dir, db, base, target)
    assert result.all_errors() == []
    assert next((run_dir / "snapshot").glob("heat.*")).stat().st_size > 0
    if kind == "mariadb":  # the password is never written into the restore command
        assert "MYSQL_PWD=<password> mariadb" in db.restore_command(run_dir / "x.sql")


def test_fingerprint_sees_writes_and_the_checks_do_not_write(
        run_dir: Path, supervisor: Supervisor, base: Release, target: Release) -> None:
    """The rehearsal's proof that a database was not written to rests on this checksum."""
    from grenadier.checks.db.probing import probe

    db = make_db("postgresql", run_dir)
    db.start(supervisor)
    result = upgrade(run_dir, db, base, target)
    ctx = result.ctx

    def fingerprint() -> str:
        return str(probe(ctx, target, "fingerprint", db.url())["sha256"])

    first = fingerprint()
    for check in DB_CHECKS:
        if check.capture:
            check.capture(ctx)
        check.run(ctx)  # captures and checks alike must only read
    assert fingerprint() == first, "a database check wrote to the database it checks"
    crafted.populate(target.python, db.url(), 1, start=STACKS)
    assert fingerprint() != first


def test_external_url_unreachable_is_one_line(run_dir: Path, supervisor: Supervisor) -> None:
    from grenadier.errors import EnvironmentProblem

    db = ExternalDatabase(run_dir, f"mysql://heat:pw@127.0.0.1:{free_port()}/heat")
    with pytest.raises(EnvironmentProblem) as info:
        db.start(supervisor)
    assert "not reachable" in info.value.one_line()
    assert "\n" not in info.value.one_line()


def test_mariadb_snapshot_restores(run_dir: Path, supervisor: Supervisor,
                                   base: Release) -> None:
    db = make_db("mariadb", run_dir)
    db.start(supervisor)
    crafted.heat_database(base, db, run_dir, 3)
    snapshot = db.snapshot(run_dir / "snapshot", 60)
    assert (run_dir / "db" / "mariadb.json").stat().st_mode & 0o077 == 0
    assert "CREATE TABLE `stack`" in snapshot.read_text()
    restore = run(ExecuteRequest(["bash", "-c", db.restore_command(snapshot)], timeout=120))
    assert restore.ok, restore.err
    assert db.url().startswith("mysql+pymysql://heat:")


# --- crafted broken targets --------------------------------------------------------------------
def crafted_target(name: str, patch: str, cache: Path, base26: Release) -> Release:
    """A patched copy of the real 26.0.2 source tree, installed once per tree content."""
    sdist = crafted.download_sdist(base26.python, "26.0.2", cache / "sdist")
    tree = crafted.unpack(sdist, cache / "trees" / name)
    getattr(crafted, patch)(tree)
    venv = cache / "venvs" / f"{name}-{tree_hash(tree)}"
    if not (venv / "bin" / "heat-manage").is_file():
        crafted.install_tree(tree, venv, "26.0.2")
    return Release(label=f"26.0.2+{name}", version="26.0.2", venv=venv, kind="tree",
                   source=str(tree))


@pytest.fixture(scope="module")
def crafted_cache(cache_dir: Path) -> Path:
    path = cache_dir / "crafted"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.mark.parametrize("kind", BACKENDS)
def test_migration_deleting_rows_fails_data_preserved(
        kind: str, run_dir: Path, supervisor: Supervisor, base: Release, target: Release,
        crafted_cache: Path) -> None:
    broken = crafted_target("delete-rows", "patch_delete_rows", crafted_cache, target)
    db = make_db(kind, run_dir)
    db.start(supervisor)
    result = upgrade(run_dir, db, base, broken)
    errors = result.errors("data-preserved")
    assert len(errors) == 1, result.all_errors()
    lost = STACKS * crafted.EVENTS_PER_STACK
    assert errors[0].what == f"{lost} of {lost} rows of table event lost"
    assert "0de1e7e5ba5e" in errors[0].remedy
    assert result.errors("schema-drift") == []
    assert result.errors("migration") == []
    print(f"\n{kind} delete-rows: " + " | ".join(errors[0].lines()))


@pytest.mark.parametrize("kind", ["postgresql", "sqlite"])
def test_model_column_without_migration_fails_schema_drift(
        kind: str, run_dir: Path, supervisor: Supervisor, base: Release, target: Release,
        crafted_cache: Path) -> None:
    broken = crafted_target("model-column", "patch_model_column", crafted_cache, target)
    db = make_db(kind, run_dir)
    db.start(supervisor)
    result = upgrade(run_dir, db, base, broken)
    errors = result.errors("schema-drift")
    assert [f.what for f in errors] == [
        "column stack.grenadier_drift of the models is missing from the database"]
    assert result.errors("data-preserved") == []
    print(f"\n{kind} model-column: " + " | ".join(errors[0].lines()))


@pytest.mark.parametrize("kind", ["postgresql", "mariadb"])
def test_raising_migration_reports_error_and_restore(
        kind: str, run_dir: Path, supervisor: Supervisor, base: Release, target: Release,
        crafted_cache: Path) -> None:
    broken = crafted_target("raising", "patch_raising_migration", crafted_cache, target)
    db = make_db(kind, run_dir)
    db.start(supervisor)
    result = upgrade(run_dir, db, base, broken)
    assert result.ctx.db_sync is not None
    assert not result.ctx.db_sync.ok
    finding = migration_failure(result.ctx)
    assert finding.severity == "error"
    assert "0badc0ffee00" in finding.what
    assert "Crafted raising migration" in finding.what
    assert "crafted migration failure" in finding.found
    assert "restore the pre-upgrade database with: " in finding.remedy
    assert str(run_dir / "snapshot") in finding.remedy
    print(f"\n{kind} raising: " + " | ".join(finding.lines()))

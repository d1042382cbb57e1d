"""``grenadier check db`` through the real CLI, on databases the test owns as an operator would.

The PostgreSQL source is a server the test starts itself (the embedded PostgreSQL binaries,
not grenadier's run), populated by a real ``grenadier run --base 25.0.2 --db-url ...
--stop-after pre-upgrade``: real Heat created the stacks. Its checksum (a ``pg_dump`` with a
fixed restrict key, and the relation files of Heat's tables after a checkpoint) must be the
same after the rehearsal. The SQLite source is a file, compared byte for byte.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from grenadier.errors import EnvironmentProblem
from grenadier.execute import ExecuteRequest, run
from grenadier.services.api import Supervisor
from grenadier.services.external import ExternalDatabase
from grenadier.services.mariadb import MariaDB, find_binary
from grenadier.services.postgres import EmbeddedPostgres
from grenadier.services.sqlite import SqliteDatabase
from tests.e2e.conftest import OLDEST, Run, grenadier, heat_processes, release, tree_copy
from tests.helpers import crafted

pytestmark = pytest.mark.e2e

TARGET = "26.0.2"
REVISIONS = [
    ("d2db381e3324", "Add extra_data column to sync_point table"),
    ("88be64598c0f", "Add resource_snapshot table"),
    ("97b2a986f922", "make snapshot state aware"),
]
#: the relations of Heat's tables (and their TOAST tables and indexes), as data file paths
RELATION_FILES = """
SELECT pg_relation_filepath(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' OR c.oid IN (SELECT reltoastrelid FROM pg_class t
  JOIN pg_namespace tn ON tn.oid = t.relnamespace WHERE tn.nspname = 'public')
ORDER BY 1
"""


@dataclass
class PgSource:
    """A PostgreSQL server the test owns, holding a populated 25.0.2 Heat database."""

    server: EmbeddedPostgres

    def url(self, database: str = "heat") -> str:
        password = self.server.creds.admin_password
        return f"postgresql://postgres:{password}@/{database}?host={self.server.socket_dir}"

    @property
    def env(self) -> dict[str, str]:
        return {"PGPASSWORD": self.server.creds.admin_password}

    def psql(self, sql: str, database: str = "heat") -> str:
        cmd = [str(self.server.bin / "psql"), "-h", str(self.server.socket_dir), "-U",
               "postgres", "-d", database, "-At", "-v", "ON_ERROR_STOP=1", "-c", sql]
        return run(ExecuteRequest(cmd, timeout=120, env=self.env)).assert_success(
            f"psql {sql[:40]}").out

    def databases(self) -> set[str]:
        return set(self.psql("SELECT datname FROM pg_database").split())

    def dump(self, dest: Path, *args: str) -> Path:
        cmd = [str(self.server.bin / "pg_dump"), "-h", str(self.server.socket_dir), "-U",
               "postgres", *args, "-f", str(dest), "heat"]
        run(ExecuteRequest(cmd, timeout=300, env=self.env)).assert_success("pg_dump of the source")
        return dest

    def checksum(self, scratch: Path) -> dict[str, str]:
        """sha256 of a plain dump (a fixed \\restrict key: pg_dump 18 draws a random one) and
        of every data file of Heat's relations, flushed by a checkpoint first."""
        dump = self.dump(scratch / "checksum.sql", "--restrict-key=grenadier")
        sums = {"dump": hashlib.sha256(dump.read_bytes()).hexdigest()}
        dump.unlink()
        self.psql("CHECKPOINT")
        files, count = hashlib.sha256(), 0
        for rel in self.psql(RELATION_FILES).split():
            for path in sorted(self.server.pgdata.glob(f"{rel}*")):
                # the main fork and its 1 GB segments (.1, .2 ...): the rows themselves
                if path.name == Path(rel).name or path.name.startswith(Path(rel).name + "."):
                    files.update(path.name.encode() + path.read_bytes())
                    count += 1
        assert count > 20, f"only {count} relation files found: the checksum would prove nothing"
        sums["files"] = files.hexdigest()
        return sums


@pytest.fixture(scope="module")
def pg_source(workdir: Path, cache_dir: Path) -> Iterator[PgSource]:
    path = Path(tempfile.mkdtemp(prefix="grenadier-source-"))
    path.chmod(0o755)
    try:
        with Supervisor() as supervisor:
            server = EmbeddedPostgres(path)
            server.start(supervisor)
            source = PgSource(server)
            made = grenadier("run", "--base", OLDEST, "--target", TARGET, "--db-url",
                             source.url(), "--stop-after", "pre-upgrade", workdir=workdir,
                             cache_dir=cache_dir)
            assert made.returncode == 0, made.err[-3000:]
            assert heat_processes(made.run_dir) == []
            # frozen and analysed now, so that no autovacuum rewrites a page during the test
            source.psql("VACUUM (FREEZE, ANALYZE)")
            yield source
    finally:
        shutil.rmtree(path, ignore_errors=True)


def check_db(workdir: Path, cache_dir: Path, *args: str) -> Run:
    return grenadier("check", "db", *args, "--workdir", str(workdir), workdir=workdir,
                     cache_dir=cache_dir)


def assert_clean(result: Run) -> None:
    assert result.returncode == 0, result.err[-3000:]
    assert result.report["verdict"] == "the copy upgraded cleanly"
    assert result.status() == {"copy": "passed", "install": "passed", "upgrade": "passed"}
    facts = result.report["facts"]
    revisions = [(r["revision"], r["title"]) for r in facts["revisions"]]  # type: ignore[index]
    assert revisions == REVISIONS
    assert facts["source"]["versions"] == ["c6214ca60943"]  # type: ignore[index]
    for revision, title in REVISIONS:
        assert f"applied {revision} ({title})" in result.err
    assert heat_processes(result.run_dir) == []


def test_db_url_rehearsal_leaves_the_source_identical(
        pg_source: PgSource, workdir: Path, cache_dir: Path, tmp_path: Path) -> None:
    before = pg_source.checksum(tmp_path)
    stacks = int(pg_source.psql("SELECT count(*) FROM stack"))
    assert stacks > 0
    result = check_db(workdir, cache_dir, "--db-url", pg_source.url(), "--target", TARGET)
    assert_clean(result)
    data = result.report["facts"]["data"]  # type: ignore[index]
    assert data["stack"]["before"] == data["stack"]["after"] == stacks  # type: ignore[index]
    assert (result.run_dir / "report.html").is_file()
    assert pg_source.checksum(tmp_path) == before
    assert pg_source.psql("SELECT version_num FROM alembic_version").split() == ["c6214ca60943"]
    assert pg_source.databases() == {"postgres", "heat", "template0", "template1"}


def test_db_dump_rehearsal(pg_source: PgSource, workdir: Path, cache_dir: Path,
                           tmp_path: Path) -> None:
    dump = pg_source.dump(tmp_path / "heat.dump", "-Fc")  # pg_restore's custom format
    digest = hashlib.sha256(dump.read_bytes()).hexdigest()
    result = check_db(workdir, cache_dir, "--db-dump", str(dump), "--target", TARGET)
    assert_clean(result)
    assert hashlib.sha256(dump.read_bytes()).hexdigest() == digest


def test_sqlite_url_rehearsal_leaves_the_file_byte_identical(
        workdir: Path, cache_dir: Path, tmp_path: Path) -> None:
    base = release(25)
    owner = tmp_path / "owner"
    db = SqliteDatabase(owner)
    db.start(None)  # type: ignore[arg-type]
    crafted.heat_database(base, db, owner, 20)
    source = Path(db.url().removeprefix("sqlite:///"))
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    beside = sorted(source.parent.iterdir())
    result = check_db(workdir, cache_dir, "--db-url", f"sqlite:///{source}", "--target", TARGET)
    assert_clean(result)
    assert hashlib.sha256(source.read_bytes()).hexdigest() == digest
    assert sorted(source.parent.iterdir()) == beside  # no journal or copy left beside it


def test_mysql_url_rehearsal_leaves_the_source_identical(
        workdir: Path, cache_dir: Path, tmp_path: Path) -> None:
    if not shutil.which("mariadbd", path="/usr/sbin:/usr/bin"):
        pytest.skip("mariadb-server is not installed")
    base = release(25)
    # not under pytest's tmp root: a pytest session starting meanwhile makes it 0700, which
    # would cut the server (its own user) off its data
    owner = Path(tempfile.mkdtemp(prefix="grenadier-mysql-source-"))
    with contextlib.ExitStack() as cleanup, Supervisor() as supervisor:
        cleanup.callback(shutil.rmtree, owner, ignore_errors=True)
        server = MariaDB(owner)
        server.start(supervisor)
        _grant_all(server)
        crafted.heat_database(base, server, owner, 20)

        def checksum() -> str:
            cmd = [str(find_binary("mariadb-dump")), "--no-defaults", f"--socket={server.socket}",
                   f"--user={server.admin}", "--skip-dump-date", "--single-transaction",
                   "--no-tablespaces", "--databases", "heat"]
            out = run(ExecuteRequest(cmd, timeout=120)).assert_success("mariadb-dump").out
            return hashlib.sha256(out.encode()).hexdigest()

        before = checksum()
        result = check_db(workdir, cache_dir, "--db-url", server.url(), "--target", TARGET)
        assert_clean(result)
        assert checksum() == before
        assert "heat_fresh" not in server._databases()
        _assert_source_sessions_refuse_writes(server.url(), tmp_path, "READ ONLY transaction")
        assert "scratch" not in server._databases()


def _grant_all(server: MariaDB) -> None:
    """The operator's server of these tests lets Heat's user create databases (grenadier's own
    private MariaDB grants it Heat's databases only)."""
    server._sql("".join(f"GRANT ALL PRIVILEGES ON *.* TO '{server.creds.user}'@'{host}';\n"
                        for host in ("127.0.0.1", "localhost")))


def _assert_source_sessions_refuse_writes(url: str, tmp_path: Path, refusal: str) -> None:
    """grenadier's own client sessions on a ``check db`` source cannot write, even by mistake
    (here a database created and dropped); the same call on a run's database can."""
    source = ExternalDatabase(tmp_path / "ro", url, read_only=True)
    with pytest.raises(EnvironmentProblem, match=refusal):
        source.create_database("scratch")
    run_db = ExternalDatabase(tmp_path / "rw", url)
    run_db.create_database("scratch")
    run_db.drop_database("scratch")


def test_the_source_server_sessions_refuse_writes(pg_source: PgSource, tmp_path: Path) -> None:
    _assert_source_sessions_refuse_writes(pg_source.url(), tmp_path, "read-only transaction")
    assert pg_source.databases() == {"postgres", "heat", "template0", "template1"}


@pytest.fixture(scope="module")
def delete_rows_tree(sdist_26: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = tree_copy(sdist_26, tmp_path_factory.mktemp("delete-rows"))
    crafted.patch_delete_rows(tree, table="event")
    return tree


def test_a_migration_deleting_rows_fails_data_preserved(
        pg_source: PgSource, delete_rows_tree: Path, workdir: Path, cache_dir: Path,
        tmp_path: Path) -> None:
    before = pg_source.checksum(tmp_path)
    events = int(pg_source.psql("SELECT count(*) FROM event"))
    assert events > 0
    result = check_db(workdir, cache_dir, "--db-url", pg_source.url(), "--target",
                      str(delete_rows_tree))
    assert result.returncode == 1, result.err[-3000:]
    assert result.status()["upgrade"] == "failed"
    lost = [f for f in result.steps()["upgrade"]["findings"]  # type: ignore[union-attr]
            if f["check"] == "data-preserved" and f["severity"] == "error"]
    assert [f["what"] for f in lost] == [f"{events} of {events} rows of table event lost"]
    assert f"{events} of {events} rows of table event lost" in result.err
    assert pg_source.checksum(tmp_path) == before


def test_db_url_run_drops_its_fresh_database(pg_source: PgSource, workdir: Path,
                                             cache_dir: Path) -> None:
    """schema-drift's fresh database is not left on a server given with --db-url."""
    pg_source.psql('CREATE DATABASE "heat_run"', database="postgres")
    try:
        result = grenadier("run", "--base", OLDEST, "--target", TARGET, "--db-url",
                           pg_source.url("heat_run"), "--stop-after", "upgrade",
                           workdir=workdir, cache_dir=cache_dir)
        assert result.returncode == 0, result.err[-3000:]
        assert result.status()["upgrade"] == "passed"
        assert "check schema-drift: ok" in " ".join(
            result.steps()["upgrade"]["messages"])  # type: ignore[arg-type]
        assert "heat_fresh" not in pg_source.databases()
    finally:  # the module's other tests expect the server's databases as they left them
        pg_source.psql('DROP DATABASE IF EXISTS "heat_run" WITH (FORCE)', database="postgres")

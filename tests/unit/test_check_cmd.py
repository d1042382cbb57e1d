"""``grenadier check db`` without Heat: bad input in one line, source kinds, the copy helpers.

The real rehearsal (a populated 25.0.2 database migrated to 26.0.2 on a private copy, the
source left identical) is tests/e2e/test_check_db.py.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from grenadier.checks.api import CheckContext
from grenadier.errors import ExitCode, UsageError
from grenadier.execute import ExecuteRequest, Outcome
from grenadier.host import free_port
from grenadier.project.api import Deployment
from grenadier.releases.release import Release
from grenadier.runner.rehearsal import Rehearsal, RehearsalOptions, prepare, source_revision
from grenadier.services import dbcopy
from grenadier.services.dbcopy import Source, dump_kind, sqlite_path
from grenadier.services.external import MYSQL_READ_ONLY, ExternalDatabase
from grenadier.services.mariadb import dump_database
from grenadier.services.postgres import dump_roles
from grenadier.services.sqlite import SqliteDatabase
from grenadier.state import StateStore
from tests.conftest import CliRunner, one_error_line, run_dirs

PG_PLAIN = "--\n-- PostgreSQL database dump\n--\n\nSET statement_timeout = 0;\n"
MYSQL = "-- MariaDB dump 10.19  Distrib 10.11.6-MariaDB\n--\n-- Host: localhost\n"



def _check(cli: CliRunner, tmp_path: Path, *args: str) -> Any:
    return cli("check", "db", *args, "--workdir", str(tmp_path / "w"))


# --- bad input: one line, exit 2 (or 3 for an unreachable server), no run directory ----------
@pytest.mark.parametrize(("args", "message"), [
    ((), "check db needs a source: --db-url, --db-url-file or --db-dump (or set "
         "GRENADIER_DB_URL)"),
    (("--db-url", "postgresql://h/heat", "--db-dump", "x.sql"),
     "argument --db-dump: not allowed with argument --db-url"),
    (("--db-url-file", "url.txt", "--db-url", "postgresql://h/heat"),
     "argument --db-url: not allowed with argument --db-url-file"),
])
def test_exactly_one_source(cli: CliRunner, tmp_path: Path, args: tuple[str, ...],
                            message: str) -> None:
    result = _check(cli, tmp_path, *args)
    assert result.returncode == 2
    assert message in one_error_line(result)


def test_check_needs_what_to_check(cli: CliRunner, tmp_path: Path) -> None:
    result = cli("check")
    assert result.returncode == 2
    assert "required" in one_error_line(result)


def test_missing_dump(cli: CliRunner, tmp_path: Path) -> None:
    result = _check(cli, tmp_path, "--db-dump", str(tmp_path / "nope.sql"))
    assert result.returncode == 2
    assert "nope.sql does not exist" in one_error_line(result)
    assert run_dirs(tmp_path / "w") == []


@pytest.mark.parametrize(("content", "message"), [
    (b"hello, not a dump\n", "is not a PostgreSQL, MySQL/MariaDB or SQLite dump"),
    (b"\x1f\x8b\x08\x00gzipped", "is compressed"),
])
def test_a_file_that_is_not_a_dump(cli: CliRunner, tmp_path: Path, content: bytes,
                                   message: str) -> None:
    dump = tmp_path / "dump"
    dump.write_bytes(content)
    result = _check(cli, tmp_path, "--db-dump", str(dump))
    assert result.returncode == 2
    assert message in one_error_line(result)
    assert run_dirs(tmp_path / "w") == []


@pytest.mark.parametrize(("args", "message"), [
    (("--target", "newest"), "cannot understand release"),
    (("--checks", "no-such-check"), "unknown check(s): no-such-check"),
    # a check of the full run, not of the database: not selectable here
    (("--skip-checks", "config-removed"), "unknown check(s): config-removed"),
])
def test_bad_spec_or_check(cli: CliRunner, tmp_path: Path, args: tuple[str, ...],
                           message: str) -> None:
    dump = tmp_path / "heat.sql"
    dump.write_text(PG_PLAIN)
    result = _check(cli, tmp_path, "--db-dump", str(dump), *args)
    assert result.returncode == 2
    assert message in one_error_line(result)
    assert run_dirs(tmp_path / "w") == []


@pytest.mark.parametrize(("url", "message"), [
    ("oracle://u@db/heat", "must be a postgresql:// or mysql:// URL"),
    ("mysql:///heat", "names no host"),
    ("sqlite:////no/such/heat.sqlite", "no SQLite file at /no/such/heat.sqlite"),
])
def test_bad_urls(cli: CliRunner, tmp_path: Path, url: str, message: str) -> None:
    result = _check(cli, tmp_path, "--db-url", url)
    assert result.returncode == 2
    assert message in one_error_line(result)


@pytest.mark.parametrize("url", ["postgresql://heat:s3cr/et@db/heat",
                                 "mysql://heat:s3cr#et@db/heat", "postgresql://heat:s3cr?et@db/h"])
def test_a_password_urllib_cannot_parse_is_never_shown(cli: CliRunner, tmp_path: Path,
                                                       url: str) -> None:
    for args in (("check", "db", "--db-url", url), ("run", "--db-url", url)):
        result = cli(*args, "--workdir", str(tmp_path / "w"))
        assert result.returncode == 2
        assert "no valid port" in one_error_line(result)
        assert "s3cr" not in result.err + result.out


def test_a_db_url_file_that_cannot_be_read_is_bad_input(cli: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "empty").write_text("\n")
    for command in (("check", "db"), ("run",)):
        for name, says in (("missing", "No such file or directory"), ("empty", "holds no URL")):
            result = cli(*command, "--db-url-file", str(tmp_path / name),
                         "--workdir", str(tmp_path / "w"))
            assert result.returncode == 2
            assert says in one_error_line(result)
    assert run_dirs(tmp_path / "w") == []


def test_socket_urls_are_accepted() -> None:
    assert ExternalDatabase(Path("/r"), "postgresql://heat@/heat").name == "heat"
    db = ExternalDatabase(Path("/r"), "mysql://heat@/heat?unix_socket=/run/mysqld/mysqld.sock")
    assert db._unix_socket() == Path("/run/mysqld/mysqld.sock")


def test_the_source_server_is_read_in_read_only_sessions() -> None:
    source = ExternalDatabase(Path("/r"), "postgresql://heat:pw@db/heat", read_only=True)
    assert source._env() == {"PGOPTIONS": "-c default_transaction_read_only=on",
                             "PGPASSWORD": "pw"}
    assert "PGOPTIONS" not in ExternalDatabase(Path("/r"), "postgresql://heat:pw@db/heat")._env()
    # mariadb sessions too (shown to refuse a write in tests/e2e/test_check_db.py)
    calls: list[list[str]] = []
    for read_only in (True, False):
        db = ExternalDatabase(Path("/r"), "mysql://heat:pw@db/heat", read_only=read_only)
        db._client = lambda *_: Path("/usr/bin/mariadb")  # type: ignore[method-assign]
        db._run = lambda cmd, *_: calls.append(cmd) or ""  # type: ignore[method-assign]
        db._query("SELECT 1", "heat", "probe")
    assert [f"--init-command={MYSQL_READ_ONLY}" in cmd for cmd in calls] == [True, False]


@pytest.mark.parametrize("given", ["--db-url", "--db-url-file", "GRENADIER_DB_URL"])
def test_unreachable_server_is_an_environment_problem(cli: CliRunner, tmp_path: Path,
                                                      given: str) -> None:
    """Whichever way the URL comes (the file and the environment keep the password off the
    command line, where other local users would see it), the same source is read."""
    # the source is read before the target is installed: no release needed to fail here
    url = f"postgresql://heat:secret@127.0.0.1:{free_port()}/heat"
    (tmp_path / "url.txt").write_text(f"\n{url}\n")
    args = {"--db-url": ("--db-url", url),
            "--db-url-file": ("--db-url-file", str(tmp_path / "url.txt")),
            "GRENADIER_DB_URL": ()}[given]
    env = {**os.environ, "GRENADIER_DB_URL": url} if given == "GRENADIER_DB_URL" else None
    result = cli("check", "db", *args, "--target", "26.0.2", "--workdir",
                 str(tmp_path / "w"), env=env)
    assert result.returncode == 3
    line = one_error_line(result)
    assert "is not reachable" in line
    assert "secret" not in result.err
    (run_dir,) = run_dirs(tmp_path / "w")
    report = (run_dir / "report.json").read_text()
    assert '"exit_code": 3' in report
    assert "secret" not in report


# --- source kinds --------------------------------------------------------------------------
def _sqlite_file(path: Path, rows: int = 3) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE stack (id INTEGER PRIMARY KEY, name TEXT)")
    conn.executemany("INSERT INTO stack (name) VALUES (?)", [(f"s{n}",) for n in range(rows)])
    conn.commit()
    conn.close()
    return path


@pytest.mark.parametrize(("content", "kind"), [
    (PG_PLAIN.encode(), dbcopy.PG_SQL),
    (b"PGDMP\x01\x10\x00", dbcopy.PG_ARCHIVE),
    (MYSQL.encode(), dbcopy.MYSQL),
    (b"-- MySQL dump 10.13  Distrib 8.0.36\n", dbcopy.MYSQL),
])
def test_dump_kinds(tmp_path: Path, content: bytes, kind: str) -> None:
    path = tmp_path / "dump"
    path.write_bytes(content)
    assert dump_kind(path) == kind


def test_sqlite_file_and_pg_directory_dumps(tmp_path: Path) -> None:
    assert dump_kind(_sqlite_file(tmp_path / "heat.sqlite")) == dbcopy.SQLITE
    (tmp_path / "dir").mkdir()
    with pytest.raises(UsageError):
        dump_kind(tmp_path / "dir")
    (tmp_path / "dir" / "toc.dat").write_bytes(b"PGDMP")
    assert dump_kind(tmp_path / "dir") == dbcopy.PG_ARCHIVE


def test_url_kinds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = _sqlite_file(tmp_path / "heat.sqlite")
    monkeypatch.chdir(tmp_path)
    assert sqlite_path(f"sqlite:///{db}") == db  # four slashes: an absolute path
    assert sqlite_path("sqlite:///heat.sqlite") == Path("heat.sqlite")  # relative
    assert sqlite_path("postgresql://h/heat") is None
    assert Source(url=f"sqlite:///{db}").kind == dbcopy.SQLITE
    assert Source(url="postgresql+psycopg2://u:p@h:5433/heat").kind == dbcopy.PG_SQL
    assert Source(url="mysql+pymysql://u:p@h/heat").kind == dbcopy.MYSQL


def test_options_mask_the_password(tmp_path: Path) -> None:
    options = RehearsalOptions("26.0.2", Source(url="postgresql://heat:s3cret@h/heat"), tmp_path)
    assert options.shown()["db_url"] == "postgresql://heat:***@h/heat"
    assert [c.name for c in prepare(options)[1]] == [
        "migration", "schema-drift", "data-preserved", "upgrade-status"]
    only = RehearsalOptions("26.0.2", options.source, tmp_path, checks=("migration",))
    assert [c.name for c in prepare(only)[1]] == ["migration"]


# --- the copy ------------------------------------------------------------------------------
def test_sqlite_copy_leaves_the_source_byte_identical(tmp_path: Path) -> None:
    source = _sqlite_file(tmp_path / "source.sqlite", rows=50)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    source.chmod(0o444)  # only read: a write would fail (for a non-root user)
    db = SqliteDatabase(tmp_path / "run")
    db.start(None)  # type: ignore[arg-type]
    dbcopy.load(db, dbcopy.SQLITE, source, 10)
    conn = sqlite3.connect(db.url().removeprefix("sqlite:///"))
    assert conn.execute("SELECT count(*) FROM stack").fetchone() == (50,)
    conn.execute("DELETE FROM stack")  # the copy is ours to change
    conn.commit()
    conn.close()
    assert hashlib.sha256(source.read_bytes()).hexdigest() == digest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "source.sqlite"]


def test_a_wal_mode_source_gets_nothing_written_beside_it(tmp_path: Path) -> None:
    source = _sqlite_file(tmp_path / "source.sqlite", rows=5)
    conn = sqlite3.connect(source)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()  # the last connection checkpoints and removes -wal and -shm
    assert sorted(p.name for p in tmp_path.iterdir()) == ["source.sqlite"]
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    db = SqliteDatabase(tmp_path / "run")
    db.start(None)  # type: ignore[arg-type]
    dbcopy.load(db, dbcopy.SQLITE, source, 10)
    # mode=ro alone leaves source.sqlite-wal and source.sqlite-shm here
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "source.sqlite"]
    assert hashlib.sha256(source.read_bytes()).hexdigest() == digest
    copy = Path(db.url().removeprefix("sqlite:///"))
    assert sqlite3.connect(copy).execute("SELECT count(*) FROM stack").fetchone() == (5,)
    # the copy holds the user's data: owner-only
    assert (copy.stat().st_mode & 0o777, copy.parent.stat().st_mode & 0o777) == (0o600, 0o700)


def test_a_file_that_only_looks_like_sqlite_is_bad_input(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"SQLite format 3\x00" + b"\xff" * 200)
    db = SqliteDatabase(tmp_path / "run")
    db.start(None)  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        dbcopy.load(db, dbcopy.SQLITE, bad, 10)


def test_plain_pg_dump_roles(tmp_path: Path) -> None:
    dump = tmp_path / "heat.sql"
    dump.write_text(PG_PLAIN + "ALTER TABLE public.stack OWNER TO heat;\n"
                    'ALTER SEQUENCE public.event_id_seq OWNER TO "heat-admin";\n'
                    "GRANT ALL ON SCHEMA public TO reader;\n"
                    "REVOKE USAGE ON SCHEMA public FROM PUBLIC;\n"
                    "ALTER TABLE public.x OWNER TO postgres;\n"
                    "INSERT INTO event VALUES ('OWNER TO nobody;');\n"
                    "GRANT pg_read_all_data TO monitor;\n"
                    "GRANT SELECT ON TABLE public.stack TO pg_monitor;\n"
                    "GRANT SELECT ON TABLE public.stack TO auditor WITH GRANT OPTION;\n"
                    "ALTER DEFAULT PRIVILEGES FOR ROLE owner2 IN SCHEMA public GRANT SELECT "
                    "ON TABLES TO reader;\n")
    # built-in pg_* roles exist on every server and their names are reserved
    assert dump_roles(dump) == ["auditor", "heat", "heat-admin", "monitor", "owner2", "reader"]


def test_mysql_dump_database(tmp_path: Path) -> None:
    dump = tmp_path / "heat.sql"
    dump.write_text(MYSQL + "CREATE TABLE `stack` (id int);\n")
    assert dump_database(dump) is None
    dump.write_text(MYSQL + "CREATE DATABASE /*!32312 IF NOT EXISTS*/ `heat_prod`;\n"
                    "USE `heat_prod`;\n")
    assert dump_database(dump) == "heat_prod"


# --- the copy's revision -------------------------------------------------------------------
REVISIONS = [
    {"revision": "c6214ca60943", "down_revision": None, "title": "Initial revision"},
    {"revision": "d2db381e3324", "down_revision": "c6214ca60943", "title": "Add extra_data"},
    {"revision": "97b2a986f922", "down_revision": "d2db381e3324", "title": "state aware"},
]


def _probed(versions: list[str], legacy: bool = False) -> dict[str, Any]:
    return {"current": {"versions": versions, "legacy": legacy},
            "heads": {"heads": ["97b2a986f922"], "revisions": REVISIONS}}


def test_source_revision_counts_what_the_target_applies() -> None:
    facts, line = source_revision(_probed(["c6214ca60943"]), "26.0.2")
    assert facts["pending"] == ["d2db381e3324", "97b2a986f922"]
    assert line == "the copy is at c6214ca60943 ('Initial revision'); 26.0.2 applies 2 revision(s)"
    facts, _ = source_revision(_probed(["97b2a986f922"]), "27.0.1")
    assert facts["pending"] == []


@pytest.mark.parametrize(("versions", "message"), [
    ([], "no alembic version"),
    (["ffffffffffff"], "at revision ffffffffffff, which 26.0.2 does not know"),
])
def test_source_revision_refuses_what_the_target_cannot_migrate(versions: list[str],
                                                                message: str) -> None:
    with pytest.raises(UsageError) as info:
        source_revision(_probed(versions), "26.0.2")
    assert message in info.value.one_line()


def test_external_drop_refuses_the_users_database(tmp_path: Path) -> None:
    db = ExternalDatabase(tmp_path, "postgresql://u@db/heat")
    with pytest.raises(UsageError):
        db.drop_database("heat")


# --- the rehearsal's upgrade step, with a fake Heat project ---------------------------------
class _FailingProject:
    """db_sync fails the way alembic does when a migration raises."""

    def db_sync(self, release: Release, deployment: Deployment) -> Outcome:
        err = ("2026-11-26 10:00:00.123 1 INFO alembic.runtime.migration [-] Running upgrade "
               "c6214ca60943 -> deadbeef0001, "
               "crafted\nERROR: boom: the crafted migration raised\n")
        return Outcome(ExecuteRequest(["heat-manage", "db_sync"], log=Path("/r/db.log")), 1,
                       "", err, 0.0, 1.5)


class _Reporter:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def step_started(self, name: str) -> None:
        self.lines.append(f">> {name}")

    def step_finished(self, result: Any) -> None:
        self.lines.append(f"<< {result.name} {result.status.value}")

    def say(self, message: str) -> None:
        self.lines.append(message)


def test_a_migration_that_raises_fails_the_rehearsal_naming_the_revision(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    options = RehearsalOptions("26.0.2", Source(dump=_sqlite_file(tmp_path / "s.sqlite", 3)),
                               tmp_path / "w")
    rehearsal = Rehearsal(options, tmp_path / "run", _Reporter())
    target = Release("26.0.2", "26.0.2", tmp_path / "venv", "pypi")
    rehearsal.target = target
    rehearsal.checks = []  # their captures need a real release; the failure comes before them
    cctx = CheckContext(tmp_path / "run", target, target, _FailingProject(),  # type: ignore[arg-type]
                        Deployment(tmp_path / "run", rehearsal.db, 1),
                        StateStore(tmp_path / "run" / "state.json"))
    monkeypatch.setattr(rehearsal, "_context", lambda: cctx)
    monkeypatch.setattr(rehearsal, "_detect", lambda cctx, result: None)
    result = rehearsal._step("upgrade", rehearsal._upgrade)
    assert rehearsal.exit_code() == ExitCode.UPGRADE_FAILED, result.messages
    (finding,) = result.failed_findings
    assert finding.check == "migration"
    assert "in revision c6214ca60943 -> deadbeef0001 (crafted)" in finding.what
    assert "boom: the crafted migration raised" in finding.found
    assert "the source database was only read" in finding.remedy


def test_a_missing_mariadb_is_said_before_the_source_is_dumped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from grenadier.errors import EnvironmentProblem
    from grenadier.services import mariadb

    monkeypatch.setattr(mariadb, "SBIN_DIRS", ())
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EnvironmentProblem, match="MariaDB binary mariadbd not found"):
        dbcopy.private_database(dbcopy.MYSQL, tmp_path / "run")

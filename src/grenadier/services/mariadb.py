"""A private MariaDB from Debian's ``mariadb-server``: data, socket and credentials in the run.

The packaged system service is never touched (it is often blocked from starting in
containers): grenadier initialises its own data directory with ``mariadb-install-db`` and runs
``mariadbd --no-defaults`` under the supervisor, on a loopback port of its own.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import os
import secrets
import shutil
import socket
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from grenadier.errors import EnvironmentProblem
from grenadier.execute import ExecuteRequest, run
from grenadier.host import free_port, require_port_free, write_private
from grenadier.services.api import ServiceSpec, Supervisor
from grenadier.services.db import Database

BINARIES = ("mariadbd", "mariadb-install-db", "mariadb", "mariadb-dump")
#: where Debian puts the server binary (not on a normal user's PATH)
SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")
#: unix socket paths are limited to about 107 bytes
MAX_SOCKET_PATH = 100
CREDENTIALS = "mariadb.json"
USER = "heat"


def find_binary(name: str) -> Path:
    """``name`` from PATH or the sbin directories; one clear line when the package is missing."""
    path = os.environ.get("PATH", "") + os.pathsep + os.pathsep.join(SBIN_DIRS)
    found = shutil.which(name, path=path)
    if found is None:
        raise EnvironmentProblem(
            f"MariaDB binary {name} not found",
            hint="install mariadb-server (apt-get install mariadb-server), or use --db postgresql",
        )
    return Path(found)


def dump_database(dump: Path) -> str | None:
    """The database a dump made with ``--databases`` switches to (``USE `name`;``), if any."""
    with dump.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if line.startswith("USE `") and line.rstrip().endswith("`;"):
                return line.strip()[5:-2]
    return None


@dataclass(frozen=True)
class Credentials:
    """What a resumed run must find again: heat.conf already holds this port and password."""

    user: str
    password: str
    port: int


class MariaDB(Database):
    kind = "mariadb"

    def __init__(self, run_dir: Path) -> None:
        super().__init__(run_dir)
        self.datadir = run_dir / "db" / "mariadb"
        self.socket = self._socket_path()
        # the socket-authenticated administrative account is named after the system user
        self.admin = "root" if os.geteuid() == 0 else getpass.getuser()
        self.creds = self._credentials()

    def _socket_path(self) -> Path:
        path = self.run_dir / "db" / "mariadb.sock"
        if len(str(path.resolve())) <= MAX_SOCKET_PATH:
            return path.resolve()
        digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:10]
        return Path(tempfile.gettempdir()) / f"grenadier-mariadb-{digest}.sock"

    def _credentials(self) -> Credentials:
        path = self.run_dir / "db" / CREDENTIALS
        with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
            data = json.loads(path.read_text(encoding="utf-8"))
            return Credentials(str(data["user"]), str(data["password"]), int(data["port"]))
        creds = Credentials(USER, secrets.token_hex(16), free_port())
        write_private(path, json.dumps(asdict(creds)))
        return creds

    def _tool(self, name: str, *args: str, stdin: str | None = None, timeout: float = 120,
              what: str = "") -> str:
        # --no-defaults first: never read the packaged server's /etc/mysql configuration
        cmd = [str(find_binary(name)), "--no-defaults", *args]
        log = self.run_dir / "logs" / "mariadb-tools.log"
        outcome = run(ExecuteRequest(cmd, timeout=timeout, log=log, stdin=stdin))
        return outcome.assert_success(what or f"MariaDB {name}").out

    def _sql(self, sql: str, what: str = "") -> str:
        # SQL goes through stdin so that passwords never appear on a command line or in the log
        return self._tool("mariadb", f"--socket={self.socket}", f"--user={self.admin}",
                          "--batch", "--skip-column-names", stdin=sql, what=what)

    def _prepare(self) -> None:
        for name in BINARIES:
            find_binary(name)
        if (self.datadir / "mysql").is_dir():
            return
        self.datadir.mkdir(parents=True, exist_ok=True)
        args = [f"--datadir={self.datadir}", "--auth-root-authentication-method=socket",
                f"--auth-root-socket-user={self.admin}", "--skip-test-db",
                # passed on to the bootstrap server: without syncs it is several times faster
                "--innodb-flush-method=nosync", "--innodb-doublewrite=0"]
        if os.geteuid() == 0:
            args.append("--user=root")
        self._tool("mariadb-install-db", *args, timeout=180,
                   what="mariadb-install-db of the private MariaDB")

    def _ready(self) -> bool:
        if not self.socket.exists():
            return False
        with socket.create_connection(("127.0.0.1", self.creds.port), timeout=1):
            return True

    def _server_cmd(self) -> list[str]:
        cmd = [str(find_binary("mariadbd")), "--no-defaults", f"--datadir={self.datadir}",
               f"--socket={self.socket}", f"--port={self.creds.port}",
               "--bind-address=127.0.0.1", "--skip-name-resolve",
               f"--pid-file={self.run_dir / 'db' / 'mariadb.pid'}",
               # with --no-defaults the server default is latin1; Heat's data is unicode
               "--character-set-server=utf8mb4", "--collation-server=utf8mb4_general_ci",
               "--max-connections=300",
               # durability off: a test database rebuilt every run (as for PostgreSQL)
               "--innodb-flush-log-at-trx-commit=0", "--innodb-doublewrite=0",
               "--innodb-flush-method=nosync",
               "--log-error=" + str(self.run_dir / "logs" / "mariadb.err.log")]
        if os.geteuid() == 0:
            cmd.append("--user=root")
        return cmd

    def start(self, supervisor: Supervisor) -> None:
        self._prepare()
        require_port_free(self.creds.port, "this run's MariaDB",
                          hint="stop what holds it, or start a new run")
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()  # a stale socket of a killed server would pass the probe
        supervisor.start(ServiceSpec(
            name="mariadb", cmd=self._server_cmd(),
            log=self.run_dir / "logs" / "mariadb.log", ready=self._ready,
            ready_timeout=60, stop_timeout=30,
        ))
        self._ensure_user()
        if self.name not in self._databases():
            self.create_database(self.name)

    def _ensure_user(self) -> None:
        user, password = self.creds.user, self.creds.password
        self._sql(
            f"CREATE USER IF NOT EXISTS '{user}'@'127.0.0.1' IDENTIFIED BY '{password}';\n"
            f"CREATE USER IF NOT EXISTS '{user}'@'localhost' IDENTIFIED BY '{password}';\n"
            # a private throwaway server: the user may create the comparison databases too
            f"GRANT ALL PRIVILEGES ON *.* TO '{user}'@'127.0.0.1';\n"
            f"GRANT ALL PRIVILEGES ON *.* TO '{user}'@'localhost';\n",
            what="creating the MariaDB user for Heat",
        )

    def _databases(self) -> list[str]:
        return self._sql("SHOW DATABASES;").split()

    def create_database(self, database: str) -> None:
        self._sql(f"DROP DATABASE IF EXISTS `{database}`;\n"
                  f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4;\n",
                  what=f"creating MariaDB database {database}")

    def drop_database(self, database: str) -> None:
        self._sql(f"DROP DATABASE IF EXISTS `{database}`;\n",
                  what=f"dropping MariaDB database {database}")

    def load(self, dump: Path, timeout: float) -> str:
        """Load a ``mysqldump``/``mariadb-dump`` of a Heat database into Heat's; return its log.

        The client reads the file itself (``source``): a dump of a big database is not passed
        through memory. A dump made with ``--databases`` switches to its own database by
        ``USE``: :func:`dump_database` tells the caller which one to name this server's.
        """
        log = self.run_dir / "logs" / "mariadb-load.log"
        cmd = [str(find_binary("mariadb")), "--no-defaults", f"--socket={self.socket}",
               f"--user={self.admin}", "--batch", self.name, "-e", f"source {dump.resolve()}"]
        run(ExecuteRequest(cmd, timeout=timeout, log=log)).assert_success(
            f"loading {dump.name} into the private MariaDB")
        return str(log)

    def url(self, database: str | None = None) -> str:
        c = self.creds
        return (f"mysql+pymysql://{c.user}:{c.password}@127.0.0.1:{c.port}/"
                f"{database or self.name}?charset=utf8mb4")

    def snapshot(self, dest_dir: Path, timeout: float) -> Path:
        dest_dir.mkdir(parents=True, exist_ok=True)
        dest = dest_dir / "heat.sql"
        # --single-transaction: a consistent image without locking the tables
        self._tool("mariadb-dump", f"--socket={self.socket}", f"--user={self.admin}",
                   "--single-transaction", "--no-tablespaces", f"--result-file={dest}",
                   self.name, timeout=timeout, what="mariadb-dump of the Heat database")
        return dest

    def restore_command(self, snapshot: Path) -> str:
        client = f"mariadb --no-defaults --socket={self.socket} --user={self.admin}"
        return (f"{client} -e 'DROP DATABASE IF EXISTS {self.name}; CREATE DATABASE {self.name} "
                f"CHARACTER SET utf8mb4' && {client} {self.name} < {snapshot}")

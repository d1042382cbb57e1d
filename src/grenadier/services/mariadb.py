"""A private MariaDB from Debian's ``mariadb-server``: data, socket and credentials in the run.

The packaged system service is never touched (it is often blocked from starting in
containers): grenadier initialises its own data directory with ``mariadb-install-db`` and runs
``mariadbd --no-defaults`` under the supervisor, on a loopback port of its own, as Debian's
``mysql`` system user where grenadier is root. Its socket is in a directory no one else may
enter; ``secure_file_priv`` confines the server's file reads and writes to a directory of the
run; Heat's user ``heat`` has rights on Heat's own databases only (no FILE, no other database).
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
from grenadier.host import free_port, private_dir, require_port_free, write_private
from grenadier.services.accounts import service_user, uid_of
from grenadier.services.api import ServiceSpec, Supervisor
from grenadier.services.db import Database

BINARIES = ("mariadbd", "mariadb-install-db", "mariadb", "mariadb-dump")
#: where Debian puts the server binary (not on a normal user's PATH)
SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")
#: unix socket paths are limited to about 107 bytes
MAX_SOCKET_PATH = 100
CREDENTIALS = "mariadb.json"
USER = "heat"
#: the system user Debian's package runs the server as
SERVER_USER = "mysql"


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
        #: the only directory the server may read or write files in (``secure_file_priv``)
        self.files_dir = run_dir / "db" / "mariadb-files"
        self.socket_dir = self._socket_dir()
        self.socket = self.socket_dir / "mariadb.sock"
        # the socket-authenticated administrative account is named after the system user
        self.admin = "root" if os.geteuid() == 0 else getpass.getuser()
        self.user: str | None = None  # the server's system user, known once it is prepared
        self.creds = self._credentials()

    def _socket_dir(self) -> Path:
        path = (self.run_dir / "db" / "mariadb-socket").resolve()
        if len(str(path / "mariadb.sock")) <= MAX_SOCKET_PATH:
            return path
        digest = hashlib.sha256(str(path).encode()).hexdigest()[:10]
        return Path(tempfile.gettempdir()) / f"grenadier-mariadb-{digest}"

    def _credentials(self) -> Credentials:
        path = self.run_dir / "db" / CREDENTIALS
        with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
            data = json.loads(path.read_text(encoding="utf-8"))
            return Credentials(str(data["user"]), str(data["password"]), int(data["port"]))
        creds = Credentials(USER, secrets.token_hex(16), free_port())
        write_private(path, json.dumps(asdict(creds)))
        return creds

    def _tool(self, name: str, *args: str, stdin: str | None = None, timeout: float = 120,
              what: str = "", user: str | None = None) -> str:
        # --no-defaults first: never read the packaged server's /etc/mysql configuration
        cmd = [str(find_binary(name)), "--no-defaults", *args]
        log = self.run_dir / "logs" / "mariadb-tools.log"
        outcome = run(ExecuteRequest(cmd, timeout=timeout, log=log, stdin=stdin, user=user))
        return outcome.assert_success(what or f"MariaDB {name}").out

    def _sql(self, sql: str, what: str = "") -> str:
        # SQL goes through stdin so that passwords never appear on a command line or in the log
        return self._tool("mariadb", f"--socket={self.socket}", f"--user={self.admin}",
                          "--batch", "--skip-column-names", stdin=sql, what=what)

    def _server_dirs(self) -> None:
        """The directories and the log the server (its own user) writes to."""
        uid = uid_of(self.user)
        for path in (self.datadir, self.files_dir):
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chown(path, uid, -1)
        private_dir(self.socket_dir, uid)
        self.error_log.parent.mkdir(parents=True, exist_ok=True)
        self.error_log.touch(mode=0o600)
        os.chown(self.error_log, uid, -1)

    @property
    def error_log(self) -> Path:
        return self.run_dir / "logs" / "mariadb.err.log"

    def _prepare(self) -> None:
        for name in BINARIES:
            find_binary(name)
        self.user = service_user(SERVER_USER, self.run_dir)
        self._server_dirs()
        if (self.datadir / "mysql").is_dir():
            return
        args = [f"--datadir={self.datadir}", "--auth-root-authentication-method=socket",
                f"--auth-root-socket-user={self.admin}", "--skip-test-db",
                # passed on to the bootstrap server: without syncs it is several times faster
                "--innodb-flush-method=nosync", "--innodb-doublewrite=0"]
        self._tool("mariadb-install-db", *args, timeout=180, user=self.user,
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
               f"--secure-file-priv={self.files_dir}",
               f"--pid-file={self.datadir / 'mariadb.pid'}",
               # with --no-defaults the server default is latin1; Heat's data is unicode
               "--character-set-server=utf8mb4", "--collation-server=utf8mb4_general_ci",
               "--max-connections=300",
               # durability off: a test database rebuilt every run (as for PostgreSQL)
               "--innodb-flush-log-at-trx-commit=0", "--innodb-doublewrite=0",
               "--innodb-flush-method=nosync", f"--log-error={self.error_log}"]
        return cmd

    def start(self, supervisor: Supervisor) -> None:
        self._prepare()
        require_port_free(self.creds.port, "this run's MariaDB",
                          hint="stop what holds it, or start a new run")
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()  # a stale socket of a killed server would pass the probe
        supervisor.start(ServiceSpec(
            name="mariadb", cmd=self._server_cmd(), user=self.user,
            log=self.run_dir / "logs" / "mariadb.log", ready=self._ready,
            ready_timeout=60, stop_timeout=30,
            # empty once the server removed its socket: nothing of the run is left in /tmp
            scratch_dir=self.socket_dir,
        ))
        self._ensure_user()
        if self.name not in self._databases():
            self.create_database(self.name)
        else:
            self._grant(self.name)

    def _ensure_user(self) -> None:
        user, password = self.creds.user, self.creds.password
        self._sql(
            f"CREATE USER IF NOT EXISTS '{user}'@'127.0.0.1' IDENTIFIED BY '{password}';\n"
            f"CREATE USER IF NOT EXISTS '{user}'@'localhost' IDENTIFIED BY '{password}';\n",
            what="creating the MariaDB user for Heat",
        )

    def _grant(self, database: str) -> None:
        """Heat's user gets every right on ``database``, and on nothing else."""
        user = self.creds.user
        self._sql("".join(f"GRANT ALL PRIVILEGES ON `{database}`.* TO '{user}'@'{host}';\n"
                          for host in ("127.0.0.1", "localhost")),
                  what=f"granting Heat's user the database {database}")

    def _databases(self) -> list[str]:
        return self._sql("SHOW DATABASES;").split()

    def create_database(self, database: str) -> None:
        self._sql(f"DROP DATABASE IF EXISTS `{database}`;\n"
                  f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4;\n",
                  what=f"creating MariaDB database {database}")
        self._grant(database)

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

"""SQLite: no server at all; Heat must run stack operations one at a time on it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from grenadier.services.api import Supervisor
from grenadier.services.db import Database


class SqliteDatabase(Database):
    kind = "sqlite"
    # oslo.db's plain BEGIN makes concurrent writers fail with "database is locked"
    serial = True

    def _file(self, database: str | None = None) -> Path:
        return self.run_dir / "db" / f"{database or self.name}.sqlite"

    def start(self, supervisor: Supervisor) -> None:
        self._file().parent.mkdir(mode=0o700, parents=True, exist_ok=True)

    def url(self, database: str | None = None) -> str:
        return f"sqlite:///{self._file(database)}"

    def written_by_clients(self) -> tuple[Path, ...]:
        # SQLite writes its journal beside the file: Heat needs the directory too
        return (self._file().parent, self._file())

    def create_database(self, database: str) -> None:
        self._file(database).unlink(missing_ok=True)

    def drop_database(self, database: str) -> None:
        self._file(database).unlink(missing_ok=True)

    def load(self, source: Path, timeout: float) -> None:
        """Make Heat's database a copy of the SQLite file ``source``, which is only read.

        The online backup API, with ``source`` opened read-only, copies a consistent image even
        while a Heat writes to it. The copy is owner-only: it holds the user's data.
        """
        dest = self._file()
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.parent.chmod(0o700)
        dest.unlink(missing_ok=True)
        dest.touch(mode=0o600)
        _backup(sqlite3.connect(read_only_uri(source), uri=True, timeout=timeout), dest)

    def snapshot(self, dest_dir: Path, timeout: float) -> Path:
        # The online backup API copies a consistent image even while Heat holds the file open.
        dest_dir.mkdir(parents=True, exist_ok=True)
        dest = dest_dir / "heat.sqlite"
        _backup(sqlite3.connect(self._file(), timeout=timeout), dest)
        return dest

    def restore_command(self, snapshot: Path) -> str:
        return f"cp {snapshot} {self._file()}"


def _backup(reader: sqlite3.Connection, dest: Path) -> None:
    """Copy ``reader``'s database into the file ``dest`` (online backup API), then close."""
    writer = sqlite3.connect(dest)
    try:
        reader.backup(writer)
    finally:
        writer.close()
        reader.close()


#: byte 18 of a SQLite header, the file format's write version: 2 means WAL journal mode
WAL_VERSION_OFFSET, WAL = 18, 2


def read_only_uri(path: Path) -> str:
    """A URI that reads ``path`` and writes nothing beside it.

    ``mode=ro`` alone is not enough for a database in WAL mode that nobody has open: SQLite
    then creates ``-wal`` and ``-shm`` files next to it (and leaves them). With no WAL file
    present the file itself is the whole database, so it can be opened ``immutable``; with a
    WAL file present a Heat is (or was) writing, and ``mode=ro`` reads through its WAL.
    """
    uri = f"{path.resolve().as_uri()}?mode=ro"
    with path.open("rb") as handle:
        header = handle.read(WAL_VERSION_OFFSET + 1)
    in_wal_mode = len(header) > WAL_VERSION_OFFSET and header[WAL_VERSION_OFFSET] == WAL
    if in_wal_mode and not Path(f"{path}-wal").exists():
        uri += "&immutable=1"
    return uri

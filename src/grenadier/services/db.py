"""Databases Heat runs on: what every backend offers the phases and checks."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

from grenadier.services.api import Supervisor


class Database(ABC):
    """A database server (or file) holding Heat's schema for one run."""

    #: name used by ``--db``
    kind: str = ""
    #: True when Heat cannot run stack operations concurrently on this backend
    serial: bool = False
    #: the database name Heat uses
    name: str = "heat"

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir

    @abstractmethod
    def start(self, supervisor: Supervisor) -> None:
        """Bring the server up (no-op for a file) and make sure the Heat database exists."""

    @abstractmethod
    def url(self, database: str | None = None) -> str:
        """SQLAlchemy URL of ``database`` (default: Heat's), as Heat's ``[database] connection``."""

    @abstractmethod
    def create_database(self, database: str) -> None:
        """Create an empty database beside Heat's (fresh-schema comparisons use one)."""

    @abstractmethod
    def drop_database(self, database: str) -> None:
        """Drop a database :meth:`create_database` made (a missing one is no error)."""

    @abstractmethod
    def snapshot(self, dest_dir: Path, timeout: float) -> Path:
        """Dump Heat's database into ``dest_dir``; return the file."""

    @abstractmethod
    def restore_command(self, snapshot: Path) -> str:
        """The command a person runs to put ``snapshot`` back."""

    def written_by_clients(self) -> tuple[Path, ...]:
        """Files Heat's processes write themselves, not through a server: where Heat runs as
        its own user, they become its own before it starts. A server's clients write none."""
        return ()

    def describe(self) -> dict[str, object]:
        """What ``db.json`` tells the tests (kind, URL, serial)."""
        return {"kind": self.kind, "url": self.url(), "serial": self.serial}

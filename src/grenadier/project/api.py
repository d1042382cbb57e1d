"""What a plugin provides: the project under upgrade test."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grenadier.execute import Outcome
from grenadier.releases import Release, ReleaseCache
from grenadier.services import ServiceSpec
from grenadier.services.db import Database
from grenadier.services.keystone import Keystone
from grenadier.services.rabbitmq import MessageBus

#: the variable the phases' pytest processes read ``--smoke`` from
SMOKE_ENV = "GRENADIER_SMOKE"
#: the JUnit property of a test of the project's upstream tests, valued with the name the
#: runner compares its base and target results by
UPSTREAM_PROPERTY = "grenadier_upstream"


@dataclass
class Deployment:
    """Everything a project needs to configure and run one release for a run."""

    run_dir: Path
    db: Database
    port: int
    #: files merged into the project's config (the user's ``--config``)
    extra_config: list[Path] = field(default_factory=list)
    #: the message bus between the project's processes; None: in-process (``fake://``)
    bus: MessageBus | None = None
    #: the run's Keystone; None: no authentication (noauth)
    keystone: Keystone | None = None
    #: ``all-in-one`` (one process per release) or ``split`` (API and engine processes)
    topology: str = "all-in-one"
    #: engine processes per release (split)
    engines: int = 1
    #: helper tools the project's processes use (see Project.tools): name -> the site-packages
    #: of the tool's own cached venv
    tools: dict[str, Path] = field(default_factory=dict)

    @property
    def transport_url(self) -> str:
        return self.bus.transport_url() if self.bus is not None else "fake://"

    @property
    def etc(self) -> Path:
        return self.run_dir / "etc"

    @property
    def logs(self) -> Path:
        return self.run_dir / "logs"


class Project(ABC):
    """An OpenStack project grenadier can upgrade (Heat is the built-in one)."""

    #: short name, e.g. ``heat``
    name: str = ""
    #: (section, option) pairs of the config that the harness sets and reads itself, not the
    #: project: configuration checks leave them alone
    harness_options: frozenset[tuple[str, str]] = frozenset()

    @abstractmethod
    def configure(self, release: Release, deployment: Deployment) -> list[Path]:
        """Write the project's configuration for ``release``; return the config files.

        Called once, with the *base* release: the upgrade keeps these files.
        """

    @abstractmethod
    def config_files(self, deployment: Deployment) -> list[Path]:
        """The configuration files written by :meth:`configure`."""

    def tools(self, deployment: Deployment) -> list[str]:
        """Pinned requirements (``name==X.Y.Z``) of helper tools the project's processes need
        for ``deployment``; each is installed into its own cached venv before any process
        starts, and named in ``deployment.tools``. None by default."""
        return []

    @abstractmethod
    def db_sync(self, release: Release, deployment: Deployment) -> Outcome:
        """Migrate the database to ``release``'s newest schema."""

    @abstractmethod
    def services(self, release: Release, deployment: Deployment, role: str) -> list[ServiceSpec]:
        """The long-running processes of ``release`` (``role`` is base or target), in order."""

    def held_services(self, release: Release, deployment: Deployment, role: str,
                      go: Path) -> list[ServiceSpec] | None:
        """:meth:`services`, started ahead: each loads its code and configuration, then waits
        for ``go`` to exist before it listens or touches the database. None (the default): the
        project cannot; its services start when their step comes."""
        return None

    @abstractmethod
    def endpoint(self, deployment: Deployment) -> dict[str, object]:
        """What tests need to reach the running project (URL, project id, user)."""

    @abstractmethod
    def inventory(self, deployment: Deployment) -> dict[str, Any]:
        """What exists now, through the running API (``{"stacks": [...]}`` for Heat)."""

    @abstractmethod
    def test_paths(self) -> list[Path]:
        """The built-in upgrade suite's test files or folders."""

    def test_tools(self, cache: ReleaseCache, smoke: str, log: Path) -> dict[str, str]:
        """Install what the test phases need for ``smoke`` (a ``SMOKE_MODES`` value) besides
        the releases, once per cache; return the environment that tells the phases where."""
        return {}

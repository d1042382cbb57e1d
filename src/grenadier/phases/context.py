"""The context every step works in: run directory, options, services, releases, state."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pluggy

from grenadier.checks.api import Check, CheckContext, CheckRegistry
from grenadier.checks.builtin import builtin_checks
from grenadier.checks.db.probing import stop_servers
from grenadier.errors import EnvironmentProblem
from grenadier.host import free_port, require_port_free, write_private
from grenadier.model.roles import release_key
from grenadier.options.run import RunOptions
from grenadier.phases.impact import ImpactJob
from grenadier.plugins.manager import get_project
from grenadier.project.api import Deployment, Project
from grenadier.releases import Release, ReleaseCache, parse_spec
from grenadier.releases.tools import ensure_tool
from grenadier.services import Supervisor
from grenadier.services.db import Database
from grenadier.services.keystone import Keystone
from grenadier.services.rabbitmq import ExternalBus, MessageBus, RabbitMQ
from grenadier.state import RUNNER, StateStore

ENDPOINT_FILE = "endpoint.json"
DB_FILE = "db.json"
UPGRADE_DONE = "upgrade-done"


def make_database(options: RunOptions, run_dir: Path) -> Database:
    if options.db_url:
        from grenadier.services.external import ExternalDatabase

        return ExternalDatabase(run_dir, options.db_url)
    if options.db == "sqlite":
        from grenadier.services.sqlite import SqliteDatabase

        return SqliteDatabase(run_dir)
    if options.db == "mariadb":
        from grenadier.services.mariadb import MariaDB

        return MariaDB(run_dir)
    from grenadier.services.postgres import EmbeddedPostgres

    return EmbeddedPostgres(run_dir)


def _recorded_release(data: object) -> Release | None:
    """The release state.json records for a role, if it records a readable one."""
    if not isinstance(data, dict):
        return None
    try:
        return Release.from_dict(data)
    except (KeyError, TypeError, ValueError):
        return None


def make_bus(options: RunOptions, run_dir: Path) -> MessageBus | None:
    """The run's message bus: none (fake://), the one at ``--bus-url``, or a private RabbitMQ."""
    if options.bus_url:
        return ExternalBus(options.bus_url)
    return RabbitMQ(run_dir) if options.bus == "rabbit" else None


class _Background:
    """Runs one start-up function in a thread, so that two slow starts overlap."""

    def __init__(self, fn: Callable[[], None]) -> None:
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self.thread.start()

    def _run(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except BaseException as exc:  # re-raised in the caller's thread by join()
            self.error = exc

    def join(self) -> None:
        """Wait for the thread, even through Ctrl-C (re-raised after it): a service it is
        starting must be known to the supervisor before anything stops them all."""
        interrupted = False
        while self.thread.is_alive():
            try:
                self.thread.join(0.2)
            except KeyboardInterrupt:
                interrupted = True
        if interrupted:
            raise KeyboardInterrupt
        if self.error is not None:
            raise self.error


def make_registry(manager: pluggy.PluginManager) -> CheckRegistry:
    """Built-in checks plus those registered by plugins."""
    registry = CheckRegistry()
    for check in builtin_checks():
        registry.add(check)
    manager.hook.grenadier_register_checks(registry=registry)
    return registry


class RunContext:
    """Owns the run's services; lazily brings up what a step needs."""

    def __init__(self, run_dir: Path, options: RunOptions, manager: pluggy.PluginManager,
                 cache: ReleaseCache, say: Callable[[str], None]) -> None:
        self.run_dir = run_dir
        self.options = options
        self.cache = cache
        self.say = say
        self.store = StateStore(run_dir / "state.json")
        self.project: Project = get_project(manager, options.project)
        self.registry = make_registry(manager)
        self.supervisor = Supervisor(pid_file=run_dir / "services.json")
        self.db = make_database(options, run_dir)
        self.bus = make_bus(options, run_dir)
        port = self._port()
        self.keystone = Keystone(run_dir, cache, port) if options.auth == "keystone" else None
        self.deployment = Deployment(
            run_dir, self.db, port, [Path(p) for p in options.config], bus=self.bus,
            keystone=self.keystone, topology=options.topology or "all-in-one",
            engines=options.engines)
        self.db_started = False
        #: the bus and Keystone are up (or the run has neither)
        self.plane_started = False
        self.running_role: str | None = None
        #: the during-upgrade pytest processes running: service name -> part of file names
        self.watchers: dict[str, str] = {}
        self.watch_offset = 0
        self.keep_running = False
        self._impact: ImpactJob | None = None
        #: probe.py servers started ahead of the step that asks them (see checks/db/probing)
        self.probe_servers: dict[str, object] = {}
        #: test phases' pytest processes started ahead of their step (phases/warm.py)
        self.warm_phases: dict[str, Any] = {}
        #: a role's services started ahead and held (:meth:`prestart_project`): their names
        self.held: dict[str, list[str]] = {}

    def _port(self) -> int:
        port = self.store.get(RUNNER, "port")
        if not isinstance(port, int):
            port = self.options.port or free_port()
            self.store.save(RUNNER, "port", port)
        return port

    # releases -------------------------------------------------------------------------
    def release(self, role: str) -> Release:
        """The installed base or target release (installing it if this run has not yet)."""
        recorded = _recorded_release(self.store.get(RUNNER, release_key(role)))
        # a resumed run's venv may since have been rebuilt, or be being rebuilt, by another run
        if recorded is not None and self.cache.holds(recorded):
            return recorded
        spec = parse_spec(getattr(self.options, role))
        release = self.cache.ensure(spec, log=self.run_dir / "logs" / f"install-{role}.log",
                                    freeze=self._replayed_freeze(role),
                                    like=self._like(role) if spec.path is not None else None)
        self.store.save(RUNNER, release_key(role), release.to_dict())
        return release

    def _replayed_freeze(self, role: str) -> Path | None:
        earlier = self.options.environment_from
        return Path(earlier, "releases", f"{role}-freeze.txt") if earlier else None

    def _like(self, role: str) -> str | None:
        """A source tree of unknown version is installed like the run's target (or, when it
        is the target, like the base): the version whose environment it borrows."""
        other = parse_spec(self.options.target if role == "base" else self.options.base)
        if other.path is not None:
            return None
        return self.cache.resolve_version(other)

    def test_tools(self) -> dict[str, str]:
        """What the project's test phases need besides the releases (installed once per
        cache), as environment variables for them."""
        saved = self.store.get(RUNNER, "test-tools")
        if isinstance(saved, dict) and saved.get("smoke") == self.options.smoke:
            return {str(k): str(v) for k, v in saved.get("env", {}).items()}
        env = self.project.test_tools(self.cache, self.options.smoke,
                                      self.run_dir / "logs" / "install-test-tools.log")
        self.store.save(RUNNER, "test-tools", {"smoke": self.options.smoke, "env": env})
        return env

    # services -------------------------------------------------------------------------
    def require_db(self) -> None:
        """Start what Heat depends on and what outlives it: the database, and the message bus
        and Keystone when the run has them. They stay up while Heat is down and upgraded."""
        if not self.db_started:
            self.db.start(self.supervisor)
            self.db_started = True
            self._write_json(DB_FILE, {**self.db.describe(),
                                       "python": str(self.release("base").python)})
        if not self.plane_started:
            self._start_bus_and_keystone()
            self.plane_started = True
            self.store.save(RUNNER, "control-plane", {
                "topology": self.deployment.topology, "engines": self.deployment.engines,
                "bus": self.bus.describe() if self.bus else {"kind": "fake"},
                "auth": self.keystone.describe() if self.keystone else {"kind": "noauth"}})

    def _start_bus_and_keystone(self) -> None:
        # RabbitMQ boots in about 7 s while Keystone installs and bootstraps: overlap them.
        # Only the bus thread uses the supervisor until it is joined.
        bus: _Background | None = None
        if self.bus is not None:
            start_bus = self.bus.start
            bus = _Background(lambda: start_bus(self.supervisor))
        try:
            if self.keystone is not None:
                tool = self.keystone.install()
                self.keystone.bootstrap(tool)
        finally:
            if bus is not None:
                bus.join()  # also on Ctrl-C: close() must see every service it started
        if self.keystone is not None:
            self.keystone.start(self.supervisor, tool)

    def start_project(self, role: str) -> None:
        """Start the base or target release's services on the run's (base) configuration."""
        if self.running_role == role:
            return
        if self.running_role is not None:
            self.stop_project()
        self.require_db()
        self.ensure_tools()
        release = self.release(role)
        require_port_free(self.deployment.port, "the Heat API",
                          hint="free it or choose another with --port")
        held = self.held.pop(role, [])
        if held:
            self._held_go(role).touch()
            for name in held:
                self.supervisor.let_go(name)
        else:
            for spec in self.project.services(release, self.deployment, role):
                self.supervisor.start(spec)
        self.running_role = role
        self.write_endpoint()

    def _held_go(self, role: str) -> Path:
        return self.run_dir / "warm" / f"{self.project.name}-{role}.go"

    def prestart_project(self, role: str) -> None:
        """Start ``role``'s services ahead of their step, held before they listen or touch
        the database (Heat's start is mostly imports: they run while earlier steps wait),
        so that they may start while the other role still runs. Only once the database is
        up and while ``role`` is not running; nothing if the project cannot."""
        if role in self.held or self.running_role == role or not self.db_started:
            return
        if self.project.tools(self.deployment):
            return  # installing them is its step's work
        go = self._held_go(role)
        go.parent.mkdir(parents=True, exist_ok=True)
        go.unlink(missing_ok=True)
        specs = self.project.held_services(self.release(role), self.deployment, role, go)
        if specs is None:
            return
        self.held[role] = []
        for spec in specs:
            self.supervisor.start(spec, held=True)
            self.held[role].append(spec.name)

    def _drop_held(self) -> None:
        """Stop the services started ahead whose step never came."""
        for names in self.held.values():
            self.supervisor.stop_many(names)
        self.held.clear()

    def ensure_tools(self) -> None:
        """Install (once per cache) the helper tools the project's processes need."""
        for requirement in self.project.tools(self.deployment):
            tool = ensure_tool(self.cache, requirement,
                               log=self.run_dir / "logs" / "install-tools.log")
            found = sorted(tool.venv.glob("lib/python3*/site-packages"))
            if not found:
                raise EnvironmentProblem(f"no site-packages in {tool.venv}",
                                         hint="remove the tool's venv from the cache")
            self.deployment.tools[tool.name] = found[0]

    def stop_project(self, *, crash: bool = False) -> list[str]:
        """Stop the project's services; return the names of those stopped."""
        stopped = [svc.spec.name for svc in self.supervisor.running()
                   if svc.spec.name.startswith(f"{self.project.name}-") and not svc.held]
        self.supervisor.stop_many(stopped, crash=crash)
        self.running_role = None
        self.write_endpoint()
        return stopped

    def write_endpoint(self) -> None:
        endpoint = self.project.endpoint(self.deployment)
        if self.running_role is None:
            endpoint["url"] = None
        release = (self.store.get(RUNNER, release_key(self.running_role))
                   if self.running_role else None) or {}
        self._write_json(ENDPOINT_FILE, {
            **endpoint, "serial": self.db.serial, "role": self.running_role,
            "release": release.get("label") if isinstance(release, dict) else None,
            "base": (self.store.get(RUNNER, release_key("base")) or {}).get("version"),
            "target": (self.store.get(RUNNER, release_key("target")) or {}).get("version"),
        })

    def _write_json(self, name: str, data: dict[str, object]) -> None:
        # db.json may carry a database password (MariaDB, --db-url): owner-only, like etc/
        write_private(self.run_dir / name, json.dumps(data, indent=1))

    def close(self) -> list[str]:
        """Stop everything this run started (always called, Ctrl-C included; idempotent).

        With ``keep_running`` the services stay up for tests run by hand (tox envs): the
        names of those left are returned, and the run's ``services.json`` lists them for
        ``grenadier down`` or the next ``--resume``.
        """
        stop_servers(self.probe_servers)  # helpers of one step, never kept running
        for held in self.warm_phases.values():
            held.abandon()
        self.warm_phases.clear()
        self._drop_held()  # never left running: nothing would ever let them go
        if self.keep_running:
            return self.supervisor.detach()
        # each stop is shielded from signals; a Ctrl-C between them still reaches stop_all
        try:
            try:
                if self.running_role is not None:
                    self.stop_project()  # Heat first, its processes together
            finally:
                self.supervisor.stop_all()  # whatever is left, newest first
        finally:
            self.running_role = None
            self.db_started = self.plane_started = False
            with contextlib.suppress(OSError):
                self.write_endpoint()
        return []

    def check_context(self) -> CheckContext:
        selected = self.registry.select(self.options.checks, self.options.skip_checks)
        return CheckContext(run_dir=self.run_dir, base=self.release("base"),
                            target=self.release("target"), project=self.project,
                            deployment=self.deployment, state=self.store,
                            selected=tuple(c.name for c in selected),
                            shared={"servers": self.probe_servers})

    def selected_checks(self, step: str) -> list[Check]:
        """The checks of ``step`` that ``--checks`` / ``--skip-checks`` leave in."""
        return [c for c in self.registry.select(self.options.checks, self.options.skip_checks)
                if c.step == step]

    def start_impact(self) -> None:
        self._impact = ImpactJob(self.run_dir, self.release("base"), self.release("target"))
        self._impact.start()

    def finish_impact(self) -> str | None:
        if self._impact is None:
            return None
        line = self._impact.join()
        self._impact = None
        return line

    def upgrade_done_flag(self) -> Path:
        return self.run_dir / UPGRADE_DONE


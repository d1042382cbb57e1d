"""Heat as the project under test: heat.conf, db_sync, and its processes.

Two topologies (``Deployment.topology``): ``all-in-one``, the single-process launcher (engine
and API in one process, any bus); ``split``, the release's own API application on a
multi-threaded WSGI server (``api_server.py``) and N ``heat-engine`` processes on a real
message bus, as deployers run Heat. Either works with noauth or with the run's Keystone (real
tokens, trusts).
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import json
import os
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import httpx

from grenadier.errors import EnvironmentProblem
from grenadier.execute import ExecuteRequest, Outcome, run
from grenadier.host import write_private
from grenadier.plugins.heat import conf
from grenadier.plugins.heat.upstream import tools as upstream_tools
from grenadier.project.api import Deployment, Project
from grenadier.releases import Release, ReleaseCache
from grenadier.services import ServiceSpec, accounts
from grenadier.services.heat_client import HeatClient, HeatError, StackRef
from grenadier.services.keystone import Keystone, heat_transport

#: where grenadier is root, Heat's processes run as this system user: never a ``heat`` account
#: an operator may have, whose files must stay out of a test's reach
HEAT_USER = "grenadier-heat"
LAUNCHER = Path(__file__).with_name("launcher.py")
#: the launcher's option to start ahead and wait for a file (it imports nothing of grenadier)
HOLD_OPTION = "--hold-until"
API_SERVER = Path(__file__).with_name("api_server.py")
#: the split API's own extra config file (its log levels), in the run's etc/
API_CONF = "api.conf"
#: the split API's WSGI server: pinned by the upper-constraints of every series since 2025.1
WSGI_SERVER = "waitress==3.0.2"
#: threads of the split API's WSGI server: every request waiting for an RPC answer holds one
API_THREADS = 16
#: TEST/BENCHMARK HOOK, not a user option: ``heat-wsgi-api`` serves the split API with the
#: release's own single-threaded script, as before, so that the stall it causes can be measured
API_SERVER_ENV = "GRENADIER_TEST_API_SERVER"
SUITE = Path(__file__).with_name("suite")
SECRETS = "secrets.json"
DB_SYNC_TIMEOUT = 900.0
#: seconds a stopping heat-engine waits for its in-flight stack operations (as launcher.py)
ENGINE_STOP_GRACE = 5
#: what heat-engine (25-27) logs as its RPC servers start (heat.engine.worker, INFO)
ENGINE_STARTED = b"Starting engine_worker ("
#: concurrent resource listings of an inventory (one when the DB is serial: SQLite)
INVENTORY_WORKERS = 8
#: who a client is: the tests' project, or (with Keystone) the admin in the admin project
Account = Literal["tests", "admin"]


def engine_host(role: str, index: int) -> str:
    return f"engine-{role}-{index}"


def keystone_params(keystone: Keystone) -> conf.KeystoneParams:
    c = keystone.creds
    return conf.KeystoneParams(
        url=c.url, service_user=c.service.user, service_password=c.service.password,
        service_project=c.service.project, stack_domain_id=c.ids["stack_domain"],
        stack_domain_admin=c.stack_domain_admin,
        stack_domain_admin_password=c.stack_domain_admin_password)


def oslo_log_levels(release: Release) -> tuple[str, ...]:
    """oslo.log's own ``default_log_levels``, read from the release's oslo_log (never
    imported); () when they cannot be read (the processes then keep oslo.log's defaults, and
    requests go unattributed)."""
    try:
        tree = ast.parse((release.site_packages / "oslo_log" / "_options.py").read_text(
            encoding="utf-8"))
    except (OSError, SyntaxError, EnvironmentProblem):
        return ()
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "DEFAULT_LOG_LEVELS" for t in node.targets):
            with contextlib.suppress(ValueError):
                levels = ast.literal_eval(node.value)
                if isinstance(levels, list) and all(isinstance(x, str) for x in levels):
                    return tuple(levels)
    return ()


def log_levels(release: Release, debug: str) -> tuple[str, ...]:
    """oslo.log's defaults plus one logger at DEBUG (conf.RPC_SERVER_DEBUG or RPC_CALL_DEBUG)."""
    defaults = oslo_log_levels(release)
    return (*defaults, debug) if defaults else ()


class HeatProject(Project):
    name = "heat"
    harness_options = conf.LAUNCHER_OPTIONS

    def _identity(self, deployment: Deployment) -> dict[str, str]:
        # Created once per run and kept: resumed runs must talk to the same project.
        path = deployment.etc / SECRETS
        if path.is_file():
            data: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))
            return data
        data = {"project": uuid.uuid4().hex, "user": "grenadier",
                "auth_encryption_key": conf.new_auth_encryption_key()}
        write_private(path, json.dumps(data))
        return data

    # configuration --------------------------------------------------------------------
    def configure(self, release: Release, deployment: Deployment) -> list[Path]:
        ident = self._identity(deployment)
        etc = deployment.etc
        # The deployer's copy of the paste file, as /etc/heat/api-paste.ini: kept across the upgrade
        paste = etc / "api-paste.ini"
        paste.write_text(conf.api_paste_ini(release.venv).read_text(encoding="utf-8"),
                         encoding="utf-8")
        token = etc / "token.json"
        token.write_text(conf.render_token(deployment.port, ident["project"], ident["user"]),
                         encoding="utf-8")
        keystone = deployment.keystone
        params = conf.HeatConfParams(
            host="grenadier-engine", port=deployment.port, db_url=deployment.db.url(),
            log_file=(deployment.logs / "heat.log").resolve(), api_paste_config=paste.resolve(),
            token_file=token.resolve(), auth_encryption_key=ident["auth_encryption_key"],
            transport_url=deployment.transport_url,
            keystone=keystone_params(keystone) if keystone is not None else None,
            split_noauth=deployment.topology == "split" and keystone is None,
            graceful_shutdown_timeout=ENGINE_STOP_GRACE if deployment.topology == "split"
            else None,
        )
        write_private(etc / "heat.conf", conf.render_heat_conf(params))
        if deployment.topology == "split":
            engine_levels = log_levels(release, conf.RPC_SERVER_DEBUG)
            (etc / "engines").mkdir(parents=True, exist_ok=True)
            for role in ("base", "target"):
                for index in range(1, deployment.engines + 1):
                    self._host_file(deployment, role, index).write_text(
                        conf.render_host_conf(engine_host(role, index), engine_levels),
                        encoding="utf-8")
            api_levels = log_levels(release, conf.RPC_CALL_DEBUG)
            if api_levels:
                (etc / API_CONF).write_text(conf.render_api_conf(api_levels), encoding="utf-8")
        return self.config_files(deployment)

    @staticmethod
    def _host_file(deployment: Deployment, role: str, index: int) -> Path:
        return deployment.etc / "engines" / f"{engine_host(role, index)}.conf"

    def config_files(self, deployment: Deployment) -> list[Path]:
        return [deployment.etc / "heat.conf", *deployment.extra_config]

    def _config_args(self, deployment: Deployment, *more: Path) -> list[str]:
        return [arg for path in [*self.config_files(deployment), *more]
                for arg in ("--config-file", str(path))]

    def db_sync(self, release: Release, deployment: Deployment) -> Outcome:
        cmd = [str(release.bin("heat-manage")), *self._config_args(deployment),
               "--log-file", str(deployment.logs / f"heat-manage-{release.version}.log"),
               "db_sync"]
        log = deployment.logs / f"db_sync-{release.version}.log"
        return run(ExecuteRequest(cmd, timeout=DB_SYNC_TIMEOUT, log=log))

    # processes ------------------------------------------------------------------------
    def tools(self, deployment: Deployment) -> list[str]:
        return [WSGI_SERVER] if deployment.topology == "split" else []

    def services(self, release: Release, deployment: Deployment, role: str) -> list[ServiceSpec]:
        return self._as_heat_user(self._specs(release, deployment, role), release, deployment)

    def _specs(self, release: Release, deployment: Deployment, role: str) -> list[ServiceSpec]:
        if deployment.topology == "split":
            return [self._api(release, deployment, role),
                    *(self._engine(release, deployment, role, index)
                      for index in range(1, deployment.engines + 1))]
        log = deployment.logs / f"heat-{role}.log"
        cmd = [str(release.python), str(LAUNCHER), *self._config_args(deployment),
               "--log-file", str(log)]
        return [ServiceSpec(name=f"heat-{role}", cmd=cmd, ready=_api_ready(deployment),
                            ready_timeout=120, stop_timeout=30,
                            log=deployment.logs / f"heat-{role}.stdout.log",
                            owns=(log,), reads=(LAUNCHER,))]

    def held_services(self, release: Release, deployment: Deployment, role: str,
                      go: Path) -> list[ServiceSpec] | None:
        """The single-process launcher, held (``--hold-until``) after Heat's imports and its
        resource plugins' loading, most of its start. Not the split topology's programs."""
        if deployment.topology == "split":
            return None
        return [dataclasses.replace(spec, cmd=[*spec.cmd, HOLD_OPTION, str(go)])
                for spec in self.services(release, deployment, role)]

    @staticmethod
    def _as_heat_user(specs: list[ServiceSpec], release: Release,
                      deployment: Deployment) -> list[ServiceSpec]:
        """Heat's processes as its own user where grenadier is root. heat.conf (passwords)
        and a SQLite database become its own; its release venv and the user's --config files
        must be within its reach."""
        user = accounts.service_user(HEAT_USER, deployment.run_dir)
        owns = (deployment.etc / "heat.conf", *deployment.db.written_by_clients())
        reads = (release.venv, release.python, *deployment.extra_config)
        return [dataclasses.replace(spec, user=user, owns=(*owns, *spec.owns),
                                    reads=(*reads, *spec.reads)) for spec in specs]

    def _api(self, release: Release, deployment: Deployment, role: str) -> ServiceSpec:
        extra = [deployment.etc / API_CONF] if (deployment.etc / API_CONF).is_file() else []
        log = deployment.logs / f"heat-{role}-api.log"
        heat_args = [*self._config_args(deployment, *extra), "--log-file", str(log)]
        site = deployment.tools.get(WSGI_SERVER.split("==")[0])
        reads: tuple[Path, ...] = ()
        if os.environ.get(API_SERVER_ENV) == "heat-wsgi-api" or site is None:
            cmd = [str(release.bin("heat-wsgi-api")), "--host", "127.0.0.1",
                   "--port", str(deployment.port), "--", *heat_args]
        else:
            cmd = [str(release.python), str(API_SERVER), "--site", str(site),
                   "--host", "127.0.0.1", "--port", str(deployment.port),
                   "--threads", str(API_THREADS), "--", *heat_args]
            reads = (API_SERVER, site)
        return ServiceSpec(name=f"heat-{role}-api", cmd=cmd, ready=_api_ready(deployment),
                           ready_timeout=120, stop_timeout=20,
                           log=deployment.logs / f"heat-{role}-api.stdout.log",
                           owns=(log,), reads=reads)

    def _engine(self, release: Release, deployment: Deployment, role: str,
                index: int) -> ServiceSpec:
        log = deployment.logs / f"heat-{role}-engine-{index}.log"
        cmd = [str(release.bin("heat-engine")),
               *self._config_args(deployment, self._host_file(deployment, role, index)),
               "--log-file", str(log)]
        offset = log.stat().st_size if log.is_file() else 0  # a resumed run appends

        def ready() -> bool:
            # An engine has no port, and Heat's service list is an RPC call that an absent
            # engine makes wait 60 s: ready once this start logged its worker's RPC start.
            with log.open("rb") as handle:
                handle.seek(offset)
                return ENGINE_STARTED in handle.read()

        return ServiceSpec(name=f"heat-{role}-engine-{index}", cmd=cmd, ready=ready,
                           ready_timeout=120, stop_timeout=30,
                           log=deployment.logs / f"heat-{role}-engine-{index}.stdout.log",
                           owns=(log,))

    # what tests and inventories need --------------------------------------------------
    def endpoint(self, deployment: Deployment) -> dict[str, object]:
        ident = self._identity(deployment)
        url = f"http://127.0.0.1:{deployment.port}"
        keystone = deployment.keystone
        if keystone is None or not keystone.provisioned:
            return {"url": url, "project": ident["project"], "user": ident["user"],
                    "topology": deployment.topology}
        c = keystone.creds
        return {"url": url, "project": c.ids["tests_project"], "user": c.tests.user,
                "auth": {**keystone.auth(), "admin_project": c.ids["admin_project"]},
                "topology": deployment.topology, "engines": deployment.engines}

    def client(self, deployment: Deployment, account: Account = "tests", *,
               retries: int = 4) -> HeatClient:
        """A client of this run's Heat as ``account``: ``tests`` (the project the tests use:
        noauth headers, or the tests' user with Keystone) or ``admin`` (Keystone's admin in
        the admin project, where Keystone resources live; only with Keystone)."""
        ep = self.endpoint(deployment)
        url, keystone = str(ep["url"]), deployment.keystone
        if keystone is None:
            if account != "tests":
                raise ValueError(f"account {account!r} needs Keystone (noauth has only tests)")
            return HeatClient(url, str(ep["project"]), str(ep["user"]), retries=retries)
        c = keystone.creds
        return HeatClient(url, c.ids[f"{account}_project"], getattr(c, account).user,
                          retries=retries, transport=heat_transport(keystone.auth(), account))

    def inventory(self, deployment: Deployment) -> dict[str, Any]:
        """Every stack (nested ones included) with its status and resources; with Keystone,
        the tests' project and the admin project (where Keystone resources live).

        A stack whose resources Heat refuses to list has an ``error`` (Heat's answer) instead;
        a stack list that fails, or a Heat that cannot be reached, raises."""
        accounts: list[Account] = ["tests"] if deployment.keystone is None else ["tests", "admin"]
        workers = 1 if deployment.db.serial else INVENTORY_WORKERS
        stacks: list[dict[str, Any]] = []
        try:
            for account in accounts:
                with self.client(deployment, account) as heat:
                    stacks += _stacks(heat, workers)
        except (HeatError, httpx.HTTPError) as exc:
            raise EnvironmentProblem(f"cannot take the inventory of Heat's stacks: {exc}") from exc
        return {"stacks": sorted(stacks, key=lambda s: str(s["name"]))}

    def test_paths(self) -> list[Path]:
        return [SUITE]

    def test_tools(self, cache: ReleaseCache, smoke: str, log: Path) -> dict[str, str]:
        """heat-tempest-plugin's tools venv, when the smoke phases run its gabbits."""
        if smoke == "builtin":
            return {}
        return {upstream_tools.PYTHON_ENV: str(upstream_tools.ensure_tools(cache, log).python)}


def _api_ready(deployment: Deployment) -> Callable[[], bool]:
    """The probe of Heat's API (the all-in-one process's or the split API's): it answers."""
    url = f"http://127.0.0.1:{deployment.port}/"
    return lambda: httpx.get(url, timeout=2).status_code < 500


def _resources(heat: HeatClient, stack: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    """A stack's resources, or Heat's error for this stack (its other stacks may still list)."""
    try:
        return heat.list_resources(StackRef(stack["stack_name"], stack["id"])), ""
    except HeatError as exc:
        return [], str(exc)


def _stacks(heat: HeatClient, workers: int) -> list[dict[str, Any]]:
    """The project's stacks, nested ones too, each with its resources (or its ``error``)."""
    listed = heat.list_stacks(show_nested=True)
    with ThreadPoolExecutor(max(1, min(workers, len(listed)))) as pool:
        resources = list(pool.map(lambda stack: _resources(heat, stack), listed))
    return [{
        "id": stack["id"], "name": stack["stack_name"], "status": stack["stack_status"],
        "parent": stack.get("parent"),
        "resources": sorted(
            ({"name": r["resource_name"], "type": r["resource_type"],
              "status": r["resource_status"], "physical_id": r.get("physical_resource_id")}
             for r in found), key=lambda r: str(r["name"])),
        **({"error": error} if error else {}),
    } for stack, (found, error) in zip(listed, resources, strict=True)]

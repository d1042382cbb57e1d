"""A private Keystone for ``--auth keystone``, and the small REST client runs and tests share.

Keystone is another service, not the project under test: installed once from PyPI into its own
cached venv (releases/tools.py), bootstrapped on SQLite inside the run directory, served on
loopback by ``keystone_server.py`` under the supervisor, started before Heat and left up while
Heat is down and upgraded. Where grenadier is root, Keystone runs (and is bootstrapped) as a
system user of its own, which owns its database and keys (``keystone/data``). Provisioning
follows devstack and grenade: a ``service`` project with Heat's service user, a ``heat`` domain
for the users Heat creates in stacks, the roles Heat expects, the catalog entries for Heat, and
a non-admin user in a project of its own for the tests. Every password is random per run and
kept in ``keystone/credentials.json`` (mode 0600).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from grenadier.errors import EnvironmentProblem
from grenadier.execute import ExecuteRequest, run
from grenadier.host import free_port, require_port_free, write_private
from grenadier.releases import ReleaseCache
from grenadier.releases.tools import Tool, ensure_tool
from grenadier.services import accounts
from grenadier.services.api import ServiceSpec, Supervisor

#: where grenadier is root, Keystone runs as this system user: never a ``keystone`` account
#: an operator may have, whose files must stay out of a test's reach
KEYSTONE_USER = "grenadier-keystone"
#: the Keystone release every run uses (measured: it installs and serves on Python 3.11)
KEYSTONE_REQUIREMENT = "keystone==30.0.0"
SERVER = Path(__file__).with_name("keystone_server.py")
CREDENTIALS = "credentials.json"
REGION = "RegionOne"
DOMAIN = "Default"
#: roles of the tests' non-admin user: what a stack owner has in a devstack cloud
TEST_ROLES = ("member", "reader", "heat_stack_owner")
BOOTSTRAP_TIMEOUT = 300.0


@dataclass(frozen=True)
class Account:
    """A user and the project its tokens are scoped to (both in ``domain``)."""

    user: str
    password: str
    project: str
    domain: str = DOMAIN

    def auth_body(self) -> dict[str, Any]:
        domain = {"name": self.domain}
        return {"auth": {
            "identity": {"methods": ["password"], "password": {
                "user": {"name": self.user, "domain": domain, "password": self.password}}},
            "scope": {"project": {"name": self.project, "domain": domain}},
        }}


@dataclass
class KeystoneCredentials:
    """Everything a resumed run and the tests need to find and use this run's Keystone."""

    port: int
    admin: Account
    service: Account
    tests: Account
    stack_domain_admin: str
    stack_domain_admin_password: str
    stack_domain: str = "heat"
    #: ids found or made by provisioning (admin_project, tests_project, tests_user, stack_domain)
    ids: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def v3(self) -> str:
        return f"{self.url}/v3"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> KeystoneCredentials:
        return cls(
            port=int(data["port"]), admin=Account(**data["admin"]),
            service=Account(**data["service"]), tests=Account(**data["tests"]),
            stack_domain_admin=str(data["stack_domain_admin"]),
            stack_domain_admin_password=str(data["stack_domain_admin_password"]),
            stack_domain=str(data.get("stack_domain", "heat")), ids=dict(data.get("ids", {})))

    @classmethod
    def load(cls, path: Path) -> KeystoneCredentials:
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise EnvironmentProblem(f"cannot read Keystone credentials {path}: {exc}") from exc


def new_credentials() -> KeystoneCredentials:
    def password() -> str:
        return secrets.token_urlsafe(18)

    return KeystoneCredentials(
        port=free_port(), admin=Account("admin", password(), "admin"),
        service=Account("heat", password(), "service"),
        tests=Account("grenadier", password(), "grenadier"),
        stack_domain_admin="heat_domain_admin", stack_domain_admin_password=password())


def issue_token(v3: str, account: Account, timeout: float = 30.0) -> str:
    """A project-scoped token for ``account`` (its id)."""
    response = httpx.post(f"{v3}/auth/tokens", json=account.auth_body(), timeout=timeout)
    if response.status_code != 201:
        raise EnvironmentProblem(f"Keystone refused a token to {account.user}: "
                                 f"{response.status_code} {response.text[:200]}")
    return response.headers["X-Subject-Token"]


class TokenTransport(httpx.BaseTransport):
    """Adds a Keystone token to every request (a new one once, on 401), as clients do.

    Given to :class:`~grenadier.services.heat_client.HeatClient` (its ``transport``), it turns a
    noauth client into a real-token one; the noauth headers it sets are dropped.
    """

    def __init__(self, v3: str, account: Account, inner: httpx.BaseTransport | None = None) -> None:
        self.v3 = v3
        self.account = account
        self.inner = inner or httpx.HTTPTransport()
        self._token: str | None = None
        self._lock = threading.Lock()

    def token(self, *, renew: bool = False) -> str:
        with self._lock:
            if self._token is None or renew:
                self._token = issue_token(self.v3, self.account)
            return self._token

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        for name in ("X-Auth-User", "X-Auth-Project", "X-Auth-Key"):
            request.headers.pop(name, None)
        used = self.token()
        request.headers["X-Auth-Token"] = used
        response = self.inner.handle_request(request)
        if response.status_code == 401:  # expired or revoked: one new token, one retry
            response.close()
            request.headers["X-Auth-Token"] = self.token(renew=used == self._token)
            response = self.inner.handle_request(request)
        return response

    def close(self) -> None:
        self.inner.close()


class KeystoneAPI:
    """Keystone's v3 REST API with a token of ``account`` (admin for provisioning and checks)."""

    def __init__(self, v3: str, account: Account, timeout: float = 30.0) -> None:
        self.transport = TokenTransport(v3, account)
        self.http = httpx.Client(base_url=f"{v3}/", transport=self.transport, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> KeystoneAPI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _checked(self, response: httpx.Response) -> dict[str, Any]:
        if response.status_code >= 400:
            raise EnvironmentProblem(f"Keystone {response.request.method} {response.request.url}"
                                     f" answered {response.status_code}: {response.text[:300]}")
        return response.json() if response.content else {}  # type: ignore[no-any-return]

    def get(self, path: str, **params: str) -> dict[str, Any] | None:
        """The resource at ``path`` (e.g. ``users/<id>``), or None when Keystone says 404."""
        response = self.http.get(path, params=params)
        return None if response.status_code == 404 else self._checked(response)

    def post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._checked(self.http.post(path, json=dict(body)))

    def put(self, path: str) -> None:
        self._checked(self.http.put(path))

    def delete(self, path: str) -> bool:
        """Delete; False when it was already gone."""
        response = self.http.delete(path)
        if response.status_code == 404:
            return False
        self._checked(response)
        return True

    def find(self, collection: str, name: str, **params: str) -> dict[str, Any] | None:
        """The one ``collection`` member (users, roles, ...) called ``name``, if any."""
        found = (self.get(collection, name=name, **params) or {}).get(collection, [])
        return found[0] if found else None

    def ensure(self, collection: str, body: Mapping[str, Any], **params: str) -> str:
        """Id of the member named ``body["name"]``, created from ``body`` when missing."""
        found = self.find(collection, str(body["name"]), **params)
        if found is None:
            found = self.post(collection, {collection[:-1]: dict(body)})[collection[:-1]]
        return str(found["id"])

    def role_assignments(self, **filters: str) -> list[dict[str, Any]]:
        """``GET /v3/role_assignments`` with filters such as ``user.id`` and ``role.id``."""
        found: list[dict[str, Any]] = (self.get("role_assignments", **filters) or {}).get(
            "role_assignments", [])
        return found


def api_from(auth: Mapping[str, Any], account: str = "admin") -> KeystoneAPI:
    """A KeystoneAPI from the ``auth`` block of ``endpoint.json`` (see :meth:`Keystone.auth`)."""
    creds = KeystoneCredentials.load(Path(str(auth["credentials"])))
    return KeystoneAPI(creds.v3, getattr(creds, account))


def heat_transport(auth: Mapping[str, Any], account: str = "tests") -> TokenTransport:
    """The transport that makes a HeatClient use real tokens of ``account`` (tests or admin)."""
    creds = KeystoneCredentials.load(Path(str(auth["credentials"])))
    return TokenTransport(creds.v3, getattr(creds, account))


class Keystone:
    """This run's Keystone: ``<run>/keystone`` (config, SQLite, keys, credentials)."""

    kind = "keystone"

    def __init__(self, run_dir: Path, cache: ReleaseCache, heat_port: int) -> None:
        self.run_dir = run_dir
        self.dir = run_dir / "keystone"
        #: what Keystone itself writes (SQLite, its journal, fernet and credential keys): its
        #: user's own; grenadier's files (the config, the credentials) stay beside it
        self.data = self.dir / "data"
        self.log = run_dir / "logs" / "keystone.log"
        self.cache = cache
        self.heat_port = heat_port
        self.creds_path = self.dir / CREDENTIALS
        self.creds = self._credentials()

    def _credentials(self) -> KeystoneCredentials:
        with contextlib.suppress(EnvironmentProblem):
            if self.creds_path.is_file():
                return KeystoneCredentials.load(self.creds_path)
        creds = new_credentials()
        write_private(self.creds_path, creds.to_json())
        return creds

    @property
    def provisioned(self) -> bool:
        return {"tests_project", "stack_domain"} <= set(self.creds.ids)

    def auth(self) -> dict[str, object]:
        """What ``endpoint.json`` tells the tests: where Keystone is and where the secrets are."""
        return {"type": "keystone", "url": self.creds.v3, "credentials": str(self.creds_path),
                "region": REGION}

    def describe(self) -> dict[str, object]:
        return {"kind": self.kind, "url": self.creds.v3, "requirement": KEYSTONE_REQUIREMENT}

    def user(self) -> str | None:
        """Keystone's own system user (made if missing); None when grenadier is not root."""
        return accounts.service_user(KEYSTONE_USER, self.run_dir)

    def conf_text(self) -> str:
        d = self.data
        return "\n".join([
            "# Rendered by grenadier: a private Keystone on SQLite.",
            "[DEFAULT]", f"log_file = {self.log}",
            "use_stderr = false",
            "[database]", f"connection = sqlite:///{d / 'keystone.sqlite'}",
            # bcrypt's cheapest cost: Heat's service user logs in with its password for every
            # trust it uses, and a test Keystone gains nothing from slow hashes
            "[identity]", "password_hash_rounds = 4",
            "[token]", "provider = fernet",
            # a run can be resumed hours later; clients renew on 401 anyway
            "expiration = 86400",
            "[fernet_tokens]", f"key_repository = {d / 'fernet-keys'}",
            "[fernet_receipts]", f"key_repository = {d / 'fernet-keys'}",
            "[credential]", f"key_repository = {d / 'credential-keys'}", ""])

    def install(self) -> Tool:
        log = self.run_dir / "logs" / "install-keystone.log"
        return ensure_tool(self.cache, KEYSTONE_REQUIREMENT, log=log)

    def bootstrap(self, tool: Tool) -> None:
        """db_sync, keys, admin user and identity endpoint: once per run (marker file).

        Idempotent: a second call (a resumed run) only rewrites ``keystone.conf``.
        """
        conf = self.dir / "keystone.conf"
        self.dir.mkdir(parents=True, exist_ok=True)
        conf.write_text(self.conf_text(), encoding="utf-8")
        marker = self.dir / "bootstrapped"
        if marker.is_file():
            return
        user = self.user()
        self.data.mkdir(mode=0o700, exist_ok=True)
        # as Keystone's user: its database and keys are born its own
        accounts.hand_over(user, [self.data, self.log])
        accounts.reach(user, [tool.python, SERVER], "keystone")
        (self.data / "keystone.sqlite").unlink(missing_ok=True)
        cmd = [str(tool.python), str(SERVER), "bootstrap", "--config-file", str(conf),
               "--public-url", self.creds.v3, "--region", REGION]
        env = {"OS_BOOTSTRAP_PASSWORD": self.creds.admin.password,
               "OS_BOOTSTRAP_USERNAME": self.creds.admin.user,
               "OS_BOOTSTRAP_PROJECT_NAME": self.creds.admin.project}
        log = self.run_dir / "logs" / "keystone-bootstrap.log"
        run(ExecuteRequest(cmd, env=env, timeout=BOOTSTRAP_TIMEOUT, log=log, user=user)
            ).assert_success("bootstrap of the private Keystone")
        marker.touch()

    def _ready(self) -> bool:
        return httpx.get(self.creds.v3, timeout=2).status_code == 200

    def start(self, supervisor: Supervisor, tool: Tool) -> None:
        """Serve, then provision (once): after :meth:`install` and :meth:`bootstrap`."""
        require_port_free(self.creds.port, "this run's Keystone",
                          hint="stop what holds it, or start a new run")
        cmd = [str(tool.python), str(SERVER), "serve", "--config-file",
               str(self.dir / "keystone.conf"), "--port", str(self.creds.port)]
        supervisor.start(ServiceSpec(
            name="keystone", cmd=cmd, log=self.run_dir / "logs" / "keystone.stdout.log",
            ready=self._ready, ready_timeout=90, stop_timeout=15, user=self.user(),
            owns=(self.log,), reads=(tool.python, SERVER)))
        if not self.provisioned:
            self.provision()

    def provision(self) -> None:
        """Heat's service user, stack domain, roles and catalog; the tests' user and project."""
        c = self.creds
        with KeystoneAPI(c.v3, c.admin) as api:
            default = {"domain_id": "default"}
            roles = {name: api.ensure("roles", {"name": name}) for name in
                     ("admin", "service", "heat_stack_owner", "heat_stack_user", *TEST_ROLES)}
            for key, account, wanted in (("service", c.service, ("admin", "service")),
                                         ("tests", c.tests, TEST_ROLES)):
                project = api.ensure("projects", {"name": account.project, **default})
                user = api.ensure("users", {"name": account.user, "password": account.password,
                                            "default_project_id": project, **default})
                for role in wanted:
                    api.put(f"projects/{project}/users/{user}/roles/{roles[role]}")
                c.ids.update({f"{key}_project": project, f"{key}_user": user})
            c.ids["admin_project"] = api.ensure("projects", {"name": c.admin.project, **default})
            self._stack_domain(api, roles["admin"])
            self._catalog(api)
        write_private(self.creds_path, c.to_json())

    def _stack_domain(self, api: KeystoneAPI, admin_role: str) -> None:
        c = self.creds
        domain = api.ensure("domains", {"name": c.stack_domain,
                                        "description": "users Heat creates for stacks"})
        user = api.ensure("users", {"name": c.stack_domain_admin, "domain_id": domain,
                                    "password": c.stack_domain_admin_password},
                          domain_id=domain)
        api.put(f"domains/{domain}/users/{user}/roles/{admin_role}")
        c.ids["stack_domain"] = domain

    def _catalog(self, api: KeystoneAPI) -> None:
        # No cfn API runs: the cloudformation entry only satisfies Heat's "service available"
        # check of e.g. OS::Heat::SoftwareConfig; the noauth token does the same.
        heat = f"http://127.0.0.1:{self.heat_port}/v1"
        for kind, name, url in (("orchestration", "heat", heat + "/%(project_id)s"),
                                ("cloudformation", "heat-cfn", heat)):
            service = api.ensure("services", {"name": name, "type": kind}, type=kind)
            known = (api.get("endpoints", service_id=service) or {}).get("endpoints", [])
            have = {e["interface"] for e in known}
            for interface in ("public", "internal", "admin"):
                if interface not in have:
                    api.post("endpoints", {"endpoint": {
                        "service_id": service, "interface": interface, "url": url,
                        "region_id": REGION}})

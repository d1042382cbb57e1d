"""Render the files Heat needs: heat.conf (one process or split, noauth or Keystone), an engine's
host file, the fake token.

Pure functions: nothing here reads or writes files except `api_paste_ini`, which only looks for
an existing file in a release venv. Every option written is known to openstack-heat 25.0.2,
26.0.2 and 27.0.1 (or to the oslo libraries / launcher that read it), so one rendering serves
every release. A user's own options come in their own file (`grenadier run --config`).
"""

from __future__ import annotations

import configparser
import io
import json
import secrets
import string
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "FAKE_KEYSTONE_BACKEND",
    "LAUNCHER_OPTIONS",
    "HeatConfParams",
    "KeystoneParams",
    "api_paste_ini",
    "new_auth_encryption_key",
    "render_api_conf",
    "render_heat_conf",
    "render_host_conf",
    "render_token",
]

FAKE_KEYSTONE_BACKEND = "heat.engine.clients.os.keystone.fake_keystoneclient.FakeKeystoneClient"

# `[heat_api] bind_host/bind_port` are not Heat options any more (heat-api was removed in 25.0.0):
# launcher.py registers and reads them itself, so they are always written.
LAUNCHER_OPTIONS: frozenset[tuple[str, str]] = frozenset(
    {("heat_api", "bind_host"), ("heat_api", "bind_port")}
)


@dataclass(frozen=True)
class KeystoneParams:
    """Where Heat finds a real Keystone and who it is there (see services/keystone.py)."""

    url: str  # unversioned, e.g. http://127.0.0.1:5000
    service_user: str  # Heat's own service user (authtoken and trustee)
    service_password: str
    stack_domain_id: str  # the domain of users Heat creates for stacks (in-instance users)
    stack_domain_admin: str
    stack_domain_admin_password: str
    service_project: str = "service"
    domain: str = "Default"  # of the service user and project
    region: str = "RegionOne"


@dataclass(frozen=True)
class HeatConfParams:
    """Everything that varies between heat.conf files of one run."""

    host: str  # [DEFAULT] host: the engine's RPC server name and `service` table row
    port: int  # API port on 127.0.0.1 (read by launcher.py as [heat_api] bind_port)
    db_url: str  # SQLAlchemy URL, e.g. postgresql+psycopg2://postgres@/heat?host=/pgdata
    log_file: Path  # absolute; oslo.log writes here (no stderr logging)
    api_paste_config: Path  # the release's own etc/heat/api-paste.ini
    token_file: Path  # [noauth] token_response: JSON from render_token()
    auth_encryption_key: str  # exactly 32 characters: new_auth_encryption_key()
    transport_url: str = "fake://"  # fake:// only works with everything in one process
    keystone: KeystoneParams | None = None  # None: noauth and the fake Keystone client
    # Heat's noauth middleware grants every request the one role `admin`, which today's policy
    # defaults (`member` / `reader`) do not accept. launcher.py makes it grant the token's
    # roles (render_token: admin, member, reader); a separate heat-wsgi-api cannot be patched,
    # so split noauth also accepts the pre-RBAC policy defaults, which admit `admin`
    split_noauth: bool = False
    # oslo.service's wait (default 60 s) for an engine's in-flight stack operations on stop;
    # None leaves it alone (the single-process launcher has its own 5 s grace)
    graceful_shutdown_timeout: int | None = None
    periodic_interval: int = 5  # seconds between engine heartbeats (Heat's default is 60)
    debug: bool = False


def new_auth_encryption_key() -> str:
    """A random 32-character key: Heat refuses to start unless the key has exactly 32."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(32))


def _base_options(p: HeatConfParams) -> dict[str, dict[str, str]]:
    if len(p.auth_encryption_key) != 32:
        raise ValueError("auth_encryption_key must be exactly 32 characters")
    if not p.log_file.is_absolute():
        raise ValueError(f"log_file must be absolute: {p.log_file}")
    opts: dict[str, dict[str, str]] = {
        "DEFAULT": {
            "host": p.host,
            "transport_url": p.transport_url,
            "auth_encryption_key": p.auth_encryption_key,
            "convergence_engine": "true",
            "periodic_interval": str(p.periodic_interval),
            "num_engine_workers": "1",
            "debug": "true" if p.debug else "false",
            "log_file": str(p.log_file),
            "use_stderr": "false",
        },
        "paste_deploy": {"api_paste_config": str(p.api_paste_config)},
        "heat_api": {"bind_host": "127.0.0.1", "bind_port": str(p.port)},
        "database": {"connection": p.db_url},
        # No notification consumer exists; don't queue notifications on the bus.
        "oslo_messaging_notifications": {"driver": "noop"},
    }
    if p.graceful_shutdown_timeout is not None:
        opts["DEFAULT"]["graceful_shutdown_timeout"] = str(p.graceful_shutdown_timeout)
    if p.keystone is None:
        _noauth_options(p, opts)
    else:
        _keystone_options(p.keystone, opts)
    return opts


def _noauth_options(p: HeatConfParams, opts: dict[str, dict[str, str]]) -> None:
    opts["DEFAULT"].update({
        # No Keystone: the fake client answers the engine's identity calls in-process.
        "keystone_backend": FAKE_KEYSTONE_BACKEND,
        # "trusts" would need a real Keystone to create trusts at stack create.
        "deferred_auth_method": "password",
    })
    opts["paste_deploy"]["flavor"] = "noauth"
    # Without a token whose catalog lists the cloudformation endpoint, resources such as
    # OS::Heat::SoftwareConfig fail their "service available" check.
    opts["noauth"] = {"token_response": str(p.token_file)}
    if p.split_noauth:
        opts["oslo_policy"] = {"enforce_new_defaults": "false", "enforce_scope": "false"}


def _keystone_options(k: KeystoneParams, opts: dict[str, dict[str, str]]) -> None:
    """Real Keystone, as a deployer (or devstack) configures it: the default paste pipeline
    (authtoken), trusts for deferred operations, a stack user domain for in-instance users."""
    service = {"auth_type": "password", "auth_url": k.url, "username": k.service_user,
               "password": k.service_password, "user_domain_name": k.domain}
    opts["DEFAULT"].update({
        "deferred_auth_method": "trusts",
        "region_name_for_services": k.region,
        "stack_user_domain_id": k.stack_domain_id,
        "stack_domain_admin": k.stack_domain_admin,
        "stack_domain_admin_password": k.stack_domain_admin_password,
    })
    opts["keystone_authtoken"] = {
        **service, "www_authenticate_uri": f"{k.url}/v3", "project_name": k.service_project,
        "project_domain_name": k.domain, "service_token_roles_required": "true",
    }
    # The identity the engine uses with the trusts stack owners give it.
    opts["trustee"] = service
    opts["clients_keystone"] = {"auth_uri": k.url}


def render_heat_conf(p: HeatConfParams) -> str:
    """heat.conf text."""
    opts = _base_options(p)
    # interpolation=None: values such as URLs or passwords may hold '%'.
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    for section, values in opts.items():
        if section != "DEFAULT":
            parser.add_section(section)
        for key, value in values.items():
            if "\n" in value:
                raise ValueError(f"newline in option [{section}] {key}")
            parser.set(section, key, value)
    buf = io.StringIO()
    auth = "Keystone" if p.keystone else "noauth, fake Keystone"
    buf.write(f"# Rendered by grenadier: Heat on {p.transport_url.split(':', 1)[0]}, {auth}.\n")
    parser.write(buf)
    return buf.getvalue()


#: which engine served a request that Heat logs at DEBUG only (a show, a list): the API logs
#: each RPC call it sends under the request's id ("CALL msg_id: M ..."), each engine every RPC
#: message it receives ("Receive incoming message with id M ..."); these two loggers, at DEBUG,
#: join the two
RPC_SERVER_DEBUG = "oslo_messaging.rpc.server=DEBUG"
RPC_CALL_DEBUG = "oslo_messaging._drivers.amqpdriver=DEBUG"


def render_host_conf(host: str, log_levels: tuple[str, ...] = ()) -> str:
    """The small extra file giving one heat-engine its own name (heat-engine has no --host),
    and, given ``log_levels`` (``logger=LEVEL``), its ``default_log_levels``."""
    if not host or any(c.isspace() for c in host):
        raise ValueError(f"bad engine host name {host!r}")
    levels = _levels_line(log_levels) if log_levels else ""
    return f"# Rendered by grenadier: this engine's name.\n[DEFAULT]\nhost = {host}\n{levels}"


def render_api_conf(log_levels: tuple[str, ...]) -> str:
    """The split API's small extra file: its ``default_log_levels``."""
    return f"# Rendered by grenadier: the API's log levels.\n[DEFAULT]\n{_levels_line(log_levels)}"


def _levels_line(log_levels: tuple[str, ...]) -> str:
    if any("," in level or "\n" in level for level in log_levels):
        raise ValueError(f"bad log levels {log_levels!r}")
    return f"default_log_levels = {','.join(log_levels)}\n"


def render_token(port: int, project_id: str, user: str) -> str:
    """A fake Keystone v3 token (for `[noauth] token_response`).

    Its catalog lists the orchestration, cloudformation and identity services on the API port;
    its roles are the ones real Keystone gives an admin (admin implies member implies reader).
    """
    base = f"http://127.0.0.1:{port}"
    domain = {"id": "default", "name": "Default"}

    def service(kind: str, name: str, url: str) -> dict[str, object]:
        endpoints = [
            {
                "id": f"{name}-{interface}",
                "interface": interface,
                "region": "RegionOne",
                "region_id": "RegionOne",
                "url": url,
            }
            for interface in ("public", "internal", "admin")
        ]
        return {"id": name, "type": kind, "name": name, "endpoints": endpoints}

    token = {
        "token": {
            "methods": ["password"],
            "issued_at": "2020-01-01T00:00:00.000000Z",
            "expires_at": "2099-12-31T23:59:59.000000Z",
            "user": {"id": user, "name": user, "domain": domain},
            "project": {"id": project_id, "name": project_id, "domain": domain},
            "roles": [{"id": r, "name": r} for r in ("admin", "member", "reader")],
            "is_domain": False,
            "catalog": [
                service("orchestration", "heat", f"{base}/v1/{project_id}"),
                service("cloudformation", "heat-cfn", f"{base}/v1"),
                service("identity", "keystone", f"{base}/v3"),
            ],
        }
    }
    return json.dumps(token, indent=2, sort_keys=True) + "\n"


def api_paste_ini(venv: Path) -> Path:
    """The api-paste.ini shipped by the openstack-heat installed in `venv`.

    Normally `<venv>/etc/heat/api-paste.ini` (a wheel data file); otherwise found through the
    wheel's RECORD or under `share/`.  Raises ValueError if there is none.
    """
    candidates = [venv / "etc" / "heat" / "api-paste.ini"]
    for site in sorted(venv.glob("lib/python3*/site-packages")):
        for record in sorted(site.glob("openstack_heat-*.dist-info/RECORD")):
            for line in record.read_text(encoding="utf-8").splitlines():
                path = line.split(",", 1)[0]
                if path.endswith("heat/api-paste.ini"):
                    candidates.append((site / path).resolve())
        candidates.append(site / "etc" / "heat" / "api-paste.ini")
    candidates += [
        venv / "share" / "heat" / "api-paste.ini",
        venv / "usr" / "etc" / "heat" / "api-paste.ini",
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ValueError(f"no heat api-paste.ini in {venv}")

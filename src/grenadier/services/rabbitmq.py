"""The message bus Heat's processes talk over: a private RabbitMQ, or one given by ``--bus-url``.

The private broker comes from Debian's ``rabbitmq-server`` but never touches the packaged
service: its node name, configuration, Mnesia data and credentials live in the run directory,
and everything it listens on is loopback-only on ports chosen free for the run:

- AMQP (``listeners.tcp``) on 127.0.0.1;
- Erlang distribution (``RABBITMQ_DIST_PORT``, ``inet_dist_use_interface``) on 127.0.0.1;
- epmd: Erlang's port mapper is normally one shared daemon on port 4369, which the first
  Erlang node of the machine starts detached (outside any supervision) and which outlives it.
  Here the run starts its *own* epmd in the foreground on a free loopback port
  (``ERL_EPMD_PORT``), supervised like any service, so no two runs (nor a system RabbitMQ)
  share one and nothing is left behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import shutil
import socket
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from grenadier.errors import EnvironmentProblem, UsageError
from grenadier.host import free_port, require_port_free, write_private
from grenadier.services.accounts import service_user
from grenadier.services.api import ServiceSpec, Supervisor
from grenadier.services.external import split_url

#: the broker script itself: /usr/sbin/rabbitmq-server is a wrapper that su's and detaches
SERVER_SCRIPTS = ("/usr/lib/rabbitmq/bin/rabbitmq-server", "/usr/sbin/rabbitmq-server")
#: the system user the Debian package creates; the broker runs as it where grenadier is root
RABBIT_USER = "rabbitmq"
CREDENTIALS = "credentials.json"
#: AMQP 0-9-1 protocol header; a broker answers it with a Connection.Start method frame
AMQP_HEADER = b"AMQP\x00\x00\x09\x01"
REACH_TIMEOUT = 5.0


def amqp_answers(port: int, host: str = "127.0.0.1", timeout: float = 1.0) -> bool:
    """True when an AMQP 0-9-1 broker listens there (it sends Connection.Start)."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(AMQP_HEADER)
        frame = sock.recv(11)
    # frame type 1 (method), then channel (2), size (4), class 10 / method 10 = Connection.Start
    return len(frame) >= 11 and frame[0] == 1 and frame[7:11] == b"\x00\x0a\x00\x0a"


class MessageBus(ABC):
    """Where Heat's RPC goes (``[DEFAULT] transport_url``)."""

    kind: str = ""

    @abstractmethod
    def start(self, supervisor: Supervisor) -> None:
        """Bring the broker up, or make sure an existing one answers."""

    @abstractmethod
    def transport_url(self) -> str:
        """oslo.messaging's transport URL, secret included (it goes in heat.conf only)."""

    def describe(self) -> dict[str, object]:
        """What the run directory may show (no password)."""
        parts = urlsplit(self.transport_url())
        host = parts.hostname or ""
        return {"kind": self.kind, "url": f"{parts.scheme}://{parts.username or ''}:***@{host}"
                                           f":{parts.port or 5672}{parts.path}"}


def check_bus_url(url: str) -> None:
    """One line when ``url`` is no rabbit://USER:PASS@HOST:PORT/ URL (password never shown)."""
    parts = split_url(url, "--bus-url")
    if parts.scheme not in ("rabbit", "amqp") or not parts.hostname:
        raise UsageError("--bus-url must be a rabbit://USER:PASS@HOST:PORT/ URL",
                         hint=f"got scheme {parts.scheme or 'none'!r}, "
                              f"host {parts.hostname or 'none'!r}")


class ExternalBus(MessageBus):
    """A RabbitMQ the user runs (``--bus-url``): used, never started nor stopped."""

    kind = "external"

    def __init__(self, url: str) -> None:
        check_bus_url(url)
        self.url = url

    def transport_url(self) -> str:
        return self.url

    def start(self, supervisor: Supervisor) -> None:
        parts = urlsplit(self.url)
        host, port = parts.hostname or "", parts.port or 5672
        try:
            ok = amqp_answers(port, host, REACH_TIMEOUT)
        except OSError as exc:
            raise EnvironmentProblem(f"message bus {host}:{port} is not reachable: "
                                     f"{exc.strerror or exc}", hint="check --bus-url") from exc
        if not ok:
            raise EnvironmentProblem(f"{host}:{port} does not speak AMQP 0-9-1",
                                     hint="check --bus-url")


@dataclass(frozen=True)
class RabbitCredentials:
    """What a resumed run must find again: heat.conf already holds the URL."""

    user: str
    password: str
    node: str
    amqp_port: int
    dist_port: int
    epmd_port: int


def find_server_script() -> Path:
    for candidate in SERVER_SCRIPTS:
        if Path(candidate).is_file():
            return Path(candidate)
    raise EnvironmentProblem("rabbitmq-server is not installed",
                             hint="apt-get install rabbitmq-server, or use --bus-url")


def find_epmd() -> Path:
    found = shutil.which("epmd") or shutil.which("epmd", path="/usr/lib/erlang/bin")
    if found is None:
        raise EnvironmentProblem("epmd (Erlang) is not installed",
                                 hint="apt-get install rabbitmq-server, or use --bus-url")
    return Path(found)


class RabbitMQ(MessageBus):
    """A private broker in ``<run>/rabbitmq``: two supervised services, epmd and the node."""

    kind = "rabbitmq"

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.dir = run_dir / "rabbitmq"
        self.user: str | None = None  # its system user, known once it is prepared
        self.creds = self._credentials()

    def _credentials(self) -> RabbitCredentials:
        path = self.dir / CREDENTIALS
        with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
            data = json.loads(path.read_text(encoding="utf-8"))
            fields = RabbitCredentials.__dataclass_fields__
            return RabbitCredentials(**{k: data[k] for k in fields})
        digest = hashlib.sha256(str(self.run_dir.resolve()).encode()).hexdigest()[:10]
        creds = RabbitCredentials("grenadier", secrets.token_hex(16),
                                  f"grenadier-{digest}@localhost", free_port(),
                                  free_port(), free_port())
        write_private(path, json.dumps(asdict(creds)))
        return creds

    def transport_url(self) -> str:
        c = self.creds
        return f"rabbit://{c.user}:{c.password}@127.0.0.1:{c.amqp_port}/"

    def describe(self) -> dict[str, object]:
        c = self.creds
        return {**super().describe(), "node": c.node, "amqp_port": c.amqp_port,
                "dist_port": c.dist_port, "epmd_port": c.epmd_port}

    def config_text(self) -> str:
        """rabbitmq.conf: loopback listener, the run's own user, no guest account."""
        c = self.creds
        return (f"listeners.tcp.1 = 127.0.0.1:{c.amqp_port}\n"
                f"default_user = {c.user}\ndefault_pass = {c.password}\n"
                "default_vhost = /\n"
                # a test broker on a shared machine: don't stop publishers at 40% of RAM
                "vm_memory_high_watermark.relative = 0.8\n")

    def env(self) -> dict[str, str]:
        """Every RabbitMQ path and port, so that nothing of /etc or /var/lib is used."""
        c, d = self.creds, self.dir
        return {
            "HOME": str(d / "home"),  # the Erlang cookie is created there
            "ERL_EPMD_PORT": str(c.epmd_port),
            "RABBITMQ_NODENAME": c.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(c.amqp_port),
            "RABBITMQ_DIST_PORT": str(c.dist_port),
            "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(d / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(d / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
            "RABBITMQ_PLUGINS_EXPAND_DIR": str(d / "plugins-expand"),
            "RABBITMQ_MNESIA_BASE": str(d / "mnesia"),
            "RABBITMQ_PID_FILE": str(d / "rabbitmq.pid"),
            # the broker's own files (upgrade log, crash dump) must be writable by its user
            "RABBITMQ_LOG_BASE": str(d / "log"),
            "ERL_CRASH_DUMP": str(d / "log" / "erl_crash.dump"),
            "RABBITMQ_LOGS": "-",  # to stdout: the supervisor's per-service log
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def _prepare(self) -> None:
        for sub in ("home", "mnesia", "plugins-expand", "log"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        write_private(self.dir / "rabbitmq.conf", self.config_text())
        (self.dir / "enabled_plugins").write_text("[].\n", encoding="utf-8")
        (self.dir / "rabbitmq-env.conf").write_text("# grenadier: everything is in the "
                                                    "environment\n", encoding="utf-8")
        self.user = service_user(RABBIT_USER, self.run_dir)
        if self.user:
            for path in [self.dir, *self.dir.rglob("*")]:
                shutil.chown(path, self.user, self.user)

    def _check_ports(self) -> None:
        c = self.creds
        for what, port in (("AMQP", c.amqp_port), ("distribution", c.dist_port),
                           ("epmd", c.epmd_port)):
            require_port_free(port, f"{what} port of this run's RabbitMQ",
                              hint="stop what holds it, or start a new run")

    def _epmd_ready(self) -> bool:
        # NAMES_REQ ("n"): epmd answers with its own port number, then the registered nodes
        with socket.create_connection(("127.0.0.1", self.creds.epmd_port), timeout=1) as sock:
            sock.sendall(b"\x00\x01n")
            answer = sock.recv(4)
        return int.from_bytes(answer, "big") == self.creds.epmd_port if len(answer) == 4 else False

    def start(self, supervisor: Supervisor) -> None:
        script, epmd = find_server_script(), find_epmd()
        self._prepare()
        self._check_ports()
        logs = self.run_dir / "logs"
        supervisor.start(ServiceSpec(
            name="rabbitmq-epmd", log=logs / "rabbitmq-epmd.log", user=self.user,
            cmd=[str(epmd), "-port", str(self.creds.epmd_port), "-address", "127.0.0.1"],
            ready=self._epmd_ready, ready_timeout=10, stop_timeout=5))
        supervisor.start(ServiceSpec(
            name="rabbitmq", cmd=[str(script)], env=self.env(), cwd=self.dir, user=self.user,
            log=logs / "rabbitmq.log", ready=lambda: amqp_answers(self.creds.amqp_port),
            ready_timeout=90, stop_timeout=30))

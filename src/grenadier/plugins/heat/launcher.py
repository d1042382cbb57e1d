# mypy: disable-error-code="import-not-found"
# ruff: noqa: E402  (imports follow the monkey-patching that an eventlet-only release needs)
"""Heat's engine and REST API in ONE process (openstack-heat 25, 26, 27); stdlib + Heat/oslo only.

    <release-venv>/bin/python launcher.py --config-file heat.conf [--config-file extra.conf]
        [--hold-until GO_FILE]

Why: `transport_url = fake://` is an in-process bus and the oslo.service launcher forks the
engine even with one worker, so here the engine service is started directly, no fork.
Exit codes: 0 stopped by SIGTERM/SIGINT; 1 startup failed (one line on stderr, traceback in the
log); 2 bad command line / missing config file; 3 API port not bindable (one line on stderr).
Ready when `GET http://127.0.0.1:<[heat_api] bind_port>/` answers (300, versions document); then
"ready http://HOST:PORT/" is printed on stdout.  Logs (oslo.log, with access lines): log_file.
--hold-until: started ahead of its step: import Heat and load its resource plugins (most of a
start's two seconds), then wait until GO_FILE exists before reading its config files again,
binding the port or touching the database (a stop request meanwhile ends it with 0).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


def _eventlet_only() -> bool:
    """Whether this release's oslo.service has no threading backend (2025.1 and older).

    Heat 24's heat-engine then monkey-patches with eventlet before anything else is imported;
    so must this process, or the engine's green threads never run beside our real ones.
    Found by looking at the files: importing oslo.service would be too late to patch.
    """
    spec = importlib.util.find_spec("oslo_service")
    places = (spec.submodule_search_locations if spec is not None else None) or []
    return bool(places) and not any(Path(p, "backend", name).exists()
                                    for p in places for name in ("_threading", "threading"))


EVENTLET_ONLY = _eventlet_only()
if EVENTLET_ONLY and __name__ == "__main__":
    import eventlet

    eventlet.monkey_patch()

import contextlib
import logging as stdlib_logging
import os
import signal
import socketserver
import sys
import threading
import types
import warnings
from typing import Any
from wsgiref import simple_server

STOP_GRACE_SECONDS = 5.0  # how long the engine may finish in-flight work before we exit anyway
HOLD_OPTION = "--hold-until"
HOLD_POLL_SECONDS = 0.02
_STOP = threading.Event()


def _on_signal(signum: int, frame: types.FrameType | None) -> None:
    _STOP.set()


if __name__ == "__main__":
    # Installed before the slow imports: a stop requested while starting takes effect once
    # startup is done, instead of killing the process by the default action.
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)

# futurist imports eventlet, which warns on stderr that it is deprecated; keep stderr for errors.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

# heat-engine (25-27) selects oslo.service's threading backend before importing oslo.service:
# its default is eventlet, which nothing has monkey-patched here.
if not EVENTLET_ONLY:
    with contextlib.suppress(ImportError):  # an older oslo.service has no backends to choose
        from oslo_service import backend as _backend

        _backend.init_backend(_backend.BackendType.THREADING)

from oslo_config import cfg  # after the backend choice
from oslo_log import log as logging

CONF = cfg.CONF
LOG = logging.getLogger("grenadier.launcher")
# heat-api and its [heat_api] options were removed in 25.0.0: the launcher owns them now.
_API_OPTS = [
    cfg.HostAddressOpt("bind_host", default="127.0.0.1"),
    cfg.PortOpt("bind_port", default=8004),
]


class _Server(socketserver.ThreadingMixIn, simple_server.WSGIServer):
    daemon_threads = True  # a hung request must not keep the process alive on stop
    block_on_close = False
    request_queue_size = 128  # wsgiref's listen(5) resets connections of concurrent clients


class _Handler(simple_server.WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        LOG.info("%s %s", self.address_string(), format % args)  # to the log, not stderr


def _grant_token_roles(noauth_cls: Any) -> None:
    """Make Heat's noauth middleware grant the roles of its [noauth] token_response.

    noauth hard-codes the one role `admin`, but with oslo.policy's new defaults (on by default
    in today's oslo.policy) Heat's rules ask for `member` / `reader`, which real Keystone implies
    for an admin; plain noauth answers 403 "You are not authorized to use stacks:create.".
    Passing on the token's roles ("admin,member,reader") is what keystonemiddleware would do.
    """
    build = noauth_cls._build_user_headers

    def build_user_headers(self: Any, env: dict[str, Any]) -> dict[str, Any]:
        headers: dict[str, Any] = build(self, env)
        token = (getattr(self, "_token_info", None) or {}).get("token", {})
        roles = [r["name"] for r in token.get("roles", []) if "name" in r]
        if roles:
            headers["HTTP_X_ROLES"] = ",".join(roles)
        return headers

    noauth_cls._build_user_headers = build_user_headers


def _sqlite_immediate_transactions(timeout_ms: int = 60000) -> None:
    """On SQLite, open every transaction with BEGIN IMMEDIATE and wait for locks.

    pysqlite opens transactions lazily with a plain BEGIN; when two of Heat's threads (the
    convergence workers of even one stack, or the engine heartbeat) both read then write, the
    second upgrade to a write lock fails at once with "database is locked", which no busy
    timeout prevents and Heat does not retry (measured: 1 of 8 serial creates failed).
    Taking the write lock at BEGIN makes the busy timeout apply: writers queue instead of
    failing. This is SQLAlchemy's documented pysqlite recipe; other databases are untouched.
    """
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    def _connect(dbapi_connection: Any, record: Any) -> None:
        if type(dbapi_connection).__module__.startswith("sqlite3"):
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
            dbapi_connection.execute(f"PRAGMA busy_timeout = {timeout_ms}")

    def _begin(conn: Any) -> None:
        # Class-level listeners run before oslo.db's own, which emits a plain BEGIN unless
        # it sees its "in_transaction" marker (and clears it on commit and rollback).
        if conn.dialect.name == "sqlite" and "in_transaction" not in conn.info:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            conn.info["in_transaction"] = True

    event.listen(Engine, "connect", _connect)
    event.listen(Engine, "begin", _begin)


class _StartupFailed(Exception):
    """Startup cannot go on: ``code`` is the exit code, the message the one stderr line."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _parse_config() -> str:
    """Register our options, parse the command line as heat-engine does; the release string."""
    logging.register_options(CONF)
    # Heat 24 still has heat-api, whose [heat_api] options its heat.common.wsgi registers on
    # import: import it first, and keep the release's own definition of the options.
    from heat.common import config  # noqa: F401 (registers the release's options)

    with contextlib.suppress(cfg.DuplicateOptError):
        CONF.register_opts(_API_OPTS, group="heat_api")
    from heat import version

    release: str = version.version_info.version_string()
    _read_config(release)
    return release


def _read_config(release: str) -> None:
    """Parse the command line and read the config files (again: values are replaced)."""
    try:  # the way heat-engine / heat-wsgi-api parse theirs (project "heat")
        CONF(sys.argv[1:], project="heat", prog="heat-all", version=release)
    except cfg.Error as exc:  # e.g. "Failed to find some config files: ..."
        raise _StartupFailed(2, str(exc)) from exc
    logging.setup(CONF, "heat")


def _hold_option(argv: list[str]) -> tuple[str | None, list[str]]:
    """The go file of ``--hold-until`` (ours, not oslo.config's) and the other arguments."""
    if HOLD_OPTION not in argv:
        return None, argv
    at = argv.index(HOLD_OPTION)
    if at + 1 >= len(argv):
        raise _StartupFailed(2, f"{HOLD_OPTION} needs a file name")
    return argv[at + 1], argv[:at] + argv[at + 2:]


def _load_ahead() -> None:
    """What the start imports and loads first, none of which listens or reads the database:
    the engine's and the API's modules, the resource plugins (the engine's own first call)."""
    try:
        from heat.api.openstack import v1  # noqa: F401 (the API app's module)
        from heat.engine import resources
        from heat.engine import service as engine_service  # noqa: F401

        resources.initialise()
    except Exception as exc:
        LOG.exception("startup failed")
        raise _StartupFailed(1, f"startup failed: {exc!r}") from exc


def _held(go: str) -> bool:
    """Wait until ``go`` exists: True; False when a stop was asked first."""
    LOG.info("loaded; waiting for %s", go)
    while not os.path.exists(go):
        if _STOP.wait(HOLD_POLL_SECONDS):
            return False
    return True


def _bind() -> _Server:
    # Bind before the slow engine start so that a busy port fails fast; clients connecting
    # meanwhile wait in the backlog and are answered once serving starts.
    host, port = CONF.heat_api.bind_host, CONF.heat_api.bind_port
    try:
        return _Server((host, port), _Handler)
    except OSError as exc:
        raise _StartupFailed(3, f"cannot bind {host}:{port}: {exc.strerror or exc}") from exc


def _start_heat() -> tuple[Any, Any]:
    """The started engine service and the API's WSGI app."""
    from heat.common import config, messaging, noauth
    from heat.engine import service as engine_service
    from heat.rpc import api as rpc_api

    try:
        _grant_token_roles(noauth.NoAuthProtocol)
        if CONF.database.connection and CONF.database.connection.startswith("sqlite"):
            _sqlite_immediate_transactions()
        config.startup_sanity_check()  # e.g. auth_encryption_key must be 32 characters
        config.set_config_defaults()  # CORS defaults, as heat-wsgi-api sets them
        messaging.setup()  # transport from [DEFAULT] transport_url (fake://)
        engine = engine_service.EngineService(CONF.host, rpc_api.ENGINE_TOPIC)
        engine.start()  # RPC server, worker, heartbeat timer; no fork
        return engine, config.load_paste_app("heat-api")  # [paste_deploy] flavor: pipeline
    except Exception as exc:
        LOG.exception("startup failed")
        raise _StartupFailed(1, f"startup failed: {exc!r}") from exc


def _stop(server: _Server, engine: Any) -> None:
    """Stop taking requests first, then let the engine finish (bounded) what it is doing."""
    from heat.common import messaging

    server.shutdown()
    server.server_close()
    stopper = threading.Thread(target=engine.stop, name="engine-stop", daemon=True)
    stopper.start()
    stopper.join(STOP_GRACE_SECONDS)
    if stopper.is_alive():
        LOG.warning("engine did not stop within %.0f s; exiting anyway", STOP_GRACE_SECONDS)
    else:
        messaging.cleanup()
        LOG.info("stopped")


def main() -> int:
    try:
        go, sys.argv[1:] = _hold_option(sys.argv[1:])
        release = _parse_config()
        if go is not None:
            _load_ahead()
            if not _held(go):
                return 0
            _read_config(release)  # its files as they are now: the run may change them
        server = _bind()
        try:
            engine, app = _start_heat()
        except _StartupFailed:
            server.server_close()
            raise
    except _StartupFailed as exc:
        print(f"launcher: {exc}", file=sys.stderr)
        return exc.code
    server.set_app(app)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="wsgi", daemon=True
    ).start()
    host, port = CONF.heat_api.bind_host, CONF.heat_api.bind_port
    LOG.info("Heat %s (engine and API in one process) serving on http://%s:%d/", release, host,
             port)
    print(f"ready http://{host}:{port}/", flush=True)
    while not _STOP.wait(0.5):  # a timeout keeps the main thread free to run signal handlers
        pass
    LOG.info("stop requested")
    _stop(server, engine)
    return 0


if __name__ == "__main__":
    code = main()
    # Some oslo.messaging / thread-group threads are not daemons: flush the logs and leave
    # without joining them, so that a stop is never held up by a stuck thread.
    sys.stdout.flush()
    sys.stderr.flush()
    stdlib_logging.shutdown()
    os._exit(code)

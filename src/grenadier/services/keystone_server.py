# mypy: disable-error-code="import-not-found"
"""Keystone's bootstrap and its API server, run with the *keystone venv's* Python; stdlib only.

    python keystone_server.py bootstrap --config-file keystone.conf --public-url URL
    python keystone_server.py serve --config-file keystone.conf --port PORT

``bootstrap`` runs ``keystone-manage`` db_sync, fernet_setup, credential_setup and bootstrap in
one process (each ``keystone-manage`` call spends about 3 s importing Keystone: 16 s -> 4 s);
the admin password comes from the environment (``OS_BOOTSTRAP_PASSWORD``), never argv.
``serve`` serves Keystone's WSGI application on 127.0.0.1, one request at a time, with a
listen backlog of 128 (wsgiref's own server has 5, and resets concurrent clients): gunicorn
cannot serve it (Keystone parses ``sys.argv`` itself). Exit codes: 0 stopped by SIGTERM or
SIGINT; 1 startup failed; 2 bad command line; 3 port not bindable. Ready when ``GET /v3``
answers 200.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socketserver
import sys
import threading
import types
import warnings
from typing import Any
from wsgiref import simple_server

# This file sits beside grenadier's own keystone.py, which would shadow the real keystone
# package: Python puts a script's directory first on sys.path.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

_STOP = threading.Event()
# oslo.service imports eventlet, which warns on stderr that it is deprecated; keep stderr clean
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
LOG = logging.getLogger("grenadier.keystone_server")


def _on_signal(signum: int, frame: types.FrameType | None) -> None:
    _STOP.set()


class _Server(socketserver.ThreadingMixIn, simple_server.WSGIServer):
    daemon_threads = True  # a hung request must not keep the process alive on stop
    block_on_close = False
    request_queue_size = 128  # wsgiref's listen(5) resets connections of concurrent clients


class _Handler(simple_server.WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        LOG.info("%s %s", self.address_string(), format % args)  # to the log file, not stderr


class _OneAtATime:
    """Serves one request at a time (connections still queue in a large backlog).

    Measured: with requests served concurrently in threads, Keystone mixed up the request
    contexts of two requests (a project-scoped trust creation was refused as "made with domain
    scope", the scope of the stack domain admin's request next to it), and Keystone on SQLite
    cannot run two write transactions at once either. Deployments run Keystone in processes
    with one thread each (devstack's uwsgi); one at a time is the single-process equivalent.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        with self.lock:
            # the whole body is produced under the lock: the request is over when it is
            return list(self.app(environ, start_response))


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="keystone_server")
    sub = parser.add_subparsers(dest="command", required=True)
    boot = sub.add_parser("bootstrap")
    boot.add_argument("--config-file", required=True)
    boot.add_argument("--public-url", required=True)
    boot.add_argument("--region", default="RegionOne")
    serve = sub.add_parser("serve")
    serve.add_argument("--config-file", required=True)
    serve.add_argument("--port", type=int, required=True)
    serve.add_argument("--host", default="127.0.0.1")
    return parser.parse_args(argv)


def bootstrap(config_file: str, public_url: str, region: str) -> int:
    from keystone import conf
    from keystone.cmd import cli

    owner = ["--keystone-user", str(os.geteuid()), "--keystone-group", str(os.getegid())]
    commands = [
        ["db_sync"],
        ["fernet_setup", *owner],
        ["credential_setup", *owner],
        ["bootstrap", "--bootstrap-public-url", public_url, "--bootstrap-internal-url",
         public_url, "--bootstrap-admin-url", public_url, "--bootstrap-region-id", region],
    ]
    for command in commands:
        try:  # keystone-manage's own main, as if run from the shell
            cli.main(argv=["keystone-manage", "--config-file", config_file, *command])
        except SystemExit as exc:
            if exc.code not in (None, 0):
                print(f"keystone_server: {command[0]} failed (exit {exc.code})", file=sys.stderr)
                return 1
        except Exception as exc:  # the traceback is in Keystone's log file
            print(f"keystone_server: {command[0]} failed: {exc!r}", file=sys.stderr)
            return 1
        conf.CONF.reset()  # the next command parses its own arguments
        print(f"keystone_server: {command[0]} done", flush=True)
    return 0


def serve(config_file: str, host: str, port: int) -> int:
    try:
        server = _Server((host, port), _Handler)
    except OSError as exc:
        print(f"keystone_server: cannot bind {host}:{port}: {exc.strerror or exc}",
              file=sys.stderr)
        return 3
    # Keystone parses sys.argv with its own oslo.config: give it nothing but the program name
    sys.argv = sys.argv[:1]
    try:
        from keystone.server.flask import core

        app = core.initialize_application(name="public", config_files=[config_file])
    except Exception as exc:
        LOG.exception("startup failed")
        print(f"keystone_server: startup failed: {exc!r}", file=sys.stderr)
        server.server_close()
        return 1
    server.set_app(_OneAtATime(app))
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="wsgi",
                     daemon=True).start()
    print(f"ready http://{host}:{port}/v3", flush=True)
    while not _STOP.wait(0.5):  # a timeout keeps the main thread free to run signal handlers
        pass
    server.shutdown()
    server.server_close()
    return 0


def main(argv: list[str]) -> int:
    try:
        args = _parse(argv)
    except SystemExit as exc:
        return 2 if exc.code else 0
    if args.command == "bootstrap":
        return bootstrap(args.config_file, args.public_url, args.region)
    return serve(args.config_file, args.host, args.port)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)  # oslo threads that are not daemons must not hold up a stop

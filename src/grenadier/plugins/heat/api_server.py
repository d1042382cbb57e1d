# mypy: disable-error-code="import-not-found"
"""Heat's REST API (the application heat-wsgi-api serves) on a multi-threaded WSGI server.

    <release-venv>/bin/python api_server.py --site DIR --port P [--threads N] \\
        -- --config-file heat.conf [--log-file F]

Why: heat-wsgi-api as shipped serves with wsgiref's ``make_server``, one request at a time ("for
testing only", its banner says): a request waiting for an engine's RPC answer holds every other
request (12-15 s stalls were measured while an engine stopped). Deployments serve the same
application from a multi-threaded server (devstack: uWSGI). Here it is waitress: pure Python,
no dependencies, pinned at the same version by the upper-constraints of every OpenStack series
from 2025.1 on. It lives in its own cached tool venv (``--site``, its site-packages), added at
the END of ``sys.path``, so that nothing the release ships is shadowed.

The application is built as heat-wsgi-api builds it (``init_application``, which parses the
options after ``--`` as Heat's own ``sys.argv``). Stdlib + Heat/oslo + waitress only.
Exit codes: 2 bad command line; 3 port not bindable; 1 startup failed (one line on stderr).
Ready when ``GET http://HOST:PORT/`` answers; "ready http://HOST:PORT/" is printed then.
SIGTERM ends the process at once, as it ends heat-wsgi-api.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from typing import Any

#: the callable heat-wsgi-api's script calls (its ``wsgi_scripts`` entry point, Heat 24-27)
APPLICATION = "heat.api.openstack.wsgi:init_application"


def _arguments(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    own, heat = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv \
        else (argv, [])
    parser = argparse.ArgumentParser(prog="api_server.py")
    parser.add_argument("--site", required=True, help="site-packages holding waitress")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--application", default=APPLICATION)
    return parser.parse_args(own), heat


def _application(spec: str, heat_argv: list[str]) -> Any:
    module, _, name = spec.partition(":")
    sys.argv[1:] = heat_argv  # init_application parses Heat's options from sys.argv
    return getattr(importlib.import_module(module), name)()


def _not_yet(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    # never called: the server serves once Heat's application replaced it (see main)
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"starting\n"]


def main(argv: list[str]) -> int:
    args, heat_argv = _arguments(argv)
    sys.path.append(args.site)
    # futurist and oslo import eventlet, which warns that it is deprecated: keep stderr for
    # errors
    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
    from waitress import create_server  # type: ignore[import-untyped]

    # Bind before the slow application start, so that a busy port fails fast; clients
    # connecting meanwhile wait in the backlog, answered once the server runs.
    try:
        server = create_server(_not_yet, host=args.host, port=args.port, threads=args.threads,
                               ident="heat-api", clear_untrusted_proxy_headers=True)
    except OSError as exc:
        print(f"api_server: cannot bind {args.host}:{args.port}: {exc.strerror or exc}",
              file=sys.stderr)
        return 3
    try:
        server.application = _application(args.application, heat_argv)
    except Exception as exc:  # Heat's own startup errors: one line here, details in its log
        print(f"api_server: startup failed: {exc!r}", file=sys.stderr)
        return 1
    print(f"ready http://{args.host}:{args.port}/", flush=True)
    server.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

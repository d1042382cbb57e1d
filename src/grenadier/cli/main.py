"""``grenadier``: the console script. Expected failures print one line; bugs show a traceback."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence

from grenadier import __version__
from grenadier.cli.arguments import add_constraints
from grenadier.cli.db_url import PS_NOTE, add_file_argument
from grenadier.errors import ExitCode, GrenadierError
from grenadier.execute import reaper, signals
from grenadier.phases.options import (
    AUTHS,
    BUSES,
    DATABASES,
    MAX_ENGINES,
    MODES,
    SHUTDOWN_MODES,
    TOPOLOGIES,
    step_names,
)
from grenadier.plugins.api import SMOKE_MODES


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse's own exit code 2 matches ExitCode.USAGE; keep its one-line style.
        self.print_usage(sys.stderr)
        self.exit(ExitCode.USAGE, f"grenadier: error: {message}\n")


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _add_run(sub: argparse._SubParsersAction[_Parser]) -> None:
    # no abbreviations: `--ba` in a matrix path's extra arguments must not become --base
    run = sub.add_parser("run", help="upgrade a deployment from --base to --target and check it",
                         allow_abbrev=False)
    run.add_argument("--base",
                     help="base release: 26.0.2, openstack-heat==26.0.2, latest, latest-1, "
                          "or a Heat source tree (default: latest-1)")
    run.add_argument("--target", help="target release (default: latest)")
    run.add_argument("--db", choices=DATABASES, default="postgresql",
                     help="database backend (default: embedded postgresql)")
    server = run.add_mutually_exclusive_group()
    server.add_argument("--db-url", help="use an existing PostgreSQL/MySQL server at this URL "
                                         f"({PS_NOTE}: prefer --db-url-file)")
    add_file_argument(server)
    run.add_argument("--stop-after", metavar="STEP",
                     help=f"stop after STEP (cold: {', '.join(step_names('cold'))}; rolling: "
                          f"{', '.join(step_names('rolling'))})")
    run.add_argument("--only", metavar="STEP", help="run only STEP (with --resume: of that run)")
    run.add_argument("--resume", metavar="RUN_DIR",
                     help="continue a run from its first unfinished step")
    run.add_argument("--shutdown", choices=SHUTDOWN_MODES, default="graceful",
                     help="stop Heat gracefully or kill it (crash scenario)")
    run.add_argument("--workdir", default=".grenadier", help="where run directories go")
    run.add_argument("--cache-dir", help="release cache (default: $GRENADIER_CACHE or user cache)")
    add_constraints(run)
    run.add_argument("--environment-from", metavar="RUN_DIR",
                     help="rebuild exactly the release venvs of an earlier run from its "
                          "releases/*-freeze.txt (base and target are that run's)")
    run.add_argument("--port", type=int, help="Heat API port on 127.0.0.1 (default: a free one)")
    run.add_argument("--tests", action="append", default=[], metavar="DIR",
                     help="add your own upgrade tests (repeatable)")
    run.add_argument("--config", action="append", default=[], metavar="FILE",
                     help="merge your own heat.conf file into the run's config (repeatable)")
    run.add_argument("--checks", type=_csv, default=[], help="run only these checks (comma list)")
    run.add_argument("--skip-checks", type=_csv, default=[], help="skip these checks")
    run.add_argument("--keep-running", action="store_true",
                     help="leave the services up at the end (stop them with 'grenadier down')")
    run.add_argument("--fail-on-stuck", action="store_true",
                     help="fail the run when a stack is left IN_PROGRESS by the dead engine "
                          "(--mode rolling: also on operations an engine's stop lost)")
    run.add_argument("--no-builtin-suite", action="store_true",
                     help="run only the tests given with --tests")
    run.add_argument("--smoke", choices=SMOKE_MODES, default=None,
                     help="smoke tests of smoke-base and smoke-target: builtin (grenadier's "
                          "own), upstream (Heat's heat-tempest-plugin API gabbits, run again in "
                          "post-upgrade and compared base against target) or all (default: "
                          "builtin; none with --no-builtin-suite)")
    run.add_argument("--control", action="store_true",
                     help="also run base -> base (stop, db_sync, restart the same release) "
                          "beside this run, and label every finding 'introduced by the "
                          "upgrade' or 'also without upgrade': only the first kind fails")
    run.add_argument("--fail-fast", action="store_true",
                     help="stop at the first failed step (by default a failed upgrade, "
                          "start-target or smoke-target lets the post-upgrade tests run)")
    _add_control_plane(run)
    _add_rolling(run)


def _add_rolling(run: argparse.ArgumentParser) -> None:
    rolling = run.add_argument_group("rolling upgrade")
    rolling.add_argument("--mode", choices=MODES, default="cold",
                         help="cold: stop Heat, upgrade, start the target; rolling: target "
                              "engines beside base engines, one service at a time, under a "
                              "live workload (needs --bus rabbit) (default: cold)")
    rolling.add_argument("--workload-ops", type=int, default=2000, metavar="N",
                         help="rolling: workload operations at most (default: 2000)")
    rolling.add_argument("--workload-min-ops", type=int, default=100, metavar="N",
                         help="rolling: the workload runs on after the upgrade until it made "
                              "N operations (default: 100)")
    rolling.add_argument("--workload-rate", type=float, default=2.0, metavar="OPS",
                         help="rolling: operations started per second (default: 2)")
    rolling.add_argument("--workload-seconds", type=float, default=600.0, metavar="S",
                         help="rolling: the workload stops after S seconds (default: 600)")
    rolling.add_argument("--workload-op-timeout", type=float, default=180.0, metavar="S",
                         help="rolling: a create, update or delete not finished after S "
                              "seconds fails (default: 180)")
    rolling.add_argument("--workload-mix", default="create=2,show=3,update=2,signal=2,delete=1",
                         metavar="MIX", help="rolling: operation weights (default: %(default)s)")


def _add_control_plane(run: argparse.ArgumentParser) -> None:
    plane = run.add_argument_group("control plane")
    plane.add_argument("--bus", choices=BUSES, default="fake",
                       help="Heat's RPC bus: in-process 'fake' (one process), or a private "
                            "RabbitMQ (needs the rabbitmq-server package) (default: fake)")
    plane.add_argument("--bus-url", metavar="URL",
                       help="use an existing RabbitMQ at rabbit://USER:PASS@HOST:PORT/ "
                            "(implies --bus rabbit)")
    plane.add_argument("--topology", choices=TOPOLOGIES, default=None,
                       help="one Heat process per release, or heat-wsgi-api plus --engines "
                            "heat-engine processes (default: split with a bus, else all-in-one)")
    plane.add_argument("--engines", type=int, default=1, metavar="N",
                       help=f"heat-engine processes per release, split only (1-{MAX_ENGINES}; "
                            "default: 1)")
    plane.add_argument("--auth", choices=AUTHS, default="noauth",
                       help="noauth, or a private Keystone with real tokens and trusts; the "
                            "tests then run as a non-admin user (default: noauth)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="grenadier", description="Upgrade-test OpenStack Heat on one machine: "
                     "install a base release, create stacks, upgrade, prove nothing broke.")
    parser.add_argument("--version", action="version", version=f"grenadier {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_run(sub)
    down = sub.add_parser("down", help="stop the services a run left running")
    down.add_argument("run_dir", metavar="RUN_DIR")
    from grenadier.cli import check_cmd, extra

    extra.add_commands(sub)
    check_cmd.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # SIGTERM and SIGHUP take Ctrl-C's clean path; whatever grenadier starts dies with it
    signals.install()
    reaper.enable()
    # Release venvs are cached and reused: letting their Pythons write bytecode once saves
    # about 3 s of every later Heat start and heat-manage call (measured).
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    from grenadier.cli.commands import dispatch
    from grenadier.cli.progress import ConsoleReporter

    reporter = ConsoleReporter()
    try:
        return int(dispatch(args, reporter))
    except GrenadierError as exc:
        reporter.console.print(f"grenadier: error: {exc.one_line()}", markup=False,
                               highlight=False)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        reporter.console.print("grenadier: interrupted", markup=False)
        return int(ExitCode.INTERRUPTED)
    except Exception:
        # a bug: its traceback, and an exit code no one can read as the upgrade's verdict
        traceback.print_exc()
        reporter.console.print("grenadier: internal error (a bug in grenadier; the traceback "
                               f"is above): exit {int(ExitCode.BUG)}", markup=False,
                               highlight=False)
        return int(ExitCode.BUG)
    finally:
        signals.settled()

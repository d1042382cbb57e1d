"""``grenadier``: the console script. Expected failures print one line; bugs show a traceback."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence

from grenadier import __version__
from grenadier.errors import ExitCode, GrenadierError
from grenadier.execute import reaper, signals
from grenadier.options.flags import add_flags
from grenadier.options.run import run_flags


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse's own exit code 2 matches ExitCode.USAGE; keep its one-line style.
        self.print_usage(sys.stderr)
        self.exit(ExitCode.USAGE, f"grenadier: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="grenadier", description="Upgrade-test OpenStack Heat on one machine: "
                     "install a base release, create stacks, upgrade, prove nothing broke.")
    parser.add_argument("--version", action="version", version=f"grenadier {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    # no abbreviations: `--ba` in a matrix path's extra arguments must not become --base
    run = sub.add_parser("run", help="upgrade a deployment from --base to --target and check it",
                         allow_abbrev=False)
    add_flags(run, run_flags())
    down = sub.add_parser("down", help="stop the services a run left running")
    down.add_argument("run_dir", metavar="RUN_DIR")
    from grenadier.cli import check_cmd, export_cmd, impact, matrix_cmd, report_cmd

    for command in (report_cmd, matrix_cmd, export_cmd, impact, check_cmd):
        command.add_parser(sub)
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

"""``grenadier report RUN_DIR [--open]``: re-render a run's report.html and say where it is."""

from __future__ import annotations

import argparse
import os
import sys
import webbrowser
from pathlib import Path
from typing import Any

from grenadier.cli.progress import ConsoleReporter
from grenadier.errors import ExitCode, UsageError
from grenadier.report.html import render_html

#: any of these makes a directory a run directory, even one whose run was killed early
RUN_FILES = ("report.json", "state.json", "run.json")


def add_parser(sub: argparse._SubParsersAction[Any]) -> None:
    report = sub.add_parser("report", help="re-render a run's report.html (and open it)")
    report.add_argument("run_dir", metavar="RUN_DIR", help="a run directory (.grenadier/runs/...)")
    report.add_argument("--open", action="store_true",
                        help="open the page in a web browser when a display is available")


def has_display() -> bool:
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def report_command(args: argparse.Namespace, reporter: ConsoleReporter) -> int:
    run_dir = Path(args.run_dir).resolve()
    if not run_dir.is_dir():
        raise UsageError(f"{args.run_dir} is not a directory",
                         hint="give a run directory, e.g. .grenadier/runs/<run>")
    if not any((run_dir / name).is_file() for name in RUN_FILES):
        raise UsageError(f"{args.run_dir} is not a grenadier run directory "
                         f"(none of {', '.join(RUN_FILES)})")
    path = render_html(run_dir)
    sys.stdout.write(f"{path}\n")
    sys.stdout.flush()
    if args.open:
        # A headless machine (CI, ssh) has no browser to show it in: the path above is the answer.
        if not has_display():
            reporter.say("no display: open the file above in a browser")
        elif not webbrowser.open(path.as_uri()):
            reporter.say("no web browser found: open the file above yourself")
    return int(ExitCode.OK)

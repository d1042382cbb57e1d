"""``grenadier matrix``: several upgrade paths, each an isolated run, with a summary table."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from grenadier.cli.progress import ConsoleReporter
from grenadier.errors import UsageError
from grenadier.host import unique_dir
from grenadier.matrix import paths as matrix_paths
from grenadier.matrix import results as matrix_results
from grenadier.matrix import run as matrix_run
from grenadier.matrix.paths import UpgradePath
from grenadier.matrix.results import PathResult
from grenadier.matrix.run import MatrixRequest
from grenadier.options.run import DATABASES, run_flag
from grenadier.releases.constraints import check_choice

RESULT_STYLE = {"passed": "green", "failed": "red", "interrupted": "yellow"}


def _jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def add_parser(sub: argparse._SubParsersAction[Any]) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        "matrix", help="run several upgrade paths side by side, each an isolated run",
        description="Run several upgrade paths in parallel, each an isolated `grenadier run` "
                    "(own run directory, ports and database), sharing the release cache.")
    parser.add_argument("--path", action="append", default=[], metavar="BASE:TARGET[:DB]",
                        help="an upgrade path, e.g. 24.1.1:26.0.2 or latest-1:./heat:mariadb "
                             "(repeatable)")
    parser.add_argument("--file", "-f", metavar="TOML", help="read the paths from a TOML file")
    parser.add_argument("--db", choices=DATABASES, default=matrix_paths.DEFAULT_DB,
                        help="database of --path entries that name none (default: postgresql)")
    parser.add_argument("--jobs", "-j", type=_jobs,
                        help="runs at once (default: what this machine holds; printed)")
    parser.add_argument("--run-arg", action="append", default=[], metavar="ARG",
                        help="pass ARG to every `grenadier run` (repeatable; "
                             "e.g. --run-arg=--shutdown=crash)")
    parser.add_argument("--workdir", default=".grenadier",
                        help="where the matrix folder (and each path's run directory) goes")
    run_flag("constraints").add_to(parser)
    parser.add_argument("--no-control", dest="control", action="store_false",
                        help="no control runs: by default each distinct base also runs base -> "
                             "base (no upgrade), once, and its paths' findings are labelled "
                             "'introduced by the upgrade' or 'also without upgrade'")
    parser.add_argument("--cache-dir",
                        help="release cache shared by every run (default: $GRENADIER_CACHE "
                             "or the user cache)")
    return parser


def _paths(args: argparse.Namespace) -> tuple[list[UpgradePath], int | None]:
    extra = matrix_paths.check_args(args.run_arg, "--run-arg")
    found, jobs = [], None
    if args.file:
        loaded = matrix_paths.load_file(Path(args.file))
        found += [UpgradePath(p.base, p.target, p.db, extra + p.args, p.name)
                  for p in loaded.paths]
        jobs = loaded.jobs
    found += [matrix_paths.parse_path(text, args.db, extra) for text in args.path]
    if not found:
        raise UsageError("no upgrade path given",
                         hint="use --path BASE:TARGET (repeatable) or --file paths.toml")
    matrix_paths.check_unique(found)
    return found, jobs


def summary_table(results: list[PathResult]) -> Table:
    table = Table(title=f"grenadier matrix: {matrix_results.verdict(results)}",
                  title_justify="left")
    for column in ("path", "result", "time", "findings per step", "report"):
        table.add_column(column, justify="right" if column == "time" else "left",
                         overflow="fold")
    for result in results:
        style = RESULT_STYLE.get(result.result, "red")
        html = result.report("report.html")
        report = " ".join(str(p) for p in (result.report(), html) if p) or str(result.log or "")
        # every cell is plain text: a path's name or a note may hold "[...]"
        table.add_row(Text(result.path.label), Text(result.result, style=style),
                      Text(f"{result.duration:.1f} s"), Text(matrix_results.step_cell(result)),
                      Text(report))
    return table


def matrix_command(args: argparse.Namespace, reporter: ConsoleReporter) -> int:
    paths, file_jobs = _paths(args)
    jobs, why = args.jobs or file_jobs, "as asked"
    if jobs is None:
        jobs, why = matrix_run.default_jobs(len(paths))
    directory = unique_dir(Path(args.workdir) / "matrix", time.strftime("%Y%m%d-%H%M%S"),
                           "matrix folder")
    reporter.console.print(f"grenadier matrix: {len(paths)} paths, {jobs} at once ({why})"
                           f"  ({directory})", markup=False, highlight=False)
    request = MatrixRequest(
        paths, directory, jobs,
        cache_dir=Path(args.cache_dir).resolve() if args.cache_dir else None,
        constraints=check_choice(args.constraints), control=args.control,
        # read at call time, so that tests can substitute a fake child
        child=matrix_run.CHILD_COMMAND)
    results = matrix_run.run_matrix(request, reporter.say)
    reporter.console.print(summary_table(results))
    reporter.console.print(f"matrix folder: {directory} ({matrix_results.MATRIX_JSON}, "
                           f"{matrix_results.SUMMARY_MD})", markup=False, highlight=False)
    return int(matrix_results.exit_code(results))

"""``grenadier check db``: the database upgrade rehearsed on a private copy (see
runner/rehearsal.py)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from grenadier.cli.db_url import ENV, db_url_from
from grenadier.cli.progress import ConsoleReporter
from grenadier.errors import UsageError
from grenadier.options.run import PS_NOTE, run_flag
from grenadier.releases.constraints import check_choice
from grenadier.report.publish import new_run_dir
from grenadier.runner.rehearsal import VERDICTS, Rehearsal, RehearsalOptions, prepare
from grenadier.services.dbcopy import PRIVATE, Source


def add_parser(sub: argparse._SubParsersAction[Any]) -> None:
    check = sub.add_parser("check", help="check one part of an existing deployment")
    kinds = check.add_subparsers(dest="check_command", required=True, metavar="WHAT",
                                 parser_class=type(check))
    db = kinds.add_parser(
        "db", allow_abbrev=False,
        help="migrate a private copy of an existing Heat database with --target and check it",
        description="Copy an existing Heat database into a private instance (the source is "
                    "only read), run the target's heat-manage db_sync on the copy, then the "
                    "database checks. The source is --db-url, --db-url-file or --db-dump; "
                    f"without any of them, the URL in the environment variable {ENV}.")
    # not required: GRENADIER_DB_URL may name the source instead (checked when run)
    source = db.add_mutually_exclusive_group()
    source.add_argument("--db-url", metavar="URL",
                        help="the database to copy: postgresql://, mysql:// or sqlite:///PATH "
                             f"({PS_NOTE}: prefer --db-url-file or ${ENV})")
    run_flag("db_url_file").add_to(source)
    source.add_argument("--db-dump", metavar="FILE",
                        help="a dump to load instead: pg_dump (plain, -Fc or -Fd), "
                             "mysqldump/mariadb-dump, or a SQLite database file")
    db.add_argument("--target", default="latest", help="target release (default: latest)")
    run_flag("workdir").add_to(db)
    run_flag("cache_dir").add_to(db)
    run_flag("checks").add_to(db, help="run only these database checks (comma list)")
    run_flag("skip_checks").add_to(db)
    run_flag("constraints").add_to(db)


def _source_url(args: argparse.Namespace) -> str:
    url = db_url_from(args, os.environ)
    if url is None:
        raise UsageError("check db needs a source: --db-url, --db-url-file or --db-dump",
                         hint=f"or set {ENV}")
    return url


def check_command(args: argparse.Namespace, reporter: ConsoleReporter) -> int:
    source = Source(dump=Path(args.db_dump)) if args.db_dump else Source(url=_source_url(args))
    options = RehearsalOptions(
        target=args.target, source=source, workdir=Path(args.workdir),
        cache_dir=Path(args.cache_dir).resolve() if args.cache_dir else None,
        checks=tuple(args.checks), skip_checks=tuple(args.skip_checks),
        constraints=check_choice(args.constraints))
    kind, _checks = prepare(options)  # bad input is one line, before a run directory exists
    run_dir = new_run_dir(options.workdir, "check-db", options.target)
    shown = options.shown()
    reporter.console.print(f"grenadier check db: {shown['db_url'] or shown['db_dump']} -> "
                           f"{options.target} on a private {PRIVATE[kind]} copy ({run_dir})",
                           markup=False, highlight=False)
    rehearsal = Rehearsal(options, run_dir, reporter)
    code = rehearsal.run()
    reporter.summary(rehearsal.results, VERDICTS[code], str(run_dir))
    if rehearsal.error is not None:
        raise rehearsal.error
    return int(code)

"""``grenadier export grenade|zuul|github DIR``: the upgrade tests on a CI system's machinery."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from grenadier.cli.progress import ConsoleReporter
from grenadier.errors import UsageError
from grenadier.exporters import exporters
from grenadier.exporters.base import (
    DEFAULT_INSTALL,
    DEFAULT_PATHS,
    UNDER_REVIEW,
    ExportSettings,
    write,
)
from grenadier.matrix import paths as matrix_paths
from grenadier.options.run import DATABASES

KINDS = ("grenade", "zuul", "github")
#: a pip requirement goes into shell and YAML verbatim: no quotes, no spaces, no `$`
_REQUIREMENT = re.compile(r"^[A-Za-z0-9_.+\-=<>!~,@:/#\[\]]+$")
NEXT_STEP = {
    "grenade": "enable it in the project's grenade job (docs/matrix-and-ci.md, 'grenade')",
    "zuul": "commit .zuul.d/ and playbooks/; Zuul picks the job up for check and gate",
    "github": "commit .github/workflows/; it runs on the next pull request",
}


def add_parser(sub: argparse._SubParsersAction[Any]) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        "export", help="write a grenade plugin, a Zuul job or a GitHub workflow",
        description="Write the upgrade tests for a CI system: a grenade plugin whose phases "
                    "run grenadier's suite, a voting Zuul job running the matrix, or a GitHub "
                    "Actions workflow with one job per upgrade path.")
    parser.add_argument("kind", choices=KINDS, help="what to write")
    parser.add_argument("directory", metavar="DIR", help="the project's root directory")
    parser.add_argument("--path", action="append", default=[], metavar="BASE:TARGET[:DB]",
                        help="an upgrade path (repeatable; default: "
                             f"{', '.join(DEFAULT_PATHS)}, for grenade the first of them); "
                             "'.' names the checkout under test")
    parser.add_argument("--file", "-f", metavar="TOML", help="read the paths from a TOML file")
    parser.add_argument("--under-review", action="store_true",
                        help=f"add {' and '.join(UNDER_REVIEW)}: the change under review as "
                             "the target, from the latest release and the one before")
    parser.add_argument("--db", choices=DATABASES, default=matrix_paths.DEFAULT_DB,
                        help="database of paths that name none")
    parser.add_argument("--jobs", type=int,
                        help="runs at once: on a Zuul node, or GitHub jobs (max-parallel) "
                             "(default: the file's jobs, else auto)")
    parser.add_argument("--install", default=DEFAULT_INSTALL, metavar="REQUIREMENT",
                        help="how CI installs grenadier: a pip requirement "
                             "(default: grenadier)")
    parser.add_argument("--constraints", default="auto", metavar="SERIES|FILE|URL|none",
                        help="zuul and github: the matrix's --constraints on the CI node (a "
                             "file as that node sees it) (default: auto)")
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    return parser


def _settings(args: argparse.Namespace) -> ExportSettings:
    if not _REQUIREMENT.match(args.install):
        raise UsageError(f"--install {args.install!r} is not a plain pip requirement")
    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs {args.jobs}: must be at least 1")
    found, jobs = [], args.jobs
    if args.file:
        # trees are kept as written: they exist on the CI node, not necessarily here
        loaded = matrix_paths.load_file(Path(args.file), resolve=False)
        found += loaded.paths
        jobs = jobs if jobs is not None else loaded.jobs
    texts = list(args.path) + (list(UNDER_REVIEW) if args.under_review else [])
    if not found and not texts:
        # grenade tests one path: the first reference one
        texts = list(DEFAULT_PATHS[:1] if args.kind == "grenade" else DEFAULT_PATHS)
    found += [matrix_paths.parse_path(t, args.db, resolve=False) for t in texts]
    matrix_paths.check_unique(found)
    if not _REQUIREMENT.match(args.constraints):
        raise UsageError(f"--constraints {args.constraints!r} is not a plain series, file or URL")
    return ExportSettings(found, install=args.install, jobs=jobs, constraints=args.constraints)


def export_command(args: argparse.Namespace, reporter: ConsoleReporter) -> int:
    settings = _settings(args)
    directory = Path(args.directory)
    files = exporters()[args.kind](settings)
    written = write(directory, files, force=args.force)
    reporter.console.print(f"grenadier export {args.kind}: {len(written)} files in {directory}",
                           markup=False, highlight=False)
    for path in written:
        reporter.say(str(path))
    reporter.say(f"paths: {', '.join(settings.path_args(args.kind))}")
    if settings.jobs is not None and args.kind != "grenade":
        reporter.say(f"jobs: {settings.jobs} at once")
    reporter.say(f"next: {NEXT_STEP[args.kind]}")
    return 0

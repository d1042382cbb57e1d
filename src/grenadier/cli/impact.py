"""``grenadier impact``: the Upgrade Impact section for a release pair, on stdout."""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from grenadier.cli.progress import ConsoleReporter
from grenadier.errors import ExitCode
from grenadier.releases import ReleaseCache, parse_spec
from grenadier.report.impact import build_impact, render_impact


def add_parser(sub: argparse._SubParsersAction[Any]) -> None:
    impact = sub.add_parser("impact", help="write the Upgrade Impact section for two releases")
    impact.add_argument("--base", default="latest-1")
    impact.add_argument("--target", default="latest")
    impact.add_argument("--format", choices=("md", "rst"), default="md")
    impact.add_argument("--cache-dir")


def impact_command(args: argparse.Namespace, reporter: ConsoleReporter) -> int:
    specs = [parse_spec(args.base), parse_spec(args.target)]
    cache = ReleaseCache(Path(args.cache_dir) if args.cache_dir else None)
    reporter.say(f"installing {args.base} and {args.target} into {cache.root} (cached)")
    with ThreadPoolExecutor(max_workers=2) as pool:
        base, target = pool.map(cache.ensure, specs)
    reporter.say(f"comparing {base.label} -> {target.label}")
    sys.stdout.write(render_impact(build_impact(base, target), args.format))
    return int(ExitCode.OK)

"""Sub-commands beyond ``run`` and ``down``."""

from __future__ import annotations

import argparse
from typing import Any


def add_commands(sub: argparse._SubParsersAction[Any]) -> None:
    from grenadier.cli import export_cmd, matrix_cmd, report_cmd

    report_cmd.add_parser(sub)
    matrix_cmd.add_parser(sub)
    export_cmd.add_parser(sub)
    impact = sub.add_parser("impact", help="write the Upgrade Impact section for two releases")
    impact.add_argument("--base", default="latest-1")
    impact.add_argument("--target", default="latest")
    impact.add_argument("--format", choices=("md", "rst"), default="md")
    impact.add_argument("--cache-dir")

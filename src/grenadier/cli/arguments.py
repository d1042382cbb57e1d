"""Arguments that several commands share, defined once."""

from __future__ import annotations

import argparse


def add_constraints(parser: argparse.ArgumentParser) -> None:
    """``--constraints``, the same for every command that installs releases."""
    parser.add_argument(
        "--constraints", default="auto", metavar="SERIES|FILE|URL|none",
        help="how release venvs get their libraries: auto = the upper-constraints of each "
             "release's OpenStack series (as OpenStack's gate installs it), else the package "
             "index as of the release's upload; a series (e.g. 2026.1), a constraints file or "
             "URL for every release; none = today's index (default: auto)")

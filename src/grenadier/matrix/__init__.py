"""``grenadier matrix``: several upgrade paths, each an isolated run, side by side."""

from __future__ import annotations

from grenadier.matrix.paths import MatrixFile, UpgradePath, check_unique, load_file, parse_path
from grenadier.matrix.results import PathResult, exit_code
from grenadier.matrix.run import MatrixRequest, default_jobs, run_matrix

__all__ = [
    "MatrixFile",
    "MatrixRequest",
    "PathResult",
    "UpgradePath",
    "check_unique",
    "default_jobs",
    "exit_code",
    "load_file",
    "parse_path",
    "run_matrix",
]

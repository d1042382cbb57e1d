"""The upgrade paths of a matrix: ``--path BASE:TARGET[:DB]`` entries or a small TOML file.

A TOML file looks like this (every key but ``base``/``target`` is optional)::

    db = "postgresql"          # default database of the paths below
    jobs = 2                   # default --jobs
    args = ["--shutdown", "crash"]   # extra `grenadier run` options for every path

    [[path]]
    base = "25.0.2"
    target = "27.0.1"          # skip-level
    db = "mariadb"
    args = ["--fail-on-stuck"]

Release specs are checked here, before any run starts, so that a typo costs no upgrade.
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from grenadier.errors import UsageError
from grenadier.phases.options import DATABASES
from grenadier.releases import parse_spec

DEFAULT_DB = "postgresql"
#: options the matrix sets itself for each run; a path may not override them
RESERVED_ARGS = ("--base", "--target", "--db", "--workdir", "--cache-dir", "--port",
                 "--resume", "--only", "--keep-running")
_TOP_KEYS = {"db", "jobs", "args", "path"}
_PATH_KEYS = {"base", "target", "db", "args", "name"}


@dataclass(frozen=True)
class UpgradePath:
    """One isolated ``grenadier run``: base -> target on a database, with extra run options."""

    base: str
    target: str
    db: str = DEFAULT_DB
    args: tuple[str, ...] = field(default=())
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or f"{_short(self.base)} -> {_short(self.target)} ({self.db})"

    @property
    def slug(self) -> str:
        """A directory name, unique within a matrix (see ``check_unique``)."""
        text = self.name or f"{_short(self.base)}-to-{_short(self.target)}-{self.db}"
        return re.sub(r"[^A-Za-z0-9.+-]+", "_", text)[:80]

    def run_args(self) -> list[str]:
        return ["--base", self.base, "--target", self.target, "--db", self.db, *self.args]


@dataclass
class MatrixFile:
    """What a TOML file holds: its paths and the defaults it sets."""

    paths: list[UpgradePath]
    jobs: int | None = None


def _short(spec: str) -> str:
    # a source tree is shown by its folder name, as run directories name it
    return Path(spec).name if "/" in spec else spec


def _spec(text: str, where: str, relative_to: Path | None, resolve: bool = True) -> str:
    """Validate a release spec; a source tree becomes an absolute path (children may cd).

    With ``resolve`` False a source tree is kept as written: CI exports name trees that exist
    only on the CI node (``.``, the change under review).
    """
    if not resolve and looks_like_path(text):
        return text
    if relative_to is not None and (text.startswith(".") or ("/" in text
                                                              and not text.startswith(("/", "~")))):
        text = str((relative_to / text).resolve())
    try:
        spec = parse_spec(text)
    except UsageError as exc:
        raise UsageError(f"{where}: {exc.message}", hint=exc.hint) from exc
    return str(spec.path) if spec.path is not None else spec.text


def looks_like_path(text: str) -> bool:
    """A spec that names a source tree rather than a release (same rule as ``parse_spec``)."""
    return text.startswith((".", "/", "~")) or "/" in text


def _db(name: str, where: str) -> str:
    if name not in DATABASES:
        raise UsageError(f"{where}: unknown database {name!r}", hint=f"use {', '.join(DATABASES)}")
    return name


def check_args(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"{where}: args must be a list of strings")
    for arg in value:
        if arg.split("=", 1)[0] in RESERVED_ARGS:
            raise UsageError(f"{where}: {arg} is set by the matrix for each path",
                             hint="give the path's own base/target/db keys instead")
    return tuple(value)


def parse_path(text: str, default_db: str = DEFAULT_DB, args: Sequence[str] = (), *,
               resolve: bool = True) -> UpgradePath:
    """``BASE:TARGET`` or ``BASE:TARGET:DB`` (``--path`` of ``grenadier matrix``)."""
    where = f"--path {text}"
    parts = text.split(":")
    if len(parts) not in (2, 3) or not all(p.strip() for p in parts):
        raise UsageError(f"{where}: expected BASE:TARGET or BASE:TARGET:DB",
                         hint="e.g. --path 25.0.2:26.0.2 or --path latest-1:latest:mariadb; "
                              "a path containing ':' goes in a TOML file")
    base, target = (_spec(p.strip(), where, None, resolve) for p in parts[:2])
    db = _db(parts[2].strip(), where) if len(parts) == 3 else _db(default_db, where)
    return UpgradePath(base, target, db, check_args(list(args), where))


def _toml() -> ModuleType:
    # tomllib is in the standard library from 3.11; on 3.10 the same parser ships as tomli
    name = "tomllib" if sys.version_info >= (3, 11) else "tomli"
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise UsageError("reading a TOML matrix file needs Python 3.11+ or the tomli package",
                         hint="pip install tomli, or give the paths with --path") from exc


def _load(path: Path) -> dict[str, Any]:
    toml = _toml()
    try:
        with path.open("rb") as handle:
            data: dict[str, Any] = toml.load(handle)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
    except toml.TOMLDecodeError as exc:
        raise UsageError(f"{path} is not valid TOML: {exc}") from exc
    return data


def _unknown(keys: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(keys) - allowed)
    if unknown:
        raise UsageError(f"{where}: unknown key(s) {', '.join(unknown)}",
                         hint=f"known keys: {', '.join(sorted(allowed))}")


def _path_entry(entry: Any, index: int, path: Path, db: str, args: tuple[str, ...],
                resolve: bool) -> UpgradePath:
    where = f"{path}: path #{index}"
    if not isinstance(entry, dict):
        raise UsageError(f"{where}: expected a [[path]] table")
    _unknown(entry, _PATH_KEYS, where)
    missing = [key for key in ("base", "target") if not isinstance(entry.get(key), str)]
    if missing:
        raise UsageError(f"{where}: {' and '.join(missing)} missing (a release spec string)")
    return UpgradePath(
        base=_spec(entry["base"], where, path.parent, resolve),
        target=_spec(entry["target"], where, path.parent, resolve),
        db=_db(str(entry.get("db", db)), where),
        args=args + check_args(entry.get("args", []), where),
        name=str(entry.get("name", "")),
    )


def load_file(path: Path, *, resolve: bool = True) -> MatrixFile:
    """Read a matrix TOML file; every mistake is one ``UsageError`` naming file and entry.

    ``resolve``: source trees become absolute paths (relative ones are relative to the file).
    """
    data = _load(path)
    _unknown(data, _TOP_KEYS, str(path))
    db = _db(str(data.get("db", DEFAULT_DB)), str(path))
    args = check_args(data.get("args", []), str(path))
    jobs = data.get("jobs")
    if jobs is not None and (not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1):
        raise UsageError(f"{path}: jobs must be a whole number of at least 1")
    entries = data.get("path", [])
    if not isinstance(entries, list) or not entries:
        raise UsageError(f"{path}: no [[path]] entries")
    paths = [_path_entry(entry, n, path, db, args, resolve)
             for n, entry in enumerate(entries, 1)]
    return MatrixFile(paths, jobs)


def check_unique(paths: Sequence[UpgradePath]) -> None:
    """Two paths with one directory name would share a run folder: refuse them."""
    seen: dict[str, UpgradePath] = {}
    for path in paths:
        if path.slug in seen:
            raise UsageError(f"upgrade path {path.label} is given twice",
                             hint="give each path once, or a distinct name in a TOML file")
        seen[path.slug] = path

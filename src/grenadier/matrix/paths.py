"""The upgrade paths of a matrix: ``--path BASE:TARGET[:DB]`` entries or a small TOML file.

A TOML file looks like this (every key but ``base``/``target`` is optional)::

    db = "postgresql"          # default database of the paths below
    jobs = 2                   # default --jobs
    args = ["--shutdown", "crash"]   # extra `grenadier run` options for every path

    [[path]]
    base = "24.1.1"
    target = "26.0.2"          # skip-level (SLURP)
    db = "mariadb"
    args = ["--fail-on-stuck"]

Release specs are checked here, before any run starts, so that a typo costs no upgrade.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from grenadier.errors import UsageError
from grenadier.host import safe_name
from grenadier.options.flags import add_flags, strings_of
from grenadier.options.run import DATABASES, run_flags
from grenadier.releases import parse_spec
from grenadier.releases.spec import looks_like_path

DEFAULT_DB = "postgresql"
#: ``grenadier run`` options (by their dest) the matrix sets itself for each run, or that make
#: no sense in a matrix; a path may not give them
RESERVED = ("base", "target", "db", "workdir", "cache_dir", "port", "resume", "only",
            "keep_running")
#: a path's folder name is at most this long
SLUG_LIMIT = 80
_UNSET = object()
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
        return self.name or f"{short(self.base)} -> {short(self.target)} ({self.db})"

    @property
    def slug(self) -> str:
        """A directory name, unique within a matrix (see ``check_unique``)."""
        return slug(self.name or f"{short(self.base)}-to-{short(self.target)}-{self.db}")

    def run_args(self, base: str = "", target: str = "") -> list[str]:
        """The ``grenadier run`` options of this path; ``base``/``target`` replace the specs.

        The path's own options come first: those the matrix sets come after them and win.
        """
        return [*self.args, "--base", base or self.base, "--target", target or self.target,
                "--db", self.db]


@dataclass
class MatrixFile:
    """What a TOML file holds: its paths and the defaults it sets."""

    paths: list[UpgradePath]
    jobs: int | None = None


def slug(text: str, limit: int = SLUG_LIMIT) -> str:
    """``text`` as a file name (see :func:`grenadier.host.safe_name`)."""
    return safe_name(text, limit)


def short(spec: str) -> str:
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


def _db(name: str, where: str) -> str:
    if name not in DATABASES:
        raise UsageError(f"{where}: unknown database {name!r}", hint=f"use {', '.join(DATABASES)}")
    return name


@functools.lru_cache(maxsize=1)
def _run_parser() -> argparse.ArgumentParser:
    """``grenadier run``'s options, raising ``ArgumentError`` instead of exiting; no
    abbreviations, as ``grenadier run`` takes none."""
    parser = argparse.ArgumentParser(prog="grenadier run", add_help=False,
                                     allow_abbrev=False, exit_on_error=False)
    add_flags(parser, run_flags())
    return parser


def _parse_run(args: tuple[str, ...], where: str) -> list[str]:
    """Parse ``args`` as ``grenadier run`` would; return the reserved dests they set."""
    hint = "see grenadier run --help"
    if asked := [arg for arg in args if arg in ("-h", "--help")]:
        raise UsageError(f"{where}: {asked[0]} is not an option a run can be given", hint=hint)
    namespace = argparse.Namespace(**{dest: _UNSET for dest in RESERVED})
    try:
        _, unknown = _run_parser().parse_known_args(list(args), namespace)
    except argparse.ArgumentError as exc:
        raise UsageError(f"{where}: {exc}", hint=hint) from None
    if unknown:
        raise UsageError(f"{where}: unrecognized run option(s): {' '.join(unknown)}", hint=hint)
    return [dest for dest in RESERVED if getattr(namespace, dest) is not _UNSET]


def check_args(value: Any, where: str) -> tuple[str, ...]:
    """Extra ``grenadier run`` options of a path, checked up front with the real parser."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"{where}: args must be a list of strings")
    args = tuple(value)
    reserved = _parse_run(args, where)
    if reserved:
        options = strings_of(run_flags(), reserved)
        given = next((arg for arg in args if arg.split("=", 1)[0] in options),
                     "/".join(options))
        raise UsageError(f"{where}: {given} is set by the matrix for each path",
                         hint="a path's base, target and db are its own keys; the matrix "
                              "sets --workdir, --cache-dir and the port itself, and "
                              "--resume, --only, --keep-running do not fit a matrix")
    return args


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
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not UTF-8 text",
                         hint="TOML files are UTF-8; save it as UTF-8") from None
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
        name=_name(entry.get("name", ""), where),
    )


def _name(value: Any, where: str) -> str:
    """A path's name is also its folder's: it must stay inside the matrix folder."""
    if not isinstance(value, str):
        raise UsageError(f"{where}: name must be a string")
    if value and slug(value) in ("", ".", ".."):
        raise UsageError(f"{where}: name {value!r} cannot name the path's folder",
                         hint="use letters or digits, e.g. name = \"skip-level\"")
    return value


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

"""Run with a venv's own Python: import the entry points of one distribution.

A venv whose libraries do not fit together installs without a complaint and fails at the first
import (a library too new for another one). This script imports every console and WSGI script
module of the distribution, and prints one JSON object: the modules imported, or the first that
failed with its error and the distributions involved (the one whose code raised, and the
libraries it requires, with their installed versions). Standard library only: it runs in
whatever venv it is given, never in grenadier's.
"""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
import traceback
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from types import TracebackType

GROUPS = ("console_scripts", "wsgi_scripts")
#: modules that left their distribution: who used to ship them
_SHIPPED_BY = {"pkg_resources": "setuptools"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*")


def _root_cause(exc: BaseException) -> BaseException:
    seen = {id(exc)}
    while True:
        nxt = exc.__cause__ or exc.__context__
        if nxt is None or id(nxt) in seen:
            return exc
        seen.add(id(nxt))
        exc = nxt


def _dist_of_file(filename: str, owners: Mapping[str, list[str]]) -> str | None:
    parts = Path(filename).parts
    if "site-packages" not in parts:
        return None
    rest = parts[parts.index("site-packages") + 1:]
    if not rest:
        return None
    top = rest[0].removesuffix(".py")
    names = owners.get(top)
    return names[0] if names else None


def _raising_dist(exc: BaseException, own: str, owners: Mapping[str, list[str]]) -> str | None:
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        top = exc.name.split(".")[0]
        shipped = owners.get(top) or [_SHIPPED_BY.get(top, "")]
        if shipped[0]:
            return shipped[0]
    tb: TracebackType | None = exc.__traceback__
    frames = traceback.extract_tb(tb) if tb is not None else []
    for frame in reversed(frames):
        dist = _dist_of_file(frame.filename, owners)
        if dist and _canonical(dist) != _canonical(own):
            return dist
    return None


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _requirements(dist: str) -> list[str]:
    try:
        required = metadata.requires(dist) or []
    except metadata.PackageNotFoundError:
        return []
    names = []
    for line in required:
        match = _NAME.match(line)
        if match and "extra ==" not in line and match.group(0) not in names:
            names.append(match.group(0))
    return names


def involved(exc: BaseException, own: str) -> list[str]:
    """``["pyOpenSSL 22.0.0", "cryptography 51.0.1"]``: who raised, and what it requires."""
    owners = metadata.packages_distributions()
    dist = _raising_dist(_root_cause(exc), own, owners)
    if dist is None:
        return []
    return [f"{name} {_version(name)}" for name in [dist, *_requirements(dist)[:3]]]


def import_one(module: str, dist_name: str) -> dict[str, object]:
    """Import ``module``; what failed and who was involved, if it did."""
    try:
        importlib.import_module(module)
    except BaseException as exc:  # any failure to import is the finding
        root = _root_cause(exc)
        return {"ok": False, "module": module,
                "error": f"{root.__class__.__name__}: {root}".strip()[:300],
                "involved": involved(exc, dist_name)}
    return {"ok": True, "module": module}


def probe(dist_name: str, also: list[str]) -> dict[str, object]:
    """Import each entry-point module (and the modules in ``also``: what the scripts import
    only once they run) in a Python of its own, as each script runs alone (two of them may
    choose different, exclusive concurrency backends); all at once."""
    dist = metadata.distribution(dist_name)
    modules = sorted({ep.module for ep in dist.entry_points if ep.group in GROUPS} | set(also))
    children = [subprocess.Popen([sys.executable, __file__, "--one", dist_name, module],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                for module in modules]
    results = [_result_of(child, module) for child, module in zip(children, modules, strict=True)]
    failed = [r for r in results if not r["ok"]]
    return failed[0] if failed else {"ok": True, "modules": modules}


def _result_of(child: subprocess.Popen[str], module: str) -> dict[str, object]:
    out, _ = child.communicate()
    try:
        result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"ok": False, "module": module, "involved": [],
                "error": f"the import crashed its Python (exit {child.returncode})"}
    return result


if __name__ == "__main__":
    # "DIST [MODULE...]" probes; "--one DIST MODULE" is one child importing one module
    args = sys.argv[1:]
    result = import_one(args[2], args[1]) if args[0] == "--one" else probe(args[0], args[1:])
    print(json.dumps(result))
    sys.exit(0 if result["ok"] else 1)

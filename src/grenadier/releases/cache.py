"""The release cache: one venv per resolved release, reused across runs, safe across processes."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import platformdirs
from packaging.version import Version

from grenadier.errors import EnvironmentProblem
from grenadier.host import file_lock, write_atomic
from grenadier.releases.installer import DRIVERS, Installer, find_installer
from grenadier.releases.release import Release
from grenadier.releases.spec import PACKAGE, ReleaseSpec

MARKER = "grenadier-release.json"
_SKIP_DIRS = {".git", ".tox", "__pycache__", "build", "dist", ".eggs", ".venv", ".mypy_cache"}


def default_cache_dir() -> Path:
    env = os.environ.get("GRENADIER_CACHE")
    return Path(env) if env else Path(platformdirs.user_cache_dir("grenadier"))


def tree_hash(path: Path) -> str:
    """A digest of a source tree's files (names, sizes, contents) that ignores build litter."""
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.endswith(".egg-info"))
        for name in sorted(files):
            if name.endswith((".pyc", ".pyo")):
                continue
            file = Path(root, name)
            digest.update(str(file.relative_to(path)).encode())
            with contextlib.suppress(OSError):
                digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


class ReleaseCache:
    """Resolves specs and installs each resolved release once into ``root/releases``."""

    def __init__(self, root: Path | None = None, installer: Installer | None = None) -> None:
        self.root = root or default_cache_dir()
        self.installer = installer or find_installer()
        #: requirement -> version found on the index: ``latest`` and ``latest-1`` (installed in
        #: two threads by a matrix) both need the newest release, asked for once
        self._resolved: dict[str, Version] = {}
        self._resolving: dict[str, threading.Lock] = {}
        self._memo_lock = threading.Lock()

    @property
    def py_tag(self) -> str:
        return f"py{sys.version_info.major}.{sys.version_info.minor}"

    def _resolve(self, requirement: str, log: Path | None) -> Version:
        """The installer's answer for ``requirement``, asked once per cache (thread-safe)."""
        with self._memo_lock:
            lock = self._resolving.setdefault(requirement, threading.Lock())
        with lock:  # a second thread wanting the same answer waits for the first one's
            if requirement not in self._resolved:
                self._resolved[requirement] = self.installer.resolve(requirement, log)
            return self._resolved[requirement]

    def resolve_version(self, spec: ReleaseSpec, log: Path | None = None) -> str:
        """``latest-N`` -> newest release N major series below the newest one."""
        if spec.version is not None:
            return str(self._resolve(f"{PACKAGE}=={spec.version}", log))
        newest = self._resolve(PACKAGE, log)
        if not spec.back:
            return str(newest)
        return str(self._resolve(f"{PACKAGE}<{newest.major - spec.back + 1}", log))

    def ensure(self, spec: ReleaseSpec, log: Path | None = None) -> Release:
        """Return the installed release for ``spec``, installing it if needed.

        A pinned version already in the cache is used as it is: the index is not asked.
        """
        if spec.path is not None:
            venv, marker = self._ensure_local(spec.path, log)
        else:
            venv, marker = self._cached_pin(spec) or self._ensure_pypi(spec, log)
        return Release(
            label=_label(spec, marker), version=marker["version"], venv=venv,
            kind=marker["kind"], source=marker["source"],
        )

    def _release_venv(self, version: str) -> Path:
        return self.root / "releases" / f"{PACKAGE}-{version}-{self.py_tag}"

    def _cached_pin(self, spec: ReleaseSpec) -> tuple[Path, dict[str, str]] | None:
        """The venv and marker of a pinned version installed by an earlier run, if any."""
        if spec.version is None:
            return None
        version = str(spec.version)
        venv = self._release_venv(version)
        with file_lock(_lock_file(venv)):  # not while another run is installing it
            marker = read_marker(venv)
        if marker is None or not _matches(marker, _pypi_wanted(version)):
            return None
        return venv, marker

    def _ensure_pypi(self, spec: ReleaseSpec, log: Path | None) -> tuple[Path, dict[str, str]]:
        version = self.resolve_version(spec, log)
        venv = self._release_venv(version)
        packages = [f"{PACKAGE}=={version}", *DRIVERS]
        return venv, self.ensure_venv(venv, _pypi_wanted(version), packages, log,
                                      version=_installed_version)

    def _ensure_local(self, path: Path, log: Path | None) -> tuple[Path, dict[str, str]]:
        path_id = hashlib.sha256(str(path).encode()).hexdigest()[:8]
        venv = self.root / "releases" / f"local-{path.name}-{path_id}-{self.py_tag}"
        wanted = {"kind": "local", "source": str(path), "hash": tree_hash(path)}
        packages = [str(path), *DRIVERS]
        if self.installer.name == "uv":
            packages = ["--reinstall-package", PACKAGE, "--refresh-package", PACKAGE, *packages]
        env = {} if _has_version_info(path) else {"PBR_VERSION": "0.0.0"}
        return venv, self.ensure_venv(venv, wanted, packages, log, env=env,
                                      version=_installed_version)

    def ensure_venv(
        self, venv: Path, wanted: Mapping[str, str], packages: Sequence[str], log: Path | None,
        *, env: Mapping[str, str] | None = None, version: Callable[[Path], str] | None = None,
    ) -> dict[str, str]:
        """Install ``packages`` into ``venv`` unless its marker already says ``wanted``.

        Returns the marker: ``wanted`` plus the version (``version(venv)`` after installing,
        when given), the installer and the time. Two runs sharing a cache never install the
        same venv at once; a venv without its marker is a half-finished install, rebuilt from
        nothing.
        """
        with file_lock(_lock_file(venv)):
            marker = read_marker(venv)
            if marker is not None and _matches(marker, wanted):
                return marker
            shutil.rmtree(venv, ignore_errors=True)
            try:
                self.installer.create_venv(venv, log)
                self.installer.install(venv, packages, log, env or {})
                found = {"version": version(venv)} if version is not None else {}
            except BaseException:
                shutil.rmtree(venv, ignore_errors=True)
                raise
            marker = {**wanted, **found, "installer": self.installer.name,
                      "installed_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
            write_atomic(venv / MARKER, json.dumps(marker, indent=1))
        return marker

    def freeze(self, release: Release) -> str:
        return self.installer.freeze(release.venv)


def read_marker(venv: Path) -> dict[str, str] | None:
    """What the cache wrote once ``venv`` was complete (None: missing or unreadable)."""
    try:
        data = json.loads((venv / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _matches(marker: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    return all(marker.get(key) == value for key, value in wanted.items())


def _lock_file(venv: Path) -> Path:
    return venv.with_name(venv.name + ".lock")


def _pypi_wanted(version: str) -> dict[str, str]:
    return {"kind": "pypi", "source": f"{PACKAGE}=={version}", "version": version}


def _has_version_info(path: Path) -> bool:
    return (path / ".git").exists() or (path / "PKG-INFO").is_file()


def _installed_version(venv: Path) -> str:
    dist = sorted(venv.glob("lib/python3*/site-packages/openstack_heat-*.dist-info"))
    if not dist:
        raise EnvironmentProblem(f"{PACKAGE} did not install into {venv}")
    return dist[0].name.removesuffix(".dist-info").split("-", 1)[1]


def _label(spec: ReleaseSpec, marker: dict[str, str]) -> str:
    if spec.path is not None:
        return f"local:{spec.path.name}@{marker['version']}"
    return marker["version"]

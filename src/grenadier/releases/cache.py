"""The release cache: one venv per resolved release, reused across runs, safe across processes."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

import platformdirs

from grenadier.errors import EnvironmentProblem
from grenadier.host import file_lock
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

    @property
    def py_tag(self) -> str:
        return f"py{sys.version_info.major}.{sys.version_info.minor}"

    def resolve_version(self, spec: ReleaseSpec, log: Path | None = None) -> str:
        """``latest-N`` -> newest release N major series below the newest one."""
        if spec.version is not None:
            return str(self.installer.resolve(f"{PACKAGE}=={spec.version}", log))
        newest = self.installer.resolve(PACKAGE, log)
        if not spec.back:
            return str(newest)
        return str(self.installer.resolve(f"{PACKAGE}<{newest.major - spec.back + 1}", log))

    def ensure(self, spec: ReleaseSpec, log: Path | None = None) -> Release:
        """Return the installed release for ``spec``, installing it if needed."""
        if spec.path is not None:
            digest = tree_hash(spec.path)
            path_id = hashlib.sha256(str(spec.path).encode()).hexdigest()[:8]
            venv = self.root / "releases" / f"local-{spec.path.name}-{path_id}-{self.py_tag}"
            wanted = {"kind": "local", "source": str(spec.path), "hash": digest}
            requirement = str(spec.path)
        else:
            version = self.resolve_version(spec, log)
            venv = self.root / "releases" / f"{PACKAGE}-{version}-{self.py_tag}"
            wanted = {"kind": "pypi", "source": f"{PACKAGE}=={version}", "version": version}
            requirement = f"{PACKAGE}=={version}"
        # two runs installing the same release must not interleave (matrix runs share a cache)
        with file_lock(venv.with_name(venv.name + ".lock")):
            marker = self._read_marker(venv)
            if marker is None or any(marker.get(k) != v for k, v in wanted.items()):
                marker = self._install(venv, requirement, wanted, spec.path is not None, log)
        return Release(
            label=_label(spec, marker), version=marker["version"], venv=venv,
            kind=marker["kind"], source=marker["source"],
        )

    @staticmethod
    def _read_marker(venv: Path) -> dict[str, str] | None:
        try:
            data = json.loads((venv / MARKER).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None
        return data if isinstance(data, dict) else None

    def _install(
        self, venv: Path, requirement: str, wanted: dict[str, str], local: bool, log: Path | None
    ) -> dict[str, str]:
        # A venv without a marker is a half-finished install: start again from nothing.
        shutil.rmtree(venv, ignore_errors=True)
        try:
            self.installer.create_venv(venv, log)
            env = {"PBR_VERSION": "0.0.0"} if local and not _has_version_info(Path(requirement)) \
                else {}
            packages = [requirement, *DRIVERS]
            if local and self.installer.name == "uv":
                packages = ["--reinstall-package", PACKAGE, "--refresh-package", PACKAGE, *packages]
            self.installer.install(venv, packages, log, env)
            version = _installed_version(venv)
        except BaseException:
            shutil.rmtree(venv, ignore_errors=True)
            raise
        marker = {**wanted, "version": version, "installer": self.installer.name,
                  "installed_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
        (venv / MARKER).write_text(json.dumps(marker, indent=1), encoding="utf-8")
        return marker

    def freeze(self, release: Release) -> str:
        return self.installer.freeze(release.venv)


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

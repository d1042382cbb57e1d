"""The release cache: one venv per resolved release and environment, reused across runs, safe
across processes."""

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

from grenadier.errors import EnvironmentProblem, UsageError
from grenadier.host import file_lock, write_atomic
from grenadier.releases import constraints as envs
from grenadier.releases.constraints import Environment
from grenadier.releases.installer import DRIVERS, Installer, Unresolvable, find_installer
from grenadier.releases.memo import IndexMemo
from grenadier.releases.probe import Probe, probe_venv
from grenadier.releases.release import Release
from grenadier.releases.spec import PACKAGE, ReleaseSpec, tree_version

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
    """Resolves specs and installs each resolved release once into ``root/releases``.

    ``constraints`` is the run's ``--constraints`` choice (``auto``: each release with its own
    series' upper-constraints); ``probe`` proves a new venv usable before it is kept.
    """

    def __init__(self, root: Path | None = None, installer: Installer | None = None, *,
                 constraints: str = envs.AUTO, probe: Probe = probe_venv) -> None:
        self.root = root or default_cache_dir()
        self.installer = installer or find_installer()
        self.constraints = constraints
        self.probe = probe
        self.memo = IndexMemo(self.root / "index.json")
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
        if spec.back >= newest.major:
            raise UsageError(f"release {spec.text!r}: {PACKAGE} has no major series "
                             f"{spec.back} before its newest release ({newest})",
                             hint=f"use latest, latest-1 ... latest-{newest.major - 1}, or a "
                                  "version")
        return str(self._resolve(f"{PACKAGE}<{newest.major - spec.back + 1}", log))

    def pin(self, spec: ReleaseSpec) -> str:
        """What a run keeps of ``spec`` before it starts: the exact version of a PyPI release
        (``latest-1`` -> ``26.0.2``), a source tree's absolute path.

        An unknown release is a UsageError here, before anything exists; a pinned version
        already in the cache is taken as it is, without asking the index.
        """
        if spec.path is not None:
            return str(spec.path)
        if spec.version is not None and self._cached_pin(spec, None) is not None:
            return str(spec.version)
        return self.resolve_version(spec)

    # environments ------------------------------------------------------------------------
    def environment_for(self, package: str, version: str, choice: str | None = None,
                        log: Path | None = None) -> Environment:
        """How a venv of ``package`` ``version`` gets its libraries under ``choice``."""
        choice = choice or self.constraints
        if choice == envs.NONE:
            return envs.unconstrained()
        if choice in envs.all_series():
            return envs.for_series(envs.all_series()[choice])
        if choice.startswith(("http://", "https://")):
            return envs.from_text(self.memo.fetch(choice), choice)
        if choice != envs.AUTO:
            return envs.from_text(Path(choice).read_text(encoding="utf-8"), choice)
        series = envs.series_of(package, Version(version).major)
        if series is None:
            return self._as_of(package, version, "no series shipped for it", log)
        environment = envs.for_series(series, fallback=True)
        if self.memo.fits(environment.digest, f"{package}=={version}"):
            return environment
        return self._as_of(package, version, f"the {series.name} constraints do not fit it",
                           log)

    def _as_of(self, package: str, version: str, why: str, log: Path | None) -> Environment:
        uploaded = self.memo.uploaded(package, version, self.installer.index_url)
        return envs.as_of(uploaded, f"{package} {version}", why)

    def install_with_fallback(self, package: str, version: str, environment: Environment,
                       install: Callable[[Environment], dict[str, str]],
                       log: Path | None) -> dict[str, str]:
        """Install with ``environment``; a series grenadier chose that does not fit the
        release is remembered, and the release resolved as of its upload instead."""
        try:
            return install(environment)
        except Unresolvable:
            if not environment.fallback:
                raise
        self.memo.unfit(environment.digest, f"{package}=={version}")
        series = envs.series_of(package, Version(version).major)
        why = f"the {series.name if series else ''} constraints do not fit it"
        fallback = self._as_of(package, version, why, log)
        return install(fallback)

    # releases ----------------------------------------------------------------------------
    def ensure(self, spec: ReleaseSpec, log: Path | None = None, *, freeze: Path | None = None,
               like: str | None = None) -> Release:
        """Return the installed release for ``spec``, installing it if needed.

        ``freeze``: rebuild exactly the venv an earlier run recorded. ``like``: the version of
        the run's other release, whose environment a source tree of unknown version borrows.
        A pinned version already in the cache is used as it is: the index is not asked.
        """
        if spec.path is not None:
            venv, marker = self._ensure_local(spec.path, log, freeze, like)
        else:
            venv, marker = self._cached_pin(spec, freeze) or self._ensure_pypi(spec, log, freeze)
        return Release(
            label=_label(spec, marker), version=marker["version"], venv=venv,
            kind=marker["kind"], source=marker["source"],
            environment=json.loads(marker.get("environment_json", "{}")),
        )

    def _release_venv(self, version: str, environment: Environment) -> Path:
        return self.root / "releases" / f"{PACKAGE}-{version}-{self.py_tag}-{environment.tag}"

    def _planned(self, version: str, freeze: Path | None,
                 log: Path | None = None) -> Environment:
        if freeze is not None:
            return envs.from_freeze(freeze)
        return self.environment_for(PACKAGE, version, log=log)

    def _cached_pin(self, spec: ReleaseSpec,
                    freeze: Path | None) -> tuple[Path, dict[str, str]] | None:
        """The venv and marker of a pinned version installed by an earlier run, if any."""
        if spec.version is None:
            return None
        version = str(spec.version)
        try:
            environment = self._planned(version, freeze)
        except EnvironmentProblem:
            return None  # e.g. an upload time not remembered yet: resolve and install
        venv = self._release_venv(version, environment)
        with file_lock(_lock_file(venv)):  # not while another run is installing it
            marker = read_marker(venv)
        if marker is None or not _matches(marker, _pypi_wanted(version, environment)):
            return None
        return venv, marker

    def _ensure_pypi(self, spec: ReleaseSpec, log: Path | None,
                     freeze: Path | None) -> tuple[Path, dict[str, str]]:
        version = self.resolve_version(spec, log)

        def install(environment: Environment) -> dict[str, str]:
            venv = self._release_venv(version, environment)
            packages = [f"{PACKAGE}=={version}", *DRIVERS]
            return {"venv": str(venv), **self.ensure_venv(
                venv, _pypi_wanted(version, environment), packages, log,
                environment=environment, version=_installed_version,
                probe=lambda v: self.probe(v, PACKAGE, f"{PACKAGE} {version}", log))}

        marker = self.install_with_fallback(PACKAGE, version, self._planned(version, freeze, log),
                                     install, log)
        return Path(marker.pop("venv")), marker

    def _ensure_local(self, path: Path, log: Path | None, freeze: Path | None,
                      like: str | None) -> tuple[Path, dict[str, str]]:
        path_id = hashlib.sha256(str(path).encode()).hexdigest()[:8]
        venv = self.root / "releases" / f"local-{path.name}-{path_id}-{self.py_tag}"
        own = tree_version(path)
        env = {} if own else {"PBR_VERSION": "0.0.0"}
        packages = [str(path), *DRIVERS]
        if self.installer.name == "uv":
            packages = ["--reinstall-package", PACKAGE, "--refresh-package", PACKAGE, *packages]
        version = own or like

        def install(environment: Environment) -> dict[str, str]:
            wanted = {"kind": "local", "source": str(path), "hash": tree_hash(path),
                      "environment": environment.digest}
            return self.ensure_venv(
                venv, wanted, packages, log, env=env, environment=environment,
                version=_installed_version,
                probe=lambda v: self.probe(v, PACKAGE, f"the Heat tree {path}", log))

        if freeze is not None:
            return venv, install(envs.from_freeze(freeze))
        if version is None:
            return venv, install(self.environment_for(PACKAGE, "0", envs.NONE))
        newest = str(self._resolve(f"{PACKAGE}<{Version(version).major + 1}", log)) \
            if self.constraints == envs.AUTO else version
        planned = self.environment_for(PACKAGE, newest, log=log)
        return venv, self.install_with_fallback(PACKAGE, newest, planned, install, log)

    def ensure_venv(
        self, venv: Path, wanted: Mapping[str, str], packages: Sequence[str], log: Path | None,
        *, env: Mapping[str, str] | None = None, version: Callable[[Path], str] | None = None,
        environment: Environment | None = None, probe: Callable[[Path], None] | None = None,
    ) -> dict[str, str]:
        """Install ``packages`` into ``venv`` unless its marker already says ``wanted``.

        Returns the marker: ``wanted`` plus the version (``version(venv)`` after installing,
        when given), the environment, the installer and the time. ``probe`` must pass before
        the venv is kept. Two runs sharing a cache never install the same venv at once; a venv
        without its marker is a half-finished install, rebuilt from nothing.
        """
        environment = environment or envs.unconstrained()
        with file_lock(_lock_file(venv)):
            marker = read_marker(venv)
            if marker is not None and _matches(marker, wanted):
                return marker
            shutil.rmtree(venv, ignore_errors=True)
            try:
                self.installer.create_venv(venv, log)
                self._install(venv, packages, environment, log, env or {})
                if probe is not None:
                    probe(venv)
                found = {"version": version(venv)} if version is not None else {}
            except BaseException:
                shutil.rmtree(venv, ignore_errors=True)
                raise
            marker = {**wanted, **found, "environment": environment.digest,
                      "environment_json": json.dumps(environment.to_dict()),
                      "installer": self.installer.name,
                      "installed_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
            write_atomic(venv / MARKER, json.dumps(marker, indent=1))
        return marker

    def _install(self, venv: Path, packages: Sequence[str], environment: Environment,
                 log: Path | None, env: Mapping[str, str]) -> None:
        options: list[str] = []
        if environment.kind in ("constraints", "freeze"):
            file = self.memo.materialize(environment)
            options = ["-c", str(file)] if environment.kind == "constraints" else []
            if environment.kind == "freeze":
                # the freeze names every package, the release included: nothing else to add
                packages = [p for p in packages if p.startswith("--")] + ["-r", str(file)]
        elif environment.kind == "as-of":
            options = ["--exclude-newer", environment.exclude_newer]
        self.installer.install(venv, [*packages, *environment.requirements], log, env, options)

    def freeze(self, release: Release) -> str:
        return self.installer.freeze(release.venv)

    def holds(self, release: Release) -> bool:
        """Whether ``release`` (as a run recorded it) is still in its venv: the marker, read
        under the venv's lock (never while another run rebuilds it), names the same version,
        source and environment. A venv half rebuilt, or rebuilt another way, does not hold it.
        """
        if not release.venv.is_dir():
            return False
        with file_lock(_lock_file(release.venv)):
            marker = read_marker(release.venv)
        if marker is None:
            return False
        try:
            environment = json.loads(marker.get("environment_json", "{}"))
        except ValueError:
            return False
        return (marker.get("version"), marker.get("kind"), marker.get("source"), environment) \
            == (release.version, release.kind, release.source, release.environment)


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


def _pypi_wanted(version: str, environment: Environment) -> dict[str, str]:
    return {"kind": "pypi", "source": f"{PACKAGE}=={version}", "version": version,
            "environment": environment.digest}


def _installed_version(venv: Path) -> str:
    dist = sorted(venv.glob("lib/python3*/site-packages/openstack_heat-*.dist-info"))
    if not dist:
        raise EnvironmentProblem(f"{PACKAGE} did not install into {venv}")
    return dist[0].name.removesuffix(".dist-info").split("-", 1)[1]


def _label(spec: ReleaseSpec, marker: dict[str, str]) -> str:
    if spec.path is not None:
        return f"local:{spec.path.name}@{marker['version']}"
    return marker["version"]

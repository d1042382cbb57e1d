"""Installers: uv (fast, preferred) and pip (fallback). Both run through ``execute``."""

from __future__ import annotations

import shutil
import sys
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path

from packaging.version import InvalidVersion, Version

from grenadier.errors import EnvironmentProblem, UsageError
from grenadier.execute import ExecuteRequest, Outcome, run
from grenadier.releases.spec import PACKAGE

#: drivers every release venv gets, so that Heat can reach any supported database
DRIVERS = ("psycopg2-binary", "PyMySQL")
INSTALL_TIMEOUT = 900.0
#: what uv says when the requirements and constraints have no common solution
_NO_SOLUTION = "No solution found"


class Unresolvable(EnvironmentProblem):
    """The packages cannot be installed together with the constraints given."""


class Installer(ABC):
    """Creates release venvs and installs into them."""

    name: str

    @abstractmethod
    def resolve(self, requirement: str, log: Path | None) -> Version:
        """The newest version of ``PACKAGE`` matching ``requirement`` on the package index."""

    @abstractmethod
    def create_venv(self, venv: Path, log: Path | None) -> None: ...

    @abstractmethod
    def install(
        self, venv: Path, packages: Sequence[str], log: Path | None, env: Mapping[str, str],
        options: Sequence[str] = (),
    ) -> None:
        """Install ``packages`` with installer ``options`` (``-c FILE``, ``-r FILE``,
        ``--exclude-newer DATE``); :class:`Unresolvable` when they have no solution."""

    def index_url(self) -> str:
        """The package index this installer reads (as it reports it: grenadier names none)."""
        raise EnvironmentProblem(f"{self.name} cannot tell which package index it reads",
                                 hint="install uv, or give --constraints SERIES, FILE or none")

    @abstractmethod
    def freeze(self, venv: Path) -> str: ...


def _version_from(outcome: Outcome, requirement: str) -> Version:
    for line in outcome.out.splitlines():
        name, _, version = line.strip().partition("==")
        if name.lower() == PACKAGE and version:
            try:
                return Version(version.split(";")[0].strip())
            except InvalidVersion:
                break
    raise UsageError(f"no release of {PACKAGE} matches {requirement!r} on the package index")


class UvInstaller(Installer):
    name = "uv"

    def __init__(self, uv: str) -> None:
        self.uv = uv

    def resolve(self, requirement: str, log: Path | None) -> Version:
        py = f"{sys.version_info.major}.{sys.version_info.minor}"
        cmd = [self.uv, "pip", "compile", "-", "--no-deps", "--no-header", "-q",
               "--python-version", py]
        outcome = run(ExecuteRequest(cmd, stdin=requirement + "\n", timeout=120, log=log))
        if outcome.returncode != 0 and "No solution found" in outcome.err:
            raise UsageError(
                f"no release of {PACKAGE} matches {requirement!r} on the package index "
                f"for Python {py}",
                hint="check the version with 'pip index versions openstack-heat'",
            )
        outcome.assert_success(f"resolving {requirement}")
        return _version_from(outcome, requirement)

    def create_venv(self, venv: Path, log: Path | None) -> None:
        cmd = [self.uv, "venv", "-q", "--seed", "--python", sys.executable, str(venv)]
        run(ExecuteRequest(cmd, timeout=300, log=log)).assert_success(f"creating venv {venv}")

    def install(
        self, venv: Path, packages: Sequence[str], log: Path | None, env: Mapping[str, str],
        options: Sequence[str] = (),
    ) -> None:
        # No --compile-bytecode: it costs ~1 min per venv; Python writes the .pyc files of
        # what Heat really imports on its first start, and later runs reuse them.
        cmd = [self.uv, "pip", "install", "--python", str(venv / "bin" / "python"), *options,
               *packages]
        _installed(run(ExecuteRequest(cmd, timeout=INSTALL_TIMEOUT, log=log, env=env)),
                   packages)

    def index_url(self) -> str:
        cmd = [self.uv, "pip", "compile", "-", "--no-deps", "--no-header", "--emit-index-url",
               "-q"]
        outcome = run(ExecuteRequest(cmd, stdin="pip\n", timeout=120))
        outcome.assert_success("asking uv for its package index")
        for line in outcome.out.splitlines():
            if line.startswith("--index-url "):
                return line.split(None, 1)[1].strip()
        return super().index_url()

    def freeze(self, venv: Path) -> str:
        cmd = [self.uv, "pip", "freeze", "--python", str(venv / "bin" / "python")]
        return run(ExecuteRequest(cmd, timeout=120)).assert_success("pip freeze").out


class PipInstaller(Installer):
    name = "pip"

    def resolve(self, requirement: str, log: Path | None) -> Version:
        cmd = [sys.executable, "-m", "pip", "index", "versions", PACKAGE]
        outcome = run(ExecuteRequest(cmd, timeout=120, log=log))
        outcome.assert_success(f"listing {PACKAGE} versions")
        from packaging.requirements import Requirement

        spec = Requirement(requirement).specifier
        for line in outcome.out.splitlines():
            if line.startswith("Available versions:"):
                versions = [Version(v.strip()) for v in line.split(":", 1)[1].split(",")]
                matching = sorted(v for v in versions if spec.contains(v))
                if matching:
                    return matching[-1]
        raise UsageError(f"no release of {PACKAGE} matches {requirement!r} on the package index")

    def create_venv(self, venv: Path, log: Path | None) -> None:
        cmd = [sys.executable, "-m", "venv", str(venv)]
        run(ExecuteRequest(cmd, timeout=300, log=log)).assert_success(f"creating venv {venv}")

    def install(
        self, venv: Path, packages: Sequence[str], log: Path | None, env: Mapping[str, str],
        options: Sequence[str] = (),
    ) -> None:
        if "--exclude-newer" in options:
            raise EnvironmentProblem("pip cannot resolve as of a date (uv can)",
                                     hint="install uv, or give --constraints SERIES or FILE")
        cmd = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *options, *packages]
        _installed(run(ExecuteRequest(cmd, timeout=INSTALL_TIMEOUT, log=log, env=env)),
                   packages)

    def freeze(self, venv: Path) -> str:
        cmd = [str(venv / "bin" / "python"), "-m", "pip", "freeze"]
        return run(ExecuteRequest(cmd, timeout=120)).assert_success("pip freeze").out


def _installed(outcome: Outcome, packages: Sequence[str]) -> None:
    what = f"installing {' '.join(packages)}"
    if not outcome.ok and not outcome.timed_out and (
            _NO_SOLUTION in outcome.err or "ResolutionImpossible" in outcome.err):
        raise Unresolvable(f"{what}: no versions satisfy the requirements and constraints "
                           f"together ({outcome.last_error_line()})",
                           hint=f"full output in {outcome.request.log}")
    outcome.assert_success(what)


def find_installer() -> Installer:
    """uv when available (the ``uv`` wheel or PATH), else pip."""
    uv = _find_uv()
    return UvInstaller(uv) if uv else PipInstaller()


def _find_uv() -> str | None:
    try:
        from uv import find_uv_bin

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        return shutil.which("uv")

"""Parse what the user typed for ``--base`` / ``--target`` into a release spec."""

from __future__ import annotations

import configparser
import contextlib
import re
from dataclasses import dataclass
from pathlib import Path

from packaging.version import InvalidVersion, Version

from grenadier.errors import UsageError
from grenadier.execute import ExecuteRequest, run

PACKAGE = "openstack-heat"
_LATEST = re.compile(r"^latest(?:-(?P<back>\d+))?$")
_PINNED = re.compile(rf"^(?:{PACKAGE}\s*==\s*)?(?P<version>[0-9][0-9A-Za-z.+!-]*)$")


@dataclass(frozen=True)
class ReleaseSpec:
    """One of: a pinned version, ``latest`` / ``latest-N`` (N major series back), a local tree."""

    text: str
    version: Version | None = None
    back: int | None = None
    path: Path | None = None

    @property
    def kind(self) -> str:
        if self.path is not None:
            return "local"
        return "pinned" if self.version is not None else "latest"


def looks_like_path(text: str) -> bool:
    """Whether a release spec names a source tree rather than a version."""
    return text.startswith((".", "/", "~")) or "/" in text or Path(text).is_dir()


def check_heat_tree(path: Path) -> None:
    """Refuse anything but an openstack-heat source tree (git checkout or unpacked sdist)."""
    if not path.is_dir():
        raise UsageError(f"release path {path} does not exist or is not a directory")
    setup_cfg = path / "setup.cfg"
    parser = configparser.ConfigParser(interpolation=None)
    with contextlib.suppress(configparser.Error):
        parser.read(setup_cfg, encoding="utf-8")
    name = parser.get("metadata", "name", fallback="")
    if name.replace("_", "-").lower() != PACKAGE or not (path / "heat" / "__init__.py").is_file():
        raise UsageError(
            f"{path} is not a Heat source tree (expected setup.cfg naming {PACKAGE} and heat/)",
            hint="give a Heat git checkout or an unpacked openstack-heat sdist",
        )


def tree_version(path: Path) -> str | None:
    """The version a Heat source tree installs as: its sdist's PKG-INFO, else the newest tag
    git describes (as pbr computes it); None when the tree says neither."""
    pkg_info = path / "PKG-INFO"
    if pkg_info.is_file():
        for line in pkg_info.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("Version:"):
                return _version_or_none(line.split(":", 1)[1].strip())
    if (path / ".git").exists():
        outcome = run(ExecuteRequest(["git", "-C", str(path), "describe", "--tags", "--abbrev=0"],
                                     timeout=30))
        if outcome.ok:
            return _version_or_none(outcome.out.strip())
    return None


def _version_or_none(text: str) -> str | None:
    try:
        return str(Version(text))
    except InvalidVersion:
        return None


def spec_in_freeze(path: Path) -> str:
    """The release a ``pip freeze`` installed: ``openstack-heat==27.0.1`` gives ``27.0.1``, a
    source tree (``openstack-heat @ file:///tree``) its path."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}",
                         hint="give a run directory whose install step passed") from exc
    for line in lines:
        name, _, rest = line.partition("==")
        if name.strip().lower() == PACKAGE and rest.strip():
            return rest.strip()
        name, _, url = line.partition(" @ ")
        if name.strip().lower() == PACKAGE and url.strip().startswith("file://"):
            return url.strip().removeprefix("file://")
    raise UsageError(f"{path} installs no {PACKAGE}", hint="give a grenadier run directory")


def parse_spec(text: str) -> ReleaseSpec:
    """Parse ``27.0.1``, ``openstack-heat==27.0.1``, ``latest``, ``latest-1`` or a path."""
    stripped = text.strip()
    if not stripped:
        raise UsageError("empty release spec", hint="use e.g. 27.0.1, latest, latest-1 or a path")
    if match := _LATEST.match(stripped):
        return ReleaseSpec(stripped, back=int(match.group("back") or 0))
    if looks_like_path(stripped):
        path = Path(stripped).expanduser().resolve()
        check_heat_tree(path)
        return ReleaseSpec(stripped, path=path)
    if match := _PINNED.match(stripped):
        try:
            return ReleaseSpec(stripped, version=Version(match.group("version")))
        except InvalidVersion:
            pass
    raise UsageError(
        f"cannot understand release {text!r}",
        hint=f"use a version (27.0.1), {PACKAGE}==27.0.1, latest, latest-1 or a Heat source path",
    )

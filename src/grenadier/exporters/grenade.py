"""``grenadier export grenade DIR``: a grenade plugin for Heat whose phases run grenadier's suite.

Written to ``DIR/devstack/upgrade/`` as grenade's PLUGINS.rst lays a plugin out: ``settings``,
``shutdown.sh``, ``upgrade.sh``, ``resources.sh`` (create / verify / verify_noapi / destroy)
and ``from-<base series>/upgrade-heat``. In a Heat tree it takes the place of Heat's own plugin.
"""

from __future__ import annotations

from packaging.version import InvalidVersion, Version

from grenadier.errors import UsageError
from grenadier.exporters.base import ExportFile, ExportSettings, check_plain, render

PLUGIN_DIR = "devstack/upgrade"
#: the post_upgrade tests of the built-in suite that only read; verify runs these
READ_ONLY_TESTS = ("test_old_stacks_listed_and_shown", "test_outputs_unchanged",
                   "test_resources_unchanged")
#: Heat 20.x is OpenStack 2023.1; two releases a year since
_FIRST_MAJOR, _FIRST_YEAR = 20, 2023


def series(version: str) -> str | None:
    """The OpenStack series (``2026.1``) of a Heat version (``26.0.2``), or None."""
    try:
        major = Version(version).major
    except InvalidVersion:
        return None
    if major < _FIRST_MAJOR:
        return None
    offset = major - _FIRST_MAJOR
    return f"{_FIRST_YEAR + offset // 2}.{offset % 2 + 1}"


def _version(spec: str) -> str:
    """A pinned version for the suite's version-aware skips; empty when it is not one."""
    try:
        return str(Version(spec.split("==")[-1]))
    except InvalidVersion:
        return ""


def export(settings: ExportSettings) -> list[ExportFile]:
    """The plugin for one upgrade path (grenade upgrades one base branch to one target)."""
    check_plain(settings.paths, "grenade")
    if settings.constraints != "auto":
        raise UsageError("export grenade: --constraints does not apply: devstack installs Heat "
                         "in a grenade job, with the upper-constraints of its branch",
                         hint="drop --constraints, or export to zuul or github")
    if len(settings.paths) > 1:
        raise UsageError(f"export grenade: {len(settings.paths)} paths given; a grenade job "
                         "upgrades one base to one target",
                         hint="give one --path (or one [[path]]); export the others to zuul "
                              "or github")
    first = settings.paths[0] if settings.paths else None
    base = _version(first.base) if first else ""
    target = _version(first.target) if first else ""
    files = [
        ExportFile(f"{PLUGIN_DIR}/settings", render("grenade/settings", {
            "install": settings.install, "base": base, "target": target})),
        ExportFile(f"{PLUGIN_DIR}/shutdown.sh", render("grenade/shutdown.sh", {}),
                   executable=True),
        ExportFile(f"{PLUGIN_DIR}/upgrade.sh", render("grenade/upgrade.sh", {}),
                   executable=True),
        ExportFile(f"{PLUGIN_DIR}/resources.sh", render("grenade/resources.sh", {
            "install": settings.install, "verify": " or ".join(READ_ONLY_TESTS)}),
                   executable=True),
    ]
    # grenade sources from-<base series>/upgrade-heat when the base branch is that series
    name = series(base) if base else None
    if name:
        files.append(ExportFile(f"{PLUGIN_DIR}/from-{name}/upgrade-heat", render(
            "grenade/upgrade-heat", {"series": name, "major": base.split(".")[0],
                                     "base": base})))
    return files

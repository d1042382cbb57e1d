"""The plugin manager: built-in plugins and external ones from the ``grenadier`` entry points."""

from __future__ import annotations

import pluggy

from grenadier.errors import UsageError
from grenadier.plugins import spec
from grenadier.project.api import Project

ENTRY_POINT_GROUP = "grenadier"


def plugin_manager() -> pluggy.PluginManager:
    """Every plugin installed through the ``grenadier`` entry-point group (Heat's included)."""
    manager = pluggy.PluginManager(spec.PROJECT)
    manager.add_hookspecs(spec)
    manager.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    if not manager.get_plugins():
        # Running from a source tree without an installed distribution: same module, by hand.
        from grenadier.plugins.heat import plugin as heat_plugin

        manager.register(heat_plugin, name="heat")
    return manager


def get_project(manager: pluggy.PluginManager, name: str) -> Project:
    project = manager.hook.grenadier_project(name=name)
    if project is None:
        known = sorted(n for names in manager.hook.grenadier_project_names() for n in names)
        raise UsageError(f"no plugin provides project {name!r}", hint=f"known: {', '.join(known)}")
    return project  # type: ignore[no-any-return]

"""grenadier's pytest plugin (``pytest11`` entry point ``grenadier.pytest_plugin.plugin``).

Markers ``smoke``, ``pre_upgrade``, ``during_upgrade``, ``post_upgrade`` and ``requires``;
fixtures ``heat``, ``heat_endpoint``, ``upgrade_state``, ``releases``, ``phase``,
``upgrade_watch``, ``concurrently``, ``findings`` and ``grenadier_connection``; helpers
``heat_client``, ``namespace_for``, ``wait_for_watch``, ``watch_progress`` and
``watch_seconds`` for what the fixtures do not cover.
See docs/writing-upgrade-tests.md.
"""

from __future__ import annotations

from grenadier.project.testing import (
    Concurrently,
    FindingReporter,
    GrenadierFinding,
    Tick,
    UpgradeState,
    UpgradeWatch,
    heat_client,
    namespace_for,
    wait_for_watch,
    watch_progress,
    watch_seconds,
)
from grenadier.services.connection import Connection, DbInfo, Endpoint, Releases, discover

__all__ = [
    "Concurrently",
    "Connection",
    "DbInfo",
    "Endpoint",
    "FindingReporter",
    "GrenadierFinding",
    "Releases",
    "Tick",
    "UpgradeState",
    "UpgradeWatch",
    "discover",
    "heat_client",
    "namespace_for",
    "wait_for_watch",
    "watch_progress",
    "watch_seconds",
]

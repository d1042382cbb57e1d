"""The state store passed between steps (grenade's resource_save / resource_get)."""

from __future__ import annotations

from grenadier.state.store import RUNNER, StateStore, StoreCorrupt

__all__ = ["RUNNER", "StateStore", "StoreCorrupt"]

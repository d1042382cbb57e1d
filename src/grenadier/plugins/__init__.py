"""Plugins: hook specs, the manager, and the built-in Heat plugin (registered like any other)."""

from __future__ import annotations

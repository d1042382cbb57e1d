"""grenadier: upgrade tests for OpenStack Heat, on one machine, in minutes."""

from __future__ import annotations

__version__ = "0.1.0"

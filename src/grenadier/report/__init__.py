"""Reports of a run: JSON, JUnit, console, impact."""

from __future__ import annotations

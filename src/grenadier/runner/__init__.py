"""The ordered steps of a run: stop-after, only, resume; records each step's result."""

from __future__ import annotations

"""Command line: parse arguments, print progress, map errors to exit codes."""

from __future__ import annotations

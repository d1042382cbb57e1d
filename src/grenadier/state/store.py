"""A versioned JSON store, written atomically, namespaced per plugin or test module.

Modelled on pytest's stepwise cache: a corrupt or foreign file is a clear error, never a
traceback, and a write never leaves half a file behind.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from grenadier.errors import EnvironmentProblem
from grenadier.host import file_lock, write_atomic

#: the runner's own namespace: releases, port, step results, inventories, restore command
RUNNER = "runner"
FORMAT = "grenadier-state"
VERSION = 1


class StoreCorrupt(EnvironmentProblem):
    """The state file exists but cannot be used."""


class StateStore:
    """Namespaced key/value store in one JSON file, safe across processes (file lock)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise StoreCorrupt(f"cannot read state store {self.path}: {exc.strerror}") from exc
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise StoreCorrupt(
                f"state store {self.path} is corrupt (not JSON: {exc.msg} at line {exc.lineno})",
                hint="start a new run; this one cannot be resumed",
            ) from exc
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise StoreCorrupt(f"{self.path} is not a grenadier state store")
        if data.get("version") != VERSION:
            raise StoreCorrupt(
                f"state store {self.path} has version {data.get('version')!r}, "
                f"this grenadier reads version {VERSION}",
                hint="resume it with the grenadier that started it",
            )
        namespaces = data.get("namespaces")
        if not isinstance(namespaces, dict) or not all(
                isinstance(v, dict) for v in namespaces.values()):
            raise StoreCorrupt(f"state store {self.path} has no namespaces, or broken ones",
                               hint="start a new run; this one cannot be resumed")
        return namespaces

    def _write(self, namespaces: dict[str, dict[str, Any]]) -> None:
        payload = {"format": FORMAT, "version": VERSION, "namespaces": namespaces}
        write_atomic(self.path, json.dumps(payload, indent=1, sort_keys=True, default=str),
                     private=True)

    def validate(self) -> None:
        """Raise :class:`StoreCorrupt` if the file exists and cannot be used."""
        self._read()

    def save(self, namespace: str, key: str, value: Any) -> None:
        try:
            # pytest runs the phase tests in a child process while the runner also writes
            with file_lock(self.path.with_suffix(".lock")):
                data = self._read()
                data.setdefault(namespace, {})[key] = value
                self._write(data)
        except OSError as exc:
            # a read-only or full run directory: one line, not a traceback from deep inside
            raise EnvironmentProblem(
                f"cannot write state store {self.path}: {exc.strerror or exc}",
                hint="the run directory must be writable and its disk not full",
            ) from exc

    def get(self, namespace: str, key: str, default: Any = None) -> Any:
        return self._read().get(namespace, {}).get(key, default)

    def namespace(self, namespace: str) -> dict[str, Any]:
        return dict(self._read().get(namespace, {}))


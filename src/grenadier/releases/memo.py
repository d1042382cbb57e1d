"""What the release cache remembers about the package index, so that a cached release never
needs it again: upload times (they never change), constraints that do not fit a release (its
resolution failed once), and the constraints files venvs were built with."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from grenadier.errors import EnvironmentProblem
from grenadier.host import file_lock, write_atomic
from grenadier.releases.constraints import Environment
from grenadier.releases.index import TIMEOUT, upload_time


class IndexMemo:
    """A small JSON file in the cache, read and written under its own lock."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # missing or corrupt: what it held is asked again
        return data if isinstance(data, dict) else {}

    def _update(self, key: str, item: str, value: object) -> None:
        with file_lock(self.path.with_name(self.path.name + ".lock")):
            data = self._read()
            section = data.get(key)
            data[key] = {**(section if isinstance(section, dict) else {}), item: value}
            write_atomic(self.path, json.dumps(data, indent=1, sort_keys=True))

    def uploaded(self, package: str, version: str, index_url: Callable[[], str]) -> datetime:
        """When ``package`` ``version`` was uploaded: remembered, or asked of the index."""
        key = f"{package}=={version}"
        known = self._read().get("uploaded", {}).get(key)
        if isinstance(known, str):
            return datetime.fromisoformat(known)
        when = upload_time(index_url(), package, version)
        self._update("uploaded", key, when.isoformat())
        return when

    def fits(self, digest: str, requirement: str) -> bool:
        """False once the constraints ``digest`` failed to resolve ``requirement``."""
        return self._read().get("unfit", {}).get(f"{digest} {requirement}") is not True

    def unfit(self, digest: str, requirement: str) -> None:
        self._update("unfit", f"{digest} {requirement}", True)

    def fetch(self, url: str) -> str:
        """The constraints at ``url`` (the official published copies are URLs)."""
        try:
            response = httpx.get(url, timeout=TIMEOUT, follow_redirects=True)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise EnvironmentProblem(f"cannot fetch the constraints at {url}: {exc}",
                                     hint="give a series or a file instead") from exc
        return response.text

    def materialize(self, environment: Environment) -> Path:
        """The environment's constraints (or freeze) as a file the installer can read."""
        path = self.path.parent / "constraints" / f"{environment.kind}-{environment.digest}.txt"
        if not path.is_file():
            write_atomic(path, environment.text)
        return path

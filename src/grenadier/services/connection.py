"""Where the Heat of the current phase is, and what the run around it knows.

Found from the run directory the runner names in ``GRENADIER_RUN_DIR`` (``endpoint.json``,
``db.json``, ``state.json``, ``upgrade-done``), each piece overridable by an environment variable,
so the same tests run under ``grenadier run``, under tox, or against a Heat the user started.
Pure: no pytest here, only data and one error type.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from grenadier.errors import EnvironmentProblem
from grenadier.services.api import PHASE_ENV, RUN_DIR_ENV

__all__ = [
    "ENV",
    "PHASES",
    "Connection",
    "DbInfo",
    "Endpoint",
    "Releases",
    "discover",
    "parse_version",
]

PHASES = ("smoke-base", "pre-upgrade", "during-upgrade", "smoke-target", "post-upgrade")


class ENV:
    """Names of the environment variables read here (documented in writing-upgrade-tests.md)."""

    #: the two the runner sets for every phase (and reaps leftover phase processes by)
    RUN_DIR = RUN_DIR_ENV
    PHASE = PHASE_ENV
    URL = "GRENADIER_HEAT_URL"
    PROJECT = "GRENADIER_HEAT_PROJECT"
    USER = "GRENADIER_HEAT_USER"
    #: a Keystone token for a Heat behind real auth (devstack, the grenade export)
    TOKEN = "GRENADIER_HEAT_TOKEN"
    SERIAL = "GRENADIER_SERIAL"
    STATE = "GRENADIER_STATE"
    BASE = "GRENADIER_BASE"
    TARGET = "GRENADIER_TARGET"
    DB_URL = "GRENADIER_DB_URL"
    DB_PYTHON = "GRENADIER_DB_PYTHON"
    WATCH_SECONDS = "GRENADIER_WATCH_SECONDS"
    STUCK_STACKS = "GRENADIER_STUCK_STACKS"


def parse_version(label: str | None) -> Version | None:
    """A release label as a Version, or None when it is not one (e.g. a source tree label)."""
    if not label:
        return None
    try:
        return Version(label)
    except InvalidVersion:
        return None


def _flag(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Endpoint:
    """The Heat API of the current phase. ``url`` is None while Heat is down."""

    url: str | None
    project: str
    user: str
    #: True on SQLite: stack operations must run one at a time (concurrent writers fail there
    #: with "database is locked")
    serial: bool
    #: label of the running release, when known
    release: str | None
    #: how to authenticate: None for noauth headers, else endpoint.json's ``auth`` block
    auth: Mapping[str, Any] | None = None
    #: a fixed Keystone token given by the environment (no renewal)
    token: str | None = None
    #: ``all-in-one`` or ``split``, when the run says so
    topology: str | None = None


@dataclass(frozen=True)
class DbInfo:
    """Heat's database, and a Python that can query it (has SQLAlchemy and the driver)."""

    kind: str
    url: str
    python: str


@dataclass(frozen=True)
class Releases:
    """The upgrade path under test. A label that is not a version parses to None."""

    base_label: str | None
    target_label: str | None
    running_label: str | None

    @property
    def base(self) -> Version | None:
        return parse_version(self.base_label)

    @property
    def target(self) -> Version | None:
        return parse_version(self.target_label)

    @property
    def running(self) -> Version | None:
        return parse_version(self.running_label)


@dataclass(frozen=True)
class Connection:
    """Everything a test session may need to know about the run it is part of."""

    run_dir: Path | None
    phase: str | None
    endpoint: Endpoint | None
    releases: Releases
    state_path: Path | None
    db: DbInfo | None
    #: where the runner says so (``<run_dir>/upgrade-done``); None outside a run
    upgrade_done_path: Path | None

    @property
    def active(self) -> bool:
        """True when anything at all points at a grenadier run or a Heat to test."""
        return any((self.run_dir, self.endpoint, self.state_path, self.db))

    def upgrade_done(self) -> bool:
        return self.upgrade_done_path is not None and self.upgrade_done_path.exists()


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise EnvironmentProblem(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise EnvironmentProblem(f"{path} does not hold a JSON object")
    return data


def _endpoint(data: Mapping[str, Any], env: Mapping[str, str]) -> Endpoint | None:
    url = env.get(ENV.URL) or data.get("url")
    if not data and not env.get(ENV.URL):
        return None
    serial = _flag(env[ENV.SERIAL]) if ENV.SERIAL in env else bool(data.get("serial", False))
    return Endpoint(
        url=str(url).rstrip("/") if url else None,
        project=env.get(ENV.PROJECT) or str(data.get("project") or "grenadier"),
        user=env.get(ENV.USER) or str(data.get("user") or "grenadier"),
        serial=serial,
        release=str(data["release"]) if data.get("release") else None,
        auth=data["auth"] if isinstance(data.get("auth"), dict) else None,
        token=env.get(ENV.TOKEN) or None,
        topology=_str(data.get("topology")),
    )


def _db(data: Mapping[str, Any], env: Mapping[str, str]) -> DbInfo | None:
    url = env.get(ENV.DB_URL) or data.get("url")
    python = env.get(ENV.DB_PYTHON) or data.get("python")
    if not url or not python:
        return None
    kind = str(data.get("kind") or str(url).split(":", 1)[0].split("+", 1)[0])
    return DbInfo(kind=kind, url=str(url), python=str(python))


def discover(env: Mapping[str, str] | None = None) -> Connection:
    """Read the run directory and the environment; raise EnvironmentProblem on a corrupt file."""
    env = os.environ if env is None else env
    run_dir = Path(env[ENV.RUN_DIR]) if env.get(ENV.RUN_DIR) else None
    endpoint_data = (_read_json(run_dir / "endpoint.json") if run_dir else None) or {}
    db_data = (_read_json(run_dir / "db.json") if run_dir else None) or {}
    state = env.get(ENV.STATE)
    state_path = Path(state) if state else (run_dir / "state.json" if run_dir else None)
    releases = Releases(
        base_label=env.get(ENV.BASE) or _str(endpoint_data.get("base")),
        target_label=env.get(ENV.TARGET) or _str(endpoint_data.get("target")),
        running_label=_str(endpoint_data.get("release")),
    )
    return Connection(
        run_dir=run_dir,
        phase=env.get(ENV.PHASE) or None,
        endpoint=_endpoint(endpoint_data, env),
        releases=releases,
        state_path=state_path,
        db=_db(db_data, env),
        upgrade_done_path=run_dir / "upgrade-done" if run_dir else None,
    )


def _str(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None

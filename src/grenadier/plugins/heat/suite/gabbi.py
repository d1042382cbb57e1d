"""Heat's upstream gabbits as tests of this suite: which run, against what, and their results.

``GRENADIER_SMOKE`` says which smoke tests a session runs: ``builtin`` (this suite's own, the
default outside a run), ``upstream`` (the heat-tempest-plugin gabbits only) or ``all``. The
gabbits are tests of the smoke phases and of post-upgrade (once against the target). One
gabbi run serves every gabbi test of the session: it starts as soon as collection is done,
so it runs beside the built-in tests (after them, one at a time, on SQLite).
"""

from __future__ import annotations

import os
import secrets
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

from grenadier.errors import GrenadierError
from grenadier.model.steps import SMOKE_MODES
from grenadier.plugins.heat.upstream import cases as gabbi_cases
from grenadier.plugins.heat.upstream.run import CaseResult, GabbiRun, Plan
from grenadier.plugins.heat.upstream.tools import PYTHON_ENV, ensure_tools, gabbits_dir
from grenadier.project.api import SMOKE_ENV, UPSTREAM_PROPERTY
from grenadier.releases import ReleaseCache
from grenadier.services.connection import Connection, Endpoint, discover

MODULE = "test_heat_upstream.py"
_SESSION = pytest.StashKey["UpstreamSession"]()


def smoke_mode() -> str:
    """``GRENADIER_SMOKE`` (default ``builtin``); an unknown value fails the session."""
    mode = os.environ.get(SMOKE_ENV, "builtin")
    if mode not in SMOKE_MODES:
        pytest.exit(f"{SMOKE_ENV}={mode!r}: choose one of {', '.join(SMOKE_MODES)}", 4)
    return mode


def tools_python() -> Path:
    """The tools venv's Python: as the runner installed it, else installed now (tox, by hand)."""
    given = os.environ.get(PYTHON_ENV)
    if given:
        return Path(given)
    return ensure_tools(ReleaseCache()).python


def _token(endpoint: Endpoint) -> str:
    if endpoint.token:
        return endpoint.token
    if endpoint.auth:
        from grenadier.services.keystone import heat_transport

        transport = heat_transport(endpoint.auth)
        try:
            return transport.token()
        finally:
            transport.close()
    return "noauth"  # sent by the files, ignored by Heat's noauth middleware


@dataclass
class UpstreamSession:
    """The gabbi tests of one pytest session and, once started, their run."""

    conn: Connection
    cases: list[gabbi_cases.Case]
    skips: dict[str, str]
    python: Path
    run: GabbiRun | None = None
    down: str = ""

    @classmethod
    def create(cls) -> UpstreamSession:
        conn = discover()
        python = tools_python()
        cases = gabbi_cases.load_cases(gabbits_dir(python))
        endpoint = conn.endpoint
        mode = gabbi_cases.auth_mode(
            keystone=bool(endpoint and (endpoint.auth or endpoint.token)),
            topology=endpoint.topology if endpoint else None)
        skips, stale = gabbi_cases.skips(cases, gabbi_cases.load_known(), mode)
        for line in stale:
            warnings.warn(f"known_failures.yaml: {line}", pytest.PytestWarning, stacklevel=1)
        return cls(conn, cases, skips, python)

    def start(self) -> None:
        """Start the gabbi run against the running Heat (once); none while Heat is down."""
        if self.run is not None or self.down:
            return
        endpoint = self.conn.endpoint
        if endpoint is None or endpoint.url is None:
            self.down = f"no Heat to test in this phase ({self.conn.phase or 'unknown'})"
            return
        phase = self.conn.phase or "by-hand"
        headers = {} if endpoint.auth or endpoint.token else {
            "X-Auth-User": endpoint.user, "X-Auth-Project": endpoint.project}
        plan = Plan(url=f"{endpoint.url}/v1/{endpoint.project}", headers=headers,
                    skips=self.skips, prefix=f"grenadier-{phase}-{secrets.token_hex(3)}",
                    serial=endpoint.serial)
        workdir = self.conn.run_dir / "upstream" if self.conn.run_dir else \
            Path(tempfile.mkdtemp(prefix="grenadier-gabbi-"))
        self.run = GabbiRun(self.python, self.cases, plan, _token(endpoint), workdir,
                            name=f"gabbi-{phase}")
        self.run.start()

    def result(self, item: pytest.Item, case: gabbi_cases.Case) -> CaseResult:
        """The case's result, waiting for the run (starting it if it has not started); the
        item is marked as an upstream test for the runner's base/target comparison."""
        item.user_properties.append((UPSTREAM_PROPERTY, case.name))
        self.start()
        if self.run is None:
            return CaseResult("skipped", 0.0, self.down)
        return self.run.results()[case.name]

    def stop(self) -> None:
        if self.run is not None:
            self.run.stop()


def session(config: pytest.Config) -> UpstreamSession:
    """The session's gabbi tests (set up once per pytest session)."""
    if _SESSION not in config.stash:
        try:
            config.stash[_SESSION] = UpstreamSession.create()
        except (GrenadierError, OSError, ValueError) as exc:
            pytest.exit(f"grenadier: the upstream gabbits cannot run: {exc}", 3)
    return config.stash[_SESSION]


def started(config: pytest.Config) -> UpstreamSession | None:
    return config.stash.get(_SESSION, None)

"""The test API a project's upgrade suite builds on: the run's state, the during-upgrade watch,
concurrent stack operations, findings that do not fail a test, and a Heat client per account.

The pytest plugin's fixtures hand these out and re-export them for users' test modules
(``grenadier.pytest_plugin``); a project plugin's built-in suite imports them from here.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import pytest

from grenadier.host import safe_name, write_atomic
from grenadier.model.findings import Finding
from grenadier.services.connection import ENV, Connection, Endpoint
from grenadier.state.store import StateStore

if TYPE_CHECKING:
    from grenadier.services.heat_client import HeatClient

T = TypeVar("T")
R = TypeVar("R")

#: the during-upgrade watch gives up after this long when the runner never says it is done
DEFAULT_WATCH_SECONDS = 600.0
#: the run directory's folder of watch progress files (``watch_progress``)
WATCH_DIR = "watch"


def heat_client(endpoint: Endpoint, account: Literal["tests", "admin"] = "tests") -> HeatClient:
    """A Heat client for ``endpoint`` as ``account``: ``tests`` (the run's project: noauth
    headers, a given token, or the tests' Keystone user) or ``admin`` (the run's Keystone admin
    in the admin project; needs a run with Keystone)."""
    # imported here: unrelated pytest runs load this plugin and should not pay for httpx
    from grenadier.services.heat_client import HeatClient
    from grenadier.services.keystone import heat_transport
    from grenadier.services.request_log import recorder

    if endpoint.url is None:
        raise ValueError("Heat is down: no endpoint URL")
    auth = endpoint.auth
    if account == "admin":
        if not auth:
            raise ValueError("a Heat client as admin needs a run with Keystone")
        return HeatClient(endpoint.url, str(auth["admin_project"]), "admin",
                          transport=heat_transport(auth, "admin"), on_response=recorder())
    transport = heat_transport(auth) if auth else None  # real tokens instead of noauth headers
    return HeatClient(endpoint.url, endpoint.project, endpoint.user, transport=transport,
                      token=endpoint.token, on_response=recorder())


def namespace_for(path: str | os.PathLike[str]) -> str:
    """The state-store namespace of the test module at ``path``: ``tests/<file name>``.

    The file name, not the node id: it is the same whatever rootdir each phase's run has.
    """
    return f"tests/{Path(path).name}"


class UpgradeState:
    """grenade's resource_save / resource_get: one namespace per test module file."""

    def __init__(self, store: StateStore, namespace: str) -> None:
        self.store = store
        self.namespace = namespace

    def save(self, key: str, value: Any) -> None:
        self.store.save(self.namespace, key, value)

    def get(self, key: str, default: Any = None) -> Any:
        return self.store.get(self.namespace, key, default)

    def all(self) -> dict[str, Any]:
        """Every key of this namespace and its value, in one read of the store."""
        return self.store.namespace(self.namespace)

    def require(self, key: str) -> Any:
        """The saved value; fails the test when the pre-upgrade tests never saved it."""
        value = self.get(key)
        if value is None:
            pytest.fail(f"nothing saved under {self.namespace}/{key} in {self.store.path}: "
                        "did this module's pre_upgrade tests run in this run?", pytrace=False)
        return value


@dataclass(frozen=True)
class Tick:
    """One pass of an UpgradeWatch."""

    index: int
    elapsed: float  # seconds since the watch started
    at: datetime  # wall clock, UTC, for "the moment something vanished"
    upgrade_done: bool  # the upgrade's migration had ended before this pass started


#: how often a watch between two passes looks whether the upgrade's migration has ended
DONE_POLL_SECONDS = 0.1


class UpgradeWatch:
    """Yields every ``interval`` s until the upgrade's migration ended (at least once; bounded).

    The last pass starts after ``upgrade-done`` appeared (the runner writes it once the
    target's db_sync has ended), so the state the upgrade left behind is always checked too.
    """

    def __init__(self, done: Callable[[], bool], max_seconds: float, interval: float = 1.0,
                 progress: Path | None = None) -> None:
        self.done = done
        self.max_seconds = max_seconds
        self.interval = interval
        #: where each finished pass is recorded ({"passes": n, ...}): another during-upgrade
        #: test, in its own process, can wait until this watch has seen the starting state
        self.progress = progress
        self.passes = 0
        self.stopped_because = ""

    def __iter__(self) -> Iterator[Tick]:
        start = time.monotonic()
        while True:
            began = time.monotonic()
            done = self.done()
            self.passes += 1
            yield Tick(self.passes - 1, began - start, datetime.now(timezone.utc), done)
            self._record(done)
            if done:
                self.stopped_because = "the upgrade's migration ended"
                return
            if time.monotonic() - start >= self.max_seconds:
                self.stopped_because = f"watched for the maximum of {self.max_seconds:.0f} s"
                return
            self._pause(began + self.interval)

    def _pause(self, until: float) -> None:
        """Wait for the next pass, or less: the last pass starts as soon as the upgrade ends
        (the runner waits for the watch before it starts the target)."""
        while (left := until - time.monotonic()) > DONE_POLL_SECONDS:
            if self.done():
                return
            time.sleep(DONE_POLL_SECONDS)
        time.sleep(max(0.0, left))

    def _record(self, done: bool) -> None:
        if self.progress is not None:
            self.progress.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.progress, json.dumps({
                "passes": self.passes, "upgrade_done": done,
                "at": datetime.now(timezone.utc).isoformat()}))


def watch_progress(conn: Connection, test_id: str) -> Path | None:
    """Where the watch of test ``test_id`` (``<file name>::<test name>``) records its passes
    (``<run dir>/watch/``)."""
    if conn.run_dir is None:
        return None
    return conn.run_dir / WATCH_DIR / f"{safe_name(test_id, 120)}.json"


def wait_for_watch(conn: Connection, match: str, passes: int = 1,
                   timeout: float = 120.0) -> dict[str, Any]:
    """Wait until a watch whose test id contains ``match`` has finished ``passes`` passes.

    Watches of other test files run in processes of their own: a test that changes something
    on purpose (fault injection) waits with this until the watch has seen the state before.
    Returns the watch's last progress record; fails the test on timeout.
    """
    folder = conn.run_dir / WATCH_DIR if conn.run_dir is not None else None
    pattern = f"*{safe_name(match)}*.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in sorted(folder.glob(pattern)) if folder is not None else []:
            with contextlib.suppress(OSError, ValueError):
                record: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
                if record.get("passes", 0) >= passes:
                    return record
        time.sleep(0.2)
    pytest.fail(f"no watch matching {match!r} finished {passes} pass(es) in {timeout:.0f} s",
                pytrace=False)


def watch_seconds(conn: Connection, environ: Mapping[str, str] | None = None) -> float:
    """The longest a during-upgrade watch lasts: ``GRENADIER_WATCH_SECONDS``; else 600 s in a
    run's during-upgrade phase, 0 (one pass) outside one."""
    environ = os.environ if environ is None else environ
    if ENV.WATCH_SECONDS in environ:
        return float(environ[ENV.WATCH_SECONDS])
    # Only the runner upgrades concurrently; run by hand, one pass is what can be checked.
    during = conn.phase == "during-upgrade" and conn.upgrade_done_path is not None
    return DEFAULT_WATCH_SECONDS if during else 0.0


class Concurrently:
    """Run a function over items in a thread pool, or one at a time when Heat needs it."""

    def __init__(self, serial: bool, max_workers: int = 16) -> None:
        self.serial = serial
        self.max_workers = max_workers

    def __call__(self, fn: Callable[[T], R], items: Sequence[T],
                 label: Callable[[T], str] = str) -> list[R]:
        """``fn`` of every item, in order; every failure is reported, not only the first."""
        if not items:
            return []
        workers = 1 if self.serial else min(len(items), self.max_workers)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grenadier") as pool:
            futures = [pool.submit(fn, item) for item in items]
        failures = [(item, f.exception())
                    for item, f in zip(items, futures, strict=True) if f.exception()]
        if failures:
            text = "\n".join(
                f"- {label(item)}: {type(exc).__name__}: " + str(exc).replace("\n", "\n    ")
                for item, exc in failures)
            raise AssertionError(f"{len(failures)} of {len(items)} failed:\n{text}")
        return [f.result() for f in futures]


class GrenadierFinding(UserWarning):
    """A finding reported by an upgrade test without failing it."""


class FindingReporter:
    """Reports a Finding: console warning summary, JUnit property, and the run's findings file."""

    def __init__(self, node: pytest.Item, conn: Connection) -> None:
        self.node = node
        self.conn = conn
        self.reported: list[Finding] = []

    def report(self, finding: Finding) -> None:
        self.reported.append(finding)
        self.node.user_properties.append(("grenadier_finding", json.dumps(finding.to_dict())))
        if self.conn.run_dir is not None:
            record = {"phase": self.conn.phase, "test": self.node.nodeid, **finding.to_dict()}
            with (self.conn.run_dir / "findings.jsonl").open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
        warnings.warn(GrenadierFinding("\n".join(finding.lines())), stacklevel=2)

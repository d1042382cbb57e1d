"""grenadier's pytest plugin: phase markers, version-aware skips, and the upgrade-test fixtures.

Loaded into every pytest run of an environment where grenadier is installed (``pytest11`` entry
point), so it must stay inert for unrelated suites: it only registers markers, acts on items that
carry ``requires``, and does nothing else until one of its fixtures is asked for.
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
from packaging.specifiers import InvalidSpecifier, SpecifierSet

from grenadier.errors import GrenadierError
from grenadier.host import safe_name, write_atomic
from grenadier.model.findings import Finding
from grenadier.services.connection import ENV, Connection, Endpoint, Releases, discover
from grenadier.state.store import StateStore

if TYPE_CHECKING:
    from grenadier.services.heat_client import HeatClient

T = TypeVar("T")
R = TypeVar("R")

MARKERS = {
    "smoke": "quick create/show/update/delete checks, run against base and target",
    "pre_upgrade": "runs against the base release before the upgrade; creates and records",
    "during_upgrade": "runs while Heat is down and being upgraded; checks what must survive",
    "post_upgrade": "runs against the target release after the upgrade; verifies and cleans up",
    "requires": "requires(base=SPEC, target=SPEC, running=SPEC): skip unless the release "
                "versions under test match the PEP 440 specifiers",
}
REQUIRES_KEYS = ("base", "target", "running")
#: the during-upgrade watch gives up after this long when the runner never says it is done
DEFAULT_WATCH_SECONDS = 600.0
#: the run directory's folder of watch progress files (``watch_progress``)
WATCH_DIR = "watch"
_CONNECTION = pytest.StashKey[Connection]()


def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: (grenadier) {text}")


def _connection(config: pytest.Config) -> Connection:
    if _CONNECTION not in config.stash:
        try:
            config.stash[_CONNECTION] = discover()
        except GrenadierError as exc:
            pytest.fail(f"grenadier: {exc.one_line()}", pytrace=False)
    return config.stash[_CONNECTION]


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    try:
        conn = _connection(config)
    except pytest.fail.Exception as exc:
        return [str(exc)]
    if not conn.active:
        return None
    heat = conn.endpoint.url if conn.endpoint and conn.endpoint.url else "down"
    return [f"grenadier: phase {conn.phase or '?'}, heat {heat}, "
            f"release {conn.releases.running_label or '?'} "
            f"({conn.releases.base_label or '?'} -> {conn.releases.target_label or '?'})"]


# -- version-aware skips ---------------------------------------------------------------------

def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers("requires"):
        reason = requires_unmet(mark, _connection(item.config).releases)
        if reason:
            pytest.skip(reason)


def requires_unmet(mark: pytest.Mark, releases: Releases) -> str | None:
    """Why ``@pytest.mark.requires(...)`` is not met by ``releases``, or None when it is."""
    unknown = sorted(set(mark.kwargs) - set(REQUIRES_KEYS))
    if mark.args or unknown:
        pytest.fail(f"requires() takes only keyword arguments {', '.join(REQUIRES_KEYS)}; "
                    f"got {list(mark.args) + unknown}", pytrace=False)
    for key, spec_text in mark.kwargs.items():
        try:
            spec = SpecifierSet(str(spec_text))
        except InvalidSpecifier:
            pytest.fail(f"requires({key}={spec_text!r}): not a version specifier", pytrace=False)
        version = getattr(releases, key)
        if version is None:
            label = getattr(releases, f"{key}_label")
            return (f"requires {key}{spec}: the {key} release version is unknown "
                    f"({label or 'not set'}; set {ENV.BASE}/{ENV.TARGET} or run under grenadier)")
        if not spec.contains(version, prereleases=True):
            return f"requires {key}{spec}, {key} is {version}"
    return None


# -- fixtures --------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def grenadier_connection(request: pytest.FixtureRequest) -> Connection:
    """What the run around this session knows: run dir, phase, endpoint, releases, DB."""
    return _connection(request.config)


@pytest.fixture(scope="session")
def heat_endpoint(grenadier_connection: Connection) -> Endpoint:
    """The running Heat's API; skips when there is none (e.g. during the upgrade)."""
    endpoint = grenadier_connection.endpoint
    if endpoint is None:
        pytest.skip(f"no Heat to test: set {ENV.RUN_DIR} (a grenadier run directory) "
                    f"or {ENV.URL}")
    if endpoint.url is None:
        pytest.skip(f"Heat is down in this phase ({grenadier_connection.phase or 'unknown'})")
    return endpoint


def heat_client(endpoint: Endpoint, account: Literal["tests", "admin"] = "tests") -> HeatClient:
    """A Heat client for ``endpoint`` as ``account``: ``tests`` (the run's project: noauth
    headers, a given token, or the tests' Keystone user) or ``admin`` (the run's Keystone admin
    in the admin project; needs a run with Keystone)."""
    # imported here: unrelated pytest runs load this plugin and should not pay for httpx
    from grenadier.pytest_plugin.request_log import recorder
    from grenadier.services.heat_client import HeatClient
    from grenadier.services.keystone import heat_transport

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


@pytest.fixture(scope="session")
def heat(heat_endpoint: Endpoint) -> Iterator[HeatClient]:
    """A Heat client for the running release, in the run's project (see :func:`heat_client`)."""
    with heat_client(heat_endpoint) as client:
        yield client


@pytest.fixture(scope="session")
def releases(grenadier_connection: Connection) -> Releases:
    """Base, target and running release; ``.base``/``.target``/``.running`` are Versions."""
    found = grenadier_connection.releases
    if found.base_label is None and found.target_label is None:
        pytest.skip(f"release versions unknown: set {ENV.BASE}/{ENV.TARGET} or run under grenadier")
    return found


@pytest.fixture(scope="session")
def phase(grenadier_connection: Connection) -> str | None:
    """The runner's phase name (smoke-base, pre-upgrade, ...), or None outside a run."""
    return grenadier_connection.phase


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


@pytest.fixture(scope="module")
def upgrade_state(request: pytest.FixtureRequest,
                  grenadier_connection: Connection) -> Iterator[UpgradeState]:
    """The run's state store, namespaced by this test module's file name (module scope).

    Saves are journaled while the module's tests run (a test saving a record per stack costs
    what it saves, not what the store holds) and folded into ``state.json`` at its end."""
    path = grenadier_connection.state_path
    if path is None:
        pytest.skip(f"no state store: set {ENV.RUN_DIR} or {ENV.STATE}")
    with StateStore(path).deferred() as store:
        yield UpgradeState(store, namespace_for(request.path))


@dataclass(frozen=True)
class Tick:
    """One pass of an UpgradeWatch."""

    index: int
    elapsed: float  # seconds since the watch started
    at: datetime  # wall clock, UTC, for "the moment something vanished"
    upgrade_done: bool  # the upgrade step had ended before this pass started


#: how often a watch between two passes looks whether the upgrade step has ended
DONE_POLL_SECONDS = 0.1


class UpgradeWatch:
    """Yields every ``interval`` s until the upgrade step has ended (at least once; bounded).

    The last pass starts after ``upgrade-done`` appeared, so the state the upgrade left behind
    is always checked too.
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
                self.stopped_because = "upgrade step ended"
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


def _test_id(request: pytest.FixtureRequest) -> str:
    # not the node id: for a test file outside the run directory (pytest's rootdir in a run)
    # that is only "::<test name>"
    return f"{request.node.path.name}::{request.node.name}"


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


@pytest.fixture
def upgrade_watch(request: pytest.FixtureRequest,
                  grenadier_connection: Connection) -> UpgradeWatch:
    """Iterate to check continuously while the upgrade step runs (during-upgrade tests)."""
    return UpgradeWatch(grenadier_connection.upgrade_done, watch_seconds(grenadier_connection),
                        progress=watch_progress(grenadier_connection, _test_id(request)))


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


@pytest.fixture(scope="session")
def concurrently(grenadier_connection: Connection) -> Concurrently:
    """``concurrently(fn, items)``: concurrent stack operations, serial when Heat is on SQLite."""
    endpoint = grenadier_connection.endpoint
    return Concurrently(serial=endpoint.serial if endpoint else False)


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


@pytest.fixture
def findings(request: pytest.FixtureRequest, grenadier_connection: Connection) -> FindingReporter:
    """``findings.report(Finding(...))``: say something is wrong without failing the test."""
    assert isinstance(request.node, pytest.Item)
    return FindingReporter(request.node, grenadier_connection)

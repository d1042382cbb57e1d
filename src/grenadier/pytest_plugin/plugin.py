"""grenadier's pytest plugin: phase markers, version-aware skips, and the upgrade-test fixtures.

Loaded into every pytest run of an environment where grenadier is installed (``pytest11`` entry
point), so it must stay inert for unrelated suites: it only registers markers, acts on items that
carry ``requires``, and does nothing else until one of its fixtures is asked for.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from packaging.specifiers import InvalidSpecifier, SpecifierSet

from grenadier.errors import GrenadierError
from grenadier.project.testing import (
    Concurrently,
    FindingReporter,
    UpgradeState,
    UpgradeWatch,
    heat_client,
    namespace_for,
    watch_progress,
    watch_seconds,
)
from grenadier.services.connection import ENV, Connection, Endpoint, Releases, discover
from grenadier.state.store import StateStore

if TYPE_CHECKING:
    from grenadier.services.heat_client import HeatClient

MARKERS = {
    "smoke": "quick create/show/update/delete checks, run against base and target",
    "pre_upgrade": "runs against the base release before the upgrade; creates and records",
    "during_upgrade": "runs while Heat is down and being upgraded; checks what must survive",
    "post_upgrade": "runs against the target release after the upgrade; verifies and cleans up",
    "requires": "requires(base=SPEC, target=SPEC, running=SPEC): skip unless the release "
                "versions under test match the PEP 440 specifiers",
}
REQUIRES_KEYS = ("base", "target", "running")
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


def _test_id(request: pytest.FixtureRequest) -> str:
    # not the node id: for a test file outside the run directory (pytest's rootdir in a run)
    # that is only "::<test name>"
    return f"{request.node.path.name}::{request.node.name}"


@pytest.fixture
def upgrade_watch(request: pytest.FixtureRequest,
                  grenadier_connection: Connection) -> UpgradeWatch:
    """Iterate to check continuously while the upgrade step runs (during-upgrade tests)."""
    return UpgradeWatch(grenadier_connection.upgrade_done, watch_seconds(grenadier_connection),
                        progress=watch_progress(grenadier_connection, _test_id(request)))


@pytest.fixture(scope="session")
def concurrently(grenadier_connection: Connection) -> Concurrently:
    """``concurrently(fn, items)``: concurrent stack operations, serial when Heat is on SQLite."""
    endpoint = grenadier_connection.endpoint
    return Concurrently(serial=endpoint.serial if endpoint else False)


@pytest.fixture
def findings(request: pytest.FixtureRequest, grenadier_connection: Connection) -> FindingReporter:
    """``findings.report(Finding(...))``: say something is wrong without failing the test."""
    assert isinstance(request.node, pytest.Item)
    return FindingReporter(request.node, grenadier_connection)

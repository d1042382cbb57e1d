"""The release and tool cache: one venv per release and environment, the index asked only when
needed, a release whose series' constraints do not fit it resolved as of its upload, a venv
that does not import never kept."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from grenadier.errors import EnvironmentProblem, UsageError
from grenadier.host import file_lock
from grenadier.options.run import RunOptions
from grenadier.phases.context import RunContext
from grenadier.releases import ReleaseCache, parse_spec
from grenadier.releases import cache as cache_module
from grenadier.releases import memo as memo_module
from grenadier.releases.cache import MARKER, read_marker
from grenadier.releases.constraints import all_series
from grenadier.releases.installer import DRIVERS, Installer, Unresolvable
from grenadier.releases.spec import PACKAGE
from grenadier.releases.tools import ensure_tool, parse_pinned
from grenadier.state import StateStore

UPLOADED = datetime(2026, 10, 22, 8, 44, tzinfo=timezone.utc)


class FakeIndex(Installer):
    """A package index and installer in memory: counts what it is asked.

    ``unfit``: versions that no constraints file can resolve (as 27.0.1 with the 2026.2
    development snapshot)."""

    name = "fake"

    def __init__(self, *, offline: bool = False, broken: bool = False, delay: float = 0.0,
                 unfit: Sequence[str] = ()) -> None:
        self.versions = [Version(v) for v in ("24.1.1", "25.0.0", "26.0.2", "27.0.1")]
        self.offline, self.broken, self.delay, self.unfit = offline, broken, delay, unfit
        self.resolved: list[str] = []
        self.installed: list[list[str]] = []
        self.options: list[list[str]] = []
        self._lock = threading.Lock()

    def resolve(self, requirement: str, log: Path | None) -> Version:
        with self._lock:
            self.resolved.append(requirement)
        if self.offline:
            raise EnvironmentProblem("the package index is unreachable")
        time.sleep(self.delay)
        spec = Requirement(requirement).specifier
        return max(v for v in self.versions if spec.contains(v))

    def create_venv(self, venv: Path, log: Path | None) -> None:
        (venv / "bin").mkdir(parents=True)
        (venv / "bin" / "python").write_text("")

    def install(self, venv: Path, packages: Sequence[str], log: Path | None,
                env: Mapping[str, str], options: Sequence[str] = ()) -> None:
        with self._lock:
            self.installed.append(list(packages))
            self.options.append(list(options))
        if self.broken:
            raise EnvironmentProblem("installing failed")
        wanted = list(packages)
        if "-r" in wanted:  # a freeze: the requirements are in the file
            wanted += Path(wanted[wanted.index("-r") + 1]).read_text().split()
        for package in wanted:
            name, _, version = package.partition("==")
            if "-c" in options and version in self.unfit:
                raise Unresolvable(f"no solution for {package}")
            if name == PACKAGE:
                site = venv / "lib" / "python3.11" / "site-packages"
                (site / f"openstack_heat-{version}.dist-info").mkdir(parents=True)

    def index_url(self) -> str:
        if self.offline:
            raise EnvironmentProblem("the package index is unreachable")
        return "http://index.invalid/simple"

    def freeze(self, venv: Path) -> str:
        return ""


def _cache(root: Path, index: Installer, **kwargs: str) -> ReleaseCache:
    return ReleaseCache(root, index, probe=lambda *args: None, **kwargs)


@pytest.fixture
def uploads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Upload times from a fake index; the list records what was asked."""
    asked: list[str] = []

    def upload_time(index_url: str, package: str, version: str) -> datetime:
        asked.append(f"{package}=={version}")
        return UPLOADED

    monkeypatch.setattr(memo_module, "upload_time", upload_time)
    return asked


def test_pinned_release_in_the_cache_is_used_without_asking_the_index(tmp_path: Path) -> None:
    index = FakeIndex()
    first = _cache(tmp_path, index).ensure(parse_spec("26.0.2"))
    assert index.resolved == [f"{PACKAGE}==26.0.2"]
    assert index.installed == [[f"{PACKAGE}==26.0.2", *DRIVERS]]
    # a later run, with the index unreachable: the cached venv is all it needs
    offline = FakeIndex(offline=True)
    again = _cache(tmp_path, offline).ensure(parse_spec("openstack-heat==26.0.2"))
    assert again == first
    assert (again.version, again.kind, again.python) == ("26.0.2", "pypi",
                                                         first.venv / "bin" / "python")
    assert (offline.resolved, offline.installed) == ([], [])
    # a pinned version that is not cached does ask (and an unreachable index is an error)
    with pytest.raises(EnvironmentProblem, match="unreachable"):
        _cache(tmp_path, offline).ensure(parse_spec("25.0.0"))
    assert offline.resolved == [f"{PACKAGE}==25.0.0"]


def test_a_run_pins_its_releases_before_it_starts(tmp_path: Path) -> None:
    index = FakeIndex()
    _cache(tmp_path, index).ensure(parse_spec("26.0.2"))
    offline = FakeIndex(offline=True)
    assert _cache(tmp_path, offline).pin(parse_spec("openstack-heat==26.0.2")) == "26.0.2"
    assert offline.resolved == []  # in the cache: the index is not asked
    cache = _cache(tmp_path, FakeIndex())
    assert (cache.pin(parse_spec("latest")), cache.pin(parse_spec("latest-1"))) == \
        ("27.0.1", "26.0.2")
    tree = tmp_path / "heat-tree"
    (tree / "heat").mkdir(parents=True)
    (tree / "heat" / "__init__.py").write_text("")
    (tree / "setup.cfg").write_text("[metadata]\nname = openstack-heat\n")
    assert cache.pin(parse_spec(str(tree))) == str(tree.resolve())


def test_latest_n_beyond_the_oldest_series_is_bad_input(tmp_path: Path) -> None:
    index = FakeIndex()
    with pytest.raises(UsageError, match="no major series 9999 before its newest release "
                                         r"\(27.0.1\)") as raised:
        _cache(tmp_path, index).pin(parse_spec("latest-9999"))
    assert "latest-26" in raised.value.one_line()
    assert index.resolved == [PACKAGE]  # never a requirement such as openstack-heat<-9971


def test_each_release_gets_the_constraints_of_its_own_series(tmp_path: Path) -> None:
    index = FakeIndex()
    cache = _cache(tmp_path, index)
    base, slurp = cache.ensure(parse_spec("26.0.2")), cache.ensure(parse_spec("24.1.1"))
    assert base.environment["label"].startswith("2026.1 upper-constraints")
    assert slurp.environment["label"].startswith("2025.1 upper-constraints")
    # 2025.1's Heat imports pkg_resources: its venvs get a setuptools that still has it
    assert index.installed[1][-1] == "setuptools<81"
    assert base.environment["digest"][:8] in base.venv.name
    shipped = [all_series()[name].text for name in ("2026.1", "2025.1")]
    assert [(o[0], Path(o[1]).read_text()) for o in index.options] == [
        ("-c", text) for text in shipped]


def test_a_series_that_does_not_fit_falls_back_to_the_index_as_of_the_upload(
        tmp_path: Path, uploads: list[str]) -> None:
    index = FakeIndex(unfit=["27.0.1"])
    release = _cache(tmp_path, index).ensure(parse_spec("27.0.1"))
    assert release.environment["kind"] == "as-of"
    assert release.environment["exclude_newer"] == "2026-10-25"  # uploaded + 3 days
    assert "2026.2 constraints do not fit" in release.environment["label"]
    assert index.options == [["-c", index.options[0][1]], ["--exclude-newer", "2026-10-25"]]
    # remembered: a later run neither tries the series again nor asks the index
    offline = FakeIndex(offline=True, unfit=["27.0.1"])
    assert _cache(tmp_path, offline).ensure(parse_spec("27.0.1")) == release
    assert (offline.resolved, offline.installed, uploads) == ([], [], ["openstack-heat==27.0.1"])


def test_constraints_the_user_chose_do_not_fall_back(tmp_path: Path) -> None:
    with pytest.raises(Unresolvable):
        _cache(tmp_path, FakeIndex(unfit=["27.0.1"]), constraints="2026.2").ensure(
            parse_spec("27.0.1"))


def test_the_environment_is_part_of_the_cache_key(tmp_path: Path) -> None:
    index = FakeIndex()
    constrained = _cache(tmp_path, index).ensure(parse_spec("26.0.2"))
    today = _cache(tmp_path, index, constraints="none").ensure(parse_spec("26.0.2"))
    assert constrained.venv != today.venv
    assert today.environment["kind"] == "none"
    assert index.options[-1] == []
    assert len(index.installed) == 2  # the constrained venv was not reused silently


def test_a_freeze_is_installed_exactly(tmp_path: Path) -> None:
    freeze = tmp_path / "base-freeze.txt"
    freeze.write_text(f"{PACKAGE}==26.0.2\ncryptography==43.0.3\n")
    index = FakeIndex()
    release = _cache(tmp_path / "cache", index).ensure(parse_spec("26.0.2"), freeze=freeze)
    assert release.environment["kind"] == "freeze"
    assert index.installed[-1][-2] == "-r"
    assert Path(index.installed[-1][-1]).read_text() == freeze.read_text()


def test_a_venv_that_does_not_import_is_not_kept(tmp_path: Path) -> None:
    def probe(venv: Path, dist: str, what: str, log: Path | None) -> None:
        raise EnvironmentProblem(f"{what} does not work in its venv")

    cache = ReleaseCache(tmp_path, FakeIndex(), probe=probe)
    with pytest.raises(EnvironmentProblem, match=r"openstack-heat 26\.0\.2 does not work"):
        cache.ensure(parse_spec("26.0.2"))
    assert [p for p in (tmp_path / "releases").iterdir() if p.is_dir()] == []


def test_half_installed_pinned_release_is_resolved_and_rebuilt(tmp_path: Path) -> None:
    index = FakeIndex()
    release = _cache(tmp_path, index).ensure(parse_spec("26.0.2"))
    (release.venv / MARKER).unlink()
    (release.venv / "leftover").write_text("")
    index.resolved.clear()
    again = _cache(tmp_path, index).ensure(parse_spec("26.0.2"))
    assert index.resolved == [f"{PACKAGE}==26.0.2"]
    assert len(index.installed) == 2
    assert not (again.venv / "leftover").exists()
    assert read_marker(again.venv) is not None


def test_latest_and_latest_1_ask_the_index_for_the_newest_once(tmp_path: Path) -> None:
    index = FakeIndex(delay=0.05)  # both threads are resolving at the same time
    cache = _cache(tmp_path, index)
    with ThreadPoolExecutor(2) as pool:
        releases = list(pool.map(cache.ensure, [parse_spec("latest"), parse_spec("latest-1")]))
    assert [r.version for r in releases] == ["27.0.1", "26.0.2"]
    assert sorted(index.resolved) == [PACKAGE, f"{PACKAGE}<27"]
    assert cache.ensure(parse_spec("latest")) == releases[0]
    assert sorted(index.resolved) == [PACKAGE, f"{PACKAGE}<27"]  # remembered by this cache
    assert len(index.installed) == 2


def test_tool_requirements_must_pin_a_version() -> None:
    assert parse_pinned("keystone==30.0.0") == ("keystone", "30.0.0")
    with pytest.raises(UsageError):
        parse_pinned("keystone>=30")


def test_tool_is_installed_once_with_its_own_series(tmp_path: Path) -> None:
    index = FakeIndex()
    cache = _cache(tmp_path, index, constraints="none")  # the run's choice is for releases
    tool = ensure_tool(cache, "keystone==30.0.0")
    assert tool == ensure_tool(_cache(tmp_path, index), "keystone==30.0.0")
    assert index.installed == [["keystone==30.0.0"]]
    assert index.options[0][0] == "-c"  # keystone 30 is of the 2026.2 series
    assert index.resolved == []  # a tool is pinned: never resolved
    assert tool.venv.parent == tmp_path / "tools"
    assert tool.venv.name.startswith(f"keystone-30.0.0-{cache.py_tag}-uc-")
    assert tool.bin("python") == tool.python
    with pytest.raises(EnvironmentProblem, match="keystone-manage is not installed"):
        tool.bin("keystone-manage")
    marker = read_marker(tool.venv) or {}
    assert {k: marker.get(k) for k in ("kind", "source", "version", "installer")} == {
        "kind": "tool", "source": "keystone==30.0.0", "version": "30.0.0", "installer": "fake"}
    # other extra packages make another install, in place of the first
    ensure_tool(cache, "keystone==30.0.0", extra=["python-memcached"])
    assert index.installed[-1] == ["keystone==30.0.0", "python-memcached"]


def test_failed_install_leaves_no_venv(tmp_path: Path) -> None:
    cache = _cache(tmp_path, FakeIndex(broken=True))
    with pytest.raises(EnvironmentProblem, match="installing failed"):
        ensure_tool(cache, "keystone==30.0.0")
    with pytest.raises(EnvironmentProblem, match="installing failed"):
        cache.ensure(parse_spec("26.0.2"))
    assert [p for p in (tmp_path / "tools").iterdir() if p.is_dir()] == []
    assert [p for p in (tmp_path / "releases").iterdir() if p.is_dir()] == []


# -- a resumed run finds its releases again --------------------------------------------------

def test_a_venv_holds_the_release_its_marker_names(tmp_path: Path) -> None:
    release = _cache(tmp_path, FakeIndex()).ensure(parse_spec("26.0.2"))
    cache = _cache(tmp_path, FakeIndex())
    assert cache.holds(release)
    marker = read_marker(release.venv) or {}
    # rebuilt since with other libraries (another run), or half rebuilt: not the same release
    (release.venv / MARKER).write_text(json.dumps({**marker, "environment_json": "{}"}))
    assert not cache.holds(release)
    (release.venv / MARKER).unlink()
    assert not cache.holds(release)
    shutil.rmtree(release.venv)
    assert not cache.holds(release)


def test_the_marker_is_read_under_the_venvs_lock(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Never while another run rebuilds the venv: it holds that lock while it does."""
    release = _cache(tmp_path, FakeIndex()).ensure(parse_spec("26.0.2"))
    held: list[bool] = []

    def read(venv: Path) -> dict[str, str] | None:
        try:
            with file_lock(venv.with_name(venv.name + ".lock"), wait=False):
                held.append(False)
        except BlockingIOError:
            held.append(True)
        return read_marker(venv)

    monkeypatch.setattr(cache_module, "read_marker", read)
    assert _cache(tmp_path, FakeIndex()).holds(release)
    assert held == [True]


def test_a_resumed_run_reinstalls_a_release_its_venv_no_longer_holds(tmp_path: Path) -> None:
    index = FakeIndex()
    cache = _cache(tmp_path / "cache", index)
    context = object.__new__(RunContext)  # only what release() reads
    context.run_dir, context.cache = tmp_path, cache
    context.options = RunOptions(base="26.0.2", target="27.0.1")
    context.store = StateStore(tmp_path / "state.json")
    first = context.release("base")
    installs = len(index.installed)
    assert context.release("base") == first  # recorded, and its venv holds it: reused
    assert len(index.installed) == installs
    (first.venv / MARKER).unlink()  # e.g. another run is rebuilding it
    assert context.release("base") == first
    assert len(index.installed) == installs + 1
    assert read_marker(first.venv) is not None

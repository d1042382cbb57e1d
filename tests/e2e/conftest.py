"""End-to-end fixtures: one release cache per session, real runs shared by read-only tests."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from grenadier.releases import Release, ReleaseCache, parse_spec
from tests.helpers import crafted

ROOT = Path(__file__).resolve().parents[2]
BASE, TARGET, OLDEST = "26.0.2", "27.0.1", "25.0.2"
#: the supported skip-level (SLURP) base for BASE: 2025.1 -> 2026.1
SLURP = "24.1.1"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


def release(major: int) -> Release:
    """The release venv named by GRENADIER_TEST_RELEASES_<major> (the session fixture sets it)."""
    path = os.environ.get(f"GRENADIER_TEST_RELEASES_{major}")
    if not path or not Path(path, "bin", "python").exists():
        pytest.skip(f"GRENADIER_TEST_RELEASES_{major} does not name a release venv")
    venv = Path(path)
    dist = sorted(venv.glob("lib/python3*/site-packages/openstack_heat-*.dist-info"))
    if not dist:
        pytest.skip(f"no openstack-heat in {venv}")
    version = dist[-1].name[len("openstack_heat-"):-len(".dist-info")]
    return Release(label=version, version=version, venv=venv, kind="pypi")


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    """$GRENADIER_CACHE when set (CI sets one per run), else the checkout's own cache."""
    path = Path(os.environ.get("GRENADIER_CACHE") or ROOT / ".grenadier" / "cache")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session", autouse=True)
def release_venvs(cache_dir: Path) -> dict[str, Path]:
    """Install 25.0.2, 26.0.2, 27.0.1 once; tests that need a venv path read the env vars."""
    cache = ReleaseCache(cache_dir)
    venvs = {}
    for version in (OLDEST, BASE, TARGET):
        release = cache.ensure(parse_spec(version))
        venvs[version] = release.venv
        os.environ.setdefault(f"GRENADIER_TEST_RELEASES_{version.split('.')[0]}",
                              str(release.venv))
    return venvs


@dataclass
class Run:
    """A finished ``grenadier run``: exit code, output, and its run directory."""

    returncode: int
    out: str
    err: str
    run_dir: Path

    @property
    def report(self) -> dict[str, object]:
        return json.loads((self.run_dir / "report.json").read_text())  # type: ignore[no-any-return]

    def steps(self) -> dict[str, dict[str, object]]:
        return {s["name"]: s for s in self.report["steps"]}  # type: ignore[index, union-attr]

    def status(self) -> dict[str, str]:
        return {name: str(s["status"]) for name, s in self.steps().items()}


def grenadier(*args: str, workdir: Path, cache_dir: Path, timeout: float = 900,
              env: dict[str, str] | None = None) -> Run:
    """Run the real CLI in a child process and find the run directory it made."""
    if args and args[0] == "run" and "--resume" not in args and "--workdir" not in args:
        args = (*args, "--workdir", str(workdir))
    before = set((workdir / "runs").glob("*")) if (workdir / "runs").exists() else set()
    full_env = {**os.environ, "GRENADIER_CACHE": str(cache_dir), **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "grenadier", *args], cwd=workdir,
                          capture_output=True, text=True, timeout=timeout, env=full_env,
                          check=False)
    after = set((workdir / "runs").glob("*")) if (workdir / "runs").exists() else set()
    new = sorted(after - before)
    resumed = [Path(a) for i, a in enumerate(args) if i and args[i - 1] == "--resume"]
    run_dir = new[-1] if new else (resumed[0] if resumed else workdir)
    return Run(proc.returncode, proc.stdout, proc.stderr, run_dir)


def heat_processes(run_dir: Path) -> list[str]:
    """Command lines of live processes that belong to ``run_dir`` (none may outlive a run)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(run_dir) in cmd:
            found.append(cmd)
    return found


@pytest.fixture(scope="session")
def workdir() -> Iterator[Path]:
    """Run directories live outside pytest's basetemp: every pytest session resets that tree
    to mode 0700, which would lock the embedded PostgreSQL (its own user) out of its data."""
    path = Path(tempfile.mkdtemp(prefix="grenadier-e2e-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def default_run(workdir: Path, cache_dir: Path) -> Run:
    """The main job: a real 26.0.2 -> 27.0.1 upgrade on the embedded PostgreSQL default."""
    return grenadier("run", "--base", BASE, "--target", TARGET, workdir=workdir,
                    cache_dir=cache_dir)


# -- what a run leaves on the machine ------------------------------------------------------------

#: a --workdir whose run directories are longer than a unix socket path may be: the sockets of
#: PostgreSQL and MariaDB then live in directories of their own under the temporary directory
LONG = "a-workdir-path-as-long-as-those-of-zuul-and-github-actions-checkouts-" + "x" * 40


@dataclass(frozen=True)
class Footprint:
    """What identifies the processes and ports of a run while it runs."""

    #: process groups (and sessions) its services and phase processes lead
    groups: frozenset[int]
    #: TCP ports its services listen on, on 127.0.0.1
    ports: frozenset[int]
    #: directories its services have outside the run (their sockets', under /tmp)
    dirs: frozenset[Path] = frozenset()

    def left(self) -> list[str]:
        """Every process of those groups or sessions still alive, every port still open."""
        from grenadier.execute.processes import PROC, proc_stat

        found = []
        for entry in PROC.iterdir():
            stat = proc_stat(int(entry.name)) if entry.name.isdigit() else None
            if stat is not None and stat.live and {stat.pgrp, stat.session} & self.groups:
                found.append(f"pid {stat.pid} (group {stat.pgrp}): {_cmdline(stat.pid)}")
        return found + [f"port {port} still listens" for port in sorted(self.ports)
                        if _listens(port)] + [f"{d} is still there" for d in sorted(self.dirs)
                                              if d.exists()]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:300]
    except OSError:
        return "?"


def _listens(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _json(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def run_pids(run_dir: Path) -> list[int]:
    """PIDs of the live processes whose command line names ``run_dir``."""
    return [int(proc.name) for proc in Path("/proc").iterdir()
            if proc.name.isdigit() and str(run_dir) in _cmdline(int(proc.name))]


def footprint(run_dir: Path) -> Footprint:
    """Taken while the run is up: its services (services.json), the processes naming its run
    directory, and the ports its state and credential files record."""
    services = _json(run_dir / "services.json")
    groups = {int(info["pid"]) for info in services.values() if isinstance(info, dict)}
    dirs = {Path(info["scratch_dir"]) for info in services.values()
            if isinstance(info, dict) and info.get("scratch_dir")}
    groups |= set(run_pids(run_dir))
    ports = {_json(run_dir / "state.json").get("namespaces", {}).get("runner", {}).get("port")}
    rabbit = _json(run_dir / "rabbitmq" / "credentials.json")
    ports |= {rabbit.get(k) for k in ("amqp_port", "dist_port", "epmd_port")}
    ports |= {_json(run_dir / "db" / "mariadb.json").get("port"),
              _json(run_dir / "keystone" / "credentials.json").get("port")}
    return Footprint(frozenset(groups), frozenset(p for p in ports if isinstance(p, int)),
                     frozenset(dirs))


def wait_left(print_: Footprint, timeout: float = 60) -> list[str]:
    """What of ``print_`` is still there after ``timeout`` seconds at most."""
    deadline = time.monotonic() + timeout
    while (left := print_.left()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


@dataclass
class KeptRun:
    """A finished run whose services were left up (``--keep-running``)."""

    run: Run
    footprint: Footprint
    secrets: dict[str, str]


def kept_run(home: Path, cache_dir: Path, *args: str,
             secrets: dict[str, str] | None = None) -> Iterator[KeptRun]:
    """A real run with ``--keep-running``, stopped with ``grenadier down`` when done with."""
    home.mkdir(parents=True, exist_ok=True)
    run = grenadier("run", "--base", BASE, "--target", TARGET, "--keep-running", *args,
                    workdir=home, cache_dir=cache_dir)
    kept = KeptRun(run, footprint(run.run_dir), secrets or {})
    try:
        yield kept
    finally:
        grenadier("down", str(run.run_dir), workdir=home, cache_dir=cache_dir)
        from grenadier.services.api import reap_recorded

        reap_recorded(run.run_dir / "services.json", timeout=5)


#: a --config a deployer might carry: a secret option under its deprecated name, an option no
#: release knows that holds a password, a removed option whose URL carries credentials
SECRET_CONFIG = """\
[cache]
memcache_password = {memcache}

[DEFAULT]
rabbit_password = {rabbit}

[ec2authtoken]
auth_uri = http://heat:{url_password}@127.0.0.1:5000/v3?password={query_password}
"""


@pytest.fixture(scope="session")
def postgres_kept(workdir: Path, cache_dir: Path) -> Iterator[KeptRun]:
    """The default all-in-one run on the embedded PostgreSQL, from a long --workdir, with a
    --config holding secrets; left running."""
    home = workdir / "postgres-kept" / LONG
    home.mkdir(parents=True)
    secrets = {name: f"{name}-{uuid.uuid4().hex}" for name in
               ("memcache", "rabbit", "url_password", "query_password")}
    config = home / "secret.conf"
    config.write_text(SECRET_CONFIG.format(**secrets))
    yield from kept_run(home, cache_dir, "--config", str(config), secrets=secrets)


@pytest.fixture(scope="session")
def mariadb_rabbit_kept(workdir: Path, cache_dir: Path) -> Iterator[KeptRun]:
    """A split run (heat-wsgi-api and heat-engine) on MariaDB, a private RabbitMQ and a private
    Keystone, from a long --workdir; left running."""
    for binary in ("mariadbd", "epmd"):
        if not (shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/usr/lib/erlang/bin")):
            pytest.skip("needs mariadb-server and rabbitmq-server (see .ci/run)")
    yield from kept_run(workdir / "mariadb-rabbit-kept" / LONG, cache_dir, "--db", "mariadb",
                        "--bus", "rabbit", "--auth", "keystone", "--topology", "split")


@pytest.fixture(scope="session")
def rolling_run(workdir: Path, cache_dir: Path) -> Run:
    """A rolling upgrade of Heat split on RabbitMQ (two engines, plain noauth, a steady
    workload), with Heat's upstream gabbits beside the built-in smoke tests."""
    return grenadier("run", "--base", BASE, "--target", TARGET, "--bus", "rabbit",
                     "--topology", "split", "--engines", "2", "--mode", "rolling",
                     "--workload-rate", "3", "--workload-min-ops", "100", "--smoke", "all",
                     workdir=workdir, cache_dir=cache_dir)


#: Heat split into its API and two engines on a private RabbitMQ, with a private Keystone
SPLIT_KEYSTONE = ("--base", BASE, "--target", TARGET, "--db", "postgresql", "--bus", "rabbit",
                  "--auth", "keystone", "--engines", "2", "--topology", "split")


@pytest.fixture(scope="session")
def keystone_run(workdir: Path, cache_dir: Path) -> Run:
    """A run with a private Keystone (real tokens, trusts, Heat's service user), Heat split on
    RabbitMQ, and Heat's upstream gabbits beside the built-in smoke tests."""
    home = workdir / "keystone"
    home.mkdir()
    return grenadier("run", *SPLIT_KEYSTONE, "--smoke", "all", workdir=home,
                     cache_dir=cache_dir, timeout=1500)


@pytest.fixture(scope="session")
def sdist_26(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Heat 26.0.2's source tree, downloaded and unpacked once: tests patch copies of it."""
    dest = tmp_path_factory.mktemp("sdist26")
    sdist = crafted.download_sdist(Path(sys.executable), BASE, dest / "download")
    return crafted.unpack(sdist, dest / "tree")


def tree_copy(sdist_26: Path, dest: Path) -> Path:
    """A copy of the 26.0.2 tree under ``dest``, to patch."""
    copy = dest / "heat-26.0.2-patched"
    shutil.copytree(sdist_26, copy)
    return copy


@pytest.fixture
def tree(sdist_26: Path, tmp_path: Path) -> Path:
    return tree_copy(sdist_26, tmp_path)

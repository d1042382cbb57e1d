"""End-to-end fixtures: one release cache per session, real runs shared by read-only tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from grenadier.releases import Release, ReleaseCache, parse_spec

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

"""The other ways a user runs the core: SQLite, a source tree, stop/resume, Ctrl-C, bad input."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from grenadier.execute import ExecuteRequest, run
from grenadier.model.steps import STEPS
from tests.conftest import CliResult, one_error_line
from tests.e2e.conftest import BASE, TARGET, Run, grenadier, heat_processes


def _as_cli(result: Run) -> CliResult:
    return CliResult(result.returncode, result.out, result.err)


@pytest.fixture(scope="module")
def sdist_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An unpacked openstack-heat sdist: the "patch under review" case."""
    dest = tmp_path_factory.mktemp("sdist")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
           f"openstack-heat=={TARGET}", "-d", str(dest)]
    run(ExecuteRequest(cmd, timeout=300)).assert_success("downloading the sdist")
    archive = next(dest.glob("openstack_heat-*.tar.gz"))
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    return next(p for p in dest.iterdir() if p.is_dir())


def test_local_tree_target_with_stop_and_resume(sdist_tree: Path, workdir: Path,
                                                cache_dir: Path) -> None:
    first = grenadier("run", "--base", BASE, "--target", str(sdist_tree), "--stop-after",
                      "pre-upgrade", workdir=workdir, cache_dir=cache_dir)
    assert first.returncode == 0, first.err[-3000:]
    assert list(first.status()) == [*STEPS[:4], "teardown"]
    assert heat_processes(first.run_dir) == []
    second = grenadier("run", "--resume", str(first.run_dir), workdir=workdir,
                       cache_dir=cache_dir)
    # as a patch under review, 27.0.1 removed Heat options with no deprecation period: an
    # error; the run still goes on, and every other step passes
    assert second.returncode == 1, second.err[-3000:]
    assert second.status() == {**dict.fromkeys(STEPS, "passed"), "upgrade": "failed"}
    errors = [f for f in second.steps()["upgrade"]["findings"]  # type: ignore[union-attr]
              if f["severity"] == "error"]
    assert errors, second.err[-3000:]
    assert {(f["check"], f["kind"]) for f in errors} == {("config-options",
                                                          "removed-without-notice")}
    assert all(f["where"].startswith("[clients_vitrage] ") for f in errors)
    # the tree's own release notes announced it
    assert all(f["found"].endswith("announced in the release notes: remove-vitrage-"
                                   "2e4f1e4a9e3479b6.yaml, deprecate-vitrage-"
                                   "407b7421e97f6cd7.yaml") for f in errors), errors
    assert "[error] config-options: option removed without notice: [clients_vitrage]" \
        in second.err
    target = second.report["releases"]["target"]  # type: ignore[index]
    assert target["kind"] == "local"
    assert target["version"].startswith(TARGET)


def test_sigint_during_pre_upgrade_leaves_nothing(workdir: Path, cache_dir: Path) -> None:
    env = {**os.environ, "GRENADIER_CACHE": str(cache_dir)}
    proc = subprocess.Popen([sys.executable, "-m", "grenadier", "run", "--base", BASE,
                             "--target", TARGET, "--workdir", str(workdir / "sigint")],
                            cwd=workdir, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    log = None
    while time.monotonic() < deadline and proc.poll() is None:
        # the phase's pytest is started ahead, held until its step: its session starts (and
        # says so in its log) once the step lets it run
        logs = [p for p in (workdir / "sigint").glob("runs/*/logs/pytest-pre-upgrade.log")
                if "test session starts" in p.read_text(encoding="utf-8", errors="replace")]
        if logs:
            log = logs[0]
            break
        time.sleep(0.2)
    assert log is not None, "pre-upgrade never started"
    time.sleep(2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    run_dir = log.parents[1]
    assert heat_processes(run_dir) == []
    status = Run(130, "", err, run_dir).status()
    assert status["pre-upgrade"] == "interrupted"
    assert status["teardown"] == "passed"


def test_busy_port(workdir: Path, cache_dir: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = grenadier("run", "--base", BASE, "--target", TARGET, "--port", str(port),
                           workdir=workdir, cache_dir=cache_dir)
    assert result.returncode == 3
    assert f"port {port} on 127.0.0.1 is in use" in one_error_line(_as_cli(result))
    assert heat_processes(result.run_dir) == []


@pytest.mark.parametrize(("spec", "says"), [
    ("99.99.0", "no release of openstack-heat matches 'openstack-heat==99.99.0'"),
    ("latest-9999", "'latest-9999': openstack-heat has no major series 9999 before its newest"),
])
def test_release_not_on_the_index(tmp_path: Path, cache_dir: Path, spec: str,
                                  says: str) -> None:
    """Resolved before the run starts: one line, exit 2, no run table, no run directory."""
    result = grenadier("run", "--base", spec, "--target", TARGET, workdir=tmp_path,
                       cache_dir=cache_dir)
    assert result.returncode == 2
    assert says in one_error_line(_as_cli(result))
    assert result.err.strip().splitlines() == [one_error_line(_as_cli(result))]
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())


def test_release_that_fails_to_install(tmp_path: Path, workdir: Path, cache_dir: Path) -> None:
    tree = tmp_path / "broken-heat"
    (tree / "heat").mkdir(parents=True)
    (tree / "heat" / "__init__.py").write_text("")
    (tree / "setup.cfg").write_text("[metadata]\nname = openstack-heat\n")
    (tree / "setup.py").write_text("raise SystemExit('this tree cannot be built')\n")
    result = grenadier("run", "--base", BASE, "--target", str(tree), workdir=workdir,
                       cache_dir=cache_dir)
    assert result.returncode == 3
    line = one_error_line(_as_cli(result))
    assert "installing" in line
    assert "failed" in line
    assert not list((cache_dir / "releases").glob("local-broken-heat-*-py*/bin")), \
        "a failed install leaves no half venv in the cache"

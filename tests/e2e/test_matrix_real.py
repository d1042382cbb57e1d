"""Real upgrades through the matrix and through the exported grenade plugin.

CI time: both paths of the matrix run the full built-in suite side by side, each with its
control (base -> base, run by default), four runs two at once, about as long as two runs (one
is about 100 s on 2 cores, measured by benchmarks/matrix.py); two paths are enough to
prove isolation (ports, databases, run directories, the shared cache). The second path is the
supported skip-level (SLURP) upgrade, 2025.1 -> 2026.1: Heat 24 -> 26. The round trip runs the
exported resources.sh, shutdown.sh and upgrade.sh against one real run (about 2 min).

The commands are called in-process (``matrix_command``, ``export_command``); every upgrade
run, resources phase and script still runs as its own process, as it would in CI.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from grenadier.cli import export_cmd, matrix_cmd
from grenadier.cli.progress import ConsoleReporter
from grenadier.exporters.grenade import READ_ONLY_TESTS
from grenadier.matrix.results import MATRIX_JSON, SUMMARY_MD
from grenadier.model.steps import STEPS
from grenadier.state import StateStore
from tests.e2e.conftest import BASE, SLURP, TARGET, Run, grenadier, heat_processes


def command(module: object, name: str, argv: list[str]) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="grenadier")
    module.add_parser(parser.add_subparsers(dest="command"))  # type: ignore[attr-defined]
    out = io.StringIO()
    code = getattr(module, name)(parser.parse_args(argv),
                                 ConsoleReporter(Console(file=out, width=250)))
    return int(code), out.getvalue()


# -- the matrix -------------------------------------------------------------------------------

def test_two_paths_in_parallel(workdir: Path, cache_dir: Path) -> None:
    code, out = command(matrix_cmd, "matrix_command", [
        "matrix", "--path", f"{BASE}:{TARGET}", "--path", f"{SLURP}:{BASE}", "--jobs", "2",
        "--workdir", str(workdir / "matrix"), "--cache-dir", str(cache_dir)])
    assert code == 0, out[-5000:]
    assert "grenadier matrix: all paths passed" in out
    folder = next((workdir / "matrix" / "matrix").iterdir())
    data = json.loads((folder / MATRIX_JSON).read_text())
    assert [p["result"] for p in data["paths"]] == ["passed", "passed"]
    # each run was given the release installed up front, pinned
    assert [p["releases"] for p in data["paths"]] == [
        {"base": f"openstack-heat=={BASE}", "target": f"openstack-heat=={TARGET}"},
        {"base": f"openstack-heat=={SLURP}", "target": f"openstack-heat=={BASE}"}]
    assert (folder / SUMMARY_MD).read_text().count("| passed |") == 2
    run_dirs = [Path(p["run_dir"]) for p in data["paths"]]
    assert len(set(run_dirs)) == 2
    ports, databases = set(), set()
    for run_dir in run_dirs:
        assert str(run_dir) in out  # the table links each report
        report = json.loads((run_dir / "report.json").read_text())
        assert [s["status"] for s in report["steps"]] == ["passed"] * len(STEPS)
        ports.add(StateStore(run_dir / "state.json").get("runner", "port"))
        databases.add(json.loads((run_dir / "db.json").read_text())["url"])
        assert heat_processes(run_dir) == []
    assert len(ports) == 2, "each run picks its own Heat port"
    assert len(databases) == 2, "each run has its own database instance"
    # one control per base, and each path's report says it was compared with it
    assert [(p["control"]["path"], p["control"]["result"]) for p in data["paths"]] == [
        (f"control {BASE} (postgresql)", "passed"), (f"control {SLURP} (postgresql)", "passed")]
    for path, run_dir in zip(data["paths"], run_dirs, strict=True):
        report = json.loads((run_dir / "report.json").read_text())
        assert report["control"]["run_dir"] == path["control"]["run_dir"]
        assert heat_processes(Path(path["control"]["run_dir"])) == []


# -- the grenade plugin, round trip -----------------------------------------------------------

@pytest.fixture
def base_running(workdir: Path, cache_dir: Path) -> Iterator[Run]:
    """A run left up after setup-base (base Heat and its database), stopped at the end."""
    run = grenadier("run", "--base", BASE, "--target", TARGET, "--no-builtin-suite",
                    "--stop-after", "setup-base", "--keep-running", workdir=workdir,
                    cache_dir=cache_dir)
    try:
        assert run.returncode == 0, run.err[-3000:]
        yield run
    finally:
        grenadier("down", str(run.run_dir), workdir=workdir, cache_dir=cache_dir)
        left = heat_processes(run.run_dir)
        _stop_leftovers(run.run_dir)  # a failure here must not leak processes into CI
        assert left == [], "grenadier down left processes running"


def _stop_leftovers(run_dir: Path) -> None:
    pids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()
            and str(run_dir).encode() in _read(p / "cmdline")]
    for sig in (signal.SIGINT, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
            time.sleep(0.2)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def _script(path: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("GRENADIER_")}
    return subprocess.run(["bash", str(path), *args], capture_output=True, text=True,
                          env={**inherited, **env}, timeout=900, check=False)


def _junit(path: Path) -> dict[str, str]:
    """test name -> passed / failed / skipped, from one phase's JUnit file."""
    found = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        status = "passed"
        for kind in ("failure", "error", "skipped"):
            if case.find(kind) is not None:
                status = kind
        found[case.get("name", "")] = status
    return found


def test_exported_grenade_phases_against_a_local_run(base_running: Run, tmp_path: Path,
                                                     cache_dir: Path) -> None:
    assert command(export_cmd, "export_command", ["export", "grenade", str(tmp_path)])[0] == 0
    plugin = tmp_path / "devstack" / "upgrade"
    endpoint = json.loads((base_running.run_dir / "endpoint.json").read_text())
    db = json.loads((base_running.run_dir / "db.json").read_text())
    logs = tmp_path / "logs"
    # what devstack would tell resources.sh: the API, the DB, a state file of its own
    heat = {"GRENADIER_PYTHON": sys.executable, "GRENADIER_HEAT_URL": endpoint["url"],
            "GRENADIER_HEAT_PROJECT": endpoint["project"], "GRENADIER_HEAT_USER":
            endpoint["user"], "GRENADIER_STATE": str(tmp_path / "state.json"),
            "GRENADIER_DB_URL": db["url"], "GRENADIER_DB_PYTHON": db["python"],
            "GRENADIER_BASE": BASE, "GRENADIER_TARGET": TARGET, "GRENADIER_LOGS": str(logs)}
    runner = {"GRENADIER_PYTHON": sys.executable, "GRENADIER_CACHE": str(cache_dir),
              "GRENADIER_RUN_DIR": str(base_running.run_dir)}
    sequence = [  # grenade's calling sequence (PLUGINS.rst, grenade.sh)
        ("resources.sh", ("create",), heat), ("resources.sh", ("verify", "pre-upgrade"), heat),
        ("shutdown.sh", (), runner), ("resources.sh", ("verify_noapi", "pre-upgrade"), heat),
        ("upgrade.sh", (), runner), ("resources.sh", ("verify", "post-upgrade"), heat),
        ("resources.sh", ("destroy",), heat),
    ]
    for script, args, env in sequence:
        proc = _script(plugin / script, *args, env=env)
        assert proc.returncode == 0, f"{script} {args}:\n{proc.stdout[-4000:]}{proc.stderr[-4000:]}"

    # the suite's own tests ran (a Heat the scripts could not reach would make them skip);
    # other tests of the suite may skip, none may fail
    phases = {path.stem: _junit(path) for path in logs.glob("*.xml")}
    for name, tests in phases.items():
        assert [t for t, s in tests.items() if s in ("failure", "error")] == [], name
    assert phases["create-pre_upgrade"]["test_create_stacks"] == "passed"
    assert set(phases["create-smoke"].values()) == {"passed"}
    for side in ("pre-upgrade", "post-upgrade"):
        verified = phases[f"verify-{side}-post_upgrade"]
        assert {t: verified[t] for t in READ_ONLY_TESTS} == dict.fromkeys(READ_ONLY_TESTS,
                                                                          "passed")
    noapi = phases["verify_noapi-pre-upgrade-during_upgrade"]
    assert noapi["test_stacks_and_resources_stay_in_db"] == "passed"
    destroyed = phases["destroy-post_upgrade"]
    assert destroyed["test_delete_old_stacks"] == "passed"
    # the upgrade itself ran through grenadier's runner: the target is what answers now
    results = StateStore(base_running.run_dir / "state.json").get("runner", "results")
    assert results["upgrade"]["status"] == "passed"
    assert results["start-target"]["status"] == "passed"

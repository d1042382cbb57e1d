"""grenadier export: the grenade plugin, the Zuul job and the GitHub workflow are valid.

Shell files must pass ``bash -n`` (and shellcheck when it is installed); YAML must parse and have
the keys Zuul and GitHub Actions require. resources.sh / shutdown.sh / upgrade.sh are also run
outside grenade with a fake Python, to check which tests each phase selects; the round trip
against a real Heat is tests/e2e/test_matrix_real.py.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console

from grenadier.cli import export_cmd
from grenadier.cli.progress import ConsoleReporter
from grenadier.errors import UsageError
from grenadier.exporters import exporters
from grenadier.exporters.base import (
    DEFAULT_PATHS,
    ExportFile,
    ExportSettings,
    render,
    write,
)
from grenadier.exporters.grenade import READ_ONLY_TESTS, series
from grenadier.matrix.paths import parse_path

PLUGIN = "devstack/upgrade"
SHELL_FILES = ("settings", "shutdown.sh", "upgrade.sh", "resources.sh",
               "from-2025.2/upgrade-heat")


def export(tmp_path: Path, kind: str, *argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="grenadier")
    export_cmd.add_parser(parser.add_subparsers(dest="command"))
    out = io.StringIO()
    code = export_cmd.export_command(parser.parse_args(["export", kind, str(tmp_path), *argv]),
                                     ConsoleReporter(Console(file=out, width=200)))
    return code, out.getvalue()


@pytest.fixture
def grenade_dir(tmp_path: Path) -> Path:
    assert export(tmp_path, "grenade")[0] == 0
    return tmp_path / PLUGIN


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


# -- grenade ----------------------------------------------------------------------------------

def test_grenade_plugin_layout(grenade_dir: Path) -> None:
    """PLUGINS.rst's tree: settings, upgrade.sh, shutdown.sh, resources.sh, from-<release>/."""
    found = sorted(str(p.relative_to(grenade_dir)) for p in grenade_dir.rglob("*") if p.is_file())
    assert found == sorted(SHELL_FILES)
    for name in ("shutdown.sh", "upgrade.sh", "resources.sh"):
        assert (grenade_dir / name).stat().st_mode & stat.S_IXUSR, name
    settings = (grenade_dir / "settings").read_text()
    assert "register_project_for_upgrade heat" in settings
    assert "register_db_to_save heat" in settings
    assert 'GRENADIER_BASE:-"25.0.2"' in settings
    assert "function configure_heat_upgrade" in (grenade_dir / "from-2025.2/upgrade-heat") \
        .read_text()


@pytest.mark.parametrize("name", SHELL_FILES)
def test_grenade_shell_files_parse(grenade_dir: Path, name: str) -> None:
    proc = subprocess.run(["bash", "-n", str(grenade_dir / name)], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_grenade_shell_files_pass_shellcheck(grenade_dir: Path) -> None:
    proc = subprocess.run(["shellcheck", "--shell=bash", *(str(grenade_dir / n)
                                                          for n in SHELL_FILES)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(("version", "name"), [
    ("26.0.2", "2026.1"), ("25.0.2", "2025.2"), ("27.0.1", "2026.2"), ("20.0.0", "2023.1"),
    ("19.1.0", None), ("latest", None),
])
def test_series_of_a_heat_version(version: str, name: str | None) -> None:
    assert series(version) == name


def test_no_from_dir_without_a_pinned_base(tmp_path: Path) -> None:
    export(tmp_path, "grenade", "--path", "latest-1:latest")
    assert not list((tmp_path / PLUGIN).glob("from-*"))
    assert 'GRENADIER_BASE:-""' in (tmp_path / PLUGIN / "settings").read_text()


def fake_python(tmp_path: Path) -> Path:
    """A stand-in for grenadier's Python: records each call's phase and arguments."""
    script = tmp_path / "fake-python"
    script.write_text('#!/bin/bash\necho "${GRENADIER_PHASE:-none} $*" >> "$FAKE_CALLS"\n'
                      'echo "watch=${GRENADIER_WATCH_SECONDS:-unset}" >> "$FAKE_CALLS"\n')
    script.chmod(0o755)
    return script


def run_script(script: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("GRENADIER_", "GRENADE_"))}
    return subprocess.run(["bash", str(script), *args], capture_output=True, text=True,
                          env={**clean, **env}, timeout=60, check=False)


def test_resources_phases_select_the_suite(grenade_dir: Path, tmp_path: Path) -> None:
    calls = tmp_path / "calls.txt"
    env = {"GRENADIER_PYTHON": str(fake_python(tmp_path)), "FAKE_CALLS": str(calls),
           "GRENADIER_HEAT_URL": "http://127.0.0.1:1", "GRENADIER_STATE": str(tmp_path / "s"),
           "GRENADIER_DB_URL": "postgresql://x", "GRENADIER_DB_PYTHON": "python3",
           "GRENADIER_LOGS": str(tmp_path / "logs")}
    for phase in (["create"], ["verify", "pre-upgrade"], ["verify_noapi"],
                  ["verify", "post-upgrade"], ["destroy"], ["early_create"]):
        proc = run_script(grenade_dir / "resources.sh", *phase, env=env)
        assert proc.returncode == 0, proc.stderr
    lines = [line for line in calls.read_text().splitlines() if not line.startswith("watch=")]
    selected = [(line.split()[0], line.split(" -m ")[-1]) for line in lines]
    verify = f"post_upgrade -k {' or '.join(READ_ONLY_TESTS)}"
    assert selected == [("smoke-base", "smoke"), ("pre-upgrade", "pre_upgrade"),
                        ("pre-upgrade", verify), ("during-upgrade", "during_upgrade"),
                        ("post-upgrade", verify), ("smoke-target", "smoke"),
                        ("post-upgrade", "post_upgrade")]
    assert all("--pyargs grenadier.plugins.heat.suite" in line for line in lines)
    assert "watch=0" in calls.read_text()  # verify_noapi: one pass over the DB


def test_resources_needs_a_heat_outside_grenade(grenade_dir: Path, tmp_path: Path) -> None:
    env = {"GRENADIER_PYTHON": str(fake_python(tmp_path)), "FAKE_CALLS": "/dev/null"}
    proc = run_script(grenade_dir / "resources.sh", "create", env=env)
    assert proc.returncode != 0
    assert "GRENADIER_HEAT_URL" in proc.stderr
    proc = run_script(grenade_dir / "resources.sh", "verify_noapi",
                      env={**env, "GRENADIER_STATE": "/tmp/s"})
    assert proc.returncode != 0
    assert "GRENADIER_DB_URL" in proc.stderr


def test_failing_tests_fail_the_phase(grenade_dir: Path, tmp_path: Path) -> None:
    failing = tmp_path / "failing-python"
    failing.write_text("#!/bin/bash\nexit 1\n")
    failing.chmod(0o755)
    empty = tmp_path / "empty-python"
    empty.write_text("#!/bin/bash\nexit 5\n")  # pytest: no tests selected
    empty.chmod(0o755)
    env = {"GRENADIER_HEAT_URL": "http://127.0.0.1:1", "GRENADIER_STATE": "/tmp/s",
           "GRENADIER_LOGS": str(tmp_path / "logs")}
    proc = run_script(grenade_dir / "resources.sh", "destroy",
                      env={**env, "GRENADIER_PYTHON": str(failing)})
    assert proc.returncode == 1
    assert "post_upgrade tests failed" in proc.stderr
    proc = run_script(grenade_dir / "resources.sh", "destroy",
                      env={**env, "GRENADIER_PYTHON": str(empty)})
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(("name", "step"), [("shutdown.sh", "shutdown"),
                                            ("upgrade.sh", "start-target")])
def test_shutdown_and_upgrade_drive_grenadier_outside_grenade(
        grenade_dir: Path, tmp_path: Path, name: str, step: str) -> None:
    calls = tmp_path / "calls.txt"
    env = {"GRENADIER_PYTHON": str(fake_python(tmp_path)), "FAKE_CALLS": str(calls),
           "GRENADIER_RUN_DIR": "/runs/r1"}
    proc = run_script(grenade_dir / name, env=env)
    assert proc.returncode == 0, proc.stderr
    assert calls.read_text().splitlines()[0] == \
        f"none -m grenadier run --resume /runs/r1 --stop-after {step} --keep-running"
    proc = run_script(grenade_dir / name, env={"FAKE_CALLS": str(calls)})
    assert proc.returncode != 0
    assert "GRENADIER_RUN_DIR" in proc.stderr


# -- zuul -------------------------------------------------------------------------------------

def test_zuul_job_and_project(tmp_path: Path) -> None:
    code, _ = export(tmp_path, "zuul", "--under-review", "--jobs", "2")
    assert code == 0
    config = load(tmp_path / ".zuul.d" / "grenadier.yaml")
    jobs = [item["job"] for item in config if "job" in item]
    projects = [item["project"] for item in config if "project" in item]
    assert len(jobs) == 1
    assert len(projects) == 1
    job = jobs[0]
    for key in ("name", "parent", "run", "pre-run", "vars"):
        assert job.get(key), key
    assert job.get("voting", True) is True
    assert job["vars"]["grenadier_paths"] == ["latest:.:postgresql", "latest-1:.:postgresql"]
    assert job["vars"]["grenadier_jobs"] == 2
    for pipeline in ("check", "gate"):
        assert job["name"] in projects[0][pipeline]["jobs"]
    for key in ("pre-run", "run", "post-run"):
        playbook = load(tmp_path / job[key])
        assert isinstance(playbook, list)
        assert all(play["hosts"] and (play.get("tasks") or play.get("roles"))
                   for play in playbook)
    run = load(tmp_path / job["run"])[0]["tasks"][0]
    assert "'matrix'" in run["ansible.builtin.command"]["argv"]
    assert "zuul.project.src_dir" in run["ansible.builtin.command"]["chdir"]


# -- github -----------------------------------------------------------------------------------

def test_github_workflow(tmp_path: Path) -> None:
    assert export(tmp_path, "github", "--path", "25.0.2:27.0.1:mariadb",
                  "--install", "grenadier==0.1.0")[0] == 0
    workflow = load(tmp_path / ".github" / "workflows" / "grenadier-upgrade.yml")
    # YAML 1.1 reads the key `on` as True; GitHub reads it as "on"
    triggers = workflow.get("on", workflow.get(True))
    assert "pull_request" in triggers
    assert workflow["jobs"]
    for job in workflow["jobs"].values():
        assert job["runs-on"]
        assert job["strategy"]["matrix"]["path"] == ["25.0.2:27.0.1:mariadb"]
        assert job["strategy"]["fail-fast"] is False
        steps = job["steps"]
        assert all("uses" in step or "run" in step for step in steps)
        runs = " ".join(step.get("run", "") for step in steps)
        assert 'grenadier matrix --path "$GRENADIER_PATH"' in runs
        assert 'pip install "grenadier==0.1.0"' in runs


# -- the command and its helpers --------------------------------------------------------------

def test_default_paths_are_the_reference_matrix(tmp_path: Path) -> None:
    code, out = export(tmp_path, "github")
    assert code == 0
    assert "25.0.2:26.0.2:postgresql, 26.0.2:27.0.1:postgresql, 24.1.1:26.0.2:postgresql" in out
    # grenade upgrades one path: the first reference one
    code, out = export(tmp_path, "grenade")
    assert code == 0
    assert "paths: 25.0.2:26.0.2:postgresql\n" in out


def test_paths_from_a_toml_file_keep_trees_as_written(tmp_path: Path) -> None:
    toml = tmp_path / "m.toml"
    toml.write_text('[[path]]\nbase = "latest"\ntarget = "./heat"\ndb = "sqlite"\n')
    code, _ = export(tmp_path / "out", "zuul", "--file", str(toml))
    assert code == 0
    job = load(tmp_path / "out" / ".zuul.d" / "grenadier.yaml")[0]["job"]
    assert job["vars"]["grenadier_paths"] == ["latest:./heat:sqlite"]


def test_existing_files_are_not_overwritten(tmp_path: Path) -> None:
    export(tmp_path, "github")
    with pytest.raises(UsageError, match="would overwrite") as info:
        export(tmp_path, "github")
    assert "--force" in info.value.one_line()
    assert export(tmp_path, "github", "--force")[0] == 0


@pytest.mark.parametrize("requirement", ['grenadier"; rm -rf /', "grenadier $(id)", ""])
def test_install_must_be_a_plain_requirement(tmp_path: Path, requirement: str) -> None:
    with pytest.raises(UsageError, match="not a plain pip requirement"):
        export(tmp_path, "grenade", "--install", requirement)


def test_bad_path_is_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown database"):
        export(tmp_path, "zuul", "--path", "1.0:2.0:oracle")


def test_render_rejects_unknown_and_unused_keys() -> None:
    with pytest.raises(ValueError, match="missing"):
        render("github/workflow.yaml", {})
    with pytest.raises(ValueError, match="unused"):
        render("zuul/pre.yaml", {"extra": "x"})


@pytest.mark.parametrize("jobs", [None, 2])
def test_every_export_is_fully_rendered(jobs: int | None) -> None:
    for kind, exporter in exporters().items():
        count = 1 if kind == "grenade" else len(DEFAULT_PATHS)
        paths = [parse_path(p, resolve=False) for p in DEFAULT_PATHS[:count]]
        for file in exporter(ExportSettings(paths, jobs=jobs)):
            assert "@@" not in file.text, (kind, file.path)


def test_jobs_of_a_toml_file_are_exported(tmp_path: Path) -> None:
    toml = tmp_path / "m.toml"
    toml.write_text('jobs = 3\n[[path]]\nbase = "25.0.2"\ntarget = "26.0.2"\n')
    code, out = export(tmp_path / "z", "zuul", "--file", str(toml))
    assert code == 0
    assert "jobs: 3 at once" in out
    assert load(tmp_path / "z" / ".zuul.d" / "grenadier.yaml")[0]["job"]["vars"][
        "grenadier_jobs"] == 3
    # --jobs beats the file's
    assert export(tmp_path / "g", "github", "--file", str(toml), "--jobs", "2")[0] == 0
    workflow = load(tmp_path / "g" / ".github" / "workflows" / "grenadier-upgrade.yml")
    assert workflow["jobs"]["upgrade"]["strategy"]["max-parallel"] == 2
    assert export(tmp_path / "n", "github")[0] == 0
    workflow = load(tmp_path / "n" / ".github" / "workflows" / "grenadier-upgrade.yml")
    assert "max-parallel" not in workflow["jobs"]["upgrade"]["strategy"]


@pytest.mark.parametrize("kind", ["grenade", "zuul", "github"])
@pytest.mark.parametrize(("entry", "says"), [
    ('args = ["--shutdown", "crash"]', r"has run options \(--shutdown crash\)"),
    ('name = "skip-level"', "'skip-level' has a name"),
])
def test_what_an_export_cannot_carry_is_refused(tmp_path: Path, kind: str, entry: str,
                                               says: str) -> None:
    toml = tmp_path / "m.toml"
    toml.write_text(f'[[path]]\nbase = "25.0.2"\ntarget = "26.0.2"\n{entry}\n')
    with pytest.raises(UsageError, match=f"^export {kind}: path .*{says}") as info:
        export(tmp_path / "out", kind, "--file", str(toml))
    assert "\n" not in info.value.one_line()
    assert not (tmp_path / "out").exists()


def test_grenade_takes_one_path(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="export grenade: 2 paths given") as info:
        export(tmp_path, "grenade", "--path", "25.0.2:26.0.2", "--path", "26.0.2:27.0.1")
    assert "give one --path" in info.value.one_line()
    with pytest.raises(UsageError, match="export grenade: 2 paths given"):
        export(tmp_path, "grenade", "--under-review")
    assert not (tmp_path / PLUGIN).exists()
    code, out = export(tmp_path, "grenade", "--path", "26.0.2:27.0.1")
    assert code == 0
    assert "paths: 26.0.2:27.0.1:postgresql" in out
    assert 'GRENADIER_BASE:-"26.0.2"' in (tmp_path / PLUGIN / "settings").read_text()


def test_write_cannot_write(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UsageError, match="cannot write"):
        write(blocker, [ExportFile("a/b", "x")])


def test_constraints_reach_the_matrix_on_the_ci_node(tmp_path: Path) -> None:
    assert export(tmp_path / "z", "zuul", "--constraints", "2026.1")[0] == 0
    job = load(tmp_path / "z" / ".zuul.d" / "grenadier.yaml")[0]["job"]
    assert job["vars"]["grenadier_constraints"] == "2026.1"
    run = load(tmp_path / "z" / job["run"])[0]["tasks"][0]
    assert "['--constraints', grenadier_constraints]" in run["ansible.builtin.command"]["argv"]
    assert export(tmp_path / "g", "github", "--constraints", "ci/uc.txt")[0] == 0
    workflow = load(tmp_path / "g" / ".github" / "workflows" / "grenadier-upgrade.yml")
    job = next(iter(workflow["jobs"].values()))
    assert job["env"]["GRENADIER_CONSTRAINTS"] == "ci/uc.txt"
    assert '--constraints "$GRENADIER_CONSTRAINTS"' in " ".join(
        step.get("run", "") for step in job["steps"])


def test_a_grenade_job_refuses_constraints_devstack_applies_its_own(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="devstack installs Heat"):
        export(tmp_path, "grenade", "--constraints", "2026.1")

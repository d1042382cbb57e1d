"""grenadier matrix: path parsing, TOML files, the job bound, scheduling, summary and exit code.

Runs are played by a fake child (a tiny script) that writes a run directory and a report.json
the way ``grenadier run`` does, so scheduling, Ctrl-C and the summary are tested in seconds.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from grenadier.cli import matrix_cmd
from grenadier.cli.progress import ConsoleReporter
from grenadier.errors import ExitCode, GrenadierError, UsageError
from grenadier.matrix import paths as matrix_paths
from grenadier.matrix import run as matrix_run
from grenadier.matrix.paths import UpgradePath, check_unique, load_file, parse_path
from grenadier.matrix.run import MatrixRequest, default_jobs, exit_code, run_matrix

GIB = 1 << 30

FAKE_CHILD = textwrap.dedent('''
    """Plays `grenadier run`: a run dir with report.json; behaviour chosen by --base."""
    import json, os, signal, sys, time
    args = sys.argv[1:]
    assert args[0] == "run", args
    opt = {args[i]: args[i + 1] for i in range(1, len(args) - 1) if args[i].startswith("--")}
    base, workdir = opt["--base"], opt["--workdir"]
    run_dir = os.path.join(workdir, "runs", f"20260101-000000-{base}-to-{opt['--target']}")
    os.makedirs(run_dir)
    log = os.environ["FAKE_LOG"]
    def note(what):
        with open(log, "a") as handle:
            handle.write(json.dumps([what, base, time.monotonic(), args]) + "\\n")
    def interrupted(signum, frame):
        note(signal.Signals(signum).name.lower())
        sys.exit(130)
    signal.signal(signal.SIGINT, interrupted)
    signal.signal(signal.SIGTERM, interrupted)
    note("start")
    time.sleep(float(os.environ.get("FAKE_SLEEP", "0.3")))
    broken = base.startswith("25.")
    steps = [
        {"name": "upgrade", "status": "passed", "duration": 1.5,
         "findings": [{"severity": "warning"}, {"severity": "warning"}], "tests": []},
        {"name": "post-upgrade", "status": "failed" if broken else "passed", "duration": 2.0,
         "findings": [], "tests": [{"status": "failed" if broken else "passed"}]},
    ]
    with open(os.path.join(run_dir, "report.json"), "w") as handle:
        json.dump({"steps": steps}, handle)
    note("end")
    print("fake run done", flush=True)
    sys.exit(1 if broken else 0)
''')


def heat_tree(root: Path) -> Path:
    (root / "heat").mkdir(parents=True)
    (root / "heat" / "__init__.py").write_text("")
    (root / "setup.cfg").write_text("[metadata]\nname = openstack-heat\n")
    return root


# -- --path ---------------------------------------------------------------------------------

def test_path_base_target_uses_default_db() -> None:
    path = parse_path("25.0.2:26.0.2")
    assert (path.base, path.target, path.db) == ("25.0.2", "26.0.2", "postgresql")
    assert path.label == "25.0.2 -> 26.0.2 (postgresql)"
    assert path.run_args() == ["--base", "25.0.2", "--target", "26.0.2", "--db", "postgresql"]


def test_path_with_db_and_latest() -> None:
    path = parse_path("latest-1:latest:mariadb", default_db="sqlite")
    assert (path.base, path.target, path.db) == ("latest-1", "latest", "mariadb")
    assert parse_path("latest-1:latest", default_db="sqlite").db == "sqlite"


def test_path_to_a_source_tree_becomes_absolute(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    heat_tree(tmp_path / "heat-src")
    monkeypatch.chdir(tmp_path)
    path = parse_path("latest:./heat-src")
    assert path.target == str(tmp_path / "heat-src")
    assert path.slug == "latest-to-heat-src-postgresql"


@pytest.mark.parametrize(("text", "says"), [
    ("25.0.2", "expected BASE:TARGET"),
    ("25.0.2:", "expected BASE:TARGET"),
    ("a:b:c:d", "expected BASE:TARGET"),
    ("25.0.2:26.0.2:oracle", "unknown database 'oracle'"),
    ("25.0.2:not a version", "cannot understand release"),
    ("25.0.2:./no-such-tree", "does not exist"),
])
def test_bad_path_is_usage_error(text: str, says: str) -> None:
    with pytest.raises(UsageError, match=says) as info:
        parse_path(text)
    assert info.value.exit_code == ExitCode.USAGE
    assert info.value.one_line().startswith(f"--path {text}:")


def test_reserved_run_args_refused() -> None:
    with pytest.raises(UsageError, match="--workdir=x is set by the matrix"):
        parse_path("1.0:2.0", args=["--workdir=x"])
    assert parse_path("1.0:2.0", args=["--shutdown", "crash"]).args == ("--shutdown", "crash")


def test_same_path_twice_refused() -> None:
    with pytest.raises(UsageError, match="given twice"):
        check_unique([parse_path("1.0:2.0"), parse_path("1.0:2.0:postgresql")])
    check_unique([parse_path("1.0:2.0"), parse_path("1.0:2.0:mariadb")])


# -- TOML -----------------------------------------------------------------------------------

def test_toml_file(tmp_path: Path) -> None:
    heat_tree(tmp_path / "src" / "heat")
    toml = tmp_path / "paths.toml"
    toml.write_text(textwrap.dedent('''
        db = "sqlite"
        jobs = 2
        args = ["--shutdown", "crash"]

        [[path]]
        base = "25.0.2"
        target = "26.0.2"

        [[path]]
        base = "25.0.2"
        target = "27.0.1"
        db = "mariadb"
        args = ["--fail-on-stuck"]
        name = "skip-level"

        [[path]]
        base = "latest"
        target = "src/heat"
    '''))
    loaded = load_file(toml)
    assert loaded.jobs == 2
    first, skip, local = loaded.paths
    assert (first.db, first.args) == ("sqlite", ("--shutdown", "crash"))
    assert (skip.db, skip.args, skip.label, skip.slug) == (
        "mariadb", ("--shutdown", "crash", "--fail-on-stuck"), "skip-level", "skip-level")
    # relative to the file, not to the current directory
    assert local.target == str(tmp_path / "src" / "heat")


@pytest.mark.parametrize(("body", "says"), [
    ('[[path]]\nbase = "1.0"\n', "target missing"),
    ('[[path]]\nbase = "1.0"\ntarget = "2.0"\ncolour = "red"\n', r"unknown key\(s\) colour"),
    ('speed = 3\n[[path]]\nbase = "1.0"\ntarget = "2.0"\n', r"unknown key\(s\) speed"),
    ('jobs = 0\n[[path]]\nbase = "1.0"\ntarget = "2.0"\n', "jobs must be"),
    ('db = "oracle"\n[[path]]\nbase = "1.0"\ntarget = "2.0"\n', "unknown database"),
    ('[[path]]\nbase = "1.0"\ntarget = "2.0"\nargs = ["--port", "80"]\n', "set by the matrix"),
    ('[[path]]\nbase = "1.0"\ntarget = "bogus spec"\n', "path #1: cannot understand"),
    ('db = "sqlite"\n', r"no \[\[path\]\] entries"),
    ('[[path]\n', "not valid TOML"),
])
def test_bad_toml_is_usage_error(tmp_path: Path, body: str, says: str) -> None:
    toml = tmp_path / "m.toml"
    toml.write_text(body)
    with pytest.raises(UsageError, match=says):
        load_file(toml)


def test_missing_toml_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read"):
        load_file(tmp_path / "nope.toml")


def test_toml_without_a_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_module(name: str) -> None:
        raise ImportError(name)

    monkeypatch.setattr(matrix_paths, "importlib", argparse.Namespace(import_module=no_module))
    with pytest.raises(UsageError, match=r"Python 3\.11\+ or the tomli package"):
        matrix_paths._toml()


# -- job bound ------------------------------------------------------------------------------

@pytest.mark.parametrize(("paths", "cpus", "memory", "jobs"), [
    (3, 2, 22 * GIB, 3),  # the reference machine: 2 cores hold 3 runs (0.65 core each)
    (5, 2, 22 * GIB, 3),
    (8, 8, 22 * GIB, 8),
    (3, 2, 1 * GIB + 1, 1),  # memory bound
    (3, 1, 22 * GIB, 1),
    (1, 16, 64 * GIB, 1),  # never more than the paths
    (3, 2, 0, 3),  # memory unknown: the CPU bound alone
])
def test_default_jobs(paths: int, cpus: int, memory: int, jobs: int) -> None:
    found, why = default_jobs(paths, cpus=cpus, memory=memory)
    assert found == jobs
    assert f"{cpus} CPUs" in why


def test_default_jobs_reads_this_machine() -> None:
    jobs, why = default_jobs(100)
    assert 1 <= jobs <= 100
    assert "MiB free" in why


# -- scheduling, summary, exit code --------------------------------------------------------

@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The fake child; returns the log file its runs append their events to."""
    script = tmp_path / "fake_grenadier.py"
    script.write_text(FAKE_CHILD)
    log = tmp_path / "events.jsonl"
    monkeypatch.setenv("FAKE_LOG", str(log))
    monkeypatch.setattr(matrix_run, "CHILD_COMMAND", (sys.executable, str(script)))
    return log


def events(log: Path) -> list[list[Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def request(tmp_path: Path, paths: list[UpgradePath], jobs: int, **kw: object) -> MatrixRequest:
    return MatrixRequest(paths, tmp_path / "matrix", jobs, child=matrix_run.CHILD_COMMAND,
                         preinstall=False, **kw)  # type: ignore[arg-type]


def test_matrix_runs_each_path_isolated_and_summarises(tmp_path: Path, fake: Path) -> None:
    paths = [parse_path(p) for p in ("26.0.2:27.0.1", "25.0.2:26.0.2", "25.0.2:27.0.1")]
    said: list[str] = []
    results = run_matrix(request(tmp_path, paths, 3, cache_dir=tmp_path / "cache"), said.append)

    assert [r.path for r in results] == paths  # given order, whatever order they ended in
    assert [r.result for r in results] == ["passed", "failed", "failed"]
    assert exit_code(results) == ExitCode.UPGRADE_FAILED
    workdirs = set()
    for result in results:
        assert result.run_dir is not None
        assert result.run_dir.parent.parent == tmp_path / "matrix" / result.path.slug
        assert result.report() == result.run_dir / "report.json"
        assert result.log is not None
        assert "fake run done" in result.log.read_text()
        workdirs.add(result.run_dir.parent.parent)
    assert len(workdirs) == 3
    # each child got its own --workdir and the shared --cache-dir
    for _, _, _, args in (e for e in events(fake) if e[0] == "start"):
        assert args[args.index("--cache-dir") + 1] == str(tmp_path / "cache")
    assert matrix_run.step_cell(results[0]) == "upgrade: 2 warnings"
    assert matrix_run.step_cell(results[1]) == \
        "upgrade: 2 warnings; post-upgrade: FAILED, 1 failed tests"
    assert any(line.startswith("[2/3] start 25.0.2 -> 26.0.2") for line in said)
    assert any(line.startswith("[1/3] PASSED") for line in said)

    data = json.loads((tmp_path / "matrix" / "matrix.json").read_text())
    assert data["exit_code"] == 1
    assert [p["result"] for p in data["paths"]] == ["passed", "failed", "failed"]
    summary = (tmp_path / "matrix" / "summary.md").read_text()
    assert "some paths FAILED" in summary
    assert "| 26.0.2 -> 27.0.1 (postgresql) | passed |" in summary


def test_all_passing_is_exit_0(tmp_path: Path, fake: Path) -> None:
    results = run_matrix(request(tmp_path, [parse_path("26.0.2:27.0.1")], 1), lambda _: None)
    assert exit_code(results) == ExitCode.OK


def test_jobs_bound_is_respected(tmp_path: Path, fake: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_SLEEP", "0.6")
    paths = [parse_path(f"26.0.{n}:27.0.1") for n in range(5)]
    started = time.monotonic()
    run_matrix(request(tmp_path, paths, 2), lambda _: None)
    elapsed = time.monotonic() - started
    running, most = 0, 0
    for what, *_ in sorted(events(fake), key=lambda e: float(e[2])):
        running += 1 if what == "start" else -1 if what == "end" else 0
        most = max(most, running)
    assert most == 2
    assert elapsed >= 3 * 0.6  # 5 runs two at a time: at least 3 rounds


def test_parallel_is_faster_than_one_after_the_other(tmp_path: Path, fake: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_SLEEP", "1.5")
    paths = [parse_path(f"26.0.{n}:27.0.1") for n in range(3)]
    started = time.monotonic()
    run_matrix(request(tmp_path, paths, 3), lambda _: None)
    assert time.monotonic() - started < 3 * 1.5


def test_release_that_fails_to_install_skips_its_paths(tmp_path: Path, fake: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    class FakeCache:
        def __init__(self, root: Path | None) -> None:
            self.root = root

        def ensure(self, spec: object, log: Path | None = None) -> object:
            text = str(getattr(spec, "text", spec))
            if text == "99.0.0":
                raise GrenadierError("no such release 99.0.0")
            return argparse.Namespace(label=text)

    monkeypatch.setattr(matrix_run, "ReleaseCache", FakeCache)
    paths = [parse_path("26.0.2:27.0.1"), parse_path("26.0.2:99.0.0")]
    said: list[str] = []
    results = run_matrix(MatrixRequest(paths, tmp_path / "m", 2, child=matrix_run.CHILD_COMMAND),
                         said.append)
    assert [r.result for r in results] == ["passed", "environment"]
    assert "no such release 99.0.0" in results[1].note
    assert exit_code(results) == ExitCode.ENVIRONMENT
    assert [e[1] for e in events(fake) if e[0] == "start"] == ["26.0.2"]  # only one child ran
    assert any("release 99.0.0: FAILED to install" in line for line in said)


def test_exit_code_order() -> None:
    path = parse_path("1.0:2.0")
    result = matrix_run.PathResult
    assert exit_code([result(path, 0), result(path, 3), result(path, 1)]) == 1
    assert exit_code([result(path, 0), result(path, 3), result(path, 2)]) == 2
    assert exit_code([result(path, 1), result(path, 130)]) == 130
    assert exit_code([result(path, 0), result(path, -9)]) == 3
    assert exit_code([result(path, 0), result(path, None)]) == 3
    assert exit_code([result(path, 0), result(path, None, interrupted=True)]) == 130


def test_ctrl_c_stops_every_child_and_waits(tmp_path: Path, fake: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_SLEEP", "60")
    paths = [parse_path(f"26.0.{n}:27.0.1") for n in range(3)]
    timer = threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    started = time.monotonic()
    try:
        results = run_matrix(request(tmp_path, paths, 2), lambda _: None)
    finally:
        timer.cancel()
    assert time.monotonic() - started < 20
    assert [r.result for r in results] == ["interrupted"] * 3
    assert [r.exit_code for r in results] == [130, 130, None]
    assert results[2].note == "interrupted before it started"
    seen = events(fake)
    # SIGTERM: grenadier run takes it as Ctrl-C even when it inherited SIGINT ignored
    assert sorted(e[1] for e in seen if e[0] == "sigterm") == ["26.0.0", "26.0.1"]
    assert exit_code(results) == ExitCode.INTERRUPTED
    assert json.loads((tmp_path / "matrix" / "matrix.json").read_text())["exit_code"] == 130
    assert "## grenadier matrix: interrupted" in (tmp_path / "matrix" / "summary.md").read_text()


# -- the command ----------------------------------------------------------------------------

def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="grenadier")
    matrix_cmd.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["matrix", *argv])


def test_matrix_command_prints_table_and_returns_exit_code(
        tmp_path: Path, fake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(matrix_run, "preinstall", lambda *a, **k: {})
    toml = tmp_path / "m.toml"
    toml.write_text('jobs = 2\n[[path]]\nbase = "25.0.2"\ntarget = "27.0.1"\n')
    out = io.StringIO()
    reporter = ConsoleReporter(Console(file=out, width=200, highlight=False))
    code = matrix_cmd.matrix_command(
        parse("--path", "26.0.2:27.0.1", "--file", str(toml), "--workdir", str(tmp_path / "w"),
              "--run-arg=--shutdown=crash"), reporter)
    text = out.getvalue()
    assert code == ExitCode.UPGRADE_FAILED
    assert "2 paths, 2 at once (as asked)" in text
    assert "grenadier matrix: some paths FAILED" in text
    assert "25.0.2 -> 27.0.1 (postgresql)" in text
    assert "report.json" in text
    assert all("--shutdown=crash" in e[3] for e in events(fake) if e[0] == "start")


def test_matrix_command_needs_a_path(tmp_path: Path) -> None:
    reporter = ConsoleReporter(Console(file=io.StringIO()))
    with pytest.raises(UsageError, match="no upgrade path given"):
        matrix_cmd.matrix_command(parse("--workdir", str(tmp_path)), reporter)


def test_jobs_flag_must_be_positive() -> None:
    with pytest.raises(SystemExit):
        parse("--jobs", "0")


def test_child_that_cannot_start_is_an_environment_problem(tmp_path: Path) -> None:
    req = MatrixRequest([parse_path("26.0.2:27.0.1")], tmp_path / "m", 1,
                        child=(str(tmp_path / "no-such-grenadier"),), preinstall=False)
    with pytest.raises(GrenadierError, match="not found") as info:
        run_matrix(req, lambda _: None)
    assert info.value.exit_code == ExitCode.ENVIRONMENT

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
from grenadier.matrix import results as matrix_results
from grenadier.matrix import run as matrix_run
from grenadier.matrix.paths import UpgradePath, check_unique, load_file, parse_path
from grenadier.matrix.results import exit_code
from grenadier.matrix.run import MatrixRequest, default_jobs, run_matrix
from grenadier.options.run import run_flags
from grenadier.releases import Release

GIB = 1 << 30

FAKE_CHILD = textwrap.dedent('''
    """Plays `grenadier run`: a run dir with report.json; behaviour chosen by --base."""
    import json, os, signal, sys, time
    args = sys.argv[1:]
    assert args[0] == "run", args
    opt = {args[i]: args[i + 1] for i in range(1, len(args) - 1) if args[i].startswith("--")}
    base, workdir = opt["--base"].removeprefix("openstack-heat=="), opt["--workdir"]
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
    def running():
        with open(log) as handle:
            seen = [json.loads(line)[0] for line in handle]
        return seen.count("start") - seen.count("end"), seen.count("start")
    # FAKE_OVERLAP=N: stay until N runs are running at once, or every path has started
    deadline = time.monotonic() + 30
    while "FAKE_OVERLAP" in os.environ and time.monotonic() < deadline:
        now, started = running()
        if now >= int(os.environ["FAKE_OVERLAP"]) or started >= int(os.environ["FAKE_PATHS"]):
            break
        time.sleep(0.01)
    time.sleep(float(os.environ.get("FAKE_SLEEP", "0.3")))
    broken = base.startswith("25.")
    warning = {"check": "config", "severity": "warning", "what": "deprecated option"}
    test = {"name": "test_x", "status": "failed" if broken else "passed", "duration": 0.1}
    steps = [
        {"name": "upgrade", "status": "passed", "duration": 1.5,
         "findings": [warning, warning], "tests": []},
        {"name": "post-upgrade", "status": "failed" if broken else "passed", "duration": 2.0,
         "findings": [], "tests": [test]},
    ]
    with open(os.path.join(run_dir, "report.json"), "w") as handle:
        json.dump({"steps": steps, "exit_code": 1 if broken else 0, "base": base,
                   "target": opt["--target"], "verdict": "fake"}, handle)
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


@pytest.mark.parametrize(("args", "says"), [
    (["--cache-dir", "/c"], "--cache-dir is set by the matrix"),
    (["--keep-running"], "--keep-running is set by the matrix"),
    (["--port=8004"], "--port=8004 is set by the matrix"),
    # abbreviations are no way around it: `grenadier run` takes none
    (["--ba=1.0"], "unrecognized run option.*--ba=1.0"),
    (["--workd=x"], "unrecognized run option.*--workd=x"),
    (["--cache=x"], "unrecognized run option.*--cache=x"),
    (["--po=1"], "unrecognized run option.*--po=1"),
    (["--shutdown", "gently"], "argument --shutdown: invalid choice: 'gently'"),
    (["--tests"], "argument --tests: expected one argument"),
    (["--engines", "many"], "argument --engines: invalid int value"),
    (["--colour"], r"unrecognized run option\(s\): --colour"),
    (["extra"], r"unrecognized run option\(s\): extra"),
    (["--help"], "--help is not an option a run can be given"),
    (["-h"], "-h is not an option a run can be given"),
])
def test_run_args_are_parsed_by_the_run_parser(args: list[str], says: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(UsageError, match=says) as info:
        parse_path("1.0:2.0", args=args)
    assert info.value.one_line().startswith("--path 1.0:2.0: ")
    assert "\n" not in info.value.one_line()
    assert capsys.readouterr() == ("", "")  # argparse printed no usage or help


def test_reserved_dests_are_run_options() -> None:
    """Each reserved dest is one of `grenadier run`; a renamed one would go unchecked."""
    assert set(matrix_paths.RESERVED) <= {item.dest for item in run_flags()}


def test_matrix_options_come_after_the_paths_own() -> None:
    path = parse_path("1.0:2.0", args=["--shutdown=crash", "--fail-on-stuck"])
    assert path.run_args() == ["--shutdown=crash", "--fail-on-stuck", "--base", "1.0",
                               "--target", "2.0", "--db", "postgresql"]
    assert path.run_args("openstack-heat==1.0", "/src/heat")[2:6] == [
        "--base", "openstack-heat==1.0", "--target", "/src/heat"]


def test_slug() -> None:
    assert matrix_paths.slug("a b/c..d+e-f") == "a_b_c..d+e-f"
    assert matrix_paths.slug("x" * 100) == "x" * 80
    assert matrix_paths.slug("abcdef", 3) == "abc"


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


def test_toml_with_reserved_args_in_the_defaults(tmp_path: Path) -> None:
    toml = tmp_path / "m.toml"
    toml.write_text('args = ["--workdir", "/x"]\n[[path]]\nbase = "1.0"\ntarget = "2.0"\n')
    with pytest.raises(UsageError, match=f"^{toml}: --workdir is set by the matrix"):
        load_file(toml)


@pytest.mark.parametrize("name", [".", "..", 5])
def test_toml_name_must_stay_in_the_matrix_folder(tmp_path: Path, name: object) -> None:
    toml = tmp_path / "m.toml"
    value = f'"{name}"' if isinstance(name, str) else str(name)
    toml.write_text(f'[[path]]\nbase = "1.0"\ntarget = "2.0"\nname = {value}\n')
    with pytest.raises(UsageError, match="path #1: name"):
        load_file(toml)


def test_toml_name_is_a_folder_name(tmp_path: Path) -> None:
    toml = tmp_path / "m.toml"
    toml.write_text('[[path]]\nbase = "1.0"\ntarget = "2.0"\nname = "../x [slurp]"\n')
    path = load_file(toml).paths[0]
    assert (path.label, path.slug) == ("../x [slurp]", ".._x_slurp_")


def test_toml_that_is_not_utf8(tmp_path: Path) -> None:
    toml = tmp_path / "m.toml"
    toml.write_bytes(b'[[path]]\nbase = "1.0"\ntarget = "2.0"\nname = "caf\xe9"\n')
    with pytest.raises(UsageError, match=f"^{toml} is not UTF-8 text$"):
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


@pytest.mark.parametrize(("cpus", "memory", "jobs"), [
    (4, 2 * GIB, 2),  # memory bound
    (4, 64 * GIB, 6),  # CPU bound: 4 / 0.65
    (4, None, 6),  # memory unknown: the CPU bound alone
    (1, 64 * GIB, 1),
])
def test_default_jobs_reads_this_machine(monkeypatch: pytest.MonkeyPatch, cpus: int,
                                         memory: int | None, jobs: int) -> None:
    monkeypatch.setattr(matrix_run, "_cpus", lambda: cpus)
    monkeypatch.setattr(matrix_run, "_memory_available", lambda: memory)
    found, why = default_jobs(100)
    assert found == jobs
    assert why.startswith(f"{cpus} CPUs / 0.65 per run = ")
    assert f"{(memory or 0) >> 20} MiB free" in why
    assert default_jobs(1)[0] == 1  # never more than the paths


@pytest.mark.parametrize(("meminfo", "limit", "memory"), [
    ("MemTotal: 9999 kB\nMemAvailable: 4194304 kB\n", "max", 4 * GIB),
    ("MemAvailable: 4194304 kB\n", str(2 * GIB), 2 * GIB),  # a cgroup limit caps it
    ("MemAvailable: 1048576 kB\n", str(2 * GIB), 1 * GIB),  # ... but does not raise it
    (None, str(2 * GIB), 2 * GIB),  # no /proc/meminfo: the limit alone
    (None, None, None),
    ("MemAvailable: lots\n", None, None),
])
def test_memory_available(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                          meminfo: str | None, limit: str | None, memory: int | None) -> None:
    for name, text in (("MEMINFO", meminfo), ("CGROUP_MEMORY_MAX", limit)):
        path = tmp_path / name
        if text is not None:
            path.write_text(text)
        monkeypatch.setattr(matrix_run, name, path)
    assert matrix_run._memory_available() == memory


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
    assert matrix_results.step_cell(results[0]) == "upgrade: 2 warnings"
    assert matrix_results.step_cell(results[1]) == \
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


@pytest.mark.parametrize(("count", "jobs"), [(5, 2), (3, 3), (2, 4), (3, 1)])
def test_runs_at_once_are_the_jobs_bound(tmp_path: Path, fake: Path,
                                         monkeypatch: pytest.MonkeyPatch, count: int,
                                         jobs: int) -> None:
    """As many runs at once as allowed (the fake runs wait for each other), never more."""
    monkeypatch.setenv("FAKE_SLEEP", "0")
    monkeypatch.setenv("FAKE_OVERLAP", str(min(count, jobs)))
    monkeypatch.setenv("FAKE_PATHS", str(count))
    paths = [parse_path(f"26.0.{n}:27.0.1") for n in range(count)]
    results = run_matrix(request(tmp_path, paths, jobs), lambda _: None)
    assert [r.result for r in results] == ["passed"] * count
    running, most = 0, 0
    for what, *_ in events(fake):  # in the order they happened (appended to one file)
        running += 1 if what == "start" else -1 if what == "end" else 0
        most = max(most, running)
    assert most == min(count, jobs)
    assert [e[0] for e in events(fake)].count("start") == count


def test_release_that_fails_to_install_skips_its_paths(tmp_path: Path, fake: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    class FakeCache:
        def __init__(self, root: Path | None, constraints: str) -> None:
            self.root, self.constraints = root, constraints

        def ensure(self, spec: object, log: Path | None = None) -> Release:
            text = str(getattr(spec, "text", spec))
            if text == "99.0.0":
                raise GrenadierError("no such release 99.0.0")
            return Release(text, text, tmp_path / "venv", "pypi", f"openstack-heat=={text}")

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
    # the child is given the installed releases, pinned; the table keeps the specs given
    args = next(e[3] for e in events(fake) if e[0] == "start")
    assert args[args.index("--base") + 1] == "openstack-heat==26.0.2"
    assert args[args.index("--target") + 1] == "openstack-heat==27.0.1"
    assert results[0].path.label == "26.0.2 -> 27.0.1 (postgresql)"
    assert results[0].to_dict()["releases"] == {"base": "openstack-heat==26.0.2",
                                                "target": "openstack-heat==27.0.1"}


def test_latest_is_resolved_once_for_every_path(tmp_path: Path) -> None:
    """A local tree is given as the installed tree; `latest` as the version installed."""
    local = Release("local:heat@1", "28.1.0", tmp_path, "local", str(tmp_path / "heat"))
    latest = Release("28.0.0", "28.0.0", tmp_path, "pypi", "openstack-heat==28.0.0")
    installed = matrix_run.Installed({"latest": latest, str(tmp_path / "heat"): local}, {})
    assert installed.pinned("latest") == "openstack-heat==28.0.0"
    assert installed.pinned(str(tmp_path / "heat")) == str(tmp_path / "heat")
    assert installed.pinned("latest-1") == "latest-1"  # not installed: as given


def test_bad_run_args_stop_the_matrix_before_any_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_install(*args: object, **kw: object) -> None:
        raise AssertionError("installed")

    monkeypatch.setattr(matrix_run, "preinstall", no_install)
    path = UpgradePath("1.0", "2.0", args=("--ba=3.0",))  # built directly, never checked
    with pytest.raises(UsageError, match=r"1\.0 -> 2\.0 \(postgresql\): unrecognized"):
        run_matrix(MatrixRequest([path], tmp_path / "m", 1), lambda _: None)
    assert not (tmp_path / "m").exists()


def test_exit_code_order() -> None:
    path = parse_path("1.0:2.0")
    result = matrix_results.PathResult
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
    stop = threading.Event()

    def ctrl_c_once_two_run() -> None:
        # Ctrl-C while the first two runs are running (a fixed delay may come before they do)
        while not stop.wait(0.05):
            lines = fake.read_text().splitlines() if fake.exists() else []
            if sum('"start"' in line for line in lines) >= 2:
                os.kill(os.getpid(), signal.SIGINT)
                return

    presser = threading.Thread(target=ctrl_c_once_two_run, daemon=True)
    presser.start()
    started = time.monotonic()
    try:
        results = run_matrix(request(tmp_path, paths, 2), lambda _: None)
    finally:
        stop.set()
    assert time.monotonic() - started < 30
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
    monkeypatch.setattr(matrix_run, "preinstall", lambda *a, **k: matrix_run.Installed({}, {}))
    toml = tmp_path / "m.toml"
    toml.write_text('jobs = 2\n[[path]]\nbase = "25.0.2"\ntarget = "27.0.1"\n')
    out = io.StringIO()
    reporter = ConsoleReporter(Console(file=out, width=200, highlight=False))
    code = matrix_cmd.matrix_command(
        parse("--path", "26.0.2:27.0.1", "--file", str(toml), "--workdir", str(tmp_path / "w"),
              "--run-arg=--shutdown=crash"), reporter)
    text = out.getvalue()
    # the fake base 25 fails its post-upgrade test with or without the upgrade: its control
    # says so, and the path passes
    assert code == ExitCode.OK
    assert "2 paths, 2 at once (as asked)" in text
    assert "grenadier matrix: all paths passed" in text
    assert "25.0.2 -> 27.0.1 (postgresql)" in text
    summary = next((tmp_path / "w" / "matrix").glob("*/summary.md")).read_text()
    assert "1 also without upgrade; control failed" in summary
    assert "report.json" in text
    no_control = matrix_cmd.matrix_command(
        parse("--path", "25.0.2:27.0.1", "--no-control", "--workdir", str(tmp_path / "w")),
        reporter)
    assert no_control == ExitCode.UPGRADE_FAILED
    starts = [e[3] for e in events(fake) if e[0] == "start"][:4]
    # by default each distinct base has its control (base -> base) too
    assert len(starts) == 4
    controls = [a for a in starts if a[a.index("--base") + 1] == a[a.index("--target") + 1]]
    assert sorted(a[a.index("--base") + 1] for a in controls) == ["25.0.2", "26.0.2"]
    for args in starts:
        # the run's own options first, the matrix's after them (the last one given wins)
        assert args.index("--shutdown=crash") < args.index("--base") < args.index("--workdir")


def test_one_control_per_base_labels_its_paths(tmp_path: Path, fake: Path) -> None:
    paths = [parse_path(p) for p in ("25.0.2:26.0.2", "26.0.2:27.0.1", "25.0.2:27.0.1")]
    said: list[str] = []
    results = run_matrix(request(tmp_path, paths, 2, control=True), said.append)
    # each control starts before the first path that needs it, and runs once (the order the
    # matrix started them in: two children started together may log their own start in
    # either order)
    assert [line.split(" start ")[1] for line in said if " start " in line] == [
        "control 25.0.2 (postgresql)", "25.0.2 -> 26.0.2 (postgresql)",
        "control 26.0.2 (postgresql)", "26.0.2 -> 27.0.1 (postgresql)",
        "25.0.2 -> 27.0.1 (postgresql)"]
    assert len([e for e in events(fake) if e[0] == "start"]) == 5
    assert [r.path for r in results] == paths
    assert [r.control.path.label for r in results if r.control] == [
        "control 25.0.2 (postgresql)", "control 26.0.2 (postgresql)",
        "control 25.0.2 (postgresql)"]
    # base 25 fails test_x with or without the upgrade: not the upgrade's failure
    assert [r.result for r in results] == ["passed", "passed", "passed"]
    assert exit_code(results) == ExitCode.OK
    report = json.loads((results[0].run_dir / "report.json").read_text())  # type: ignore[operator]
    assert report["exit_code"] == 0
    assert report["steps"][1]["tests"][0]["origin"] == "also without upgrade"
    assert "post-upgrade: FAILED, 1 failed tests, 1 also without upgrade; control failed" in \
        matrix_results.step_cell(results[0])
    assert any(line.startswith("[control] start control 25.0.2 (postgresql)") for line in said)
    assert "25.0.2 -> 26.0.2 (postgresql): failed -> passed once compared with control " \
        "25.0.2 (postgresql)" in said
    data = json.loads((tmp_path / "matrix" / "matrix.json").read_text())
    assert data["paths"][0]["control"]["path"] == "control 25.0.2 (postgresql)"


def test_paths_sharing_a_database_get_no_control() -> None:
    shared = UpgradePath("26.0.2", "27.0.1", args=("--db-url=postgresql://h/heat",))
    plain = UpgradePath("26.0.2", "27.0.1", db="sqlite")
    assert matrix_run.controls_of([shared, plain]) == {
        plain: UpgradePath("26.0.2", "26.0.2", "sqlite", (), "control 26.0.2 (sqlite)")}


@pytest.mark.parametrize("name", ["[slurp] x", "[/]", "[bold]y[/bold] :smile:"])
def test_summary_table_shows_names_and_notes_as_written(name: str) -> None:
    path = UpgradePath("1.0", "2.0", name=name)
    results = [matrix_results.PathResult(path, 3, note=f"{name}: [red]no[/red]")]
    out = io.StringIO()
    Console(file=out, width=200).print(matrix_cmd.summary_table(results))
    assert name in out.getvalue()
    assert f"{name}: [red]no[/red]" in out.getvalue()
    assert "environment" in out.getvalue()


def test_steps_of_a_damaged_run_are_read_tolerantly(tmp_path: Path) -> None:
    (tmp_path / "report.json").write_text(json.dumps({"steps": [
        {"name": "upgrade", "status": "exploded", "duration": 2.5},  # not a StepResult
        {"name": "setup-base", "status": "passed", "duration": 1.0,
         "findings": [{"check": "c", "severity": "error", "what": "w"}],
         "tests": [{"name": "t", "status": "error", "duration": 0.0}]},
        "not a step"]}))
    steps = matrix_results.read_steps(tmp_path)
    assert [vars(step) for step in steps] == [
        {"name": "upgrade", "status": "exploded", "duration": 2.5, "errors": 0, "warnings": 0,
         "failed_tests": 0, "also_without_upgrade": 0},
        {"name": "setup-base", "status": "passed", "duration": 1.0, "errors": 1,
         "warnings": 0, "failed_tests": 1, "also_without_upgrade": 0}]
    (tmp_path / "report.json").write_text("{not json")
    assert matrix_results.read_steps(tmp_path) == []


def test_result_words() -> None:
    assert [matrix_results.result_word(code) for code in (0, 1, 2, 3, 130, -9)] == [
        "passed", "failed", "bad input", "environment", "interrupted", "exit -9"]


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


def test_the_matrix_constraints_reach_every_run(tmp_path: Path, fake: Path) -> None:
    paths = [parse_path("26.0.2:27.0.1")]
    run_matrix(request(tmp_path, paths, 1, constraints="2026.1"), lambda line: None)
    args = next(e[3] for e in events(fake) if e[0] == "start")
    assert args[args.index("--constraints") + 1] == "2026.1"
    run_matrix(request(tmp_path / "auto", paths, 1), lambda line: None)
    args = [e[3] for e in events(fake) if e[0] == "start"][-1]
    assert "--constraints" not in args  # auto: each run decides per release, as the matrix did

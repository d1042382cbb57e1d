"""The option table: run options declare their flags once, and every parser is built from it."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from grenadier.cli import commands
from grenadier.cli.main import build_parser
from grenadier.errors import UsageError
from grenadier.matrix.paths import parse_path
from grenadier.options.flags import FLAG, strings_of
from grenadier.options.run import Invocation, RunOptions, run_flag, run_flags


def test_every_run_option_but_the_project_has_a_flag() -> None:
    without = [f.name for f in dataclasses.fields(RunOptions) if FLAG not in f.metadata]
    assert without == ["project"]


def test_run_with_no_flags_gives_the_default_options() -> None:
    assert commands._options_from(build_parser().parse_args(["run"])) == RunOptions()


def test_the_cli_parser_stores_what_the_table_declares() -> None:
    args = vars(build_parser().parse_args(["run"]))
    defaults = {item.dest: item.default for item in run_flags()}
    assert {k: v for k, v in args.items() if k != "command"} == defaults


def test_flags_reach_the_options() -> None:
    args = build_parser().parse_args(
        ["run", "--engines", "2", "--bus", "rabbit", "--checks", "a, b", "--no-builtin-suite",
         "--workload-rate", "0.5"])
    options = commands._options_from(args)
    assert (options.engines, options.bus, options.topology) == (2, "rabbit", "split")
    assert options.checks == ["a", "b"]
    assert (options.builtin_suite, options.smoke) == (False, "builtin")
    assert options.workload_rate == 0.5


@pytest.mark.parametrize(("argv", "named"), [
    (["--engines", "2"], "--engines"),
    (["--no-builtin-suite"], "--no-builtin-suite"),
    (["--db-url-file", "/x"], "--db-url-file"),
    (["--base", "26.0.2"], "--base"),
])
def test_resume_refuses_each_run_option(argv: list[str], named: str) -> None:
    args = build_parser().parse_args(["run", "--resume", "/nowhere", *argv])
    with pytest.raises(UsageError, match=f"^{named} cannot be combined with --resume"):
        commands._refuse_run_options(args)


def test_resume_takes_the_invocation_flags() -> None:
    args = build_parser().parse_args(["run", "--resume", "/r", "--only", "teardown",
                                      "--keep-running", "--workdir", "/w"])
    commands._refuse_run_options(args)  # no error
    assert {item.name for item in dataclasses.fields(Invocation)} >= {"only", "keep_running"}


def test_a_matrix_path_takes_every_run_flag_the_matrix_does_not_set() -> None:
    path = parse_path("1.0:2.0", args=["--engines", "2", "--bus=rabbit", "--no-builtin-suite"])
    assert path.args == ("--engines", "2", "--bus=rabbit", "--no-builtin-suite")
    with pytest.raises(UsageError, match="--workdir is set by the matrix"):
        parse_path("1.0:2.0", args=["--workdir", "/w"])
    assert strings_of(run_flags(), ["workdir"]) == {"--workdir": "workdir"}


def test_shared_flags_are_the_run_flags() -> None:
    check = build_parser().parse_args(["check", "db", "--db-dump", "x.sql"])
    assert check.constraints == run_flag("constraints").default == "auto"


def test_the_matrix_parses_run_flags_without_the_cli() -> None:
    code = ("import sys, grenadier.matrix.paths as p; p.parse_path('1.0:2.0', args=['--engines',"
            " '2']); print(sorted(m for m in sys.modules if m.startswith('grenadier.cli')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

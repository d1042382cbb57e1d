"""Each bad input gets one clear line, its documented exit code, and leaves nothing broken."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grenadier.host import file_lock
from tests.conftest import CliRunner, one_error_line, run_dirs


@pytest.mark.parametrize("spec", ["newest", "27..x", "latest+1"])
def test_unparseable_release(cli: CliRunner, tmp_path: Path, spec: str) -> None:
    result = cli("run", "--base", spec, "--workdir", str(tmp_path / "w"))
    assert result.returncode == 2
    assert "cannot understand release" in one_error_line(result)
    assert run_dirs(tmp_path / "w") == []


def test_path_that_is_not_a_heat_tree(cli: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    result = cli("run", "--target", str(tmp_path / "src"), "--workdir", str(tmp_path / "w"))
    assert result.returncode == 2
    assert "is not a Heat source tree" in one_error_line(result)
    assert run_dirs(tmp_path / "w") == []


def test_unknown_step(cli: CliRunner, tmp_path: Path) -> None:
    result = cli("run", "--stop-after", "pre_upgrade", "--workdir", str(tmp_path / "w"))
    assert result.returncode == 2
    assert "unknown step 'pre_upgrade' for --stop-after" in one_error_line(result)


def test_unknown_check(cli: CliRunner, tmp_path: Path) -> None:
    result = cli("run", "--checks", "no-such-check", "--workdir", str(tmp_path / "w"))
    assert result.returncode == 2
    assert "unknown check(s): no-such-check" in one_error_line(result)
    assert run_dirs(tmp_path / "w") == []


def test_unwritable_workdir(cli: CliRunner, tmp_path: Path) -> None:
    # A file in the way fails even for root, unlike permission bits.
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = cli("run", "--workdir", str(blocker / "sub"))
    assert result.returncode == 2
    assert "cannot create a run directory" in one_error_line(result)


def test_resume_missing_dir(cli: CliRunner, tmp_path: Path) -> None:
    result = cli("run", "--resume", str(tmp_path / "nope"))
    assert result.returncode == 2
    assert "does not exist" in one_error_line(result)


def test_resume_dir_that_is_not_a_run(cli: CliRunner, tmp_path: Path) -> None:
    result = cli("run", "--resume", str(tmp_path))
    assert result.returncode == 2
    assert "is not a grenadier run directory" in one_error_line(result)


def test_resume_corrupt_state(cli: CliRunner, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "run.json").write_text(json.dumps({"base": "26.0.2", "target": "27.0.1"}))
    (run_dir / "state.json").write_text("{not json")
    result = cli("run", "--resume", str(run_dir))
    assert result.returncode == 2
    assert "corrupt" in one_error_line(result)
    assert (run_dir / "state.json").read_text() == "{not json"


def test_resume_corrupt_options(cli: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text("[[[")
    result = cli("run", "--resume", str(tmp_path))
    assert result.returncode == 2
    assert "cannot be resumed" in one_error_line(result)


def test_missing_tests_dir(cli: CliRunner, tmp_path: Path) -> None:
    result = cli("run", "--tests", str(tmp_path / "nope"), "--workdir", str(tmp_path / "w"))
    assert result.returncode == 2
    assert "does not exist" in one_error_line(result)


def test_bad_port_number(cli: CliRunner, tmp_path: Path) -> None:
    result = cli("run", "--port", "70000", "--workdir", str(tmp_path / "w"))
    assert result.returncode == 2
    assert "is not a TCP port" in one_error_line(result)


def test_down_on_a_non_run(cli: CliRunner, tmp_path: Path) -> None:
    result = cli("down", str(tmp_path))
    assert result.returncode == 2
    assert "not a grenadier run directory" in one_error_line(result)


def _run_dir(tmp_path: Path, options: dict[str, object]) -> Path:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "run.json").write_text(json.dumps({"base": "26.0.2", "target": "27.0.1",
                                                  **options}))
    return run_dir


@pytest.mark.parametrize(("options", "says"), [
    ({"engines": "x"}, "wrong type"), ({"db": "oracle"}, "invalid option"),
    ({"shutdown": "sideways"}, "invalid option"), ({"port": 70000}, "invalid option"),
])
def test_resume_with_a_damaged_option(cli: CliRunner, tmp_path: Path,
                                      options: dict[str, object], says: str) -> None:
    result = cli("run", "--resume", str(_run_dir(tmp_path, options)))
    assert result.returncode == 2
    assert says in one_error_line(result)


def test_resume_refuses_run_options_instead_of_dropping_them(cli: CliRunner,
                                                             tmp_path: Path) -> None:
    result = cli("run", "--resume", str(_run_dir(tmp_path, {})), "--base", "25.0.2",
                 "--db", "sqlite")
    assert result.returncode == 2
    assert "--base, --db cannot be combined with --resume" in one_error_line(result)


def test_resume_of_a_run_in_progress_is_refused(cli: CliRunner, tmp_path: Path) -> None:
    run_dir = _run_dir(tmp_path, {})
    with file_lock(run_dir / "run.lock"):  # what the grenadier running it holds
        result = cli("run", "--resume", str(run_dir))
    assert result.returncode == 2
    assert "is in progress in another grenadier" in one_error_line(result)


@pytest.mark.parametrize(("flag", "value", "says"), [
    ("--db-url", "notaurl", "--db-url must be a postgresql:// or mysql:// URL"),
    ("--db-url", "postgresql://u:secret@db:abc/heat", "--db-url has no valid port"),
    ("--bus-url", "rabbit://u:secret@h:99999/", "--bus-url has no valid port"),
    # urllib's own message would quote what follows the ":": here, the password
    ("--bus-url", "rabbit://u:secret/x@h:5672/", "--bus-url has no valid port"),
    ("--bus-url", "http://h/", "--bus-url must be a rabbit://"),
])
def test_bad_urls_are_refused_before_a_run_directory_exists(
        cli: CliRunner, tmp_path: Path, flag: str, value: str, says: str) -> None:
    result = cli("run", flag, value, "--workdir", str(tmp_path / "w"))
    assert result.returncode == 2
    line = one_error_line(result)
    assert says in line
    assert "secret" not in line
    assert run_dirs(tmp_path / "w") == []


def test_config_must_be_a_file_and_cache_dir_a_directory(cli: CliRunner, tmp_path: Path) -> None:
    result = cli("run", "--config", str(tmp_path), "--workdir", str(tmp_path / "w"))
    assert result.returncode == 2
    assert "is not a file" in one_error_line(result)
    (tmp_path / "file").write_text("")
    result = cli("run", "--cache-dir", str(tmp_path / "file"), "--workdir", str(tmp_path / "w"))
    assert result.returncode == 2
    assert "is not a directory" in one_error_line(result)
    assert run_dirs(tmp_path / "w") == []


def test_run_options_are_not_abbreviated(cli: CliRunner, tmp_path: Path) -> None:
    result = cli("run", "--ba", "25.0.2", "--workdir", str(tmp_path / "w"))
    assert result.returncode == 2
    assert "unrecognized arguments: --ba" in result.err


def test_a_plan_that_cannot_run_leaves_no_run_directory(cli: CliRunner, tmp_path: Path) -> None:
    # --only rolling-upgrade upgrades a base this run set up: a new run has none
    result = cli("run", "--mode", "rolling", "--bus", "rabbit", "--only", "rolling-upgrade",
                 "--workdir", str(tmp_path / "w"))
    assert result.returncode == 2
    assert "--only rolling-upgrade needs a run whose setup-base passed" in one_error_line(result)
    assert run_dirs(tmp_path / "w") == []
    cold = cli("run", "--stop-after", "rolling-upgrade", "--workdir", str(tmp_path / "w"))
    assert cold.returncode == 2, cold.err
    assert run_dirs(tmp_path / "w") == []


def test_rolling_mode_refuses_a_crash_shutdown(cli: CliRunner, tmp_path: Path) -> None:
    # --mode rolling has no shutdown step: --shutdown crash would be accepted and then ignored
    result = cli("run", "--mode", "rolling", "--bus", "rabbit", "--shutdown", "crash",
                 "--workdir", str(tmp_path / "w"))
    assert result.returncode == 2
    line = one_error_line(result)
    assert "--shutdown crash cannot be combined with --mode rolling" in line
    assert run_dirs(tmp_path / "w") == []


@pytest.mark.parametrize("flag", ["--workload-rate", "--workload-seconds",
                                  "--workload-op-timeout"])
def test_workload_bounds_must_be_positive(cli: CliRunner, tmp_path: Path, flag: str) -> None:
    result = cli("run", "--mode", "rolling", "--bus", "rabbit", flag, "0",
                 "--workdir", str(tmp_path / "w"))
    assert result.returncode == 2
    assert "--workload-op-timeout must be positive" in one_error_line(result)
    assert run_dirs(tmp_path / "w") == []


@pytest.mark.parametrize(("args", "words"), [
    (["--constraints", "2024.2"], "no upper-constraints shipped for that series"),
    (["--constraints", "no-such.txt"], "not a series, a file or a URL"),
    (["--environment-from", "no-such-run"], "not a run directory with releases/"),
])
def test_bad_environment_choices(cli: CliRunner, tmp_path: Path, args: list[str],
                                 words: str) -> None:
    result = cli("run", *args, "--workdir", str(tmp_path / "w"))
    assert result.returncode == 2
    assert words in one_error_line(result)
    assert run_dirs(tmp_path / "w") == []


def test_a_replayed_environment_names_its_own_releases(cli: CliRunner, tmp_path: Path) -> None:
    earlier = tmp_path / "earlier"
    (earlier / "releases").mkdir(parents=True)
    for role, version in (("base", "26.0.2"), ("target", "27.0.1")):
        (earlier / "releases" / f"{role}-freeze.txt").write_text(
            f"cryptography==43.0.3\nopenstack-heat=={version}\n")
    result = cli("run", "--environment-from", str(earlier), "--base", "25.0.2",
                 "--workdir", str(tmp_path / "w"))
    assert result.returncode == 2
    assert "--base cannot be combined with --environment-from" in one_error_line(result)
    result = cli("run", "--environment-from", str(earlier), "--constraints", "2026.1",
                 "--workdir", str(tmp_path / "w"))
    assert result.returncode == 2
    assert "--constraints cannot be combined with --environment-from" in one_error_line(result)
    assert run_dirs(tmp_path / "w") == []


def test_upstream_smoke_tests_need_the_builtin_suite(cli: CliRunner, tmp_path: Path) -> None:
    # the gabbits run as tests of the built-in suite: --no-builtin-suite would drop them
    result = cli("run", "--smoke", "upstream", "--no-builtin-suite",
                 "--workdir", str(tmp_path / "w"))
    assert result.returncode == 2
    assert "--smoke upstream cannot be combined with --no-builtin-suite" in \
        one_error_line(result)
    assert run_dirs(tmp_path / "w") == []
    unknown = cli("run", "--smoke", "tempest", "--workdir", str(tmp_path / "w"))
    assert unknown.returncode == 2
    assert "argument --smoke: invalid choice: 'tempest'" in unknown.err

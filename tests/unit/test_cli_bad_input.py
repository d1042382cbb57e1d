"""Each bad input gets one clear line, its documented exit code, and leaves nothing broken."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import CliRunner, one_error_line


def _runs(workdir: Path) -> list[Path]:
    return sorted((workdir / "runs").glob("*")) if (workdir / "runs").exists() else []


@pytest.mark.parametrize("spec", ["newest", "27..x", "latest+1"])
def test_unparseable_release(cli: CliRunner, tmp_path: Path, spec: str) -> None:
    result = cli("run", "--base", spec, "--workdir", str(tmp_path / "w"))
    assert result.returncode == 2
    assert "cannot understand release" in one_error_line(result)
    assert _runs(tmp_path / "w") == []


def test_path_that_is_not_a_heat_tree(cli: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    result = cli("run", "--target", str(tmp_path / "src"), "--workdir", str(tmp_path / "w"))
    assert result.returncode == 2
    assert "is not a Heat source tree" in one_error_line(result)
    assert _runs(tmp_path / "w") == []


def test_unknown_step(cli: CliRunner, tmp_path: Path) -> None:
    result = cli("run", "--stop-after", "pre_upgrade", "--workdir", str(tmp_path / "w"))
    assert result.returncode == 2
    assert "unknown step 'pre_upgrade' for --stop-after" in one_error_line(result)


def test_unknown_check(cli: CliRunner, tmp_path: Path) -> None:
    result = cli("run", "--checks", "no-such-check", "--workdir", str(tmp_path / "w"))
    assert result.returncode == 2
    assert "unknown check(s): no-such-check" in one_error_line(result)
    assert _runs(tmp_path / "w") == []


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

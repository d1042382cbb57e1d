"""Release venvs built as OpenStack's gate builds them, proven at install, and replayable.

A venv whose libraries do not fit together is the environment's problem: exit 3 at install,
naming the packages, never an upgrade verdict. The main job's venvs are built with each
release's series (26.0.2: 2026.1) or, where that series' file does not fit the release
(27.0.1 and the 2026.2 development snapshot), as of the release's upload; and an earlier run's
environments are rebuilt from its freezes, exactly.
"""

from __future__ import annotations

from pathlib import Path

from grenadier.releases.constraints import all_series, from_text
from tests.e2e.conftest import BASE, Run, grenadier


def test_the_main_job_says_how_each_venv_was_built(default_run: Run) -> None:
    releases = default_run.report["releases"]
    assert isinstance(releases, dict)
    base, target = releases["base"]["environment"], releases["target"]["environment"]
    assert base["kind"] == "constraints"
    assert base["label"].startswith("2026.1 upper-constraints")
    assert target["kind"] == "as-of"
    assert target["exclude_newer"] == "2026-10-25"
    assert "2026.2 constraints do not fit" in target["label"]
    assert f"base {BASE}: 2026.1 upper-constraints" in default_run.err
    html = (default_run.run_dir / "report.html").read_text()
    assert "as of 2026-10-25" in html


def test_a_venv_whose_libraries_do_not_fit_fails_at_install_with_exit_3(
        workdir: Path, cache_dir: Path, tmp_path: Path) -> None:
    pins = {"pyOpenSSL": "22.0.0", "cryptography": "51.0.1"}
    lines = [f"{line.split('===')[0]}==={pins[line.split('===')[0]]}"
             if line.split("===")[0] in pins else line
             for line in all_series()["2026.1"].text.splitlines()]
    broken = tmp_path / "broken-constraints.txt"
    broken.write_text("\n".join(lines) + "\n")
    run = grenadier("run", "--base", BASE, "--target", BASE, "--constraints", str(broken),
                    "--stop-after", "install", workdir=workdir, cache_dir=cache_dir)
    assert run.returncode == 3, run.out + run.err
    assert "Traceback" not in run.err
    (line,) = [x for x in run.err.splitlines() if x.startswith("grenadier: error:")]
    assert f"openstack-heat {BASE} does not work in its venv" in line
    assert "involved: pyOpenSSL 22.0.0 with cryptography 51.0.1" in line
    assert run.status() == {"install": "error", "teardown": "passed"}
    assert "upgrade BROKE" not in run.out
    digest = from_text(broken.read_text(), str(broken)).digest[:8]
    assert not list((cache_dir / "releases").glob(f"*{digest}"))  # never kept


def test_an_earlier_run_s_environments_are_rebuilt_exactly(default_run: Run, workdir: Path,
                                                          cache_dir: Path) -> None:
    replay = grenadier("run", "--environment-from", str(default_run.run_dir),
                       "--stop-after", "install", workdir=workdir, cache_dir=cache_dir)
    assert replay.returncode == 0, replay.out + replay.err
    for role in ("base", "target"):
        name = f"releases/{role}-freeze.txt"
        assert (replay.run_dir / name).read_text() == (default_run.run_dir / name).read_text()
        release = replay.report["releases"][role]  # type: ignore[index]
        assert release["environment"]["kind"] == "freeze"
        assert str(default_run.run_dir) in release["environment"]["label"]

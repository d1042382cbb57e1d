"""Test phases started ahead (phases/warm.py, pytest_plugin/warm.py): held until their step,
then run as the step's pytest would be; stopped when their step never comes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from grenadier.phases import warm
from grenadier.pytest_plugin import warm as held_pytest

TEST_FILE = """
import pathlib

def test_marks(tmp_path):
    pathlib.Path({marker!r}).write_text("ran")
"""


def _ctx(tmp_path: Path) -> SimpleNamespace:
    return SimpleNamespace(run_dir=tmp_path, warm_phases={})


def _pytest_cmd(tmp_path: Path, marker: Path) -> list[str]:
    test = tmp_path / "test_phase.py"
    test.write_text(TEST_FILE.format(marker=str(marker)))
    return [sys.executable, "-m", "pytest", str(test), "-q", "-p", "no:cacheprovider",
            "--rootdir", str(tmp_path)]


def test_a_held_phase_runs_only_when_its_step_lets_it_go(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    marker = tmp_path / "marker"
    log = tmp_path / "logs" / "pytest-smoke-base.log"
    warm.start(ctx, "smoke-base", _pytest_cmd(tmp_path, marker), {}, log)  # type: ignore[arg-type]
    held = warm.take(ctx, "smoke-base")  # type: ignore[arg-type]
    assert held is not None
    assert held.proc.poll() is None  # alive, waiting for its go file
    assert not marker.exists()  # and it has run nothing
    assert held.run(timeout=120) == 0
    assert marker.read_text() == "ran"
    text = log.read_text()
    assert "1 passed" in text
    assert "(started ahead of its step)" in text
    assert warm.take(ctx, "smoke-base") is None  # taken once  # type: ignore[arg-type]


def test_a_phase_whose_step_never_comes_is_stopped(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    marker = tmp_path / "marker"
    warm.start(ctx, "post-upgrade", _pytest_cmd(tmp_path, marker), {},  # type: ignore[arg-type]
               tmp_path / "post.log")
    held = ctx.warm_phases["post-upgrade"]
    held.abandon()
    assert held.proc.wait(30) is not None
    assert not marker.exists()


def test_a_held_pytest_whose_run_is_gone_exits_without_running(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    go = tmp_path / "go"
    args = _pytest_cmd(tmp_path, marker)[3:]
    # started by a shell that exits at once: its parent is gone before any go file
    pid_file = tmp_path / "pid"
    inner = [sys.executable, "-m", held_pytest.__name__, str(go), "$$", "--", *args]
    script = f'{" ".join(inner)} >/dev/null 2>&1 & echo $! > {pid_file}'
    subprocess.run(["sh", "-c", script], check=True, timeout=30)
    pid = int(pid_file.read_text())
    proc_dir = Path(f"/proc/{pid}")
    for _ in range(3000):  # up to 60 s: it notices within a poll once its imports are done
        if not proc_dir.exists() or "Z" in (proc_dir / "stat").read_text().split()[2]:
            break
        subprocess.run(["sleep", "0.02"], check=False)
    else:
        raise AssertionError("the orphaned held pytest did not exit")
    assert not marker.exists()


def test_the_held_pytest_refuses_a_bad_command_line(capsys: object) -> None:
    assert held_pytest.main(["go-file", "pytest-args-without-separator"]) == 2
    assert held_pytest.main(["go-file", "not-a-pid", "--", "-q"]) == 2


def test_a_held_pytest_is_configured_before_its_go_file_and_runs_its_session_after(
        tmp_path: Path) -> None:
    marker, configured, go = tmp_path / "marker", tmp_path / "configured", tmp_path / "go"
    (tmp_path / "conftest.py").write_text(
        "import pathlib\n\ndef pytest_configure(config):\n"
        f"    pathlib.Path({str(configured)!r}).write_text('yes')\n")
    args = _pytest_cmd(tmp_path, marker)[3:]
    proc = subprocess.Popen([sys.executable, "-m", held_pytest.__name__, str(go),
                             str(os.getpid()), "--", *args], cwd=tmp_path)
    try:
        for _ in range(3000):  # up to 60 s for its imports and configuration
            if configured.exists() or proc.poll() is not None:
                break
            subprocess.run(["sleep", "0.02"], check=False)
        assert configured.read_text() == "yes"  # configured ahead...
        assert proc.poll() is None
        assert not marker.exists()  # ...and nothing run before the go file
        go.touch()
        assert proc.wait(60) == 0
        assert marker.read_text() == "ran"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

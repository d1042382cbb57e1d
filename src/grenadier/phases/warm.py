"""Test phases started ahead: a phase's pytest imports while the step before it runs.

A pytest phase spends about half a second (more on a busy machine) starting: Python, pytest,
its plugins, the suite's libraries. The runner starts the next phase's process while the
current step runs (grenadier.pytest_plugin.warm holds it until its go file appears), and the
phase's step lets it go instead of starting one. A process whose step never comes is stopped
with the run's other processes (and stops by itself if grenadier is gone).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from grenadier.execute import ExecuteRequest, reaper
from grenadier.execute.run import popen, stop_process_group
from grenadier.phases.context import RunContext

WARM_MODULE = "grenadier.pytest_plugin.warm"
#: what a held phase imports while it waits: the built-in suite's libraries
PRELOAD = ("grenadier.plugins.heat.suite.operations",)


@dataclass
class WarmPhase:
    """One phase's pytest, started and held."""

    proc: subprocess.Popen[str]
    go: Path
    handle: IO[str]
    started: float

    def run(self, timeout: float) -> int:
        """Let it go; its exit code (stopped, and 1, when it overruns ``timeout``)."""
        self.go.touch()
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            stop_process_group(self.proc)
            code = 1
        self.handle.write(f"# exit {code} after {time.monotonic() - self.started:.2f} s "
                          "(started ahead of its step)\n")
        self.handle.close()
        reaper.forget(self.proc.pid)
        return code

    def abandon(self) -> None:
        """Its step will not come: stop it (the go file never appears)."""
        if self.proc.poll() is None:
            stop_process_group(self.proc)
        self.handle.close()
        reaper.forget(self.proc.pid)


def held_command(go: Path, cmd: Sequence[str]) -> list[str]:
    """``cmd`` (``python -m pytest ARGS``) held by grenadier.pytest_plugin.warm until ``go``
    exists; its parent must be this process."""
    go.parent.mkdir(parents=True, exist_ok=True)
    go.unlink(missing_ok=True)
    return [sys.executable, "-m", WARM_MODULE, str(go), str(os.getpid()), *PRELOAD, "--",
            *list(cmd)[3:]]


def start(ctx: RunContext, phase: str, cmd: Sequence[str], env: Mapping[str, str],
          log: Path) -> None:
    """Start ``phase``'s pytest (``cmd``: ``python -m pytest ARGS``) held until its step."""
    if phase in ctx.warm_phases:
        return
    go = ctx.run_dir / "warm" / f"{phase}.go"
    full = held_command(go, cmd)
    log.parent.mkdir(parents=True, exist_ok=True)
    handle = log.open("a", encoding="utf-8")
    handle.write(f"$ {' '.join(full)}\n")
    handle.flush()
    try:
        proc = popen(ExecuteRequest(full, cwd=ctx.run_dir, env=dict(env)),
                     stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT)
    except BaseException:
        handle.close()
        raise
    ctx.warm_phases[phase] = WarmPhase(proc, go, handle, time.monotonic())


def take(ctx: RunContext, phase: str) -> WarmPhase | None:
    """``phase``'s held pytest, if one was started and still waits; else None."""
    held: WarmPhase | None = ctx.warm_phases.pop(phase, None)
    if held is not None and held.proc.poll() is not None:
        held.abandon()  # it ended on its own (an import failed): the step starts its own
        return None
    return held

"""shutdown: every service of the project stopped (gracefully, or killed to emulate a crash)."""

from __future__ import annotations

import socket

from grenadier.model.findings import Finding
from grenadier.model.result import Status, StepResult
from grenadier.phases.context import RunContext
from grenadier.phases.crash import start_in_flight
from grenadier.phases.upgrade import preparing


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def shutdown(ctx: RunContext) -> StepResult:
    """Take the control plane down; prove nothing of it is left running."""
    result = StepResult("shutdown", Status.PASSED)
    crash = ctx.options.shutdown == "crash"
    if crash:  # a crash cuts operations short: make sure some are running (phases/crash.py)
        start_in_flight(ctx, result)
    with preparing(ctx, result):  # e.g. schema-drift's fresh db_sync, while Heat stops
        stopped = ctx.stop_project(crash=crash)
    mode = "killed (SIGKILL)" if crash else "stopped gracefully"
    result.messages.append(f"{mode}: {', '.join(stopped) or 'nothing was running'}")
    for event in ctx.supervisor.events[-len(stopped) * 2:] if stopped else []:
        if event.event in ("stop", "crash", "kill"):
            result.messages.append(f"{event.service}: {event.event} ({event.detail})")
    if _port_open(ctx.deployment.port):
        result.status = Status.FAILED
        result.findings.append(Finding(
            "shutdown", "error", "the API port still answers after shutdown",
            where=f"127.0.0.1:{ctx.deployment.port}", expected="closed", found="open",
            remedy="find the process holding the port (ss -ltnp) and stop it"))
    return result

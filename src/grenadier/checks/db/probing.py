"""How the database checks start release processes: ``probe.py`` with a release's python.

Kept apart from the checks themselves so that the fresh-database preparation (``fresh.py``) and
the checks (``checks.py``) share one way of running and failing a probe.
"""

from __future__ import annotations

import json
import select
import subprocess
import threading
from pathlib import Path

from grenadier.checks.api import CheckContext
from grenadier.checks.db.compare import Json
from grenadier.errors import EnvironmentProblem
from grenadier.execute import ExecuteRequest, run
from grenadier.execute.run import end_helper, popen
from grenadier.releases import Release

PROBE = Path(__file__).with_name("probe.py")
#: seconds for one probe call; ``rows`` of a 1,000-stack database takes a few
PROBE_TIMEOUT = 600.0
DB_SYNC_TIMEOUT = 900.0
#: Release venvs are grenadier's own cache: let Python write their bytecode even where the
#: environment forbids it, or every probe and heat-manage call recompiles SQLAlchemy and Heat
#: (0.5-2 s per call, measured with PYTHONDONTWRITEBYTECODE=1)
COMPILE_OK = ("PYTHONDONTWRITEBYTECODE",)


class ProbeFailed(EnvironmentProblem):
    """probe.py could not look at the database."""


def work_dir(ctx: CheckContext) -> Path:
    path = ctx.run_dir / "checks" / "db"
    path.mkdir(parents=True, exist_ok=True)
    return path


class ProbeServer:
    """``probe.py serve`` with a release's python, started ahead of the probes it answers:
    its imports (about a second of CPU) happen while the machine waits for something else.
    One request at a time (a JSON line each way); the URL travels in the request."""

    def __init__(self, release: Release, log: Path) -> None:
        self.release = release
        self.lock = threading.Lock()
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a", encoding="utf-8") as err:
            err.write(f"$ {release.python} {PROBE} serve -  # answers the probes that follow\n")
            err.flush()
            self.proc: subprocess.Popen[str] | None = popen(
                ExecuteRequest([str(release.python), str(PROBE), "serve", "-"],
                               unset_env=COMPILE_OK),
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, bufsize=1)

    def ask(self, argv: list[str], url: str, timeout: float) -> Json | None:
        """probe.py's answer to ``argv``; None when the server is gone or does not answer."""
        with self.lock:
            proc = self.proc
            if proc is None or proc.poll() is not None or proc.stdin is None \
                    or proc.stdout is None:
                return None
            try:
                proc.stdin.write(json.dumps({"argv": argv, "url": url}) + "\n")
                proc.stdin.flush()
                ready, _, _ = select.select([proc.stdout], [], [], timeout)
                line = proc.stdout.readline() if ready else ""
            except OSError:
                line = ""
            if not line:
                self._stop()
                return None
            data: Json = json.loads(line)
            return data

    def _stop(self) -> None:
        if self.proc is not None:
            end_helper(self.proc)
            self.proc = None

    def close(self) -> None:
        with self.lock:
            self._stop()


def warm(ctx: CheckContext, stage: str) -> None:
    """Start the probe server of ``stage``'s release now, if a selected check will ask it
    (the step that calls this stops it with :func:`close_servers`); :func:`probe` uses it."""
    if not set(ctx.selected) & set(NEEDS[stage]):
        return
    release = ctx.base if stage == "before" else ctx.target
    servers = ctx.shared.setdefault("servers", {})
    assert isinstance(servers, dict)
    if release.label not in servers:
        servers[release.label] = ProbeServer(release, ctx.deployment.logs / "db-probe.log")


def close_servers(ctx: CheckContext) -> None:
    """Stop every probe server of ``ctx`` (the step that warmed them ends)."""
    stop_servers(ctx.shared.get("servers") or {})


def stop_servers(servers: object) -> None:
    """Stop the probe servers of a ``shared["servers"]`` dict and forget them."""
    assert isinstance(servers, dict)
    for server in list(servers.values()):
        server.close()
    servers.clear()


def _served(ctx: CheckContext, release: Release, argv: list[str], url: str,
            timeout: float) -> Json | None:
    servers = ctx.shared.get("servers") or {}
    assert isinstance(servers, dict)
    server = servers.get(release.label)
    return server.ask(argv, url, timeout) if server is not None else None


def probe(ctx: CheckContext, release: Release, commands: str, url: str = "",
          *args: str, timeout: float = PROBE_TIMEOUT) -> Json:
    """Run probe.py with ``release``'s python (its warm server's, when one was started); the
    URL travels in the environment or the request, never on a command line."""
    served = _served(ctx, release, [commands, "-", *args], url, timeout)
    if served is not None:
        if "error" in served:
            raise ProbeFailed(f"probe {commands} with {release.label}: {served['error']}",
                              hint=f"log: {ctx.deployment.logs / 'db-probe.log'}")
        return served
    cmd = [str(release.python), str(PROBE), commands, "-", *args]
    request = ExecuteRequest(cmd, env={"GRENADIER_PROBE_URL": url}, timeout=timeout,
                             log=ctx.deployment.logs / "db-probe.log", unset_env=COMPILE_OK)
    outcome = run(request)
    try:
        data: Json = json.loads(outcome.out.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        data = {"error": outcome.last_error_line()}
    if not outcome.ok or "error" in data:
        reason = "timed out" if outcome.timed_out else data.get("error", "failed")
        raise ProbeFailed(f"probe {commands} with {release.label}: {reason}",
                          hint=f"log: {request.log}")
    return data


#: what each database check reads with probe.py: before the migration (with the base
#: release's python) and after it (the target's)
NEEDS = {
    "before": {"migration": ("current",),
               "data-preserved": ("current", "schema", "capture-digests")},
    "after": {"migration": ("current", "heads"), "schema-drift": ("compare-models", "schema"),
              "data-preserved": ("heads", "schema", "compare-digests")},
}


BEFORE_FILE, AFTER_FILE = "digests-before.json", "digests-after.json"


def _commands(ctx: CheckContext, stage: str, checks: tuple[str, ...]) -> list[str]:
    needs = NEEDS[stage]
    if stage == "after" and not (work_dir(ctx) / BEFORE_FILE).is_file():
        checks = tuple(c for c in checks if c != "data-preserved")  # it warns, probes nothing
    return list(dict.fromkeys(c for name in checks if name in needs for c in needs[name]))


def _args(ctx: CheckContext, commands: list[str]) -> list[str]:
    """probe.py's files: the capture's output, and what the comparison reads and writes."""
    if "capture-digests" in commands:
        return ["--out", str(work_dir(ctx) / BEFORE_FILE)]
    if "compare-digests" in commands:
        return ["--before", str(work_dir(ctx) / BEFORE_FILE),
                "--out", str(work_dir(ctx) / AFTER_FILE)]
    return []


def shared_probe(ctx: CheckContext, stage: str, check: str) -> Json:
    """What ``check`` reads with probe.py at ``stage``, read once for every selected check.

    The first check to ask runs one probe for all of them (one Python importing SQLAlchemy
    instead of one per check); the others wait for it and take their part. When that probe
    fails, or the selection is unknown, each check probes for itself alone, so that one
    check's trouble never becomes another's. Keyed by command, as probe.py prints several.
    """
    own = list(NEEDS[stage][check])
    if check in ctx.selected:
        together = _commands(ctx, stage, ctx.selected)
        with ctx.lock:
            done = ctx.shared.get(f"probe-{stage}")
            if done is None:
                try:
                    done = _run(ctx, stage, together)
                except ProbeFailed as exc:
                    done = exc
                ctx.shared[f"probe-{stage}"] = done
        if isinstance(done, dict):
            return done
    return _run(ctx, stage, own)


def _run(ctx: CheckContext, stage: str, commands: list[str]) -> Json:
    release = ctx.base if stage == "before" else ctx.target
    args = _args(ctx, commands)
    if "capture-digests" in commands:  # a failed capture must not leave an earlier one
        (work_dir(ctx) / BEFORE_FILE).unlink(missing_ok=True)
    data = probe(ctx, release, ",".join(commands), ctx.deployment.db.url(), *args)
    if "--out" in args:
        data = json.loads(Path(args[args.index("--out") + 1]).read_text(encoding="utf-8"))
    return data if len(commands) > 1 else {commands[0]: data}

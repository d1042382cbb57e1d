"""The default run, per step: cold cache and warm cache.

    .venv/bin/python benchmarks/run_steps.py [--base 26.0.2] [--target 27.0.1] [--repeat N]
        [--cold N] [--workdir DIR] [--json FILE] [--plain]

Runs ``grenadier run --base B --target T`` (embedded PostgreSQL, the built-in suite):

- ``--cold N`` times (default 1) with a cold cache: a fresh, empty GRENADIER_CACHE directory,
  so the install step creates both release venvs. uv's own download/wheel cache
  (``~/.cache/uv``) is NOT emptied: "cold" here means no release venv, no bytecode, no
  config-option inventory, not "nothing downloaded" (the packages come from uv's cache);
- ``--repeat N`` times (default 3) with a warm cache ($GRENADIER_CACHE, default
  ~/.cache/grenadier; the releases are installed there first, untimed, if missing).

For each run it prints every step's duration from the run's report.json, the command's wall
time, the sum of the steps (``during-upgrade`` runs in the background beside ``upgrade``, so it
is left out of the sum) and the load averages before and after. Grenadier is started through a
small wrapper (``--instrumented``, the same ``grenadier.cli.main.main`` with the same arguments)
that also records how long each check, db_sync, snapshot, inventory, service start/stop and
report writer took (``--plain`` runs ``python -m grenadier`` instead); ``bare_floor.py`` uses
those to say where grenadier's time goes.

This module is also the helper library of bare_floor.py and scale.py.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
STEPS = ("install", "setup-base", "smoke-base", "pre-upgrade", "save-state", "shutdown",
         "during-upgrade", "upgrade", "start-target", "smoke-target", "post-upgrade", "teardown")
#: steps that run beside another one (not added to the serial sum)
OVERLAPPED = ("during-upgrade",)


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def default_cache() -> Path:
    env = os.environ.get("GRENADIER_CACHE")
    if env:
        return Path(env)
    from grenadier.releases import default_cache_dir

    return default_cache_dir()


def ensure_releases(cache: Path, *specs: str) -> None:
    """Install the releases into ``cache`` if they are not there (untimed)."""
    from grenadier.releases import ReleaseCache, parse_spec

    releases = ReleaseCache(cache)
    for spec in specs:
        releases.ensure(parse_spec(spec))


# -- one grenadier run -------------------------------------------------------------------------

@dataclass
class GrenadierRun:
    label: str
    wall: float
    exit: int
    steps: dict[str, float]
    messages: dict[str, list[str]]
    tests: dict[str, list[dict[str, Any]]]
    run_dir: str
    load_before: str
    load_after: str
    #: instrumented timings: [{"what", "at", "seconds", "thread"}]
    timings: list[dict[str, Any]] = field(default_factory=list)

    @property
    def serial(self) -> float:
        return sum(v for k, v in self.steps.items() if k not in OVERLAPPED)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def run_grenadier(label: str, base: str, target: str, workdir: Path, cache: Path, *,
                  env: Mapping[str, str] | None = None, extra_args: Sequence[str] = (),
                  plain: bool = False, timeout: float = 3600) -> GrenadierRun:
    """``grenadier run`` in a child process; its report.json read back."""
    workdir.mkdir(parents=True, exist_ok=True)
    timings_file = workdir / f"timings-{time.time_ns()}.jsonl"
    argv = ["run", "--base", base, "--target", target, "--workdir", str(workdir),
            "--cache-dir", str(cache), *extra_args]
    if plain:
        cmd = [sys.executable, "-m", "grenadier", *argv]
    else:
        cmd = [sys.executable, str(HERE), "--instrumented", str(timings_file), "--", *argv]
    before = load()
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=timeout,
                          env={**os.environ, "GRENADIER_CACHE": str(cache), **(env or {})})
    wall = time.perf_counter() - started
    after = load()
    runs = sorted((workdir / "runs").glob("*"), key=lambda p: p.stat().st_mtime)
    steps: dict[str, float] = {}
    messages: dict[str, list[str]] = {}
    tests: dict[str, list[dict[str, Any]]] = {}
    run_dir = ""
    if runs:
        run_dir = str(runs[-1])
        with contextlib.suppress(OSError, ValueError):
            report = json.loads((runs[-1] / "report.json").read_text(encoding="utf-8"))
            for step in report["steps"]:
                steps[step["name"]] = float(step["duration"])
                messages[step["name"]] = list(step.get("messages", []))
                tests[step["name"]] = list(step.get("tests", []))
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
        print(f"  ! {label}: exit {proc.returncode}: {' | '.join(tail)}", flush=True)
    timings = []
    if timings_file.is_file():
        timings = [json.loads(line) for line in timings_file.read_text().splitlines() if line]
        timings_file.unlink()
    return GrenadierRun(label, wall, proc.returncode, steps, messages, tests, run_dir, before,
                        after, timings)


# -- the instrumented entry point --------------------------------------------------------------

def instrumented_main(timings: Path, argv: list[str]) -> int:
    """grenadier's own main(argv), with timing wrappers around its expensive parts.

    The wrappers only read the clock and append one JSON line per call: they change no
    behaviour and cost microseconds.
    """
    lock = threading.Lock()
    origin = time.monotonic()
    current = {"step": "(before the steps)"}

    def emit(what: str, begin: float, step: str) -> None:
        end = time.monotonic()
        line = json.dumps({"what": what, "step": step, "at": round(begin - origin, 3),
                           "seconds": round(end - begin, 3),
                           "thread": threading.current_thread().name})
        with lock, timings.open("a", encoding="utf-8") as out:
            out.write(line + "\n")

    def timed(fn: Callable[..., Any], name: Callable[..., str] | str) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            begin, step = time.monotonic(), current["step"]
            try:
                return fn(*args, **kwargs)
            finally:
                emit(name(*args, **kwargs) if callable(name) else name, begin, step)

        return wrapper

    def patch(owner: Any, attr: str, name: Callable[..., str] | str) -> None:
        # grenadier's code moves on (teardown lost _deprecations): time what is still there
        if hasattr(owner, attr):
            setattr(owner, attr, timed(getattr(owner, attr), name))

    from grenadier.checks import api as checks_api
    from grenadier.cli import commands
    from grenadier.phases import context, impact, suite, teardown
    from grenadier.plugins.heat.project import HeatProject
    from grenadier.releases.cache import ReleaseCache
    from grenadier.runner.runner import Runner
    from grenadier.services import postgres
    from grenadier.services.api import Supervisor

    run_step = Runner._run_step

    def step_marker(self: Any, step: str) -> Any:
        current["step"] = step
        try:
            return run_step(self, step)
        finally:
            current["step"] = f"(after {step})"

    Runner._run_step = step_marker  # type: ignore[method-assign]

    select = checks_api.CheckRegistry.select

    def timed_select(self: Any, only: Sequence[str] = (), skip: Sequence[str] = ()) -> Any:
        chosen = []
        for check in select(self, only, skip):
            capture = check.capture and timed(check.capture, f"capture {check.name}")
            prepare = getattr(check, "prepare", None)
            extra = {"prepare": timed(prepare, f"prepare {check.name}")} if prepare else {}
            chosen.append(dataclasses.replace(check, run=timed(check.run, f"check {check.name}"),
                                              capture=capture, **extra))
        return chosen

    checks_api.CheckRegistry.select = timed_select  # type: ignore[method-assign]
    patch(HeatProject, "db_sync", lambda self, release, dep: f"db_sync {release.version}")
    patch(HeatProject, "inventory", "inventory (Heat API)")
    patch(HeatProject, "configure", "configure (heat.conf)")
    patch(postgres.EmbeddedPostgres, "start", "postgresql start (initdb, createdb)")
    patch(postgres.EmbeddedPostgres, "snapshot", "postgresql snapshot (pg_dump)")
    patch(Supervisor, "start", lambda self, spec, **kw: f"start {spec.name}")
    patch(Supervisor, "let_go", lambda self, name: f"let go {name}")
    patch(Supervisor, "stop", lambda self, name, **kw: f"stop {name}")
    patch(ReleaseCache, "ensure", lambda self, spec, log=None, **kw: f"release ensure {spec.text}")
    patch(ReleaseCache, "freeze", lambda self, release: f"pip freeze {release.version}")
    patch(impact.ImpactJob, "_build", "impact report build (background)")
    patch(impact.ImpactJob, "join", "impact report join (teardown waits)")
    patch(teardown, "_deprecations", "deprecation scan of target logs")
    patch(suite, "run", lambda request: f"pytest {request.cmd[request.cmd.index('-m', 3) + 1]}")
    patch(context.RunContext, "close", "close (stop everything)")
    patch(commands, "write_json", "write report.json")
    patch(commands, "write_junit", "write junit.xml")
    patch(commands, "_write_html", "write report.html")

    from grenadier.cli.main import main

    return main(argv)


# -- printing -------------------------------------------------------------------------------

def med(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def fmt(value: float) -> str:
    return "-" if value != value else f"{value:.1f}"  # NaN -> "-"


def print_runs(title: str, runs: Sequence[GrenadierRun]) -> None:
    if not runs:
        return
    print(f"\n{title}")
    head = f"{'step':<16}" + "".join(f"{r.label:>10}" for r in runs)
    if len(runs) > 1:
        head += f"{'median':>10}"
    print(head)
    for step in STEPS:
        values = [r.steps.get(step, float("nan")) for r in runs]
        line = f"{step:<16}" + "".join(f"{fmt(v):>10}" for v in values)
        if len(runs) > 1:
            line += f"{fmt(med([v for v in values if v == v])):>10}"
        print(line + ("   (beside upgrade)" if step in OVERLAPPED else ""))
    rows: list[tuple[str, list[float]]] = [
        ("sum of steps", [r.serial for r in runs]), ("wall (command)", [r.wall for r in runs]),
        ("outside steps", [r.wall - r.serial for r in runs])]
    for name, values in rows:
        line = f"{name:<16}" + "".join(f"{fmt(v):>10}" for v in values)
        if len(runs) > 1:
            line += f"{fmt(med(values)):>10}"
        print(line)
    print(f"{'exit code':<16}" + "".join(f"{r.exit:>10}" for r in runs))
    for r in runs:
        print(f"  {r.label}: load before {r.load_before}, after {r.load_after}; {r.run_dir}")


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--instrumented":
        rest = sys.argv[3:]
        return instrumented_main(Path(sys.argv[2]), rest[1:] if rest[:1] == ["--"] else rest)
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--base", default="26.0.2")
    parser.add_argument("--target", default="27.0.1")
    parser.add_argument("--repeat", type=int, default=3, help="warm-cache runs (default 3)")
    parser.add_argument("--cold", type=int, default=1, help="cold-cache runs (default 1)")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="write every run here")
    parser.add_argument("--plain", action="store_true", help="python -m grenadier, no timings")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="grenadier-steps-"))
    warm_cache = default_cache()
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')}, {os.cpu_count()} CPUs, load {load()}; "
          f"{args.base} -> {args.target}; warm cache {warm_cache}; work {workdir}", flush=True)
    cold: list[GrenadierRun] = []
    for index in range(args.cold):
        cache = Path(tempfile.mkdtemp(prefix="grenadier-cold-cache-"))
        print(f"cold {index + 1}/{args.cold} (empty cache {cache}; uv's own cache stays warm)"
              " ...", flush=True)
        try:
            cold.append(run_grenadier(f"cold{index + 1}", args.base, args.target,
                                      workdir / f"cold{index + 1}", cache, plain=args.plain))
        finally:
            shutil.rmtree(cache, ignore_errors=True)
    warm: list[GrenadierRun] = []
    if args.repeat:
        ensure_releases(warm_cache, args.base, args.target)
    for index in range(args.repeat):
        print(f"warm {index + 1}/{args.repeat} ...", flush=True)
        warm.append(run_grenadier(f"warm{index + 1}", args.base, args.target,
                                  workdir / f"warm{index + 1}", warm_cache, plain=args.plain))
    print_runs("cold cache (fresh GRENADIER_CACHE, uv download cache warm), seconds", cold)
    print_runs(f"warm cache ({warm_cache}), seconds", warm)
    if args.json:
        args.json.write_text(json.dumps({"cold": [r.to_dict() for r in cold],
                                         "warm": [r.to_dict() for r in warm]}, indent=1),
                             encoding="utf-8")
    return 0 if all(r.exit == 0 for r in [*cold, *warm]) else 1


if __name__ == "__main__":
    sys.exit(main())

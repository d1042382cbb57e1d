"""Three upgrade paths as one matrix, then the same three one after the other; print both times.

    .venv/bin/python benchmarks/matrix.py [--jobs N] [--db postgresql] [--workdir DIR]

The paths: 25.0.2 -> 26.0.2, 26.0.2 -> 27.0.1, and the skip-level 25.0.2 -> 27.0.1. Releases
are installed into the cache first (not timed), so both timings compare upgrade runs only.
Also printed: CPU seconds per run (user + system of the run and everything it waited for) and
the peak memory (PSS) of all runs together, the two figures behind ``grenadier matrix``'s
default ``--jobs`` (see grenadier/matrix/run.py).
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console

from grenadier.cli import matrix_cmd
from grenadier.cli.progress import ConsoleReporter
from grenadier.execute import ExecuteRequest, run
from grenadier.matrix import default_jobs, parse_path
from grenadier.releases import ReleaseCache, parse_spec

PATHS = ("25.0.2:26.0.2", "26.0.2:27.0.1", "25.0.2:27.0.1")
#: path, exit code, wall seconds, CPU seconds
Timed = tuple[str, int, float, float]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _descendants(root: int) -> list[int]:
    parent: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parent.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        kids = parent.get(pid, [])
        found += kids
        todo += kids
    return found


def _pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


@contextmanager
def peak_memory() -> Iterator[list[int]]:
    """Samples the PSS of all our descendants every second; yields [peak KiB]."""
    peak = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(1.0):
            peak[0] = max(peak[0], sum(_pss_kib(p) for p in _descendants(os.getpid())))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join()


def install(cache_dir: Path | None) -> None:
    cache = ReleaseCache(cache_dir)
    for version in sorted({v for p in PATHS for v in p.split(":")}):
        cache.ensure(parse_spec(version))


def matrix(args: argparse.Namespace, workdir: Path) -> tuple[float, int, str]:
    argv = ["matrix", *(a for p in PATHS for a in ("--path", f"{p}:{args.db}")),
            "--workdir", str(workdir)]
    argv += ["--jobs", str(args.jobs)] if args.jobs else []
    argv += ["--cache-dir", str(args.cache_dir)] if args.cache_dir else []
    parser = argparse.ArgumentParser(prog="grenadier")
    matrix_cmd.add_parser(parser.add_subparsers(dest="command"))
    out = io.StringIO()
    started = time.monotonic()
    code = matrix_cmd.matrix_command(parser.parse_args(argv),
                                     ConsoleReporter(Console(file=out, width=160)))
    return time.monotonic() - started, code, out.getvalue()


def sequential(args: argparse.Namespace, workdir: Path) -> tuple[float, list[Timed]]:
    runs: list[Timed] = []
    started = time.monotonic()
    for text in PATHS:
        base, target = text.split(":")
        cmd = [sys.executable, "-m", "grenadier", "run", "--base", base, "--target", target,
               "--db", args.db, "--workdir", str(workdir / text.replace(":", "-to-"))]
        cmd += ["--cache-dir", str(args.cache_dir)] if args.cache_dir else []
        cpu = _children_cpu()
        outcome = run(ExecuteRequest(cmd, timeout=1800, log=workdir / "sequential.log"))
        runs.append((text, outcome.returncode, outcome.duration, _children_cpu() - cpu))
    return time.monotonic() - started, runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, help="matrix --jobs (default: grenadier's default)")
    parser.add_argument("--db", default="postgresql")
    parser.add_argument("--cache-dir", type=Path)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--skip-sequential", action="store_true")
    args = parser.parse_args()
    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="grenadier-bench-"))).resolve()
    install(args.cache_dir)
    for text in PATHS:
        parse_path(text)
    jobs, why = default_jobs(len(PATHS))
    print(f"machine: {os.cpu_count()} CPUs; default --jobs {jobs} ({why})", flush=True)
    cpu = _children_cpu()
    with peak_memory() as peak:
        wall, code, table = matrix(args, workdir / "matrix")
    print(table, flush=True)
    print(f"matrix ({args.jobs or jobs} at once): {wall:.1f} s wall, exit {code}, "
          f"{_children_cpu() - cpu:.1f} CPU s, peak {peak[0] >> 10} MiB PSS", flush=True)
    if args.skip_sequential:
        return code
    total, runs = sequential(args, workdir / "sequential")
    for text, rc, seconds, cpu_s in runs:
        print(f"  sequential {text}: exit {rc}, {seconds:.1f} s wall, {cpu_s:.1f} CPU s "
              f"({cpu_s / seconds:.2f} of a core)")
    print(f"one after the other: {total:.1f} s wall")
    print(f"matrix / sequential: {wall / total:.2f}")
    return code or max(rc for _, rc, _, _ in runs)


if __name__ == "__main__":
    sys.exit(main())

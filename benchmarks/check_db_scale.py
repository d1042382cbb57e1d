"""``grenadier check db`` on a production-sized dump: time per step and check, peak memory.

    .venv/bin/python benchmarks/check_db_scale.py DUMP [DUMP ...] [--target 26.0.2]
        [--repeat 1] [--workdir DIR] [--json FILE]

DUMP: what make_heat_db.py writes (``heat-postgresql-20000.sql``, ``heat-mariadb-20000.sql``),
or any pg_dump / mariadb-dump of a Heat database. Each run is ``python -m grenadier check db
--db-dump DUMP --target T`` in a child process, from a new work directory (the release cache
is $GRENADIER_CACHE, warm: installed first, untimed, if missing). While it runs, the memory of
grenadier and every process below it (the private database server, psql or the mariadb client
loading the copy, heat-manage, the probes) is sampled every 0.2 s from /proc: the peak of the
sum of their proportional set sizes (PSS: shared pages divided among their sharers, so a
database's shared buffers count once) and, for reference, of their resident sets (RSS, which
counts shared pages once per process). Printed per run: wall time, each step, the copy's load,
each check's capture and run, db_sync, the peaks, the load averages before and after.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import run_steps as rs

SAMPLE_SECONDS = 0.2
_TIMED = (re.compile(r"^(check [\w-]+): .*?([\d.]+) s\)$"),
          re.compile(r"^(capture for [\w-]+): ([\d.]+) s$"),
          re.compile(r"^(copy loaded) into .* in ([\d.]+) s$"),
          re.compile(r"^(db_sync) .* in ([\d.]+) s$"))


def descendants(root: int) -> list[int]:
    """``root`` and every process below it, from /proc (children of children included)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = Path(f"/proc/{entry}/stat").read_text()
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def memory_kib(pid: int) -> tuple[int, int]:
    """(PSS, RSS) of one process in KiB; (0, 0) once it is gone."""
    pss = rss = 0
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
            elif line.startswith("Rss:"):
                rss = int(line.split()[1])
    return pss, rss


class Sampler(threading.Thread):
    """Peaks of the summed PSS and RSS of a process tree, sampled until stopped."""

    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.peak_pss = self.peak_rss = self.processes = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            pids = descendants(self.root)
            sizes = [memory_kib(pid) for pid in pids]
            pss, rss = sum(s[0] for s in sizes), sum(s[1] for s in sizes)
            if pss > self.peak_pss:
                self.peak_pss, self.processes = pss, len(pids)
            self.peak_rss = max(self.peak_rss, rss)
            self.stopped.wait(SAMPLE_SECONDS)


def check_db(dump: Path, target: str, workdir: Path, cache: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "grenadier", "check", "db", "--db-dump", str(dump),
           "--target", target, "--workdir", str(workdir), "--cache-dir", str(cache)]
    before = rs.load()
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "GRENADIER_CACHE": str(cache)})
    sampler = Sampler(proc.pid)
    sampler.start()
    out, _ = proc.communicate()
    wall = time.perf_counter() - started
    sampler.stopped.set()
    sampler.join()
    run_dir = next((workdir / "runs").glob("*"))
    report = json.loads((run_dir / "report.json").read_text())
    probes = {}
    for name in ("digests-before.json", "digests-after.json"):
        with contextlib.suppress(OSError, ValueError):
            probes[name] = json.loads((run_dir / "checks" / "db" / name).read_text())["seconds"]
    data = report.get("facts", {}).get("data", {})
    timed: dict[str, float] = {}
    for step in report["steps"]:
        for message in step["messages"]:
            for pattern in _TIMED:
                if match := pattern.match(message):
                    timed[match[1]] = float(match[2])
    return {"dump": str(dump), "dump_mb": round(dump.stat().st_size / 1e6),
            "exit": proc.returncode, "wall": round(wall, 1),
            "steps": {s["name"]: round(s["duration"], 1) for s in report["steps"]},
            "timed": timed, "probe_seconds": probes,
            "rows": {t: [v["before"], v["after"], v["lost"], v["changed"]]
                     for t, v in data.items()},
            "peak_pss_mib": round(sampler.peak_pss / 1024),
            "peak_rss_mib": round(sampler.peak_rss / 1024),
            "processes_at_peak": sampler.processes, "load_before": before,
            "load_after": rs.load(), "findings": [
                f"{f['severity']} {f['check']}: {f['what']}" for s in report["steps"]
                for f in s["findings"] if f["severity"] != "info"],
            "tail": out.splitlines()[-3:]}


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("dumps", nargs="+", type=Path)
    parser.add_argument("--target", default="26.0.2")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    cache = rs.default_cache()
    rs.ensure_releases(cache, args.target)
    root = args.workdir or Path(tempfile.mkdtemp(prefix="grenadier-checkdb-"))
    results = []
    for round_ in range(args.repeat):
        for dump in args.dumps:
            work = Path(tempfile.mkdtemp(prefix=f"r{round_}-", dir=root))
            work.chmod(0o755)  # the PostgreSQL system user must reach the copy's directory
            print(f"{time.strftime('%H:%M:%S')} check db {dump.name} (load {rs.load()}) ...",
                  flush=True)
            result = check_db(dump, args.target, work, cache)
            results.append(result)
            print(json.dumps(result, indent=1), flush=True)
            subprocess.run(["rm", "-rf", str(work)], check=False)
    print(f"\n{'dump':<28}{'exit':>5}{'wall s':>8}{'copy':>7}{'upgrade':>8}{'PSS MiB':>9}"
          f"{'RSS MiB':>9}  load before -> after")
    for r in results:
        steps = r["steps"]
        print(f"{Path(r['dump']).name:<28}{r['exit']:>5}{r['wall']:>8}{steps.get('copy', 0):>7}"
              f"{steps.get('upgrade', 0):>8}{r['peak_pss_mib']:>9}{r['peak_rss_mib']:>9}  "
              f"{r['load_before']} -> {r['load_after']}")
        print("    " + ", ".join(f"{k} {v} s" for k, v in r["timed"].items()))
        for name, seconds in r["probe_seconds"].items():
            print(f"    {name}: " + ", ".join(f"{k} {v} s" for k, v in seconds.items()))
        rows = r["rows"]
        print(f"    rows before/after: stack {rows.get('stack')}, resource "
              f"{rows.get('resource')}, event {rows.get('event')}; tables with a row lost or "
              f"changed: {[t for t, v in rows.items() if v[2] or v[3]] or 'none'}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0 if all(r["exit"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())

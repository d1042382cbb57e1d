"""WSGI servers for the split API, side by side: how a request waiting on an engine delays the
others (the stall), startup, memory.

Usage: GRENADIER_CACHE=DIR python benchmarks/wsgi_servers.py [--slow N] [--hold S]

Each candidate serves the same small application (stdlib only): ``/slow`` waits ``--hold``
seconds, as an API request waiting for an engine's RPC answer does while that engine stops;
``/fast`` answers at once. With ``--slow`` slow requests in flight, 8 threads send 80 fast ones;
the p50 / p95 of the fast ones is the stall each server makes them suffer. Candidates:
``wsgiref`` (what heat-wsgi-api's script serves with: one request at a time), and the servers
pinned by OpenStack's upper-constraints (2026.1): waitress, cheroot, gunicorn (gthread), each
installed into its own cached tool venv (``releases/tools.py``), run with this Python.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from grenadier.host import free_port
from grenadier.releases import ReleaseCache
from grenadier.releases.tools import ensure_tool

APP = '''
import time
HOLD = float(__import__("os").environ["HOLD"])
def app(environ, start_response):
    if environ["PATH_INFO"] == "/slow":
        time.sleep(HOLD)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
'''
SERVE = {
    "wsgiref": "from wsgiref.simple_server import make_server\n"
               "make_server('127.0.0.1', PORT, app).serve_forever()",
    "waitress": "from waitress import serve\nserve(app, host='127.0.0.1', port=PORT, threads=16)",
    "cheroot": "from cheroot.wsgi import Server\n"
               "Server(('127.0.0.1', PORT), app, numthreads=16).safe_start()",
}
TOOLS = {"waitress": "waitress==3.0.2", "cheroot": "cheroot==11.1.2",
         "gunicorn": "gunicorn==25.2.0"}


def _command(name: str, port: int, app_dir: Path, site: Path | None, venv: Path | None
             ) -> list[str]:
    if name == "gunicorn":
        assert venv is not None
        return [str(venv / "bin" / "gunicorn"), "-b", f"127.0.0.1:{port}", "-w", "1",
                "-k", "gthread", "--threads", "16", "--chdir", str(app_dir), "app:app"]
    paths = f"import sys; sys.path.insert(0, {str(app_dir)!r})" + (
        f"; sys.path.append({str(site)!r})" if site else "")
    code = f"{paths}\nfrom app import app\nPORT = {port}\n{SERVE[name]}"
    return [sys.executable, "-c", code]


def _ready(url: str, timeout: float = 30.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            httpx.get(f"{url}/fast", timeout=1)
            return time.monotonic() - started
        except httpx.HTTPError:
            time.sleep(0.02)
    raise SystemExit(f"{url} never answered")


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure(name: str, app_dir: Path, hold: float, slow: int, cache: ReleaseCache) -> str:
    site = venv = None
    if name in TOOLS:
        tool = ensure_tool(cache, TOOLS[name])
        venv = tool.venv
        site = sorted(venv.glob("lib/python3*/site-packages"))[0]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(_command(name, port, app_dir, site, venv),
                            env={"HOLD": str(hold), "PATH": "/usr/bin:/bin"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        ready = _ready(url)
        slow_threads = [threading.Thread(target=httpx.get, args=(f"{url}/slow",),
                                         kwargs={"timeout": hold + 30}) for _ in range(slow)]
        for thread in slow_threads:
            thread.start()
        time.sleep(0.2)  # the slow ones are in

        def fast(_: int) -> float:
            began = time.monotonic()
            httpx.get(f"{url}/fast", timeout=hold + 30)
            return time.monotonic() - began

        with ThreadPoolExecutor(8) as pool:
            latencies = sorted(pool.map(fast, range(80)))
        for thread in slow_threads:
            thread.join()
        p95 = latencies[int(0.95 * len(latencies)) - 1]
        return (f"{name:<9} ready {ready:5.2f} s  fast requests p50 "
                f"{statistics.median(latencies):6.3f} s p95 {p95:6.3f} s  RSS "
                f"{_rss_mib(proc.pid):5.1f} MiB")
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--slow", type=int, default=2, help="slow requests in flight")
    parser.add_argument("--hold", type=float, default=5.0, help="seconds a slow one waits")
    args = parser.parse_args()
    cache = ReleaseCache()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "app.py").write_text(APP)
        print(f"{args.slow} request(s) held {args.hold:.0f} s, 80 fast ones from 8 threads")
        for name in ("wsgiref", "waitress", "cheroot", "gunicorn"):
            print(measure(name, Path(tmp), args.hold, args.slow, cache), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

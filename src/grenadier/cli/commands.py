"""What each sub-command does, on top of the runner."""

from __future__ import annotations

import argparse
import os
import re
import time
from pathlib import Path

from grenadier.cli.progress import ConsoleReporter
from grenadier.errors import ExitCode, GrenadierError, UsageError
from grenadier.host import unique_dir
from grenadier.phases.context import RunContext, make_registry
from grenadier.phases.options import RunOptions, check_step
from grenadier.plugins.manager import plugin_manager
from grenadier.releases import ReleaseCache, parse_spec
from grenadier.report.files import write_json, write_junit
from grenadier.report.html import render_html
from grenadier.runner.plan import plan_steps
from grenadier.runner.runner import Runner
from grenadier.services.api import reap_recorded
from grenadier.state import StateStore, StoreCorrupt

VERDICTS = {ExitCode.OK: "upgrade OK", ExitCode.UPGRADE_FAILED: "upgrade BROKE something",
            ExitCode.USAGE: "bad input", ExitCode.ENVIRONMENT: "environment problem",
            ExitCode.INTERRUPTED: "interrupted"}


def dispatch(args: argparse.Namespace, reporter: ConsoleReporter) -> int:
    if args.command == "run":
        return run_command(args, reporter)
    if args.command == "down":
        return down_command(Path(args.run_dir), reporter)
    if args.command == "matrix":
        from grenadier.cli.matrix_cmd import matrix_command

        return matrix_command(args, reporter)
    if args.command == "export":
        from grenadier.cli.export_cmd import export_command

        return export_command(args, reporter)
    if args.command == "report":
        from grenadier.cli.report_cmd import report_command

        return report_command(args, reporter)
    if args.command == "impact":
        from grenadier.cli.impact import impact_command

        return impact_command(args, reporter)
    raise UsageError(f"unknown command {args.command}")


def _slug(text: str) -> str:
    name = Path(text).name if "/" in text else text
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", name)[:40] or "release"


def _new_run_dir(workdir: Path, options: RunOptions) -> Path:
    name = f"{time.strftime('%Y%m%d-%H%M%S')}-{_slug(options.base)}-to-{_slug(options.target)}"
    return unique_dir(workdir / "runs", name, "run directory")


def _options_from(args: argparse.Namespace) -> RunOptions:
    for spec in (args.base, args.target):
        parse_spec(spec)
    for path in [*args.tests, *args.config]:
        if not Path(path).exists():
            raise UsageError(f"{path} does not exist")
    if args.port is not None and not 1 <= args.port <= 65535:
        raise UsageError(f"--port {args.port} is not a TCP port number")
    return RunOptions(
        base=args.base, target=args.target, db=args.db, db_url=args.db_url,
        shutdown=args.shutdown, port=args.port,
        tests=[str(Path(p).resolve()) for p in args.tests],
        checks=args.checks, skip_checks=args.skip_checks,
        config=[str(Path(p).resolve()) for p in args.config],
        fail_on_stuck=args.fail_on_stuck, builtin_suite=not args.no_builtin_suite,
        cache_dir=str(Path(args.cache_dir).resolve()) if args.cache_dir else None,
        bus=args.bus, bus_url=args.bus_url, topology=args.topology, engines=args.engines,
        auth=args.auth, mode=args.mode, workload_ops=args.workload_ops,
        workload_min_ops=args.workload_min_ops, workload_rate=args.workload_rate,
        workload_seconds=args.workload_seconds, workload_mix=args.workload_mix,
    )


def _prepare_run(args: argparse.Namespace, reporter: ConsoleReporter) -> tuple[Path, RunOptions]:
    if args.stop_after:
        check_step(args.stop_after, "--stop-after")
    if args.only:
        check_step(args.only, "--only")
    if args.only and args.stop_after:
        raise UsageError("--only and --stop-after cannot be combined")
    manager = plugin_manager()
    if args.resume:
        run_dir = Path(args.resume).resolve()
        options = RunOptions.load(run_dir)
        try:
            StateStore(run_dir / "state.json").validate()
        except StoreCorrupt as exc:
            raise UsageError(exc.message, hint="start a new run; this one cannot be resumed") \
                from exc
        left = reap_recorded(run_dir / "services.json")
        if left:
            reporter.say(f"stopped services left running by the previous run: {', '.join(left)}")
        return run_dir, options
    options = _options_from(args)
    make_registry(manager).validate([*options.checks, *options.skip_checks])
    run_dir = _new_run_dir(Path(args.workdir), options)
    options.save(run_dir)
    return run_dir, options


def run_command(args: argparse.Namespace, reporter: ConsoleReporter) -> int:
    run_dir, options = _prepare_run(args, reporter)
    reporter.console.print(f"grenadier run: {options.base} -> {options.target} on {options.db}, "
                           f"{options.control_plane}  ({run_dir})", markup=False,
                           highlight=False)
    cache = ReleaseCache(Path(options.cache_dir) if options.cache_dir else None)
    ctx = RunContext(run_dir, options, plugin_manager(), cache, reporter.say)
    ctx.keep_running = args.keep_running
    runner = Runner(ctx, reporter)
    steps = plan_steps(stop_after=args.stop_after, only=args.only, done=runner.results)
    code = ExitCode.OK
    try:
        code = runner.run(steps)
    finally:
        ctx.close(keep_running=args.keep_running)
        results = list(runner.results.values())
        header = {"grenadier": "run", "base": options.base, "target": options.target,
                  "options": options.to_dict(), "verdict": VERDICTS.get(code, str(code)),
                  "exit_code": int(code), "releases": {
                      role: ctx.store.get("runner", f"release-{role}")
                      for role in ("base", "target")}}
        try:
            write_json(run_dir, header, results, {
                "timeline": ctx.supervisor.timeline(),
                "facts": ctx.store.get("runner", "upgrade-facts")})
            write_junit(run_dir, f"grenadier {options.base} -> {options.target}", results)
            _write_html(run_dir, reporter)
        except OSError as exc:
            # A full disk or read-only run directory: say so, keep the run's own error first.
            reporter.say(f"reports not written in {run_dir}: {exc.strerror}")
    reporter.summary(results, VERDICTS.get(code, str(code)), str(run_dir))
    if runner.error is not None:
        raise runner.error
    return int(code)


def _write_html(run_dir: Path, reporter: ConsoleReporter) -> None:
    # The page is for people; failing to write it must not change the run's verdict.
    try:
        render_html(run_dir)
    except GrenadierError as exc:
        reporter.say(f"report.html not written: {exc.one_line()}")


def down_command(run_dir: Path, reporter: ConsoleReporter) -> int:
    if not (run_dir / "services.json").is_file():
        raise UsageError(f"{run_dir} is not a grenadier run directory (no services.json)")
    stopped = reap_recorded(run_dir / "services.json")
    reporter.say(f"stopped: {', '.join(stopped) or 'nothing was running'}")
    return int(ExitCode.OK)


def cache_dir_from(args: argparse.Namespace) -> Path | None:
    value = getattr(args, "cache_dir", None) or os.environ.get("GRENADIER_CACHE")
    return Path(value) if value else None

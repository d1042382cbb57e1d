"""What each sub-command does, on top of the runner."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grenadier.cli.db_url import db_url_from
from grenadier.cli.progress import ConsoleReporter
from grenadier.errors import EnvironmentProblem, ExitCode, UsageError
from grenadier.execute.signals import shielded
from grenadier.host import file_lock, parent_dir
from grenadier.model.roles import release_key
from grenadier.model.steps import check_step
from grenadier.options.flags import flags_of
from grenadier.options.run import DEFAULT_SMOKE, RunOptions, run_flag
from grenadier.phases.context import RunContext, make_registry
from grenadier.phases.rolling import DB_SYNCED
from grenadier.plugins.manager import plugin_manager
from grenadier.releases import ReleaseCache, parse_spec
from grenadier.releases.spec import spec_in_freeze
from grenadier.report.publish import new_run_dir, publish
from grenadier.runner.control import ControlRun, compare, start_beside
from grenadier.runner.plan import plan_steps
from grenadier.runner.runner import VERDICTS, Runner
from grenadier.services.api import reap_recorded
from grenadier.state import RUNNER, StateStore, StoreCorrupt

#: held by the grenadier that is running a run directory
RUN_LOCK = "run.lock"


def dispatch(args: argparse.Namespace, reporter: ConsoleReporter) -> int:
    if args.command == "down":
        return down_command(Path(args.run_dir), reporter)
    from grenadier.cli import check_cmd, export_cmd, impact, matrix_cmd, report_cmd

    commands = {"run": run_command, "matrix": matrix_cmd.matrix_command,
                "export": export_cmd.export_command, "report": report_cmd.report_command,
                "check": check_cmd.check_command, "impact": impact.impact_command}
    if args.command not in commands:
        raise UsageError(f"unknown command {args.command}")
    return commands[args.command](args, reporter)


def _specs(args: argparse.Namespace) -> tuple[str, str, str | None]:
    """Base, target, and the run whose environments are replayed (its freezes name both)."""
    if not args.environment_from:
        return args.base or "latest-1", args.target or "latest", None
    earlier = Path(args.environment_from).resolve()
    given = [flag for flag, value in (("--base", args.base), ("--target", args.target)) if value]
    if given:
        raise UsageError(f"{' and '.join(given)} cannot be combined with --environment-from: "
                         f"the releases are those {earlier.name} installed")
    if not (earlier / "releases").is_dir():
        raise UsageError(f"--environment-from {earlier}: not a run directory with releases/",
                         hint="give a run directory whose install step passed")
    base, target = (spec_in_freeze(earlier / "releases" / f"{role}-freeze.txt")
                    for role in ("base", "target"))
    return base, target, str(earlier)


def _options_from(args: argparse.Namespace) -> RunOptions:
    base, target, environment_from = _specs(args)
    for spec in (base, target):
        parse_spec(spec)
    for path in args.tests:
        if not Path(path).exists():
            raise UsageError(f"{path} does not exist")
    for path in args.config:
        if not Path(path).is_file():
            raise UsageError(f"--config {path} is not a file")
    if args.cache_dir and Path(args.cache_dir).exists() and not Path(args.cache_dir).is_dir():
        raise UsageError(f"--cache-dir {args.cache_dir} is not a directory")
    given = {item.dest: getattr(args, item.dest) for item in flags_of(RunOptions)}
    given.update(
        base=base, target=target, environment_from=environment_from, db_url=db_url_from(args),
        tests=[str(Path(p).resolve()) for p in args.tests],
        config=[str(Path(p).resolve()) for p in args.config],
        smoke=args.smoke or ("builtin" if not args.builtin_suite else DEFAULT_SMOKE),
        cache_dir=str(Path(args.cache_dir).resolve()) if args.cache_dir else None)
    return RunOptions(**given)


def _refuse_run_options(args: argparse.Namespace) -> None:
    """With --resume, the run's options come from its run.json: refuse others, don't drop them."""
    given = [item for item in flags_of(RunOptions)
             if getattr(args, item.dest) != item.default]
    if args.db_url_file:
        given.append(run_flag("db_url_file"))
    if given:
        flags = ", ".join(item.strings[0] for item in given)
        raise UsageError(f"{flags} cannot be combined with --resume: the run's options are in "
                         "its run.json", hint="start a new run to change them")


def _resumed(args: argparse.Namespace, reporter: ConsoleReporter) -> tuple[Path, RunOptions]:
    _refuse_run_options(args)
    run_dir = Path(args.resume).resolve()
    options = RunOptions.load(run_dir)
    try:
        StateStore(run_dir / "state.json").validate()
    except StoreCorrupt as exc:
        raise UsageError(exc.message, hint="start a new run; this one cannot be resumed") \
            from exc
    return run_dir, options


def release_cache(options: RunOptions) -> ReleaseCache:
    return ReleaseCache(Path(options.cache_dir) if options.cache_dir else None,
                        constraints=options.constraints)


def pin_releases(options: RunOptions, cache: ReleaseCache) -> None:
    """Resolve base and target to what the run installs (``latest`` to its version), so that
    an unknown release is bad input before any run directory exists, and a resumed run or a
    control run gets the same releases even after a new one is published."""
    if options.environment_from is None:  # the freezes name exact releases
        options.base, options.target = (cache.pin(parse_spec(spec))
                                        for spec in (options.base, options.target))


def _prepare_run(args: argparse.Namespace, reporter: ConsoleReporter) -> tuple[Path, RunOptions]:
    if args.only and args.stop_after:
        raise UsageError("--only and --stop-after cannot be combined")
    if args.resume:
        run_dir, options = _resumed(args, reporter)
    else:
        options = _options_from(args)
        make_registry(plugin_manager()).validate([*options.checks, *options.skip_checks])
    for flag, step in (("--stop-after", args.stop_after), ("--only", args.only)):
        if step:
            check_step(step, flag, options.step_names)
    if not args.resume:
        # a plan that cannot run (e.g. --only rolling-upgrade on nothing) leaves no directory
        plan_steps(stop_after=args.stop_after, only=args.only, done={},
                   steps=options.step_names)
        parent_dir(Path(args.workdir) / "runs", "run directory")  # bad input first
        pin_releases(options, release_cache(options))
        run_dir = new_run_dir(Path(args.workdir), options.base, options.target)
        options.save(run_dir)
    return run_dir, options


@contextlib.contextmanager
def _owning(run_dir: Path) -> Iterator[None]:
    """Hold the run directory for this process's life: a second grenadier on the same run
    (a --resume or a down while it still runs) would stop services it is using."""
    try:
        with file_lock(run_dir / RUN_LOCK, wait=False):
            yield
    except BlockingIOError as exc:
        raise UsageError(f"run {run_dir} is in progress in another grenadier",
                         hint="wait for it, or stop it with Ctrl-C") from exc
    except OSError as exc:  # e.g. a read-only or full run directory
        raise EnvironmentProblem(f"cannot lock run directory {run_dir}: {exc.strerror}",
                                 hint="the run directory must be writable") from exc


def run_command(args: argparse.Namespace, reporter: ConsoleReporter) -> int:
    run_dir, options = _prepare_run(args, reporter)
    with _owning(run_dir):
        if args.resume:
            left = reap_recorded(run_dir / "services.json")
            if left:
                reporter.say(f"stopped services left running by the previous run: "
                             f"{', '.join(left)}")
        return _run(args, run_dir, options, reporter)


def _run(args: argparse.Namespace, run_dir: Path, options: RunOptions,
         reporter: ConsoleReporter) -> int:
    reporter.console.print(f"grenadier run: {options.base} -> {options.target} on {options.db}, "
                           f"{options.control_plane}  ({run_dir})", markup=False,
                           highlight=False)
    cache = release_cache(options)
    ctx = RunContext(run_dir, options, plugin_manager(), cache, reporter.say)
    ctx.keep_running = args.keep_running
    runner = Runner(ctx, reporter)
    steps = plan_steps(stop_after=args.stop_after, only=args.only, done=runner.results,
                       steps=options.step_names,
                       db_synced=ctx.store.get(RUNNER, DB_SYNCED) is True)
    control = _start_control(args, run_dir, options, reporter)
    code, verdict = ExitCode.OK, Verdict()
    try:
        code = runner.run(steps)
        if control is not None and runner.bug is None and code != ExitCode.INTERRUPTED:
            reporter.say(f"comparing with the control run ({control.run_dir}) ...")
            code, verdict.note, verdict.control = compare(
                control, list(runner.results.values()), code)
            runner.save()
    finally:
        with shielded():  # what is stopped and written here is not cut short by a signal
            if control is not None:
                control.stop()  # nothing to stop once it ended
            ctx.close()
            verdict.text = _verdict(runner, code) + verdict.note
            _write_reports(ctx, runner, code, reporter, verdict)
    reporter.summary(list(runner.results.values()), verdict.text, str(run_dir))
    if runner.bug is not None:
        raise runner.bug  # a bug shows its traceback, after everything was stopped and written
    if runner.error is not None:
        raise runner.error
    return int(code)


@dataclass
class Verdict:
    """What a run's reports say of it: the verdict, and its control run when it had one."""

    text: str = ""
    note: str = ""
    control: dict[str, Any] | None = None


def _start_control(args: argparse.Namespace, run_dir: Path, options: RunOptions,
                   reporter: ConsoleReporter) -> ControlRun | None:
    if not options.control:
        return None
    invocation = [arg for flag, value in (("--stop-after", args.stop_after),
                                          ("--only", args.only)) if value
                  for arg in (flag, value)]
    control = start_beside(run_dir, options, invocation)
    reporter.say(f"control: {options.base} -> {options.base} beside this run "
                 f"({control.run_dir / 'grenadier.log'})")
    return control


def _verdict(runner: Runner, code: ExitCode) -> str:
    if runner.bug:
        return "internal error (a bug in grenadier)"
    if code == ExitCode.ENVIRONMENT and runner.base_failed():
        return "the base release does not work here (nothing was upgraded)"
    return VERDICTS.get(code, str(code))


def _write_reports(ctx: RunContext, runner: Runner, code: ExitCode,
                   reporter: ConsoleReporter, verdict: Verdict) -> None:
    options, run_dir = ctx.options, ctx.run_dir
    results = list(runner.results.values())
    header = {"grenadier": "run", "base": options.base, "target": options.target,
              "options": options.shown(), "verdict": verdict.text,
              "exit_code": int(code),
              "releases": {role: ctx.store.get(RUNNER, release_key(role))
                           for role in ("base", "target")},
              **({"control": verdict.control} if verdict.control else {})}
    publish(run_dir, header, results, {"timeline": ctx.supervisor.timeline(),
                                       "facts": ctx.store.get(RUNNER, "upgrade-facts")},
            say=reporter.say)


def down_command(run_dir: Path, reporter: ConsoleReporter) -> int:
    if not (run_dir / "services.json").is_file():
        raise UsageError(f"{run_dir} is not a grenadier run directory (no services.json)")
    with _owning(run_dir):
        stopped = reap_recorded(run_dir / "services.json")
    reporter.say(f"stopped: {', '.join(stopped) or 'nothing was running'}")
    return int(ExitCode.OK)

"""The test phases: smoke, pre-upgrade, during-upgrade (in the background), post-upgrade.

Each phase is a pytest child process over the project's built-in suite and the user's
``--tests`` folders, selected by marker, reporting through JUnit XML.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from grenadier.execute import ExecuteRequest, run
from grenadier.host import safe_name
from grenadier.model.findings import Finding
from grenadier.model.result import Status, StepResult, TestOutcome
from grenadier.phases import upstream, warm
from grenadier.phases.context import RunContext
from grenadier.project.api import SMOKE_ENV, UPSTREAM_PROPERTY
from grenadier.services import ServiceSpec
from grenadier.services.api import PHASE_ENV, RUN_DIR_ENV
from grenadier.state import RUNNER

MARKERS = {
    "smoke-base": "smoke", "pre-upgrade": "pre_upgrade", "during-upgrade": "during_upgrade",
    "smoke-target": "smoke", "post-upgrade": "post_upgrade",
    # the held windows of --mode rolling (phases/rolling_window.py)
    "held-target-only": "smoke", "held-mixed": "smoke",
}
PHASE_TIMEOUT = 1800.0
#: pytest's exit code when no test was selected: an empty phase is not a failure
NO_TESTS = 5

WATCHER = "during-upgrade-watch"
#: the phases that run the project's upstream tests when ``--smoke`` asks for them
UPSTREAM_PHASES = (upstream.BASE_PHASE, *upstream.TARGET_PHASES)
WATCH_GRACE = 120.0


def _paths(ctx: RunContext) -> list[str]:
    paths = [str(p) for p in ctx.project.test_paths()] if ctx.options.builtin_suite else []
    return paths + [str(Path(p).resolve()) for p in ctx.options.tests]


def pytest_command(ctx: RunContext, phase: str, paths: list[str] | None = None,
                   part: str = "", rootdir: Path | None = None) -> list[str]:
    """pytest over ``paths`` (default: every test path of the run) for ``phase``."""
    ini = ctx.run_dir / "pytest.ini"
    if not ini.exists():
        # An empty ini keeps the user's own pytest configuration (cwd, rootdir) out of phases.
        ini.write_text("[pytest]\n", encoding="utf-8")
    return [sys.executable, "-m", "pytest", *(_paths(ctx) if paths is None else paths),
            "-m", MARKERS[phase], "-c", str(ini), "--rootdir", str(rootdir or ctx.run_dir),
            "-p", "no:cacheprovider", "--import-mode=importlib", "-o", "junit_family=xunit2",
            "-rfEs", "--junitxml", str(junit_path(ctx, phase, part))]


def junit_path(ctx: RunContext, phase: str, part: str = "") -> Path:
    return ctx.run_dir / "junit" / (f"{phase}-{part}.xml" if part else f"{phase}.xml")


def phase_env(ctx: RunContext, phase: str) -> dict[str, str]:
    # the same names the orphan reaper (services.api) looks for in a killed run's children
    env = {RUN_DIR_ENV: str(ctx.run_dir), PHASE_ENV: phase,
           "GRENADIER_STUCK_STACKS": "fail" if ctx.options.fail_on_stuck else "report"}
    if phase in UPSTREAM_PHASES:
        env.update({SMOKE_ENV: ctx.options.smoke, **ctx.test_tools()})
    return env


#: what pytest appends to a JUnit message it shortened (the whole report is the element text)
SHORTENED = "full report in element text]"
#: how much of a failure's message a step result keeps
MESSAGE_LIMIT = 8000


def failure_message(node: ET.Element) -> str:
    """The whole exception message of a failure.

    pytest keeps only the start of a long message in the ``message`` attribute (an aggregate's
    items are cut off); the element text holds the whole report, where the exception is the
    last block of ``E`` lines, or the text itself for a test failed without a traceback.
    """
    message = (node.get("message") or "").strip()
    text = (node.text or "").strip()
    if not message.endswith(SHORTENED):
        return message or text
    blocks: list[list[str]] = [[]]
    for line in text.splitlines():
        if line.startswith("E") and line[1:2] in ("", " "):
            blocks[-1].append(line[1:])
        elif blocks[-1]:
            blocks.append([])
    block = next((b for b in reversed(blocks) if b), [])
    indent = min((len(line) - len(line.lstrip()) for line in block if line.strip()), default=0)
    return "\n".join(line[indent:] for line in block).strip() or text


def read_junit(path: Path) -> list[TestOutcome]:
    """Test outcomes from pytest's JUnit file; an unreadable file yields none."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return []
    outcomes = []
    for case in root.iter("testcase"):
        status, message = "passed", ""
        for kind in ("failure", "error", "skipped"):
            node = case.find(kind)
            if node is not None:
                status = {"failure": "failed", "error": "error", "skipped": "skipped"}[kind]
                message = failure_message(node) if kind != "skipped" else \
                    (node.get("message") or node.text or "").strip()
                break
        name = f"{case.get('classname', '')}::{case.get('name', '')}".strip(":")
        upstream = case.find(f"properties/property[@name='{UPSTREAM_PROPERTY}']")
        outcomes.append(TestOutcome(name.rsplit(".", 1)[-1] if "::" not in name else name,
                                    status, float(case.get("time") or 0.0),
                                    message[:MESSAGE_LIMIT],
                                    upstream.get("value", "") if upstream is not None else ""))
    return outcomes


FINDINGS_FILE = "findings.jsonl"


def findings_offset(ctx: RunContext) -> int:
    """Where the tests' findings file ends now: a phase reads only what it appended."""
    try:
        return (ctx.run_dir / FINDINGS_FILE).stat().st_size
    except OSError:
        return 0


def read_findings(ctx: RunContext, phase: str, offset: int) -> list[Finding]:
    """Findings the phase's tests reported (``findings.report``) since ``offset``."""
    try:
        with (ctx.run_dir / FINDINGS_FILE).open("rb") as handle:
            handle.seek(offset)
            lines = handle.read().decode("utf-8", errors="replace").splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        with contextlib.suppress(ValueError, TypeError):
            record = json.loads(line)
            if isinstance(record, dict) and record.get("phase") == phase:
                found.append(Finding.from_dict(record))
    return found


def _tests_result(ctx: RunContext, phase: str, returncode: int, log: Path,
                  part: str = "") -> StepResult:
    tests = read_junit(junit_path(ctx, phase, part))
    if returncode == NO_TESTS:
        return StepResult(phase, Status.PASSED, tests=tests, messages=["no tests selected"])
    failed = [t for t in tests if t.failed]
    result = StepResult(phase, Status.PASSED if returncode == 0 else Status.FAILED, tests=tests)
    result.messages.append(f"{len(tests) - len(failed)} of {len(tests)} tests passed; log {log}")
    if returncode != 0 and not failed:
        result.messages.append(f"pytest exited with code {returncode}; see {log}")
    return result


def run_phase(ctx: RunContext, phase: str) -> StepResult:
    """Run the tests marked for ``phase`` against what is running now."""
    log = ctx.run_dir / "logs" / f"pytest-{phase}.log"
    offset = findings_offset(ctx)
    held = warm.take(ctx, phase)
    if held is not None:
        returncode = held.run(PHASE_TIMEOUT)
    else:
        returncode = run(ExecuteRequest(pytest_command(ctx, phase), cwd=ctx.run_dir,
                                        env=phase_env(ctx, phase), timeout=PHASE_TIMEOUT,
                                        log=log)).returncode
    result = _tests_result(ctx, phase, returncode, log)
    result.findings.extend(read_findings(ctx, phase, offset))
    upstream.judge(result, returncode, upstream.base_tests(ctx.store.get(RUNNER, "results")))
    return result


def prestart_phase(ctx: RunContext, phase: str) -> None:
    """Start ``phase``'s pytest now, held until its step (phases/warm.py); nothing for a
    step that is not a test phase, or whose tests need tools not installed yet."""
    if phase == "during-upgrade":
        prestart_watch(ctx)
        return
    if phase not in MARKERS:
        return
    tools = ctx.store.get(RUNNER, "test-tools")
    if phase in UPSTREAM_PHASES and ctx.options.smoke != "builtin" and not (
            isinstance(tools, dict) and tools.get("smoke") == ctx.options.smoke):
        return  # its environment would install the tools now, in another step's time
    warm.start(ctx, phase, pytest_command(ctx, phase), phase_env(ctx, phase),
               ctx.run_dir / "logs" / f"pytest-{phase}.log")


def watch_files(paths: list[str]) -> dict[Path, Path]:
    """The test files that may hold during-upgrade tests, in the run's path order, each with
    the path given that holds it (its tests are named relative to that, as in other phases).

    A file qualifies when it, or a ``conftest.py`` between it and the path given, mentions the
    ``during_upgrade`` marker: a file that does not cannot select a test for the phase.
    """
    found: dict[Path, Path] = {}
    for given in map(Path, paths):
        root = given.parent if given.is_file() else given
        files = [given] if given.is_file() else sorted(
            f for pattern in ("test_*.py", "*_test.py") for f in given.rglob(pattern)
            if "__pycache__" not in f.parts)
        for file in files:
            conftests = [d / "conftest.py" for d in (file.parent, *file.parent.parents)
                         if d == given or given in d.parents]
            if any(_mentions_marker(f) for f in (file, *conftests)):
                found.setdefault(file, root)
    return found


def _mentions_marker(path: Path) -> bool:
    try:
        return MARKERS["during-upgrade"] in path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def _watch_go(ctx: RunContext, part: str) -> Path:
    return ctx.run_dir / "warm" / f"during-upgrade-{part}.go"


def _start_watchers(ctx: RunContext, *, held: bool) -> int:
    """One supervised pytest process per test file with during-upgrade tests (held until
    :func:`start_watch` lets them go, with ``held``); the number of files."""
    files = watch_files(_paths(ctx))
    for index, (file, root) in enumerate(files.items(), 1):
        part = f"{index}-{safe_name(file.stem, 40)}"
        cmd = pytest_command(ctx, "during-upgrade", [str(file)], part, rootdir=root)
        go = _watch_go(ctx, part)
        if held:
            cmd = warm.held_command(go, cmd)
        else:  # let go from the start: one that ends before the upgrade does still reports
            go.parent.mkdir(exist_ok=True)
            go.touch()
        ctx.supervisor.start(ServiceSpec(
            name=f"{WATCHER}-{part}", log=ctx.run_dir / "logs" / f"{WATCHER}-{part}.log",
            cmd=cmd, cwd=ctx.run_dir,
            env=phase_env(ctx, "during-upgrade"), ready=lambda: True, stop_timeout=10))
        ctx.watchers[f"{WATCHER}-{part}"] = part
    return len(files)


def prestart_watch(ctx: RunContext) -> None:
    """The watches' processes, started during shutdown and held: their imports happen while
    Heat stops, not in the upgrade step's time. Nothing runs before :func:`start_watch`."""
    if ctx.watchers:
        return
    ctx.upgrade_done_flag().unlink(missing_ok=True)
    _start_watchers(ctx, held=True)


def start_watch(ctx: RunContext) -> StepResult:
    """during-upgrade: start the checks in the background; they run until the upgrade ends.

    One pytest process per test file: a watch lasts until the upgrade ends, so the watches of
    different files (the built-in suite's, the Keystone one, the user's) must run side by side,
    not one after the other. Tests within one file still run in order. Watches started ahead
    (held) are let go; if one of them ended meanwhile, all start again as usual.
    """
    ctx.upgrade_done_flag().unlink(missing_ok=True)
    ctx.watch_offset = findings_offset(ctx)
    running = {svc.spec.name: svc for svc in ctx.supervisor.running()}
    if ctx.watchers and all(name in running and warm.WARM_MODULE in running[name].spec.cmd
                            for name in ctx.watchers):
        for part in ctx.watchers.values():
            _watch_go(ctx, part).touch()
        count = len(ctx.watchers)
    else:
        ctx.supervisor.stop_many(list(ctx.watchers))
        ctx.watchers.clear()
        count = _start_watchers(ctx, held=False)
    result = StepResult("during-upgrade", Status.PASSED, background=True)
    result.messages.append(f"checks of {count} test file(s) running in the background "
                           "while the upgrade step runs" if count else
                           "no test file marks during-upgrade tests")
    return result


def merge_junit(dest: Path, parts: list[Path]) -> None:
    """One JUnit file for the phase, as every other phase has: the test suites of its parts."""
    merged = ET.Element("testsuites")
    for part in parts:
        with contextlib.suppress(OSError, ET.ParseError):  # a part that wrote none has none
            root = ET.parse(part).getroot()
            merged.extend(root.iter("testsuite"))
    ET.ElementTree(merged).write(dest, encoding="utf-8", xml_declaration=True)


def _drop_unreleased(ctx: RunContext) -> None:
    """Stop the watches started ahead whose step never came (the run ended before it)."""
    held = [name for name, part in ctx.watchers.items()
            if not _watch_go(ctx, part).exists() and _is_held(ctx, name)]
    if held:
        ctx.supervisor.stop_many(held)
        for name in held:
            del ctx.watchers[name]


def _is_held(ctx: RunContext, name: str) -> bool:
    running = {svc.spec.name: svc for svc in ctx.supervisor.running()}
    return name not in running or warm.WARM_MODULE in running[name].spec.cmd


def finish_watch(ctx: RunContext) -> StepResult | None:
    """Tell the background checks the upgrade is over, wait for them, and return their result."""
    _drop_unreleased(ctx)
    if not ctx.watchers:
        return None
    ctx.upgrade_done_flag().touch()
    deadline = time.monotonic() + WATCH_GRACE
    result = StepResult("during-upgrade", Status.PASSED)
    for name, part in ctx.watchers.items():
        log = ctx.supervisor.get(name).spec.log
        code = ctx.supervisor.wait(name, max(1.0, deadline - time.monotonic()))
        part_result = _tests_result(ctx, "during-upgrade", code if code is not None else 1,
                                    log, part)
        result.tests.extend(part_result.tests)
        result.messages.extend(part_result.messages)
        if part_result.status is Status.FAILED:
            result.status = Status.FAILED
    merge_junit(junit_path(ctx, "during-upgrade"),
                [junit_path(ctx, "during-upgrade", part) for part in ctx.watchers.values()])
    ctx.watchers.clear()
    result.findings.extend(read_findings(ctx, "during-upgrade", ctx.watch_offset))
    return result

# mypy: disable-error-code="import-not-found"
"""Run heat-tempest-plugin's API gabbits against a running Heat, without tempest.

Run by the Python of the upstream tools venv (gabbi and the plugin, not grenadier):

    python gabbi_runner.py PLAN.json RESULTS.json

PLAN names the Heat API (``url``: ``http://HOST:PORT/v1/<project>``), the headers every request
carries besides the files' own (noauth's ``X-Auth-User``/``X-Auth-Project``), the tests to skip
(``"<file>#<index>"`` -> reason), the stack name prefix and whether the files may run side by
side (``serial``: one after another, for a Heat on SQLite). The token the files send
(``X-Auth-Token: $ENVIRON['OS_TOKEN']``) comes from the environment, never from a file.

The files are read as they are and given to gabbi's own suite builder; the plan's headers and
skips go into each file's ``defaults`` and tests in memory, the way gabbi's ``build_tests``
adds ``ssl`` or ``verbose``. Each file is one gabbi suite (its tests depend on each other, in
order); the files run in parallel threads unless ``serial``. RESULTS gets one record per test.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import unittest
from pathlib import Path
from typing import Any

from gabbi import fixture, handlers, suitemaker, utils

GABBITS = ("heat_tempest_plugin", "tests", "api", "gabbits")
MESSAGE_LIMIT = 4000


class AuthenticationFixture(fixture.GabbiFixture):  # type: ignore[misc]
    """The fixture the files name. Upstream's gets a token through tempest; here the token is
    already in ``OS_TOKEN`` (a Keystone token, or a placeholder noauth ignores)."""

    def start_fixture(self) -> None:
        if not os.environ.get("OS_TOKEN"):
            raise RuntimeError("OS_TOKEN is not set: the gabbits send it as X-Auth-Token")

    def stop_fixture(self) -> None:
        pass


class Recorder(unittest.TestResult):
    """One record per gabbi test of one file: status, seconds, message."""

    def __init__(self, file: str, suite: unittest.TestSuite) -> None:
        super().__init__()
        self.file = file
        #: each test's position in its file, which grenadier knows it by
        self.indexes = {id(test): index for index, test in enumerate(suite)}
        self.records: list[dict[str, Any]] = []
        self._started: dict[int, float] = {}

    def startTest(self, test: unittest.TestCase) -> None:
        super().startTest(test)
        self._started[id(test)] = time.monotonic()

    def _record(self, test: Any, status: str, message: str = "") -> None:
        started = self._started.get(id(test), time.monotonic())
        self.records.append({
            "file": self.file, "index": self.indexes.get(id(test), -1),
            "name": test.test_data["name"], "status": status,
            "duration": round(time.monotonic() - started, 3), "message": message[:MESSAGE_LIMIT]})

    def addSuccess(self, test: Any) -> None:
        self._record(test, "passed")

    def addFailure(self, test: Any, err: Any) -> None:
        self._record(test, "failed", str(err[1]))

    def addError(self, test: Any, err: Any) -> None:
        self._record(test, "error", f"{err[0].__name__}: {err[1]}")

    def addSkip(self, test: Any, reason: str) -> None:
        self._record(test, "skipped", reason)


def gabbits_dir() -> Path:
    for entry in sys.path:
        candidate = Path(entry, *GABBITS)
        if candidate.is_dir():
            return candidate
    raise SystemExit("heat_tempest_plugin's gabbits are not installed in this Python")


def build_suite(path: Path, plan: dict[str, Any]) -> unittest.TestSuite:
    """One file's gabbi suite, the plan's headers and skips applied."""
    suite_dict = utils.load_yaml(yaml_file=str(path), safe=True)
    defaults = suite_dict.setdefault("defaults", {})
    defaults.setdefault("request_headers", {}).update(plan.get("headers", {}))
    for index, test in enumerate(suite_dict.get("tests", [])):
        reason = plan.get("skips", {}).get(f"{path.name}#{index}")
        if reason:
            test["skip"] = reason
    host, port, prefix, ssl = utils.host_info_from_target(plan["url"])
    if ssl:
        defaults["ssl"] = True
    suite: unittest.TestSuite = suitemaker.test_suite_from_dict(
        unittest.TestLoader(), path.stem, suite_dict, str(path.parent), host, port,
        sys.modules[__name__], None, prefix=prefix,
        handlers=[handler() for handler in handlers.RESPONSE_HANDLERS],
        test_loader_name=f"gabbits.{path.stem}")
    return suite


def run_all(plan: dict[str, Any]) -> list[dict[str, Any]]:
    os.environ["PREFIX"] = str(plan.get("prefix") or "grenadier")
    suites = {path.name: build_suite(path, plan) for path in sorted(gabbits_dir().glob("*.yaml"))}
    recorders = {name: Recorder(name, suite) for name, suite in suites.items()}
    if plan.get("serial"):
        for name, suite in suites.items():
            suite.run(recorders[name])
    else:
        threads = [threading.Thread(target=suite.run, args=(recorders[name],), name=name)
                   for name, suite in suites.items()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return [record for name in suites for record in recorders[name].records]


def _exit_with_parent() -> None:
    # started by a pytest process: if that one dies, nothing must go on testing a Heat
    parent = os.getppid()
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(3)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: gabbi_runner.py PLAN.json RESULTS.json", file=sys.stderr)
        return 2
    threading.Thread(target=_exit_with_parent, daemon=True).start()
    plan = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    records = run_all(plan)
    Path(argv[1]).write_text(json.dumps(records, indent=1), encoding="utf-8")
    counts: dict[str, int] = {}
    for record in records:
        counts[record["status"]] = counts.get(record["status"], 0) + 1
    print(f"{len(records)} gabbi tests: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""One run of ``gabbi_runner.py`` in the tools venv: started, waited for, read back, stopped."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from grenadier.execute import ExecuteRequest
from grenadier.execute.run import popen, stop_process_group
from grenadier.plugins.heat.upstream.cases import Case
from grenadier.plugins.heat.upstream.tools import RUNNER

#: the longest a whole run may take: 6 files, polls of 10 x 2 s, requests of 30 s at most
TIMEOUT = 600.0


@dataclass(frozen=True)
class Plan:
    """What the runner is told (written to a file: nothing secret goes in here)."""

    #: the Heat API with the project: ``http://127.0.0.1:PORT/v1/<project>``
    url: str
    #: headers each request carries besides the files' own (noauth's user and project)
    headers: Mapping[str, str]
    #: case name -> reason, for the tests this mode cannot pass
    skips: Mapping[str, str]
    #: the stacks' name prefix (``$ENVIRON['PREFIX']`` in the files)
    prefix: str
    #: one file after another: Heat on SQLite cannot run stack operations side by side
    serial: bool = False

    def to_json(self, cases: Sequence[Case]) -> str:
        by_name = {case.name: f"{case.file}#{case.index}" for case in cases}
        return json.dumps({"url": self.url, "headers": dict(self.headers), "prefix": self.prefix,
                           "serial": self.serial,
                           "skips": {by_name[n]: r for n, r in self.skips.items() if n in by_name}},
                          indent=1)


@dataclass(frozen=True)
class CaseResult:
    status: str
    duration: float = 0.0
    message: str = ""


@dataclass
class GabbiRun:
    """The runner as a child process; ``results`` once it has ended."""

    python: Path
    cases: Sequence[Case]
    plan: Plan
    #: sent as X-Auth-Token by the files: a Keystone token, or a placeholder noauth ignores
    token: str
    workdir: Path
    name: str = "gabbi"
    _proc: subprocess.Popen[str] | None = None
    _log: IO[str] | None = None
    _results: dict[str, CaseResult] | None = field(default=None, repr=False)

    @property
    def log(self) -> Path:
        return self.workdir / f"{self.name}.log"

    @property
    def results_file(self) -> Path:
        return self.workdir / f"{self.name}-results.json"

    def start(self) -> None:
        """Start the runner (once)."""
        if self._proc is not None or self._results is not None:
            return
        self.workdir.mkdir(parents=True, exist_ok=True)
        plan_file = self.workdir / f"{self.name}-plan.json"
        plan_file.write_text(self.plan.to_json(self.cases), encoding="utf-8")
        self.results_file.unlink(missing_ok=True)
        self._log = self.log.open("w", encoding="utf-8")
        request = ExecuteRequest([str(self.python), str(RUNNER), str(plan_file),
                                  str(self.results_file)], env={"OS_TOKEN": self.token})
        self._proc = popen(request, stdin=subprocess.DEVNULL, stdout=self._log,
                           stderr=subprocess.STDOUT)

    def results(self, timeout: float = TIMEOUT) -> dict[str, CaseResult]:
        """Each case's result by name (starting the runner if needed, and waiting for it)."""
        if self._results is None:
            self.start()
            assert self._proc is not None
            try:
                code: int | None = self._proc.wait(timeout)
                why = f"the gabbi runner exited with code {code}"
            except subprocess.TimeoutExpired:
                code, why = None, f"the gabbi runner did not finish in {timeout:.0f} s"
            self.stop()
            self._results = self._read(why)
        return self._results

    def _read(self, why: str) -> dict[str, CaseResult]:
        try:
            records = json.loads(self.results_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            records = []
        found = {(str(r["file"]), int(r["index"])): r for r in records if isinstance(r, dict)}
        results = {}
        for case in self.cases:
            record = found.get((case.file, case.index))
            results[case.name] = CaseResult(
                str(record["status"]), float(record.get("duration") or 0.0),
                str(record.get("message") or "")) if record else CaseResult(
                "error", 0.0, f"{why} without a result for this test; see {self.log}")
        return results

    def stop(self) -> None:
        """Stop the runner if it still runs (idempotent); close its log."""
        try:
            if self._proc is not None and self._proc.poll() is None:
                stop_process_group(self._proc)
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None

"""Run directories crafted with grenadier's own writers, as a finished run leaves them: the
report page is tested against the format a run really writes (unit tests and the browser test)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from grenadier.model.findings import Finding
from grenadier.model.result import Status, StepResult, TestOutcome
from grenadier.model.steps import STEPS
from grenadier.report.files import write_json
from grenadier.state import StateStore

T0 = 1795673332.0
EVIL = '<script>alert("x")</script><img src=x onerror=alert(1)>'
FINDINGS = {  # concern -> a finding that belongs to it, with every label filled in
    "database": Finding("data-preserved", "error", "rows lost in table stack", "table stack",
                        "13 rows", "12 rows", "restore the snapshot and fix the migration"),
    "stacks": Finding("heat.stack-left-in-progress", "warning", "stack still IN_PROGRESS",
                      "stack s1", "COMPLETE or FAILED", "CREATE_IN_PROGRESS",
                      "openstack stack update --existing s1"),
    "physical": Finding("heat.resource-vanished", "error", "resource r1 vanished",
                        "stack s1", "r1 present", "r1 absent", "check the backend"),
    "config": Finding("config-options", "warning", "option removed: [a] b", "[a] b",
                      "deprecated first", "absent", "remove the setting"),
    "rolling": Finding("rolling-api", "error", "old API refused new engine", "heat-api",
                       "mixed versions work", "500", "keep RPC compatible"),
}
STEP_FINDINGS = {"upgrade": ["database", "config"], "during-upgrade": ["physical"],
                 "post-upgrade": ["rolling", "stacks"]}


def step_results(failed: bool, evil: bool) -> list[StepResult]:
    results = []
    for n, name in enumerate(STEPS):
        result = StepResult(name, Status.PASSED, duration=4.0 + n, started_at=T0 + 10 * n)
        result.messages.append(f"{name} done; log logs/pytest-{name}.log")
        if failed:
            result.findings = [FINDINGS[c] for c in STEP_FINDINGS.get(name, [])]
        if failed and name == "post-upgrade":
            result.status = Status.FAILED
            result.tests = [TestOutcome("test_heat_upgrade::test_update", "failed", 0.5,
                                        f"AssertionError: update broke {EVIL if evil else ''}"),
                            TestOutcome("test_heat_upgrade::test_show", "passed", 0.1)]
        if evil and name == "upgrade":
            result.findings.append(Finding("migration", "error", EVIL, EVIL, EVIL, EVIL, EVIL))
            result.messages.append(EVIL)
        results.append(result)
    return results


def _timeline(evil: bool) -> list[dict[str, Any]]:
    events = [("postgresql", "start", 12), ("postgresql", "ready", 13),
              ("heat-base", "start", 14), ("heat-base", "ready", 16),
              ("heat-base", "kill", 55), ("heat-base", "crash", 56),
              ("heat-target", "start", 85), ("heat-target", "ready", 88),
              ("heat-target", "stop", 118), ("postgresql", "stop", 119)]
    if evil:
        events.append((EVIL, "exited", 60))
    return [{"at": T0 + t, "service": s, "event": e, "detail": f"{e} detail"}
            for s, e, t in events]


def inventory(*names: str, status: str = "CREATE_COMPLETE") -> dict[str, Any]:
    stacks = [{"id": f"id-{name}", "name": name, "status": status, "parent": None,
               "resources": [{"name": "r1", "type": "OS::Heat::RandomString",
                              "status": status, "physical_id": f"{name}-r1"}]}
              for name in names]
    stacks.append({"id": "id-child", "name": f"{names[0]}-child", "status": status,
                   "parent": f"id-{names[0]}", "resources": []})
    return {"stacks": stacks}


def craft_run(run_dir: Path, *, failed: bool = False, evil: bool = False,
              after: dict[str, Any] | None = None) -> Path:
    """A run directory as a finished run leaves it (report.json, state.json, logs, junit)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    results = step_results(failed, evil)
    header = {"grenadier": "run", "base": "26.0.2", "target": "27.0.1",
              "options": {"base": "26.0.2", "target": "27.0.1", "db": "postgresql",
                          "shutdown": "crash"},
              "verdict": "upgrade BROKE something" if failed else "upgrade OK",
              "exit_code": 1 if failed else 0, "releases": {}}
    facts = {"db_version": {"before": ["aaa"], "after": ["bbb"]},
             "data": {"stack": {"table": "stack", "before": 13, "after": 12, "lost": 1,
                                "changed": 0}}}
    write_json(run_dir, header, results, {"timeline": _timeline(evil), "facts": facts})
    store = StateStore(run_dir / "state.json")
    store.save("runner", "results", {r.name: r.to_dict() for r in results})
    store.save("runner", "inventory-before",
               inventory("grenadier-evolve", EVIL if evil else "grenadier-group"))
    if after is not None:
        store.save("runner", "inventory-after", after)
    for rel in ("logs/heat-base.log", "logs/heat-target.log", "logs/postgresql.log",
                "logs/pytest-post-upgrade.log", "junit/post-upgrade.xml", "junit.xml",
                "impact.md", "releases/base-freeze.txt"):
        (run_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (run_dir / rel).write_text("content\n", encoding="utf-8")
    return run_dir

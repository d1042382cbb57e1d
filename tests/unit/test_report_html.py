"""report.html from crafted run directories: passed, failed with findings, partial, corrupt."""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from grenadier.cli.progress import ConsoleReporter
from grenadier.cli.report_cmd import add_parser, report_command
from grenadier.errors import UsageError
from grenadier.model.findings import ALSO_WITHOUT_UPGRADE, INTRODUCED
from grenadier.model.steps import STEPS
from grenadier.report.files import write_json
from grenadier.report.html import SCRIPT, render_html
from grenadier.report.html_findings import concern_of
from grenadier.state import StateStore
from tests.helpers.run_dirs import FINDINGS, craft_run, inventory, step_results


def _page(run_dir: Path) -> str:
    return render_html(run_dir).read_text(encoding="utf-8")


def _concern(page: str, key: str) -> str:
    match = re.search(rf'<details class="concern" id="concern-{key}".*?</details>', page, re.S)
    assert match, f"no section for concern {key}"
    return match.group(0)


# -- a passed run -----------------------------------------------------------------------------

def test_passed_run_shows_verdict_timeline_and_files(tmp_path: Path) -> None:
    page = _page(craft_run(tmp_path / "run"))
    assert page.index('id="verdict"') < page.index('id="timeline"') < page.index('id="findings"')
    assert re.search(r'<section id="verdict" class="verdict ok">\s*<div class="big">upgrade OK',
                     page)
    assert "steps passed: 12 of 12" in page
    svg = page[page.index("<svg"):page.index("</svg>")]
    for name in STEPS:
        assert f">{name}</text>" in svg
    assert svg.count('class="bar-passed"') == len(STEPS)
    assert 'class="ev-crash"' in svg
    assert 'class="ev-ready"' in svg
    assert '<a href="logs/heat-base.log">' in svg  # a service lane links to its log
    for rel in ("report.json", "junit.xml", "impact.md", "logs/heat-target.log",
                "junit/post-upgrade.xml", "releases/base-freeze.txt"):
        assert f'<a href="{rel}">' in page
    assert '<li class="missing">findings.jsonl (missing)</li>' in page
    assert "no findings" in _concern(page, "database")


def test_passed_run_inventory_before_and_not_recorded_after(tmp_path: Path) -> None:
    page = _page(craft_run(tmp_path / "run"))
    inv = page[page.index('<section id="inventory"'):]
    assert "grenadier-evolve" in inv
    assert "grenadier-group" in inv
    assert "OS::Heat::RandomString" in inv
    assert "not recorded" in inv
    # a nested stack comes right after its parent, indented
    assert inv.index("grenadier-evolve<br>") < inv.index("grenadier-evolve-child<br>") \
        < inv.index("grenadier-group<br>")


def test_inventory_after_shows_changes(tmp_path: Path) -> None:
    after = inventory("grenadier-evolve", "grenadier-new", status="UPDATE_COMPLETE")
    page = _page(craft_run(tmp_path / "run", after=after))
    inv = page[page.index('<section id="inventory"'):]
    assert "not recorded" not in inv
    assert re.search(r'<tr class="gone">.*?grenadier-group', inv)
    assert re.search(r'<tr class="new">.*?grenadier-new', inv)
    assert re.search(r'<tr class="changed">.*?grenadier-evolve<br>', inv)


# -- a failed run -----------------------------------------------------------------------------

def test_failed_run_verdict_and_first_problem(tmp_path: Path) -> None:
    page = _page(craft_run(tmp_path / "run", failed=True))
    assert 'class="verdict bad"' in page
    assert "upgrade BROKE something" in page
    assert "exit code: 1" in page
    assert "tests failed: 1 of 2" in page
    assert re.search(r'First problem: <a href="#concern-\w+">', page)
    assert 'class="bar-failed"' in page


@pytest.mark.parametrize("concern", sorted(FINDINGS))
def test_each_finding_is_under_its_concern_with_labels(tmp_path: Path, concern: str) -> None:
    page = _page(craft_run(tmp_path / "run", failed=True))
    section = _concern(page, concern)
    finding = FINDINGS[concern]
    assert f"<code>{finding.check}</code>" in section
    for label, value in (("where", finding.where), ("expected", finding.expected),
                         ("found", finding.found), ("what to do", finding.remedy)):
        assert f"<dt>{label}</dt><dd>{value}</dd>" in section
    others = [k for k in FINDINGS if k != concern]
    assert not any(f"<code>{FINDINGS[k].check}</code>" in section for k in others)


def test_failed_post_upgrade_test_is_an_old_stacks_problem(tmp_path: Path) -> None:
    section = _concern(_page(craft_run(tmp_path / "run", failed=True)), "stacks")
    assert "test_heat_upgrade::test_update failed" in section
    assert "AssertionError: update broke" in section
    assert '<a href="logs/pytest-post-upgrade.log">' in section
    assert section.startswith('<details class="concern" id="concern-stacks" open>')


def test_failed_step_without_findings_still_explains_itself(tmp_path: Path) -> None:
    run_dir = craft_run(tmp_path / "run")
    data = json.loads((run_dir / "report.json").read_text())
    data["steps"][2].update(status="failed", messages=["pytest exited with code 3"])
    (run_dir / "report.json").write_text(json.dumps(data))
    section = _concern(_page(run_dir), "other")
    assert "step smoke-base failed" in section
    assert "pytest exited with code 3" in section


def test_findings_reported_by_tests_are_shown_once(tmp_path: Path) -> None:
    run_dir = craft_run(tmp_path / "run", failed=True)
    stuck = {"phase": "post-upgrade", "test": "t.py::test_x", **FINDINGS["stacks"].to_dict()}
    new = {**stuck, "check": "heat.stack-outputs", "what": "outputs differ"}
    lines = [json.dumps(stuck), "not json {", json.dumps(new)]
    (run_dir / "findings.jsonl").write_text("\n".join(lines) + "\n")
    page = _page(run_dir)
    assert page.count("stack still IN_PROGRESS") == 1
    assert "outputs differ" in _concern(page, "stacks")
    assert "findings.jsonl: 1 line(s) are not JSON" in page


@pytest.mark.parametrize(("check", "step", "concern"), [
    ("migration", "upgrade", "database"), ("heat.schema-drift", "upgrade", "database"),
    ("deprecation-warnings", "teardown", "config"), ("workload-ping", "upgrade", "rolling"),
    ("rolling-rpc", "during-upgrade", "rolling"), ("anything", "during-upgrade", "physical"),
    ("test", "post-upgrade", "stacks"), ("test", "smoke-base", "other"),
])
def test_concern_of(check: str, step: str, concern: str) -> None:
    assert concern_of(check, step) == concern


# -- escaping ---------------------------------------------------------------------------------

def test_everything_from_the_run_is_escaped(tmp_path: Path) -> None:
    page = _page(craft_run(tmp_path / "run", failed=True, evil=True))
    assert "<script>alert" not in page
    assert "<img" not in page
    assert page.count("<script") == 1  # the page's own check script only
    assert page.count("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;") >= 5
    assert 'onerror=alert(1)&gt;</text>' in page  # the service lane label, escaped


def test_script_is_the_only_one_the_csp_allows(tmp_path: Path) -> None:
    page = _page(craft_run(tmp_path / "run"))
    digest = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in page
    assert f"<script>{SCRIPT}</script>" in page
    assert "default-src 'none'" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_paths_in_messages_become_relative_links(tmp_path: Path) -> None:
    run_dir = craft_run(tmp_path / "run")
    data = json.loads((run_dir / "report.json").read_text())
    (tmp_path / "secret").write_text("outside the run directory")
    data["steps"][0]["messages"] = [f"log {run_dir.resolve()}/logs/heat-base.log.",
                                    f"gone {run_dir.resolve()}/logs/nothing.log",
                                    f"moved /old/place/{run_dir.name}/impact.md",
                                    f"out /x/{run_dir.name}/../secret"]
    (run_dir / "report.json").write_text(json.dumps(data))
    page = _page(run_dir)
    assert '<li>log <a href="logs/heat-base.log">logs/heat-base.log</a>.</li>' in page
    assert f"<li>gone {run_dir.resolve()}/logs/nothing.log</li>" in page
    assert '<li>moved <a href="impact.md">impact.md</a></li>' in page
    assert f"<li>out /x/{run_dir.name}/../secret</li>" in page


# -- partial and damaged run directories ------------------------------------------------------

def test_killed_run_without_report_json_uses_state(tmp_path: Path) -> None:
    run_dir = craft_run(tmp_path / "run")
    (run_dir / "report.json").unlink()
    (run_dir / "run.json").write_text(json.dumps({"base": "26.0.2", "target": "27.0.1",
                                                  "db": "sqlite"}))
    page = _page(run_dir)
    assert "report.json is missing: the run did not finish" in page
    assert "steps shown from state.json" in page
    assert 'class="verdict unknown"' in page
    assert "no verdict" in page
    assert "grenadier: 26.0.2 → 27.0.1" in page
    assert "database sqlite" in page
    assert page.count('class="bar-passed"') == len(STEPS)


@pytest.mark.parametrize("broken", ["report.json", "state.json"])
def test_corrupt_json_is_a_note(tmp_path: Path, broken: str) -> None:
    run_dir = craft_run(tmp_path / "run")
    (run_dir / broken).write_text('{"steps": [')
    page = _page(run_dir)
    assert re.search(rf'<section id="notes".*{re.escape(broken)} is corrupt', page, re.S)


def test_wrong_types_everywhere_still_render(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    steps = [{"name": "install", "status": "passed", "duration": "slow", "started_at": "x",
              "findings": {"a": 1}, "messages": "m", "tests": [1, {"status": "failed"}]},
             "not a step", {"findings": [{"severity": 3, "what": None}]}]
    (run_dir / "report.json").write_text(json.dumps({
        "verdict": ["?"], "exit_code": "1", "steps": steps, "timeline": [{"at": "now"}, 5],
        "facts": {"data": [1], "db_version": "x", "upgrade-status": "y"}, "options": []}))
    StateStore(run_dir / "state.json").save("runner", "inventory-before", {"stacks": [5, {}]})
    page = _page(run_dir)
    assert 'id="verdict"' in page
    assert 'id="inventory"' in page
    assert "No timing was recorded" in page


def test_inventory_with_a_parent_cycle_lists_every_stack(tmp_path: Path) -> None:
    stacks = [{"id": "a", "name": "stack-a", "parent": "b", "resources": "none"},
              {"id": "b", "name": "stack-b", "parent": "a"}]
    StateStore(tmp_path / "state.json").save("runner", "inventory-before", {"stacks": stacks})
    inv = _page(tmp_path).split('<section id="inventory"', 1)[1]
    assert "stack-a<br>" in inv
    assert "stack-b<br>" in inv


def test_empty_directory_renders_notes(tmp_path: Path) -> None:
    page = _page(tmp_path)
    for note in ("report.json is missing", "state.json is missing", "run.json is missing"):
        assert note in page
    assert "No step finished." in page
    assert "No inventory was recorded" in page


def test_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="is not a directory"):
        render_html(tmp_path / "nope")


# -- grenadier report RUN_DIR -----------------------------------------------------------------

def _reporter() -> tuple[ConsoleReporter, io.StringIO]:
    out = io.StringIO()
    return ConsoleReporter(Console(file=out, width=200)), out


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="grenadier")
    add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["report", *argv])


def test_report_command_rerenders_and_prints_the_path(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = craft_run(tmp_path / "run")
    reporter, _ = _reporter()
    assert report_command(_args(str(run_dir)), reporter) == 0
    assert capsys.readouterr().out == f"{run_dir.resolve() / 'report.html'}\n"
    assert "upgrade OK" in (run_dir / "report.html").read_text()


def test_report_open_without_display_just_prints(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = craft_run(tmp_path / "run")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr("webbrowser.open", lambda *a, **k: pytest.fail("browser opened"))
    reporter, said = _reporter()
    assert report_command(_args(str(run_dir), "--open"), reporter) == 0
    assert "report.html" in capsys.readouterr().out
    assert "no display" in said.getvalue()


def test_report_open_with_display_opens_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = craft_run(tmp_path / "run")
    opened: list[str] = []

    def fake_open(url: str) -> bool:
        opened.append(url)
        return True

    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setattr("webbrowser.open", fake_open)
    report_command(_args(str(run_dir), "--open"), _reporter()[0])
    assert opened == [(run_dir.resolve() / "report.html").as_uri()]


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: p / "missing", "is not a directory"),
    (lambda p: p, "is not a grenadier run directory"),
])
def test_report_bad_run_dir_is_one_line(tmp_path: Path, make: Any, message: str) -> None:
    with pytest.raises(UsageError, match=message) as info:
        report_command(_args(str(make(tmp_path))), _reporter()[0])
    assert "\n" not in info.value.one_line()
    assert not (tmp_path / "report.html").exists()


def test_a_run_compared_with_a_control_labels_each_item(tmp_path: Path) -> None:
    control = craft_run(tmp_path / "run" / "control")
    render_html(control)
    run_dir = tmp_path / "run"
    results = step_results(failed=True, evil=False)
    post = next(r for r in results if r.name == "post-upgrade")
    post.findings = [replace(f, origin=ALSO_WITHOUT_UPGRADE) for f in post.findings]
    post.tests[0].origin = INTRODUCED
    header = {"base": "26.0.2", "target": "27.0.1", "verdict": "upgrade BROKE something",
              "exit_code": 1, "control": {"run_dir": str(control), "exit_code": 0,
                                          "verdict": "upgrade OK"}}
    write_json(run_dir, header, results, {})
    page = _page(run_dir)
    assert 'Control run (the base release restarted on its own database, no upgrade): ' \
           'upgrade OK; <a href="control/report.html">control/report.html</a>' in page
    stacks = _concern(page, "stacks")
    assert '<span class="origin also">also without upgrade</span>' in stacks
    assert '<span class="origin">introduced by the upgrade</span>' in stacks

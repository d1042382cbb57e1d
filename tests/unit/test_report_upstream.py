"""The upstream tests section of report.html (report/html_upstream.py)."""

from __future__ import annotations

from typing import Any

from grenadier.report.html_upstream import upstream_html


def _step(name: str, **statuses: str) -> dict[str, Any]:
    return {"name": name, "status": "passed", "tests": [
        {"name": f"test_heat_upstream::test_gabbi[{test}]", "status": status,
         "duration": 0.1, "message": f"{status} <because>", "upstream": test}
        for test, status in statuses.items()] + [
        {"name": "test_heat_smoke::test_create", "status": "passed", "duration": 1.0}]}


def _rows(page: str) -> dict[str, str]:
    rows = page.split("<tr>")[2:]
    return {row.split("</td>", 1)[0].removeprefix("<td>"): row for row in rows}


def test_each_test_compared_base_against_target() -> None:
    page = upstream_html([
        _step("smoke-base", a="passed", b="failed", c="passed", d="failed"),
        _step("pre-upgrade"),
        _step("smoke-target", a="failed", b="failed", c="passed", d="passed"),
        _step("post-upgrade", a="failed", b="failed", c="skipped", d="passed")])
    rows = _rows(page)
    assert set(rows) == {"a", "b", "c", "d"}
    assert "regression: passed on the base, fails on the target" in rows["a"]
    assert "fails on the base too" in rows["b"]
    assert rows["c"].endswith("<td></td></tr>")
    assert "fixed by the target" in rows["d"]
    assert "smoke-base: 2 of 4 passed; smoke-target: 2 of 4 passed; post-upgrade: 1 of 4 " \
           "passed" in page
    # a failure's first line is shown on hover, escaped
    assert 'title="failed &lt;because&gt;"' in page
    assert "test_heat_smoke" not in page


def test_no_section_without_upstream_tests() -> None:
    assert upstream_html([_step("smoke-base"), _step("post-upgrade")]) == ""
    assert upstream_html([]) == ""

"""report.json and junit.xml are published: a URL a message or a test failure quotes keeps no
password there."""

from __future__ import annotations

from pathlib import Path

from grenadier.model.findings import Finding
from grenadier.model.result import Status, StepResult, TestOutcome
from grenadier.report.files import write_json, write_junit

URL = "mysql+pymysql://heat:s3cret-pw@127.0.0.1:3306/heat?password=s3cret-q"


def test_reports_mask_url_passwords_in_messages_tests_and_findings(tmp_path: Path) -> None:
    step = StepResult("upgrade", Status.FAILED, messages=[f"db_sync failed on {URL}"],
                      tests=[TestOutcome("test_x", "failed", 0.1, f"cannot reach {URL}")],
                      findings=[Finding("c", "error", "what", found=URL)])
    for path in (write_json(tmp_path, {}, [step], {}), write_junit(tmp_path, "run", [step])):
        text = path.read_text()
        assert "s3cret" not in text, path.name
        assert "mysql+pymysql://heat:***@127.0.0.1:3306/heat?password=***" in text, path.name
    assert step.messages == [f"db_sync failed on {URL}"]  # what the run itself uses is whole

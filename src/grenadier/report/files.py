"""report.json and junit.xml of a run (one JUnit testcase per step and per test)."""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from grenadier.host import write_atomic
from grenadier.model.findings import ALSO_WITHOUT_UPGRADE
from grenadier.model.result import StepResult, is_failed_test

REPORT_JSON = "report.json"
JUNIT_XML = "junit.xml"


def write_json(run_dir: Path, header: Mapping[str, Any], results: Sequence[StepResult],
               extra: Mapping[str, Any]) -> Path:
    path = run_dir / REPORT_JSON
    data = {**header, "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "steps": [r.to_dict() for r in results], **extra}
    write_atomic(path, json.dumps(data, indent=1, default=str))
    return path


def _case(suite: ET.Element, classname: str, name: str, seconds: float, status: str,
          text: str, origin: str = "") -> None:
    case = ET.SubElement(suite, "testcase", classname=classname, name=name,
                         time=f"{seconds:.3f}")
    if origin == ALSO_WITHOUT_UPGRADE and is_failed_test(status):
        # the control run (no upgrade) fails the same way: shown, not counted as a failure
        status, text = "skipped", f"{status} {origin}: {text}"
    if status in ("failed", "error", "interrupted"):
        tag = "failure" if status == "failed" else "error"
        ET.SubElement(case, tag, message=text.splitlines()[0] if text else status).text = text
    elif status == "skipped":
        ET.SubElement(case, "skipped", message=text or "skipped")


def write_junit(run_dir: Path, name: str, results: Sequence[StepResult]) -> Path:
    """One testsuite per step: the step itself as a testcase, then each of its tests."""
    root = ET.Element("testsuites", name=name)
    for result in results:
        suite = ET.SubElement(root, "testsuite", name=result.name)
        detail = "\n".join([*result.shown_messages, *(line for f in result.findings
                                                 for line in f.lines())])
        _case(suite, "grenadier.steps", result.name, result.duration, result.status.value, detail,
              result.origin)
        for test in result.tests:
            _case(suite, f"grenadier.{result.name}", test.name, test.duration, test.status,
                  test.message, test.origin)
        cases = suite.findall("testcase")
        suite.set("tests", str(len(cases)))
        suite.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
        suite.set("errors", str(sum(1 for c in cases if c.find("error") is not None)))
        suite.set("skipped", str(sum(1 for c in cases if c.find("skipped") is not None)))
    path = run_dir / JUNIT_XML
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return path

"""End-to-end: Heat split into heat-wsgi-api and engines on a private RabbitMQ, behind a private
Keystone, with Keystone resources as the physical resources checked while Heat is down.

The split tests need the Debian package rabbitmq-server (skipped without it); Keystone comes
from PyPI into the release cache.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from grenadier.host import port_is_free
from grenadier.model.steps import STEPS
from grenadier.state.store import StateStore
from tests.e2e.conftest import BASE, SPLIT_KEYSTONE, TARGET, Run, grenadier, heat_processes

needs_rabbit = pytest.mark.skipif(
    not Path("/usr/lib/rabbitmq/bin/rabbitmq-server").is_file()
    and not Path("/usr/sbin/rabbitmq-server").is_file(),
    reason="needs rabbitmq-server (apt-get install rabbitmq-server)")

#: a user's --tests file whose during-upgrade test (in a process of its own, beside the built-in
#: watches) deletes the stack's Keystone user behind Heat's back once the Keystone watch saw it
VANDAL_TEST = '''
import json, time

import pytest

from grenadier.pytest_plugin import namespace_for, wait_for_watch
from grenadier.services.keystone import api_from
from grenadier.state.store import StateStore


@pytest.mark.during_upgrade
def test_vandal_deletes_a_keystone_user_behind_heats_back(grenadier_connection):
    conn = grenadier_connection
    rec = StateStore(conn.state_path).get(namespace_for("test_keystone_resources.py"),
                                          "stack:keystone_identity")
    user = rec["resources"]["user"]["physical_id"]
    wait_for_watch(conn, "test_keystone_resources.py", passes=1)  # it saw the user
    with api_from(conn.endpoint.auth) as api:
        assert api.delete(f"users/{user}")
    (conn.run_dir / "vandal.json").write_text(json.dumps({"user": user, "stack": rec["name"],
                                                          "deleted_at": time.time()}))
'''
#: how the Keystone watch says when it first missed a resource
FIRST_MISSING = re.compile(r"first missing at \S+ UTC, [\d.]+ s into the watch "
                           r"\(pass (?P<pass>\d+)\); last seen present: (?P<last>[^;\n]+)")


def _assert_all_stopped(run_dir: Path) -> None:
    assert heat_processes(run_dir) == []
    rabbit = json.loads((run_dir / "rabbitmq" / "credentials.json").read_text())
    keystone = json.loads((run_dir / "keystone" / "credentials.json").read_text())
    heat = StateStore(run_dir / "state.json").get("runner", "port")
    ports = {"amqp": rabbit["amqp_port"], "erlang distribution": rabbit["dist_port"],
             "epmd": rabbit["epmd_port"], "keystone": keystone["port"], "heat api": heat}
    assert [name for name, port in ports.items() if not port_is_free(port)] == []


def _tests(run: Run, step: str) -> dict[str, dict[str, Any]]:
    tests = run.steps()[step].get("tests") or []
    return {str(t["name"]).rsplit("::", 1)[-1]: t for t in tests}  # type: ignore[union-attr]


def _findings(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "findings.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@needs_rabbit
def test_split_keystone_run_is_green(keystone_run: Run) -> None:
    assert keystone_run.returncode == 0, keystone_run.err[-3000:]
    assert keystone_run.status() == dict.fromkeys(STEPS, "passed")
    options = json.loads((keystone_run.run_dir / "run.json").read_text())
    assert (options["topology"], options["bus"], options["auth"], options["engines"]) == \
        ("split", "rabbit", "keystone", 2)


@needs_rabbit
def test_heat_ran_as_api_and_engines_on_the_bus(keystone_run: Run) -> None:
    events = [(e["service"], e["event"]) for e in keystone_run.report["timeline"]]  # type: ignore[union-attr, index]
    started = [service for service, event in events if event == "ready"]
    for role in ("base", "target"):
        for name in (f"heat-{role}-api", f"heat-{role}-engine-1", f"heat-{role}-engine-2"):
            assert name in started, name
    # the bus and Keystone came first and outlived Heat (not upgraded, up while Heat was down)
    assert started.index("rabbitmq") < started.index("keystone") < started.index("heat-base-api")
    stops = [service for service, event in events if event in ("stop", "crash", "kill")]
    assert stops.index("heat-target-api") < stops.index("keystone") < stops.index("rabbitmq")
    conf = (keystone_run.run_dir / "etc" / "heat.conf").read_text()
    assert "transport_url = rabbit://" in conf
    assert "deferred_auth_method = trusts" in conf
    logs = keystone_run.run_dir / "logs"
    assert "engine-base-2" in (keystone_run.run_dir / "etc" / "engines" /
                               "engine-base-2.conf").read_text()
    assert (logs / "heat-target-engine-2.log").is_file()
    assert (keystone_run.run_dir / "keystone" / "credentials.json").stat().st_mode & 0o077 == 0
    assert (keystone_run.run_dir / "rabbitmq" / "credentials.json").stat().st_mode & 0o077 == 0


@needs_rabbit
def test_report_shows_keystone_resources_checked_while_heat_was_down(keystone_run: Run) -> None:
    during = _tests(keystone_run, "during-upgrade")
    assert during["test_keystone_resources_stay_while_heat_is_down"]["status"] == "passed"
    checked = [f for f in _findings(keystone_run.run_dir)
               if f["check"] == "keystone.resources-checked" and f["phase"] == "during-upgrade"]
    assert len(checked) == 1, _findings(keystone_run.run_dir)
    what = checked[0]["what"]
    for kind in ("project ", "role ", "group ", "user ", "membership of user",
                 "user_roles:", "group_roles:"):
        assert kind in what, what
    assert "while Heat was down, all present" in what
    post = _tests(keystone_run, "post-upgrade")
    for name in ("test_keystone_resources_after_upgrade",
                 "test_update_keystone_resources_through_heat",
                 "test_delete_removes_keystone_resources"):
        assert post[name]["status"] == "passed", name


@needs_rabbit
def test_split_run_left_nothing_running_nor_bound(keystone_run: Run) -> None:
    _assert_all_stopped(keystone_run.run_dir)


def test_keystone_user_deleted_behind_heats_back_is_reported(
        tmp_path: Path, workdir: Path, cache_dir: Path) -> None:
    tests = tmp_path / "vandal"
    tests.mkdir()
    (tests / "test_vandal.py").write_text(VANDAL_TEST)
    # all-in-one with Keystone: the other topology, and no RabbitMQ to wait for
    run = grenadier("run", "--base", BASE, "--target", TARGET, "--auth", "keystone",
                    "--tests", str(tests), "--stop-after", "upgrade", workdir=workdir,
                    cache_dir=cache_dir, timeout=1200)
    assert run.returncode == 1, run.err[-3000:]
    assert run.status()["during-upgrade"] == "failed"
    assert run.status()["upgrade"] == "passed"
    vandal = json.loads((run.run_dir / "vandal.json").read_text())
    test = _tests(run, "during-upgrade")["test_keystone_resources_stay_while_heat_is_down"]
    message = str(test["message"])
    assert f"stack {vandal['stack']}, resource user (OS::Keystone::User)" in message, message
    assert f"user {vandal['user']}" in message or vandal["user"] in message
    found = FIRST_MISSING.search(message)
    assert found, message
    # seen present first, then missed by a later pass of the continuous watch
    assert found.group("last") != "never", message
    assert "last seen present: never" not in message
    assert int(found.group("pass")) >= 2, message
    vanished = [f for f in _findings(run.run_dir) if f["check"] == "keystone.resource-vanished"]
    assert vanished
    assert vanished[0]["where"].startswith(f"stack {vandal['stack']}")
    assert heat_processes(run.run_dir) == []


@needs_rabbit
def test_sigint_stops_rabbitmq_and_keystone(tmp_path: Path, cache_dir: Path) -> None:
    """Ctrl-C once the bus, Keystone and Heat are up: everything stops, no port stays bound."""
    workdir = tmp_path / "w"
    workdir.mkdir()
    env = {**os.environ, "GRENADIER_CACHE": str(cache_dir)}
    proc = subprocess.Popen([sys.executable, "-m", "grenadier", "run", *SPLIT_KEYSTONE,
                             "--engines", "1", "--workdir", str(workdir)], cwd=workdir, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        run_dir = _wait_for_service(workdir, "heat-base-engine-1", proc, timeout=600)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted" in err
    _assert_all_stopped(run_dir)


def _wait_for_service(workdir: Path, name: str, proc: subprocess.Popen[str],
                      timeout: float) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the run ended ({proc.returncode}) before {name} started: "
                                 f"{proc.communicate()[1][-3000:]}")
        for services in (workdir / "runs").glob("*/services.json"):
            try:
                if name in json.loads(services.read_text()):
                    return services.parent
            except ValueError:
                pass
        time.sleep(0.5)
    raise AssertionError(f"{name} never started under {workdir}")

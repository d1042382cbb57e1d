"""HeatClient against httpx.MockTransport: failure messages, deleted stacks, retries."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from grenadier.errors import EnvironmentProblem
from grenadier.plugins.heat import project as heat_project
from grenadier.project.api import Deployment
from grenadier.services.heat_client import (
    HeatClient,
    HeatError,
    HeatNotFound,
    StackRef,
    StackWaitError,
    stack_id_from_links,
)
from grenadier.services.keystone import Keystone, TokenTransport
from grenadier.services.sqlite import SqliteDatabase

URL = "http://heat.test"
PROJECT = "p1"
REF = StackRef("web", "1234")
STACK_PATH = f"/v1/{PROJECT}/stacks/web/1234"
Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("grenadier.services.heat_client.time.sleep", lambda seconds: None)


def make(handler: Handler, **kwargs: Any) -> HeatClient:
    return HeatClient(URL, PROJECT, "alice", transport=httpx.MockTransport(handler), **kwargs)


def stack_body(status: str, reason: str = "", updated: str | None = None) -> dict[str, Any]:
    return {"stack": {"id": REF.id, "stack_name": REF.name, "stack_status": status,
                      "stack_status_reason": reason, "updated_time": updated}}


EVENTS = {"events": [  # Heat answers newest first (sort_dir=desc)
    {"event_time": "2026-11-26T10:00:03Z", "resource_name": "server",
     "resource_status": "CREATE_FAILED", "resource_status_reason": "ValueError: boom"},
    {"event_time": "2026-11-26T10:00:01Z", "resource_name": "server",
     "resource_status": "CREATE_IN_PROGRESS", "resource_status_reason": "state changed"},
]}


def test_noauth_headers_and_project_url() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"stacks": []})

    assert make(handler).list_stacks(show_nested=True) == []
    assert seen[0].url.path == f"/v1/{PROJECT}/stacks"
    assert seen[0].url.params["show_nested"] == "true"
    assert seen[0].headers["X-Auth-User"] == "alice"
    assert seen[0].headers["X-Auth-Project"] == PROJECT


def test_wait_for_failure_message_has_status_reason_and_events() -> None:
    statuses = iter(["CREATE_IN_PROGRESS", "CREATE_FAILED"])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == STACK_PATH:
            return httpx.Response(200, json=stack_body(next(statuses), "Resource CREATE failed: "
                                                       "ValueError: boom"))
        if request.url.path == f"{STACK_PATH}/events":
            assert request.url.params["sort_dir"] == "desc"
            return httpx.Response(200, json=EVENTS)
        return httpx.Response(500)

    with pytest.raises(StackWaitError) as caught:
        make(handler).wait_for(REF, {"CREATE_COMPLETE"}, timeout=60)
    message = str(caught.value)
    # the first line alone names the stack, its final status and Heat's reason
    assert message.splitlines()[0] == ("stack web (1234): wanted CREATE_COMPLETE, failed: "
                                       "CREATE_FAILED: Resource CREATE failed: ValueError: boom")
    assert "status: CREATE_FAILED" in message
    assert "status reason: Resource CREATE failed: ValueError: boom" in message
    # oldest first, as a person reads a log
    assert message.index("CREATE_IN_PROGRESS: state changed") < message.index(
        "server CREATE_FAILED: ValueError: boom")
    assert caught.value.stack["stack_status"] == "CREATE_FAILED"


def test_wait_for_times_out_with_the_last_status(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter(range(0, 1000, 10))
    monkeypatch.setattr("grenadier.services.heat_client.time.monotonic",
                        lambda: float(next(clock)))

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/events"):
            return httpx.Response(200, json={"events": []})
        return httpx.Response(200, json=stack_body("UPDATE_IN_PROGRESS", "Stack UPDATE started"))

    with pytest.raises(StackWaitError, match="timed out after 30 s") as caught:
        make(handler).wait_for(REF, {"UPDATE_COMPLETE"}, timeout=30)
    assert str(caught.value).splitlines()[0].endswith(
        "wanted UPDATE_COMPLETE, timed out after 30 s: UPDATE_IN_PROGRESS: Stack UPDATE started")
    assert "status: UPDATE_IN_PROGRESS" in str(caught.value)
    assert "(no events)" in str(caught.value)


def test_a_wanted_failed_status_is_not_a_failure() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=stack_body("CHECK_FAILED"))

    assert make(handler).wait_for(REF, {"CHECK_FAILED"})["stack_status"] == "CHECK_FAILED"


def test_stale_status_before_an_action_is_not_taken_for_its_end() -> None:
    # suspend -> resume -> suspend: the API returns before the engine switches the status
    answers = iter([stack_body("SUSPEND_COMPLETE", updated="t1"),
                    stack_body("RESUME_IN_PROGRESS", updated="t2"),
                    stack_body("SUSPEND_COMPLETE", updated="t2"),
                    stack_body("RESUME_COMPLETE", updated="t3")])

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=next(answers))

    before = {"stack_status": "SUSPEND_COMPLETE", "updated_time": "t1"}
    found = make(handler).wait_for(REF, {"RESUME_COMPLETE", "SUSPEND_COMPLETE"}, before=before)
    # the first answer equals `before` (stale); the next SUSPEND_COMPLETE is a real end state
    assert found["updated_time"] == "t2"


def test_deleted_stack_404_counts_as_delete_complete() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"code": 404, "error": {
            "message": "The Stack (web) could not be found.", "type": "EntityNotFound"}})

    heat = make(handler)
    heat.delete_stack(REF)  # already gone: not an error
    assert heat.wait_for(REF, {"DELETE_COMPLETE"})["stack_status"] == "DELETE_COMPLETE"
    assert heat.find_stack("web") is None
    with pytest.raises(HeatNotFound, match=r"404: EntityNotFound: The Stack \(web\)"):
        heat.get_stack(REF)


def test_retries_a_reset_connection_then_succeeds() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) <= 2:
            raise httpx.ConnectError("[Errno 104] Connection reset by peer", request=request)
        return httpx.Response(200, json={"stacks": [{"id": "1"}]})

    assert make(handler).list_stacks() == [{"id": "1"}]
    assert len(calls) == 3


def test_gives_up_after_the_retries() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.RemoteProtocolError("Server disconnected", request=request)

    with pytest.raises(httpx.RemoteProtocolError):
        make(handler, retries=2).list_stacks()
    assert len(calls) == 3


def test_create_that_conflicts_finds_the_stack_an_earlier_attempt_made() -> None:
    posts = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            posts.append(json.loads(request.content))
            return httpx.Response(409, json={"error": {"message": "Stack web already exists"}})
        assert request.url.path == f"/v1/{PROJECT}/stacks/web"
        return httpx.Response(200, json=stack_body("CREATE_IN_PROGRESS"))

    assert make(handler).create_stack("web", {"heat_template_version": "2018-08-31"}) == REF
    assert len(posts) == 1
    assert posts[0]["stack_name"] == "web"
    assert posts[0]["disable_rollback"] is True


def test_create_that_conflicts_with_no_stack_found_is_an_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(409, json={"error": {"message": "conflict"}})
        return httpx.Response(404, json={"error": {"message": "not found"}})

    with pytest.raises(HeatError) as caught:
        make(handler).create_stack("web", {"heat_template_version": "2018-08-31"})
    assert caught.value.status == 409


METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]


def _failing_first(error: type[httpx.TransportError], failures: int,
                   calls: list[httpx.Request]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) <= failures:
            raise error("Connection reset by peer", request=request)
        return httpx.Response(200, json={})

    return handler


@pytest.mark.parametrize("method", METHODS)
def test_a_connection_that_never_reached_heat_is_retried_whatever_the_method(
        method: str) -> None:
    calls: list[httpx.Request] = []
    heat = make(_failing_first(httpx.ConnectError, 2, calls))
    assert heat.request(method, "stacks").status_code == 200
    assert [c.method for c in calls] == [method] * 3


@pytest.mark.parametrize("error", [httpx.ReadError, httpx.RemoteProtocolError, httpx.WriteError])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_lost_answer_to_a_read_is_retried(method: str,
                                            error: type[httpx.TransportError]) -> None:
    calls: list[httpx.Request] = []
    assert make(_failing_first(error, 2, calls)).request(method, "stacks").status_code == 200
    assert len(calls) == 3


@pytest.mark.parametrize("error", [httpx.ReadError, httpx.RemoteProtocolError, httpx.WriteError])
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_a_request_that_may_have_reached_heat_is_not_retried(
        method: str, error: type[httpx.TransportError]) -> None:
    calls: list[httpx.Request] = []
    with pytest.raises(error):
        make(_failing_first(error, 1, calls)).request(method, "stacks")
    assert len(calls) == 1  # a repeated suspend, PATCH or DELETE could answer 409


def test_an_action_whose_answer_was_lost_is_not_sent_twice() -> None:
    actions: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            actions.append(request)
            raise httpx.ReadError("Connection reset by peer", request=request)
        return httpx.Response(200, json=stack_body("CREATE_COMPLETE"))

    with pytest.raises(httpx.ReadError):
        make(handler).suspend(REF)
    assert len(actions) == 1


def test_status_counts_a_stack_heat_no_longer_finds_as_deleted() -> None:
    answers = iter([httpx.Response(200, json=stack_body("UPDATE_IN_PROGRESS")),
                    httpx.Response(404, json={"error": {"message": "not found"}})])
    paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        return next(answers)

    heat = make(handler)
    assert heat.status(REF) == "UPDATE_IN_PROGRESS"
    assert heat.status(REF) == "DELETE_COMPLETE"
    assert paths == [STACK_PATH, STACK_PATH]  # name and id: no lookup, no redirect


def test_error_message_is_heats_own() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"explanation": "bad", "error": {
            "message": "Property error: length", "type": "StackValidationFailed"}})

    with pytest.raises(HeatError) as caught:
        make(handler).patch_update(REF, {"size": 1})
    assert caught.value.status == 400
    assert caught.value.message == "StackValidationFailed: Property error: length"


def test_an_error_heat_does_not_explain_keeps_its_type() -> None:
    # Heat shows the message of the errors it calls safe only; a TypeError gets its type
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, json={"explanation": "The server has either erred",
                                         "error": {"type": "TypeError", "traceback": None}})

    with pytest.raises(HeatError) as caught:
        make(handler).patch_update(REF, {"size": 1})
    assert caught.value.message == "TypeError: The server has either erred"


def test_name_is_resolved_through_the_lookup_redirect() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == f"/v1/{PROJECT}/stacks/web":
            return httpx.Response(302, headers={"Location": f"{URL}{STACK_PATH}"})
        if request.url.path == STACK_PATH:
            return httpx.Response(200, json=stack_body("CREATE_COMPLETE"))
        if request.url.path == f"{STACK_PATH}/actions":
            assert json.loads(request.content) == {"suspend": None}
            return httpx.Response(200)
        return httpx.Response(500)

    heat = make(handler)
    assert heat.ref("web") == REF
    heat.suspend("web")


def test_stack_id_from_links() -> None:
    links = [{"rel": "self", "href": f"{URL}{STACK_PATH}/resources/r"},
             {"rel": "stack", "href": f"{URL}{STACK_PATH}"},
             {"rel": "nested", "href": f"{URL}/v1/{PROJECT}/stacks/web-r-x/5678"}]
    assert stack_id_from_links(links) == "1234"
    assert stack_id_from_links(links, "nested") == "5678"
    assert stack_id_from_links(links, "missing") is None


def test_outputs_are_read_one_by_one_not_through_stack_show() -> None:
    paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        if request.url.path == f"{STACK_PATH}/outputs":
            return httpx.Response(200, json={"outputs": [{"output_key": "b"},
                                                         {"output_key": "a"}]})
        key = request.url.path.rsplit("/", 1)[-1]
        return httpx.Response(200, json={"output": {"output_key": key, "output_value": key * 2}})

    assert make(handler).output_values(REF) == {"a": "aa", "b": "bb"}
    assert STACK_PATH not in paths  # no `stack show` (it resolves outputs)


def test_deleting_a_stack_shown_delete_complete_is_not_an_error() -> None:
    import httpx

    from grenadier.services.heat_client import HeatClient

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE":
            return httpx.Response(400, json={"error": {"message": "malformed"}})
        return httpx.Response(200, json={"stack": {"stack_status": "DELETE_COMPLETE",
                                                   "stack_name": "s", "id": "1"}})

    client = HeatClient("http://heat", "p", transport=httpx.MockTransport(handler))
    client.delete_stack("s/1")  # no exception: it is deleted


def test_a_400_on_a_live_stack_is_still_an_error() -> None:
    import httpx
    import pytest

    from grenadier.services.heat_client import HeatClient, HeatError

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE":
            return httpx.Response(400, json={"error": {"message": "malformed"}})
        return httpx.Response(200, json={"stack": {"stack_status": "CREATE_COMPLETE",
                                                   "stack_name": "s", "id": "1"}})

    client = HeatClient("http://heat", "p", transport=httpx.MockTransport(handler))
    with pytest.raises(HeatError):
        client.delete_stack("s/1")


# -- HeatProject.client and the runner's inventory -------------------------------------------

def _deployment(tmp_path: Path, *, serial: bool, keystone: Any = None) -> Deployment:
    db = SqliteDatabase(tmp_path)
    db.serial = serial
    return Deployment(tmp_path, db, 18004, keystone=keystone)


def _patch_transport(monkeypatch: pytest.MonkeyPatch, handler: Handler) -> None:
    monkeypatch.setattr(heat_project, "HeatClient",
                        partial(HeatClient, transport=httpx.MockTransport(handler)))


def _inventory_handler(seen: list[str]) -> Handler:
    stacks = [{"id": "1", "stack_name": "web", "stack_status": "CREATE_COMPLETE"},
              {"id": "2", "stack_name": "web-child-x", "stack_status": "CREATE_COMPLETE",
               "parent": "1"}]

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.url.path}?{request.url.query.decode()}".rstrip("?"))
        if request.url.path.endswith("/stacks"):
            return httpx.Response(200, json={"stacks": stacks})
        name = request.url.path.split("/")[-3]
        return httpx.Response(200, json={"resources": [
            {"resource_name": f"{name}-b", "resource_type": "T", "resource_status": "C",
             "physical_resource_id": "p"},
            {"resource_name": f"{name}-a", "resource_type": "T", "resource_status": "C"}]})

    return handler


@pytest.mark.parametrize("serial", [True, False])
def test_inventory_lists_each_stacks_resources_by_name_and_id(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, serial: bool) -> None:
    seen: list[str] = []
    _patch_transport(monkeypatch, _inventory_handler(seen))
    deployment = _deployment(tmp_path, serial=serial)
    inventory = heat_project.HeatProject().inventory(deployment)
    project = heat_project.HeatProject().endpoint(deployment)["project"]
    assert sorted(seen) == [f"/v1/{project}/stacks/web-child-x/2/resources",
                            f"/v1/{project}/stacks/web/1/resources",
                            f"/v1/{project}/stacks?show_nested=true"]
    assert [s["name"] for s in inventory["stacks"]] == ["web", "web-child-x"]
    assert inventory["stacks"][1]["parent"] == "1"
    assert inventory["stacks"][0]["resources"] == [
        {"name": "web-a", "type": "T", "status": "C", "physical_id": None},
        {"name": "web-b", "type": "T", "status": "C", "physical_id": "p"}]


def test_a_stack_whose_resources_heat_refuses_carries_its_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    listing = _inventory_handler(seen)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/web/1/resources"):
            return httpx.Response(400, json={"error": {"message": "The Resource Type "
                                                       "(OS::Heat::RandomString) could not be "
                                                       "found."}})
        return listing(request)

    _patch_transport(monkeypatch, handler)
    stacks = heat_project.HeatProject().inventory(_deployment(tmp_path, serial=False))["stacks"]
    assert stacks[0]["resources"] == []
    assert stacks[0]["error"].endswith("/stacks/web/1/resources -> 400: The Resource Type "
                                       "(OS::Heat::RandomString) could not be found.")
    assert "error" not in stacks[1]
    assert [r["name"] for r in stacks[1]["resources"]] == ["web-child-x-a", "web-child-x-b"]


@pytest.mark.parametrize("failure", ["status", "connection"])
def test_inventory_failure_is_one_environment_problem(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if failure == "connection":
            raise httpx.ConnectError("Connection refused", request=request)
        return httpx.Response(500, text="Internal error\nwith a traceback")

    _patch_transport(monkeypatch, handler)
    with pytest.raises(EnvironmentProblem, match="inventory of Heat's stacks") as caught:
        heat_project.HeatProject().inventory(_deployment(tmp_path, serial=False))
    assert "\n" not in caught.value.one_line()


def test_client_as_admin_needs_keystone(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs Keystone"):
        heat_project.HeatProject().client(_deployment(tmp_path, serial=True), "admin")


def test_client_with_keystone_uses_tokens_of_the_account_in_its_project(tmp_path: Path) -> None:
    keystone = Keystone(tmp_path, cache=None, heat_port=18004)  # type: ignore[arg-type]
    keystone.creds.ids.update({"tests_project": "tp", "admin_project": "ap",
                               "stack_domain": "d"})
    deployment = _deployment(tmp_path, serial=True, keystone=keystone)
    for account, project in (("tests", "tp"), ("admin", "ap")):
        with heat_project.HeatProject().client(deployment, account) as heat:  # type: ignore[arg-type]
            transport = heat._http._transport
            assert isinstance(transport, TokenTransport)
            assert transport.account == getattr(keystone.creds, account)
            assert heat.project == project

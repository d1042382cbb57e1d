"""HeatClient against httpx.MockTransport: failure messages, deleted stacks, retries."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from grenadier.plugins.heat.client import (
    HeatClient,
    HeatError,
    HeatNotFound,
    StackRef,
    StackWaitError,
    stack_id_from_links,
)

URL = "http://heat.test"
PROJECT = "p1"
REF = StackRef("web", "1234")
STACK_PATH = f"/v1/{PROJECT}/stacks/web/1234"
Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("grenadier.plugins.heat.client.time.sleep", lambda seconds: None)


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
    assert "web (1234): wanted CREATE_COMPLETE, failed" in message
    assert "status: CREATE_FAILED" in message
    assert "status reason: Resource CREATE failed: ValueError: boom" in message
    # oldest first, as a person reads a log
    assert message.index("CREATE_IN_PROGRESS: state changed") < message.index(
        "server CREATE_FAILED: ValueError: boom")
    assert caught.value.stack["stack_status"] == "CREATE_FAILED"


def test_wait_for_times_out_with_the_last_status(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter(range(0, 1000, 10))
    monkeypatch.setattr("grenadier.plugins.heat.client.time.monotonic",
                        lambda: float(next(clock)))

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/events"):
            return httpx.Response(200, json={"events": []})
        return httpx.Response(200, json=stack_body("UPDATE_IN_PROGRESS", "Stack UPDATE started"))

    with pytest.raises(StackWaitError, match="timed out after 30 s") as caught:
        make(handler).wait_for(REF, {"UPDATE_COMPLETE"}, timeout=30)
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


def test_create_whose_retried_post_conflicts_finds_the_stack() -> None:
    posts = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            posts.append(json.loads(request.content))
            if len(posts) == 1:  # the first attempt reached Heat, its answer was lost
                raise httpx.ReadError("Connection reset by peer", request=request)
            return httpx.Response(409, json={"error": {"message": "Stack web already exists"}})
        return httpx.Response(200, json=stack_body("CREATE_IN_PROGRESS"))

    assert make(handler).create_stack("web", {"heat_template_version": "2018-08-31"}) == REF
    assert posts[0]["stack_name"] == "web"
    assert posts[0]["disable_rollback"] is True


def test_error_message_is_heats_own() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"explanation": "bad", "error": {
            "message": "Property error: length", "type": "StackValidationFailed"}})

    with pytest.raises(HeatError) as caught:
        make(handler).patch_update(REF, {"size": 1})
    assert caught.value.status == 400
    assert caught.value.message == "StackValidationFailed: Property error: length"


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

    from grenadier.plugins.heat.client import HeatClient

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

    from grenadier.plugins.heat.client import HeatClient, HeatError

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE":
            return httpx.Response(400, json={"error": {"message": "malformed"}})
        return httpx.Response(200, json={"stack": {"stack_status": "CREATE_COMPLETE",
                                                   "stack_name": "s", "id": "1"}})

    client = HeatClient("http://heat", "p", transport=httpx.MockTransport(handler))
    with pytest.raises(HeatError):
        client.delete_stack("s/1")

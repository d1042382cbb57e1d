"""One fake Heat for the unit tests: its stack API in memory, driven through the real client.

:class:`FakeHeat` is a :class:`HeatClient` whose requests reach a Heat held in memory (no
network); :meth:`FakeHeat.client` gives other clients of the same Heat, as grenadier makes one
per thread. An operation finishes at once, unless its stack's ``<action>_wait`` parameter
(given, or its template's default) is above 0: then, as with ``OS::Heat::TestResource``, it
stays IN_PROGRESS until the fake's own :meth:`FakeHeat.wait_for` finishes it (a real client
keeps seeing it IN_PROGRESS).

What a test can set, before or during a run:

- :meth:`FakeHeat.add`: a stack already there, with its status;
- ``fail_updates``: an update is accepted, then its stack ends UPDATE_FAILED;
- ``refuse_creates``: a create is answered 500 "Heat said no";
- ``stuck``: stacks (by name) whose operations never finish: a wait for them times out;
- ``unreadable``: stacks (by name) whose resources answer 404;
- ``lose_every``: every n-th change is done, then its answer lost (the connection drops);
- ``stack_outputs``: what every stack's outputs show;
- ``hold_creates``: a create waits (10 s at most) until ``go`` is set.

``calls`` records what was asked of each stack: ``(kind, stack name, *details)``; reads of a
stack or of the list are not recorded, reads of a resource are.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Collection
from typing import Any

import httpx

from grenadier.services.heat_client import HeatClient, Stack, StackRef, StackWaitError

JSON = dict[str, Any]
URL, PROJECT = "http://heat", "p"
DELETED = "DELETE_COMPLETE"
IN_PROGRESS = "_IN_PROGRESS"
_REASONS = {"IN_PROGRESS": "started", "COMPLETE": "completed successfully", "FAILED": "failed"}


def _answer(status: int, body: JSON | None = None) -> httpx.Response:
    return httpx.Response(status, json=body) if body is not None else httpx.Response(status)


def _not_found(what: str) -> httpx.Response:
    return _answer(404, {"error": {"message": what}})


def _set(stack: JSON, status: str) -> None:
    action, state = status.split("_", 1)
    stack["stack_status"] = status
    stack["stack_status_reason"] = f"Stack {action} {_REASONS[state]}"


class FakeHeat(HeatClient):
    """Heat's stack API in memory, and a client of it whose waits return at once."""

    def __init__(self, *, hold_creates: bool = False, stack_outputs: JSON | None = None) -> None:
        self.transport = httpx.MockTransport(self._serve)
        super().__init__(URL, PROJECT, transport=self.transport)
        #: stack id -> the stack as Heat shows it (its parameters included)
        self.stacks: dict[str, JSON] = {}
        self.calls: list[tuple[str, ...]] = []
        self.fail_updates = False
        self.refuse_creates = False
        self.stuck: set[str] = set()
        self.unreadable: set[str] = set()
        self.stack_outputs: JSON = dict(stack_outputs or {})
        self.lose_every = 0
        #: the methods of the changes whose answer was lost
        self.lost: list[str] = []
        self.go = threading.Event()
        if not hold_creates:
            self.go.set()
        self._changes = 0
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def client(self) -> HeatClient:
        """Another client of this Heat (the real one)."""
        return HeatClient(URL, PROJECT, transport=self.transport)

    def close(self) -> None:
        """Nothing: the one fake serves every ``with`` block of a test."""

    def add(self, name: str, status: str, sid: str | None = None,
            parameters: JSON | None = None) -> StackRef:
        """A stack that is there already (replacing one of the same id)."""
        sid = sid or f"id-{name}"
        self.stacks[sid] = {"id": sid, "stack_name": name, "updated_time": "",
                            "parameters": dict(parameters or {})}
        _set(self.stacks[sid], status)
        return StackRef(name, sid)

    def wait_for(self, stack: Stack, statuses: Collection[str], timeout: float = 120.0, *,
                 poll: float = 0.5, before: JSON | None = None) -> JSON:
        """At once: the stack's operation in progress finishes (a stuck stack's never does);
        the stack as then shown, or the StackWaitError the real wait would raise."""
        ref = self.ref(stack)
        self.calls.append(("wait", ref.name, *sorted(statuses)))
        with self._lock:
            found = self.stacks.get(ref.id)
            status = found["stack_status"] if found else DELETED
            if found and status.endswith(IN_PROGRESS) and ref.name not in self.stuck:
                self._finish(found, status.split("_")[0])
            shown = dict(self.stacks.get(ref.id) or {"stack_status": DELETED})
        status = shown["stack_status"]
        if status not in statuses:
            how = "failed" if status.endswith("_FAILED") else f"timed out after {timeout:.0f} s"
            raise StackWaitError(f"stack {ref}: wanted {' or '.join(sorted(statuses))}, "
                                 f"{how}: {status}", shown)
        return shown

    # -- the Heat side ---------------------------------------------------------------------

    def _serve(self, request: httpx.Request) -> httpx.Response:
        change = request.method != "GET"
        if request.method == "POST" and request.url.path.endswith("/stacks"):
            self.go.wait(10)
        with self._lock:
            response = self._route(request)
            self._changes += change
            lose = change and self.lose_every > 0 and self._changes % self.lose_every == 0
            if lose:
                self.lost.append(request.method)
            response.headers["x-openstack-request-id"] = f"req-{next(self._ids):08d}"
        if lose:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        return response

    def _route(self, request: httpx.Request) -> httpx.Response:
        parts = request.url.path.split("/")[3:]  # after /v1/<project>/
        body: JSON = json.loads(request.content) if request.content else {}
        if parts == ["stacks"]:
            if request.method == "POST":
                return self._create(body)
            return _answer(200, {"stacks": [dict(s) for s in self.stacks.values()]})
        if len(parts) == 2:  # by name (Heat redirects to name/id)
            named = [s for s in self.stacks.values() if s["stack_name"] == parts[1]]
            return _answer(200, {"stack": dict(named[0])}) if named else _not_found("no stack")
        stack = self.stacks.get(parts[2])
        if stack is None:
            return _not_found(f"no stack {parts[2]}")
        return self._on_stack(request.method, stack, parts[3:], body)

    def _create(self, body: JSON) -> httpx.Response:
        name = str(body["stack_name"])
        if self.refuse_creates:
            return _answer(500, {"error": {"message": "Heat said no"}})
        if f"id-{name}" in self.stacks:
            return _answer(409, {"error": {"message": f"stack {name} exists"}})
        self.calls.append(("create", name))
        defaults = {key: spec.get("default")
                    for key, spec in body["template"].get("parameters", {}).items()}
        ref = self.add(name, "CREATE_IN_PROGRESS",
                       parameters={**defaults, **body.get("parameters", {})})
        self._start(self.stacks[ref.id], "CREATE")
        return _answer(201, {"stack": {"id": ref.id}})

    def _on_stack(self, method: str, stack: JSON, rest: list[str], body: JSON) -> httpx.Response:
        name = str(stack["stack_name"])
        if method == "GET" and not rest:
            return _answer(200, {"stack": dict(stack)})
        if method in ("PATCH", "DELETE") and not rest:
            kind = "update" if method == "PATCH" else "delete"
            self.calls.append((kind, name))
            stack["parameters"].update(body.get("parameters", {}))
            stack["updated_time"] = str(next(self._ids))
            self._start(stack, kind.upper(), failed=kind == "update" and self.fail_updates)
            return _answer(202 if method == "PATCH" else 204)
        if method == "POST" and rest == ["actions"]:
            [action] = body
            self.calls.append((action, name))
            self._start(stack, action.upper())
            return _answer(200)
        if rest[:1] == ["resources"] and len(rest) > 1:
            return self._resource(method, stack, rest[1:], body)
        if method == "GET" and rest == ["outputs"]:
            return _answer(200, {"outputs": [{"output_key": key} for key in self.stack_outputs]})
        if method == "GET" and rest[:1] == ["outputs"]:
            return _answer(200, {"output": {"output_key": rest[1],
                                            "output_value": self.stack_outputs[rest[1]]}})
        if method == "GET" and rest == ["events"]:
            return _answer(200, {"events": []})
        raise NotImplementedError(f"the fake Heat has no {method} {'/'.join(rest)}")

    def _resource(self, method: str, stack: JSON, rest: list[str], body: JSON) -> httpx.Response:
        name, resource = str(stack["stack_name"]), rest[0]
        if method == "POST" and rest[1:] == ["signal"]:
            self.calls.append(("signal", name, resource, str(body.get("data"))))
            return _answer(200)
        if method != "GET" or rest[1:]:
            raise NotImplementedError(f"the fake Heat has no {method} resources/{'/'.join(rest)}")
        self.calls.append(("resource", name, resource))
        if name in self.unreadable:
            return _not_found("resource not readable")
        # its stack's one operation is the resource's
        return _answer(200, {"resource": {"resource_name": resource,
                                          "resource_status": stack["stack_status"]}})

    def _start(self, stack: JSON, action: str, *, failed: bool = False) -> None:
        if stack["stack_name"] in self.stuck or stack["parameters"].get(f"{action.lower()}_wait"):
            _set(stack, action + IN_PROGRESS)
        else:
            self._finish(stack, action, failed=failed)

    def _finish(self, stack: JSON, action: str, *, failed: bool = False) -> None:
        if action == "DELETE":
            self.stacks.pop(stack["id"], None)
        else:
            _set(stack, f"{action}_{'FAILED' if failed else 'COMPLETE'}")

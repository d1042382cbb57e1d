"""A thin, typed client of Heat's REST API (v1, noauth headers), on httpx.

Only what upgrade tests need: stacks, their resources, events, outputs and actions, and
`wait_for`, whose failure message carries what a person needs to see first: the stack's
status, its status reason and its last events.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

__all__ = ["HeatClient", "HeatError", "HeatNotFound", "StackRef", "StackWaitError"]

JSON = dict[str, Any]
#: errors where the request never reached Heat: retried whatever the method
_NOT_SENT: tuple[type[httpx.TransportError], ...] = (httpx.ConnectError,)
#: errors where the request may have reached Heat and only its answer was lost: retried only
#: for methods that change nothing (a repeated suspend, PATCH or DELETE may answer 409)
ANSWER_LOST: tuple[type[httpx.TransportError], ...] = (
    httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)
_SAFE_METHODS = frozenset({"GET", "HEAD"})
_DELETED = "DELETE_COMPLETE"
#: the header oslo.middleware takes a caller's global request id from
GLOBAL_REQUEST_ID = "X-OpenStack-Request-ID"
#: how long a state equal to the one before an operation is taken as not yet changed
STALE_GRACE_SECONDS = 5.0


class HeatError(Exception):
    """Heat answered an error status; ``message`` is Heat's own explanation."""

    def __init__(self, method: str, url: str, status: int, message: str) -> None:
        super().__init__(f"{method} {url} -> {status}: {message}")
        self.status = status
        self.message = message


class HeatNotFound(HeatError):
    """Heat answered 404."""


class StackWaitError(AssertionError):
    """A stack did not reach the wanted status: failed, timed out, or vanished."""

    def __init__(self, message: str, stack: JSON | None = None) -> None:
        super().__init__(message)
        self.stack = stack or {}


@dataclass(frozen=True)
class StackRef:
    """A stack's canonical identity: Heat addresses a stack by name *and* id."""

    name: str
    id: str

    @property
    def path(self) -> str:
        return f"stacks/{self.name}/{self.id}"

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"


Stack = StackRef | str


def _error_message(response: httpx.Response) -> str:
    # Heat's fault body: {"explanation", "code", "error": {"message", "type", ...}, "title"}
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason_phrase
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("message"):
        kind = error.get("type")
        return f"{kind}: {error['message']}" if kind else str(error["message"])
    if not isinstance(body, dict):
        return str(body)
    # an error Heat does not call safe to show has its type only (e.g. a TypeError)
    kind = error.get("type") if isinstance(error, dict) else None
    return (f"{kind}: " if kind else "") + str(body.get("explanation", body))[:500]


def stack_id_from_links(links: list[JSON], rel: str = "stack") -> str | None:
    """The stack id in a resource's or event's link of relation ``rel``."""
    for link in links:
        if link.get("rel") == rel:
            return urlsplit(str(link["href"])).path.rstrip("/").rsplit("/", 1)[-1]
    return None


class HeatClient:
    """Synchronous Heat v1 client for one project, authenticated by noauth headers."""

    def __init__(
        self,
        url: str,
        project: str,
        user: str = "grenadier",
        *,
        timeout: float = 60.0,
        retries: int = 4,
        backoff: float = 0.25,
        transport: httpx.BaseTransport | None = None,
        token: str | None = None,
        on_response: Callable[[httpx.Response], None] | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        #: called with every response Heat gave (errors too): e.g. to record its request id
        self.on_response = on_response
        self.project = project
        self.retries = retries
        self.backoff = backoff
        self._http = httpx.Client(
            base_url=f"{self.url}/v1/{project}/",
            # a real token (Keystone) or noauth's identity headers
            headers={"X-Auth-Token": token, "Accept": "application/json"} if token else
            {"X-Auth-User": user, "X-Auth-Project": project, "Accept": "application/json"},
            timeout=timeout,
            follow_redirects=True,  # /stacks/<name> redirects to /stacks/<name>/<id>
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def set_global_request_id(self, request_id: str | None) -> None:
        """Send ``request_id`` (``req-<uuid>``) as every request's global request id, which
        Heat's API and engines log beside their own ids (None: stop sending one)."""
        if request_id is None:
            self._http.headers.pop(GLOBAL_REQUEST_ID, None)
        else:
            self._http.headers[GLOBAL_REQUEST_ID] = request_id

    def __enter__(self) -> HeatClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport -------------------------------------------------------------------------

    def request(self, method: str, path: str, *, json: Any = None,
                params: Mapping[str, Any] | None = None) -> httpx.Response:
        """Send one request, raise on >= 400.

        A connection Heat refused or reset before taking the request (a busy API) is retried
        with a backoff, whatever the method; a request whose answer was lost on the way back
        (it may have reached Heat) is retried only when it is a GET or HEAD.
        """
        retried = _NOT_SENT + ANSWER_LOST if method.upper() in _SAFE_METHODS else _NOT_SENT
        attempt = 0
        while True:
            try:
                response = self._http.request(method, path, json=json, params=params)
                break
            except retried:
                if attempt >= self.retries:
                    raise
                time.sleep(self.backoff * 2**attempt)
                attempt += 1
        if self.on_response is not None:
            self.on_response(response)
        if response.status_code >= 400:
            kind = HeatNotFound if response.status_code == 404 else HeatError
            raise kind(method, str(response.url), response.status_code, _error_message(response))
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> JSON:
        response = self.request(method, path, **kwargs)
        if not response.content:
            return {}
        body = response.json()
        return body if isinstance(body, dict) else {"body": body}

    def ref(self, stack: Stack) -> StackRef:
        """The canonical name+id of ``stack`` (a name or an id is looked up)."""
        if isinstance(stack, StackRef):
            return stack
        body = self._json("GET", f"stacks/{stack}")["stack"]
        return StackRef(body["stack_name"], body["id"])

    # -- stacks ----------------------------------------------------------------------------

    def create_stack(self, name: str, template: JSON, parameters: Mapping[str, Any] | None = None,
                     files: Mapping[str, str] | None = None, timeout_mins: int | None = None,
                     *, disable_rollback: bool = True) -> StackRef:
        body: JSON = {"stack_name": name, "template": template,
                      "parameters": dict(parameters or {}), "files": dict(files or {}),
                      "disable_rollback": disable_rollback}
        if timeout_mins is not None:
            body["timeout_mins"] = timeout_mins
        try:
            created = self._json("POST", "stacks", json=body)["stack"]
        except HeatError as exc:
            # The stack exists already: an earlier attempt of this creation (whose answer
            # was lost, then retried by the caller) did reach Heat.
            found = self.find_stack(name) if exc.status == 409 else None
            if found is None:
                raise
            return found
        return StackRef(name, created["id"])

    def get_stack(self, stack: Stack, *, resolve_outputs: bool = False) -> JSON:
        """The stack as shown; outputs only on request (prefer :meth:`outputs`).

        Measured on a single-process Heat 26.0.2 on SQLite: after one `stack show` that
        resolved outputs, the next update of that stack never completed, while reading the
        outputs one by one (GET .../outputs/<key>) left it working.
        """
        path = stack.path if isinstance(stack, StackRef) else f"stacks/{stack}"
        params = None if resolve_outputs else {"resolve_outputs": "false"}
        body: JSON = self._json("GET", path, params=params)["stack"]
        return body

    def find_stack(self, name: str) -> StackRef | None:
        """The stack called ``name``, or None when there is none (deleted stacks are not found)."""
        try:
            body = self._json("GET", f"stacks/{name}")["stack"]
        except HeatNotFound:
            return None
        # With trusts, Heat shows DELETE_COMPLETE, then deletes the trust in Keystone, and
        # only then the stack row: for that moment a deleted stack is still found by name.
        if body.get("stack_status") == _DELETED:
            return None
        return StackRef(body["stack_name"], body["id"])

    def gone_by_name(self, name: str, timeout: float = 10.0) -> bool:
        """True once no stack called ``name`` is found; Heat may show a stack DELETE_COMPLETE a
        moment before its name stops resolving (measured: 10 ms under load), so poll a little."""
        deadline = time.monotonic() + timeout
        while self.find_stack(name) is not None:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)
        return True

    def list_stacks(self, *, show_nested: bool = False, **filters: Any) -> list[JSON]:
        params = {"show_nested": "true" if show_nested else "false", **filters}
        stacks: list[JSON] = self._json("GET", "stacks", params=params)["stacks"]
        return stacks

    def update_stack(self, stack: Stack, template: JSON,
                     parameters: Mapping[str, Any] | None = None,
                     files: Mapping[str, str] | None = None,
                     timeout_mins: int | None = None) -> None:
        """PUT: replace the stack's whole template (and parameters) with these."""
        body: JSON = {"template": template, "parameters": dict(parameters or {}),
                      "files": dict(files or {})}
        if timeout_mins is not None:
            body["timeout_mins"] = timeout_mins
        self.request("PUT", self.ref(stack).path, json=body)

    def patch_update(self, stack: Stack, parameters: Mapping[str, Any] | None = None,
                     **fields: Any) -> None:
        """PATCH: keep the existing template and parameters, change only what is given."""
        body: JSON = {"parameters": dict(parameters or {}), **fields}
        self.request("PATCH", self.ref(stack).path, json=body)

    def delete_stack(self, stack: Stack) -> None:
        """Start deleting ``stack``; a stack that is already gone counts as deleted."""
        ref = self.ref(stack)
        try:
            self.request("DELETE", ref.path)
        except HeatNotFound:
            return
        except HeatError as exc:
            # With trusts, a deleted stack stays visible as DELETE_COMPLETE until its trust is
            # gone, and deleting it again meanwhile answers 400: it is deleted all the same.
            if exc.status != 400 or self.status(ref) != _DELETED:
                raise

    def status(self, stack: Stack) -> str:
        """The stack's status now; DELETE_COMPLETE once Heat no longer finds it (404), as
        :meth:`wait_for` counts it."""
        try:
            return str(self.get_stack(stack).get("stack_status", ""))
        except HeatNotFound:
            return _DELETED

    def _action(self, stack: Stack, action: str) -> None:
        self.request("POST", f"{self.ref(stack).path}/actions", json={action: None})

    def suspend(self, stack: Stack) -> None:
        self._action(stack, "suspend")

    def resume(self, stack: Stack) -> None:
        self._action(stack, "resume")

    def check(self, stack: Stack) -> None:
        self._action(stack, "check")

    def template(self, stack: Stack) -> JSON:
        return self._json("GET", f"{self.ref(stack).path}/template")

    def outputs(self, stack: Stack) -> list[JSON]:
        """The stack's outputs as Heat shows them (output_key, output_value, output_error...),
        read one by one (see :meth:`get_stack` for why not through `stack show`)."""
        ref = self.ref(stack)
        keys = [o["output_key"] for o in self._json("GET", f"{ref.path}/outputs")["outputs"]]
        found: list[JSON] = []
        for key in sorted(keys):
            found.append(self._json("GET", f"{ref.path}/outputs/{key}")["output"])
        return found

    def output_values(self, stack: Stack) -> dict[str, Any]:
        return {o["output_key"]: o.get("output_value") for o in self.outputs(stack)}

    # -- resources and events --------------------------------------------------------------

    def list_resources(self, stack: Stack, nested_depth: int = 0) -> list[JSON]:
        params = {"nested_depth": nested_depth} if nested_depth else None
        body = self._json("GET", f"{self.ref(stack).path}/resources", params=params)
        resources: list[JSON] = body["resources"]
        return resources

    def get_resource(self, stack: Stack, resource: str) -> JSON:
        body: JSON = self._json("GET", f"{self.ref(stack).path}/resources/{resource}")["resource"]
        return body

    def signal_resource(self, stack: Stack, resource: str, data: Mapping[str, Any] | None) -> None:
        self.request("POST", f"{self.ref(stack).path}/resources/{resource}/signal",
                     json=dict(data) if data is not None else None)

    def list_events(self, stack: Stack, *, limit: int | None = None, nested_depth: int = 0,
                    newest_first: bool = True) -> list[JSON]:
        params: dict[str, Any] = {"sort_dir": "desc" if newest_first else "asc"}
        if limit is not None:
            params["limit"] = limit
        if nested_depth:
            params["nested_depth"] = nested_depth
        events: list[JSON] = self._json("GET", f"{self.ref(stack).path}/events",
                                        params=params)["events"]
        return events

    # -- waiting ---------------------------------------------------------------------------

    def wait_for(self, stack: Stack, statuses: Collection[str], timeout: float = 120.0, *,
                 poll: float = 0.5, before: JSON | None = None) -> JSON:
        """Poll until ``stack`` has one of ``statuses``; return the stack as last shown.

        A ``*_FAILED`` status not asked for fails at once. A stack that is gone (404) counts as
        DELETE_COMPLETE. ``before`` is the stack as shown before the operation being waited
        for: for a few seconds, a state equal to it (same status and updated time) is stale,
        not an answer, because actions switch the status from an engine thread a moment after
        the API call returned.
        """
        ref = self.ref(stack)
        wanted = set(statuses)
        started = time.monotonic()
        deadline = started + timeout
        while True:
            current = self._poll(ref)
            status = str(current.get("stack_status", ""))
            fresh = time.monotonic() - started > STALE_GRACE_SECONDS
            if fresh or not _is_stale(current, before):
                before = None  # the operation has shown itself: no later state is stale
                if status in wanted:
                    return current
                if status.endswith("_FAILED"):
                    raise self._wait_error(ref, current, wanted, "failed")
            if time.monotonic() >= deadline:
                raise self._wait_error(ref, current, wanted, f"timed out after {timeout:.0f} s")
            time.sleep(poll)

    def _poll(self, ref: StackRef) -> JSON:
        try:
            return self.get_stack(ref)
        except HeatNotFound:
            return {"id": ref.id, "stack_name": ref.name, "stack_status": _DELETED,
                    "stack_status_reason": "stack not found (deleted)"}

    def _wait_error(self, ref: StackRef, stack: JSON, wanted: set[str], how: str) -> StackWaitError:
        status = stack.get("stack_status")
        reason = str(stack.get("stack_status_reason") or "(none)")
        # the first line is what consoles and JUnit messages show: the cause goes in it
        first_reason = reason.strip().splitlines()[0] if reason.strip() else "(none)"
        lines = [
            f"stack {ref}: wanted {' or '.join(sorted(wanted))}, {how}: {status}: "
            f"{first_reason}",
            f"  status: {status}",
            f"  status reason: {reason}",
        ]
        lines += ["  last events:", *(f"    {line}" for line in self.recent_events(ref))]
        return StackWaitError("\n".join(lines), stack)

    def recent_events(self, stack: Stack, count: int = 5) -> list[str]:
        """The stack's last ``count`` events (nested ones too), one line each, oldest first."""
        try:
            # Heat may not apply the limit to nested events: cut here too
            events = self.list_events(stack, limit=count, nested_depth=3)[:count]
        except (HeatError, httpx.HTTPError) as exc:
            return [f"(events unavailable: {exc})"]
        return [_event_line(event) for event in reversed(events)] or ["(no events)"]


def _is_stale(current: JSON, before: JSON | None) -> bool:
    if before is None:
        return False
    return all(current.get(k) == before.get(k) for k in ("stack_status", "updated_time"))


def _event_line(event: JSON) -> str:
    reason = str(event.get("resource_status_reason") or "").replace("\n", " ")
    return (f"{event.get('event_time', '?')} {event.get('resource_name', '?')} "
            f"{event.get('resource_status', '?')}: {reason}").rstrip(": ")

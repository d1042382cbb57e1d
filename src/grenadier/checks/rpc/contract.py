"""A release's RPC contract (what ``probe.py`` dumps) and how a message binds to an endpoint.

Binding follows oslo.messaging's ``RPCDispatcher.dispatch``: an endpoint whose target version
is compatible with the message's (``version_is_compatible``), a public method of that name
(``DefaultRPCAccessPolicy``), then ``endpoint.method(ctxt, **kwargs)``, whose binding is done
here with :meth:`inspect.Signature.bind` on the endpoint's signature as the release's own
Python reported it: the same algorithm, on the same parameters, as the call itself.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: what a message without a version is taken for (oslo.messaging's dispatcher)
DEFAULT_VERSION = "1.0"


@dataclass(frozen=True)
class Param:
    """One parameter of an endpoint method, without ``self``."""

    name: str
    kind: str  # an inspect.Parameter kind name, e.g. POSITIONAL_OR_KEYWORD
    default: bool = False


@dataclass(frozen=True)
class Endpoint:
    """One RPC server endpoint of a release: its class, declared version, public methods."""

    api: str
    name: str
    version: str | None
    methods: Mapping[str, tuple[Param, ...]]


@dataclass(frozen=True)
class Message:
    """One message a release's code can send: where to, what, with which keyword arguments."""

    api: str
    method: str
    kwargs: tuple[str, ...]
    version: str = DEFAULT_VERSION
    kind: str = "call"
    #: the code that sends it, e.g. heat.rpc.client.EngineClient.list_stack_resources
    via: str = ""


@dataclass(frozen=True)
class ObjectInfo:
    """A versioned object class: version, fields (name -> type), own compatibility code."""

    name: str
    version: str
    fields: Mapping[str, str]
    compat: bool = False


@dataclass(frozen=True)
class Contract:
    """Everything one release sends and accepts over RPC, and its versioned objects."""

    release: str
    messages: tuple[Message, ...]
    endpoints: Mapping[str, Endpoint]
    objects: Mapping[str, ObjectInfo] = field(default_factory=dict)
    #: client methods the probe could not call (their messages are not known): name -> why
    skipped: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_probe(cls, release: str, data: Mapping[str, Any]) -> Contract:
        """The contract from ``probe.py``'s JSON."""
        endpoints = {
            api: Endpoint(api, str(ep["endpoint"]), ep.get("version"), {
                name: tuple(Param(str(p["name"]), str(p["kind"]), bool(p["default"]))
                            for p in params)
                for name, params in ep["methods"].items()})
            for api, ep in data["accepts"].items()}
        messages = tuple(Message(str(m["api"]), str(m["method"]), tuple(m["kwargs"]),
                                 str(m.get("version") or DEFAULT_VERSION), str(m["kind"]),
                                 str(m.get("via", ""))) for m in data["sends"])
        objects = {name: ObjectInfo(name, str(o["version"]), dict(o["fields"]),
                                    bool(o.get("compat")))
                   for name, o in data.get("objects", {}).items()}
        return cls(release, messages, endpoints, objects, dict(data.get("skipped", {})))


def _parts(version: str) -> tuple[int, int, int]:
    major, minor, rev = [*(int(part) for part in version.split(".")[:3]), 0, 0, 0][:3]
    return major, minor, rev


def version_is_compatible(implemented: str | None, wanted: str | None) -> bool:
    """oslo.messaging's rule: an endpoint of version X.Y.Z serves X.y.z with (y, z) <= (Y, Z);
    an endpoint that declares none serves any version."""
    if implemented is None:
        return True
    if wanted is None:
        return False
    have, want = _parts(implemented), _parts(wanted)
    return have[0] == want[0] and want[1:] <= have[1:]


def version_lower(new: str | None, old: str | None) -> bool:
    """``new`` is an older version than ``old`` (an endpoint that went back)."""
    return new is not None and old is not None and _parts(new) < _parts(old)


@dataclass(frozen=True)
class Problem:
    """Why a message cannot be dispatched: a kind, the arguments at fault, a sentence."""

    kind: str  # no-endpoint, unsupported-version, no-such-method, unexpected-argument,
    #            missing-argument, cannot-bind
    detail: str
    arguments: tuple[str, ...] = ()


_P = inspect.Parameter
_KINDS = {kind.name: kind for kind in (_P.POSITIONAL_ONLY, _P.POSITIONAL_OR_KEYWORD,
                                       _P.VAR_POSITIONAL, _P.KEYWORD_ONLY, _P.VAR_KEYWORD)}


def signature(params: tuple[Param, ...]) -> inspect.Signature:
    """An :class:`inspect.Signature` with the endpoint method's parameters."""
    return inspect.Signature([
        _P(p.name, _KINDS[p.kind], default=None if p.default else _P.empty) for p in params])


def _binding_problem(method: str, params: tuple[Param, ...], kwargs: tuple[str, ...]
                     ) -> Problem | None:
    """``method(ctxt, **kwargs)`` against ``params``: None when it binds."""
    try:
        signature(params).bind(object(), **dict.fromkeys(kwargs))
    except (TypeError, ValueError) as exc:
        named = {p.name for p in params[1:] if p.kind not in ("VAR_POSITIONAL", "VAR_KEYWORD",
                                                                "POSITIONAL_ONLY")}
        open_kwargs = any(p.kind == "VAR_KEYWORD" for p in params)
        unexpected = tuple(k for k in kwargs if k not in named and not open_kwargs)
        if unexpected:
            return Problem("unexpected-argument",
                           f"{method}() does not take keyword argument(s) "
                           f"{', '.join(map(repr, unexpected))}", unexpected)
        missing = tuple(p.name for p in params[1:] if not p.default and p.name not in kwargs
                        and p.kind in ("POSITIONAL_OR_KEYWORD", "KEYWORD_ONLY"))
        if missing:
            return Problem("missing-argument",
                           f"{method}() requires argument(s) {', '.join(map(repr, missing))} "
                           "that the message does not carry", missing)
        return Problem("cannot-bind", f"{method}(ctxt, **kwargs) does not bind: {exc}")
    return None


def dispatch(endpoint: Endpoint | None, message: Message) -> Problem | None:
    """What oslo.messaging's dispatcher would say to ``message`` at ``endpoint``: None when the
    call reaches the method with its arguments bound."""
    if endpoint is None:
        return Problem("no-endpoint", f"no {message.api} RPC endpoint listens")
    if not version_is_compatible(endpoint.version, message.version):
        return Problem("unsupported-version",
                       f"{endpoint.name} serves RPC API {endpoint.version}, the message asks "
                       f"for {message.version} (UnsupportedVersion)")
    params = endpoint.methods.get(message.method)
    if params is None or message.method.startswith("_"):
        return Problem("no-such-method", f"{endpoint.name} has no method {message.method}() "
                                         "(NoSuchMethod)")
    if not params:
        return Problem("cannot-bind", f"{message.method}() takes no context argument")
    return _binding_problem(message.method, params, message.kwargs)

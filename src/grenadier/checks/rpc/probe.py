# mypy: disable-error-code="import-not-found"
"""Dump one Heat release's RPC contract as JSON: what it sends, what it accepts, its objects.

Standalone on purpose: it is run with the *release's* Python (``<venv>/bin/python probe.py``),
so it may import Heat, and grenadier never does. Nothing is started, no bus is contacted:

- **sends**: every client method of ``heat.rpc.client.EngineClient``,
  ``heat.rpc.worker_client.WorkerClient`` and ``heat.rpc.listener_client.EngineListenerClient``
  is called against a recording transport (``heat.common.messaging.get_rpc_client`` replaced),
  once with its defaults and once with every optional argument given, so that a keyword sent
  only for a non-default value is seen too; the engine's direct calls to another engine's
  listener (``EngineService._remote_call(..., self.listener.SEND, stack_identity=...)``) are
  found in the source and replayed the same way. Each message is (API, method, keyword
  arguments, version, call or cast), the API being the topic it goes to.
- **accepts**: for ``EngineService``, ``WorkerService`` and ``EngineListener``, the declared
  RPC API version and every public method's signature as the oslo.messaging dispatcher calls it
  (``endpoint.method(ctxt, **kwargs)``: ``self`` dropped; decorators followed through
  ``__wrapped__``, as ``inspect.signature`` does).
- **objects**: every ``oslo.versionedobjects`` class of ``heat.objects``: its version, its
  fields (type and nullability) and whether Heat's code gives it ``obj_make_compatible``.

Output on stdout, one JSON object; everything Heat prints goes to stderr.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import inspect
import json
import pkgutil
import sys
import textwrap
from typing import Any

FORMAT = 1
#: (API, module, client class, constructor arguments)
CLIENTS = (("engine", "heat.rpc.client", "EngineClient", 0),
           ("worker", "heat.rpc.worker_client", "WorkerClient", 0),
           ("listener", "heat.rpc.listener_client", "EngineListenerClient", 1))
#: (API, module, endpoint class, attribute holding its RPC API version, or "" for none)
ENDPOINTS = (("engine", "heat.engine.service", "EngineService", "RPC_API_VERSION"),
             ("worker", "heat.engine.worker", "WorkerService", "RPC_API_VERSION"),
             ("listener", "heat.engine.service", "EngineListener", ""))
#: a client's own plumbing, not messages
HELPERS = frozenset({"call", "cast", "make_msg", "local_error_name", "ignore_error_by_name"})
#: the dispatcher's version when a message carries none (oslo.messaging)
DEFAULT_VERSION = "1.0"


class _Any:
    """A placeholder argument that survives what a client method does with its arguments."""

    def __getattr__(self, name: str) -> _Any:
        return self

    def __getitem__(self, key: object) -> _Any:
        return self

    def __call__(self, *args: object, **kwargs: object) -> _Any:
        return self

    def __iter__(self) -> Any:
        return iter(())

    def __bool__(self) -> bool:
        return True

    def __str__(self) -> str:
        return "placeholder"


class _Recorder:
    """Stands for an oslo.messaging RPCClient: records what would be sent."""

    def __init__(self, sink: list[dict[str, Any]], topics: dict[str, str],
                 options: dict[str, Any]) -> None:
        self._sink, self._topics, self._options = sink, topics, options
        self.via = ""

    def prepare(self, **options: Any) -> _Recorder:
        prepared = _Recorder(self._sink, self._topics, {**self._options, **options})
        prepared.via = self.via
        return prepared

    def _record(self, kind: str, method: str, kwargs: dict[str, Any]) -> _Any:
        topic = str(self._options.get("topic", ""))
        self._sink.append({"api": self._topics.get(topic, topic), "method": method,
                           "kwargs": sorted(kwargs), "kind": kind,
                           "version": str(self._options.get("version") or DEFAULT_VERSION)})
        return _Any()

    def call(self, ctxt: Any, method: str, **kwargs: Any) -> _Any:
        return self._record("call", method, kwargs)

    def cast(self, ctxt: Any, method: str, **kwargs: Any) -> _Any:
        return self._record("cast", method, kwargs)


def _topics() -> dict[str, str]:
    from heat.rpc import api as rpc_api
    from heat.rpc import worker_api

    return {rpc_api.ENGINE_TOPIC: "engine", worker_api.TOPIC: "worker",
            rpc_api.LISTENER_TOPIC: "listener"}


def _client_methods(cls: type) -> list[tuple[str, Any]]:
    return [(name, fn) for name, fn in vars(cls).items()
            if inspect.isfunction(fn) and name not in HELPERS and not name.startswith("__")]


def _arguments(fn: Any, every: bool) -> tuple[list[Any], dict[str, Any]]:
    """Placeholders for ``fn`` minus self and ctxt: the required ones, or (``every``) all."""
    params = list(inspect.signature(fn).parameters.values())[2:]
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for param in params:
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if param.default is param.empty or every:
            if param.kind is param.POSITIONAL_ONLY:
                args.append(_Any())
            else:
                kwargs[param.name] = _Any()
    return args, kwargs


def _record_client(sink: list[dict[str, Any]], api: str, module: str, cls_name: str,
                   init_args: int, skipped: dict[str, str]) -> None:
    cls = getattr(importlib.import_module(module), cls_name)
    client = cls(*[_Any()] * init_args)
    for name, fn in _client_methods(cls):
        for every in (False, True):
            start = len(sink)
            args, kwargs = _arguments(fn, every)
            try:
                getattr(client, name)(_Any(), *args, **kwargs)
            except Exception as exc:  # one method's surprise must not hide the others
                skipped[f"{cls_name}.{name}"] = f"{type(exc).__name__}: {exc}"
            for message in sink[start:]:
                message["via"] = f"{module}.{cls_name}.{name}"


def _remote_calls(service_cls: type, listener_cls: type) -> list[tuple[str, list[str], int]]:
    """``self._remote_call(cnxt, engine, timeout, self.listener.NAME, key=...)`` call sites:
    (method, keyword names, line)."""
    source = textwrap.dedent(inspect.getsource(service_cls))
    first = inspect.getsourcelines(service_cls)[1]
    found = []
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "_remote_call" and len(node.args) >= 4):
            name = node.args[3]
            method = getattr(listener_cls, name.attr, None) \
                if isinstance(name, ast.Attribute) else getattr(name, "value", None)
            if isinstance(method, str):
                keys = [k.arg for k in node.keywords if k.arg]
                found.append((method, keys, first + node.lineno - 1))
    return found


def _record_remote_calls(sink: list[dict[str, Any]], topics: dict[str, str],
                         skipped: dict[str, str]) -> None:
    from heat.engine import service
    from heat.rpc import api as rpc_api

    engine = object.__new__(service.EngineService)
    for method, keys, line in _remote_calls(service.EngineService, service.EngineListener):
        engine._client = _Recorder(sink, topics, {"topic": rpc_api.ENGINE_TOPIC})
        start = len(sink)
        try:
            service.EngineService._remote_call(engine, _Any(), "engine-id", 1, method,
                                               **dict.fromkeys(keys, _Any()))
        except Exception as exc:
            skipped[f"EngineService._remote_call:{line}"] = f"{type(exc).__name__}: {exc}"
        for message in sink[start:]:
            message["via"] = f"heat.engine.service.EngineService._remote_call (line {line})"


def _sends(skipped: dict[str, str]) -> list[dict[str, Any]]:
    from heat.common import messaging

    topics = _topics()
    sink: list[dict[str, Any]] = []
    messaging.get_rpc_client = lambda **options: _Recorder(sink, topics, options)
    for api, module, cls_name, init_args in CLIENTS:
        _record_client(sink, api, module, cls_name, init_args, skipped)
    _record_remote_calls(sink, topics, skipped)
    unique = {json.dumps(m, sort_keys=True): m for m in sink}
    return [unique[key] for key in sorted(unique)]


def _signature(cls: type, name: str) -> list[dict[str, Any]]:
    """The parameters the dispatcher's ``endpoint.method(ctxt, **kwargs)`` binds to."""
    raw = inspect.getattr_static(cls, name)
    params = list(inspect.signature(getattr(cls, name)).parameters.values())
    if not isinstance(raw, (staticmethod, classmethod)) and params:
        params = params[1:]  # self: the dispatcher calls the method on an instance
    return [{"name": p.name, "kind": p.kind.name, "default": p.default is not p.empty}
            for p in params]


def _accepts() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for api, module, cls_name, version_attr in ENDPOINTS:
        cls = getattr(importlib.import_module(module), cls_name)
        methods = {}
        for name in sorted(dir(cls)):
            if name.startswith("_") or not callable(getattr(cls, name, None)):
                continue
            with contextlib.suppress(TypeError, ValueError):  # no signature: not an RPC method
                methods[name] = _signature(cls, name)
        version = getattr(cls, version_attr, None) if version_attr else None
        out[api] = {"endpoint": f"{module}.{cls_name}", "methods": methods,
                    "version": str(version) if version else None}
    return out


def _field(field: Any) -> str:
    nullable = ", nullable" if getattr(field, "nullable", False) else ""
    return f"{type(field).__name__}{nullable}"


def _object_info(cls: Any, module: str) -> tuple[str, dict[str, Any]]:
    compat = any("obj_make_compatible" in vars(k) for k in cls.__mro__
                 if k.__module__.startswith("heat."))
    return str(cls.obj_name()), {
        "module": module, "version": str(cls.VERSION), "compat": compat,
        "fields": {name: _field(f) for name, f in sorted(cls.fields.items())}}


def _objects() -> dict[str, dict[str, Any]]:
    import heat.objects
    from oslo_versionedobjects import base as ovo

    found: dict[str, dict[str, Any]] = {}
    for info in pkgutil.iter_modules(heat.objects.__path__):
        module = importlib.import_module(f"heat.objects.{info.name}")
        for cls in list(vars(module).values()):
            if (inspect.isclass(cls) and issubclass(cls, ovo.VersionedObject)
                    and cls.__module__ == module.__name__ and getattr(cls, "fields", None)):
                name, facts = _object_info(cls, module.__name__)
                found[name] = facts
    return dict(sorted(found.items()))


def probe() -> dict[str, Any]:
    from oslo_config import cfg

    # Options read by the clients' constructors get their defaults; no heat.conf is read.
    cfg.CONF([], project="heat", default_config_files=[])
    skipped: dict[str, str] = {}
    try:
        from importlib.metadata import version

        heat_version: str | None = version("openstack-heat")
    except Exception:  # the version is informative only
        heat_version = None
    return {"format": FORMAT, "heat_version": heat_version, "sends": _sends(skipped),
            "accepts": _accepts(), "objects": _objects(), "skipped": skipped}


def main() -> int:
    real_stdout = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        result = probe()
    json.dump(result, real_stdout, indent=1, sort_keys=True)
    real_stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

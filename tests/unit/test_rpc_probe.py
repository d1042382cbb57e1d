"""probe.py run as a release runs it (its own Python, Heat importable), on a fake Heat tree, and
the rpc-contract check over two such trees: fires on a renamed keyword, quiet on a copy."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from grenadier.checks.api import CheckContext
from grenadier.checks.rpc import checks
from grenadier.errors import EnvironmentProblem
from grenadier.releases import Release

FAKE_LIBS = {
    "oslo_config/__init__.py": "",
    "oslo_config/cfg.py": "class _Conf:\n    def __call__(self, *a, **k):\n        pass\n"
                          "CONF = _Conf()\n",
    "oslo_versionedobjects/__init__.py": "",
    "oslo_versionedobjects/base.py": """
        class VersionedObject:
            VERSION = '1.0'
            fields = {}

            @classmethod
            def obj_name(cls):
                return cls.__name__
        """,
}
HEAT = {
    "heat/__init__.py": "", "heat/common/__init__.py": "", "heat/rpc/__init__.py": "",
    "heat/engine/__init__.py": "", "heat/objects/__init__.py": "",
    "heat/common/messaging.py": "def get_rpc_client(**kwargs):\n    raise RuntimeError('bus')\n",
    "heat/rpc/api.py": "ENGINE_TOPIC = 'engine'\nLISTENER_TOPIC = 'heat-engine-listener'\n",
    "heat/rpc/worker_api.py": "TOPIC = 'engine_worker'\n",
    "heat/rpc/client.py": """
        from heat.common import messaging

        class EngineClient:
            def __init__(self):
                self._client = messaging.get_rpc_client(topic='engine', version='1.0')

            @staticmethod
            def make_msg(method, **kwargs):
                return method, kwargs

            def call(self, ctxt, msg, version=None):
                method, kwargs = msg
                client = self._client.prepare(version=version) if version else self._client
                return client.call(ctxt, method, **kwargs)

            def list_stack_resources(self, ctxt, stack_identity, with_detail=False):
                return self.call(ctxt, self.make_msg('list_stack_resources',
                                                     stack_identity=stack_identity,
                                                     {kwarg}=with_detail), version='1.25')

            def show_stack(self, ctxt, stack_identity, resolve_outputs=True):
                return self.call(ctxt, self.make_msg('show_stack',
                                                     stack_identity=stack_identity,
                                                     resolve_outputs=resolve_outputs),
                                 version='1.20')
        """,
    "heat/rpc/worker_client.py": """
        from heat.common import messaging

        class WorkerClient:
            def __init__(self):
                self._client = messaging.get_rpc_client(topic='engine_worker', version='1.0')

            def check_resource(self, ctxt, resource_id):
                self._client.prepare(version='1.9').cast(ctxt, 'check_resource',
                                                         resource_id=resource_id)
        """,
    "heat/rpc/listener_client.py": """
        from heat.common import messaging

        class EngineListenerClient:
            def __init__(self, engine_id):
                self._client = messaging.get_rpc_client(topic='heat-engine-listener',
                                                        server=engine_id)

            def is_alive(self, ctxt):
                return self._client.call(ctxt, 'listening')
        """,
    "heat/engine/service.py": """
        import functools

        def request_context(func):
            @functools.wraps(func)
            def wrapped(self, ctx, *args, **kwargs):
                return func(self, ctx, *args, **kwargs)
            return wrapped

        class EngineListener:
            ACTIONS = (STOP_STACK, SEND) = ('stop_stack', 'send')

            def listening(self, ctxt):
                return True

            def stop_stack(self, ctxt, stack_identity):
                pass

        class EngineService:
            RPC_API_VERSION = '1.36'

            def _remote_call(self, cnxt, lock_engine_id, timeout, call, **kwargs):
                self._client.prepare(version='1.0', topic='heat-engine-listener',
                                     server=lock_engine_id).call(cnxt, call, **kwargs)

            def stop_remote(self, cnxt, stack_identity):
                self._remote_call(cnxt, 'e', 1, self.listener.STOP_STACK,
                                  stack_identity=stack_identity)

            @request_context
            def list_stack_resources(self, cnxt, stack_identity, {kwarg}=False):
                return []

            @request_context
            def show_stack(self, cnxt, stack_identity, resolve_outputs=True):
                return []
        """,
    "heat/engine/worker.py": """
        class WorkerService:
            RPC_API_VERSION = '1.9'

            def check_resource(self, cnxt, resource_id):
                pass
        """,
    "heat/objects/stack.py": """
        from oslo_versionedobjects import base

        class Stack(base.VersionedObject):
            VERSION = '1.0'
            fields = {'id': str, 'name': str}
        """,
}


def fake_release(root: Path, label: str, kwarg: str = "with_detail") -> Release:
    """A 'venv' whose python is this interpreter and whose site-packages hold a fake Heat."""
    venv = root / label
    site = venv / "lib" / "python3.11" / "site-packages"
    for name, text in {**FAKE_LIBS, **HEAT}.items():
        path = site / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).replace("{kwarg}", kwarg), encoding="utf-8")
    (site / "openstack_heat-1.0.dist-info").mkdir()
    (site / "openstack_heat-1.0.dist-info" / "RECORD").write_text(label, encoding="utf-8")
    (venv / "bin").mkdir()
    (venv / "bin" / "python").symlink_to(sys.executable)
    return Release(label, "1.0", venv, "pypi")


def probe(release: Release, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    monkeypatch.setenv("PYTHONPATH", str(release.site_packages))
    return checks.probe_release(release, release.venv / "probe.log")


def test_probe_records_every_message_with_its_api_version_and_sender(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = probe(fake_release(tmp_path, "base"), monkeypatch)
    sends = {(m["api"], m["method"]): m for m in data["sends"]}  # type: ignore[attr-defined]
    assert sends["engine", "list_stack_resources"]["kwargs"] == ["stack_identity", "with_detail"]
    assert sends["engine", "list_stack_resources"]["version"] == "1.25"
    assert sends["worker", "check_resource"]["kind"] == "cast"
    assert sends["listener", "listening"]["version"] == "1.0"
    assert sends["listener", "stop_stack"]["via"].startswith(
        "heat.engine.service.EngineService._remote_call (line ")
    accepts = data["accepts"]["engine"]  # type: ignore[index]
    assert accepts["version"] == "1.36"
    # self dropped, the decorator followed to the real signature
    assert [p["name"] for p in accepts["methods"]["list_stack_resources"]] == [
        "cnxt", "stack_identity", "with_detail"]
    assert data["objects"]["Stack"]["fields"] == {"id": "type", "name": "type"}  # type: ignore[index]
    assert data["skipped"] == {}


def _context(tmp_path: Path, base: Release, target: Release) -> CheckContext:
    class Deployment:
        logs = tmp_path

    return CheckContext(run_dir=tmp_path, base=base, target=target,
                        project=None, deployment=Deployment(),  # type: ignore[arg-type]
                        state=None)  # type: ignore[arg-type]


def test_check_fires_on_a_renamed_keyword_and_is_quiet_on_the_same_contract(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = fake_release(tmp_path, "base")
    renamed = fake_release(tmp_path, "renamed", kwarg="detailed")
    same = fake_release(tmp_path, "same")
    for release in (base, renamed, same):
        probe(release, monkeypatch)  # fills each venv's cache, read by the check
    errors = [f for f in checks.rpc_contract(_context(tmp_path, base, renamed))
              if f.severity == "error"]
    assert [(f.kind, "'with_detail'" in f.what, "list_stack_resources" in f.what)
            for f in errors] == [("unexpected-argument", True, True)]
    assert checks.rpc_contract(_context(tmp_path, base, same)) == []


def test_a_cached_contract_is_not_probed_again(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    release = fake_release(tmp_path, "base")
    first = probe(release, monkeypatch)
    (release.venv / "bin" / "python").unlink()  # a second probe run would fail
    assert checks.probe_release(release) == first
    # a corrupt cache is a miss: the probe runs again (and here cannot)
    (release.venv / checks.CACHE_FILE).write_text("{corrupt", encoding="utf-8")
    with pytest.raises(EnvironmentProblem, match="cannot run"):
        checks.probe_release(release)

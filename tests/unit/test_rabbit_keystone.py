"""Unit tests of the control plane: options, RabbitMQ and Keystone rendering, token transport,
and the cache that installs releases and tools (Keystone) against a fake package index.

No broker, Keystone or Heat is started here (tests/e2e/test_split_keystone.py does that).
"""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from grenadier.cli.main import build_parser
from grenadier.errors import UsageError
from grenadier.execute import Outcome
from grenadier.options.run import RunOptions
from grenadier.plugins.heat import conf
from grenadier.releases.tools import Tool
from grenadier.services import ServiceSpec
from grenadier.services import keystone as ks
from grenadier.services.rabbitmq import ExternalBus, RabbitMQ, amqp_answers
from tests.conftest import CliRunner, one_error_line
from tests.helpers.heat_conf import heat_conf_params, parse_ini

# -- options -----------------------------------------------------------------------------------


def test_defaults_are_the_embedded_all_in_one() -> None:
    options = RunOptions()
    assert (options.bus, options.topology, options.engines, options.auth) == \
        ("fake", "all-in-one", 1, "noauth")


def test_a_bus_makes_heat_split_by_default() -> None:
    assert RunOptions(bus="rabbit", engines=2).topology == "split"
    assert RunOptions(bus="rabbit", topology="all-in-one").topology == "all-in-one"


def test_bus_url_implies_rabbit() -> None:
    options = RunOptions(bus_url="rabbit://u:p@127.0.0.1:5672/")
    assert (options.bus, options.topology) == ("rabbit", "split")


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"topology": "split"}, "needs a message bus"),
    ({"engines": 2}, "needs a message bus"),
    ({"bus": "rabbit", "topology": "all-in-one", "engines": 3}, "needs --topology split"),
    ({"bus": "rabbit", "engines": 0}, "--engines 0"),
    ({"bus": "rabbit", "engines": 99}, "--engines 99"),
    ({"bus": "kafka"}, "--bus 'kafka'"),
    ({"auth": "ldap"}, "--auth 'ldap'"),
])
def test_impossible_control_planes_are_usage_errors(kwargs: dict[str, Any], words: str) -> None:
    with pytest.raises(UsageError, match=words):
        RunOptions(**kwargs)


def test_run_json_round_trip_keeps_the_control_plane(tmp_path: Path) -> None:
    RunOptions(bus="rabbit", engines=2, auth="keystone").save(tmp_path)
    loaded = RunOptions.load(tmp_path)
    assert (loaded.bus, loaded.topology, loaded.engines, loaded.auth) == \
        ("rabbit", "split", 2, "keystone")


def test_old_run_json_without_control_plane_loads(tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text(json.dumps({"base": "26.0.2", "target": "27.0.1"}))
    assert RunOptions.load(tmp_path).topology == "all-in-one"


def test_cli_parses_the_control_plane_flags() -> None:
    args = build_parser().parse_args(["run", "--bus", "rabbit", "--auth", "keystone",
                                      "--engines", "2", "--topology", "split"])
    assert (args.bus, args.auth, args.engines, args.topology) == ("rabbit", "keystone", 2, "split")


def test_cli_split_without_bus_is_one_error_line(cli: CliRunner, tmp_path: Path) -> None:
    # --only install keeps a mistake here from starting a whole run
    result = cli("run", "--topology", "split", "--only", "install", "--workdir",
                 str(tmp_path / "w"), "--cache-dir", str(tmp_path / "cache"))
    assert result.returncode == 2
    assert "needs a message bus" in one_error_line(result)


# -- heat.conf -------------------------------------------------------------------------------






KEYSTONE = conf.KeystoneParams(url="http://127.0.0.1:5000", service_user="heat",
                               service_password="s3cret", stack_domain_id="d0m",
                               stack_domain_admin="heat_domain_admin",
                               stack_domain_admin_password="d0mpw")


def test_keystone_heat_conf_uses_the_real_pipeline_and_trusts(tmp_path: Path) -> None:
    parsed = parse_ini(conf.render_heat_conf(heat_conf_params(tmp_path, keystone=KEYSTONE,
                                                  transport_url="rabbit://u:p@127.0.0.1:1/")))
    default = parsed["DEFAULT"]
    assert default["deferred_auth_method"] == "trusts"
    assert "keystone_backend" not in default  # the real keystone client, not the fake one
    assert default["transport_url"] == "rabbit://u:p@127.0.0.1:1/"
    assert (default["stack_user_domain_id"], default["stack_domain_admin_password"]) == \
        ("d0m", "d0mpw")
    assert "flavor" not in parsed["paste_deploy"]  # default pipeline: authtoken
    assert not parsed.has_section("noauth")
    authtoken = parsed["keystone_authtoken"]
    assert authtoken["www_authenticate_uri"] == "http://127.0.0.1:5000/v3"
    assert (authtoken["username"], authtoken["password"], authtoken["project_name"]) == \
        ("heat", "s3cret", "service")
    assert parsed["trustee"]["auth_type"] == "password"
    assert parsed["trustee"]["username"] == "heat"
    assert parsed["clients_keystone"]["auth_uri"] == "http://127.0.0.1:5000"
    assert not parsed.has_section("oslo_policy")  # Heat's own policy defaults, unchanged


def test_noauth_heat_conf_is_unchanged_by_default(tmp_path: Path) -> None:
    parsed = parse_ini(conf.render_heat_conf(heat_conf_params(tmp_path)))
    assert parsed["paste_deploy"]["flavor"] == "noauth"
    assert parsed["DEFAULT"]["deferred_auth_method"] == "password"
    assert parsed["DEFAULT"]["keystone_backend"] == conf.FAKE_KEYSTONE_BACKEND
    assert not parsed.has_option("oslo_policy", "enforce_new_defaults")
    assert not parsed.has_option("DEFAULT", "graceful_shutdown_timeout")


def test_split_noauth_accepts_the_legacy_policy_defaults(tmp_path: Path) -> None:
    parsed = parse_ini(conf.render_heat_conf(heat_conf_params(tmp_path, split_noauth=True,
                                                  graceful_shutdown_timeout=5)))
    assert parsed["oslo_policy"]["enforce_new_defaults"] == "false"
    assert not parsed.has_option("oslo_policy", "policy_file")  # no policy overrides file
    assert parsed["DEFAULT"]["graceful_shutdown_timeout"] == "5"


def test_engine_host_file() -> None:
    assert parse_ini(conf.render_host_conf("engine-base-2"))["DEFAULT"]["host"] == "engine-base-2"
    with pytest.raises(ValueError, match="host"):
        conf.render_host_conf("two words")


# -- RabbitMQ ----------------------------------------------------------------------------------


def test_private_rabbit_keeps_everything_in_the_run(tmp_path: Path) -> None:
    bus = RabbitMQ(tmp_path)
    creds = tmp_path / "rabbitmq" / "credentials.json"
    assert creds.stat().st_mode & 0o077 == 0
    assert RabbitMQ(tmp_path).creds == bus.creds  # a resumed run finds the same broker
    ports = {bus.creds.amqp_port, bus.creds.dist_port, bus.creds.epmd_port}
    assert len(ports) == 3
    text = bus.config_text()
    assert f"listeners.tcp.1 = 127.0.0.1:{bus.creds.amqp_port}" in text
    assert f"default_pass = {bus.creds.password}" in text
    assert "guest" not in text
    env = bus.env()
    for key in ("HOME", "RABBITMQ_MNESIA_BASE", "RABBITMQ_CONFIG_FILE", "RABBITMQ_LOG_BASE",
                "RABBITMQ_CONF_ENV_FILE", "RABBITMQ_ENABLED_PLUGINS_FILE"):
        assert env[key].startswith(str(tmp_path)), key
    assert env["ERL_EPMD_PORT"] == str(bus.creds.epmd_port)  # never the shared 4369
    assert env["RABBITMQ_NODE_IP_ADDRESS"] == "127.0.0.1"
    assert "{127,0,0,1}" in env["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"]
    assert bus.transport_url() == (f"rabbit://grenadier:{bus.creds.password}@127.0.0.1:"
                                   f"{bus.creds.amqp_port}/")
    assert bus.creds.password not in json.dumps(bus.describe())


def test_external_bus_url_is_checked() -> None:
    with pytest.raises(UsageError, match="--bus-url"):
        ExternalBus("http://example/")
    assert "secret" not in str(ExternalBus("rabbit://u:secret@127.0.0.1:5672/").describe())


def test_amqp_probe_wants_connection_start(tmp_path: Path) -> None:
    # a listener that answers like a broker: a method frame, class 10 method 10
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]

    def answer() -> None:
        conn, _ = server.accept()
        conn.recv(8)
        conn.sendall(b"\x01\x00\x00\x00\x00\x01\x00\x00\x0a\x00\x0a" + b"\x00" * 8)
        conn.close()

    thread = threading.Thread(target=answer)
    thread.start()
    try:
        assert amqp_answers(port)
    finally:
        thread.join(5)
        server.close()


# -- Keystone ----------------------------------------------------------------------------------


def test_keystone_credentials_are_private_and_stable(tmp_path: Path) -> None:
    first = ks.Keystone(tmp_path, cache=None, heat_port=8004)  # type: ignore[arg-type]
    path = tmp_path / "keystone" / "credentials.json"
    assert path.stat().st_mode & 0o077 == 0
    again = ks.Keystone(tmp_path, cache=None, heat_port=8004)  # type: ignore[arg-type]
    assert again.creds == first.creds
    passwords = {first.creds.admin.password, first.creds.service.password,
                 first.creds.tests.password, first.creds.stack_domain_admin_password}
    assert len(passwords) == 4
    assert not first.provisioned
    text = first.conf_text()
    assert f"sqlite:///{tmp_path / 'keystone' / 'data' / 'keystone.sqlite'}" in text
    assert "password_hash_rounds = 4" in text
    assert first.auth()["credentials"] == str(path)


def test_account_asks_for_a_project_scoped_token() -> None:
    body = ks.Account("grenadier", "pw", "grenadier").auth_body()["auth"]
    assert body["identity"]["password"]["user"] == {"name": "grenadier", "password": "pw",
                                                    "domain": {"name": "Default"}}
    assert body["scope"]["project"]["name"] == "grenadier"


def test_token_transport_replaces_noauth_headers_and_renews_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    issued: list[str] = []

    def fake_issue(v3: str, account: ks.Account, timeout: float = 30) -> str:
        issued.append(f"tok{len(issued)}")
        return issued[-1]

    monkeypatch.setattr(ks, "issue_token", fake_issue)
    seen: list[tuple[str, bool]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        token = request.headers["X-Auth-Token"]
        seen.append((token, "X-Auth-User" in request.headers))
        return httpx.Response(401 if token == "tok0" else 200)

    transport = ks.TokenTransport("http://ks/v3", ks.Account("u", "p", "p"),
                                  inner=httpx.MockTransport(handler))
    with httpx.Client(transport=transport, headers={"X-Auth-User": "u"}) as client:
        assert client.get("http://heat/v1/p/stacks").status_code == 200
        assert client.get("http://heat/v1/p/stacks").status_code == 200
    assert seen == [("tok0", False), ("tok1", False), ("tok1", False)]
    assert issued == ["tok0", "tok1"]


# -- wiring: bus choice, split services --------------------------------------------------------


def test_make_bus_follows_the_options(tmp_path: Path) -> None:
    from grenadier.phases.context import make_bus

    assert make_bus(RunOptions(), tmp_path) is None
    assert isinstance(make_bus(RunOptions(bus="rabbit"), tmp_path), RabbitMQ)
    assert isinstance(make_bus(RunOptions(bus_url="rabbit://u:p@127.0.0.1:5672/"), tmp_path),
                      ExternalBus)


def _fake_release(tmp_path: Path) -> Any:
    from grenadier.releases import Release

    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    for name in ("python", "heat-wsgi-api", "heat-engine", "heat-manage"):
        (venv / "bin" / name).write_text("")
    (venv / "etc" / "heat").mkdir(parents=True)
    (venv / "etc" / "heat" / "api-paste.ini").write_text("[pipeline:x]\n")
    return Release("26.0.2", "26.0.2", venv, "pypi")


def test_split_topology_runs_the_api_and_each_engine_with_its_host(tmp_path: Path) -> None:
    from grenadier.plugins.heat.project import HeatProject
    from grenadier.project.api import Deployment
    from grenadier.services.sqlite import SqliteDatabase

    run_dir = tmp_path / "run"
    (run_dir / "etc").mkdir(parents=True)
    bus = RabbitMQ(run_dir)
    deployment = Deployment(run_dir, SqliteDatabase(run_dir), 18004, bus=bus,
                            topology="split", engines=2)
    release = _fake_release(tmp_path)
    project = HeatProject()
    project.configure(release, deployment)
    parsed = parse_ini((run_dir / "etc" / "heat.conf").read_text())
    assert parsed["DEFAULT"]["transport_url"] == bus.transport_url()
    assert parsed["DEFAULT"]["graceful_shutdown_timeout"] == "5"
    specs = project.services(release, deployment, "target")
    assert [s.name for s in specs] == ["heat-target-api", "heat-target-engine-1",
                                       "heat-target-engine-2"]
    api = [str(part) for part in specs[0].cmd]
    assert api[0].endswith("bin/heat-wsgi-api")
    assert api[1:api.index("--")] == ["--host", "127.0.0.1", "--port", "18004"]
    engine = [str(part) for part in specs[2].cmd]
    host_file = run_dir / "etc" / "engines" / "engine-target-2.conf"
    assert engine[-3:-2] == [str(host_file)]
    assert "engine-target-2" in host_file.read_text()
    assert engine[-1].endswith("logs/heat-target-engine-2.log")


def test_keystone_start_serves_and_provisions_only(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    keystone = ks.Keystone(tmp_path, cache=None, heat_port=8004)  # type: ignore[arg-type]
    tool = Tool("keystone==30.0.0", "30.0.0", tmp_path / "venv", "keystone")

    def never(*args: object) -> None:
        raise AssertionError("start() must not install or bootstrap again")

    monkeypatch.setattr(keystone, "install", never)
    monkeypatch.setattr(keystone, "bootstrap", never)
    provisioned: list[bool] = []
    monkeypatch.setattr(keystone, "provision", lambda: provisioned.append(True))
    started: list[ServiceSpec] = []

    class FakeSupervisor:
        def start(self, spec: ServiceSpec) -> None:
            started.append(spec)

    keystone.start(FakeSupervisor(), tool)  # type: ignore[arg-type]
    [spec] = started
    assert spec.name == "keystone"
    assert list(spec.cmd[:3]) == [str(tool.python), str(ks.SERVER), "serve"]
    assert provisioned == [True]


def test_keystone_bootstrap_runs_once_per_run(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    keystone = ks.Keystone(tmp_path, cache=None, heat_port=8004)  # type: ignore[arg-type]
    tool = Tool("keystone==30.0.0", "30.0.0", tmp_path / "venv", "keystone")
    commands: list[list[str]] = []

    def fake_run(request: Any) -> Any:
        commands.append([str(part) for part in request.cmd])
        return Outcome(request, 0, "", "", 0.0, 0.1)

    monkeypatch.setattr(ks, "run", fake_run)
    keystone.bootstrap(tool)
    keystone.bootstrap(tool)  # a resumed run: the config is rewritten, nothing is run again
    assert [cmd[2] for cmd in commands] == ["bootstrap"]
    assert (tmp_path / "keystone" / "keystone.conf").read_text() == keystone.conf_text()


def test_split_api_runs_on_the_multi_threaded_server_once_its_tool_is_installed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from grenadier.plugins.heat import project as heat_project
    from grenadier.project.api import Deployment
    from grenadier.services.sqlite import SqliteDatabase

    run_dir = tmp_path / "run"
    (run_dir / "etc").mkdir(parents=True)
    deployment = Deployment(run_dir, SqliteDatabase(run_dir), 18004, bus=RabbitMQ(run_dir),
                            topology="split", engines=1)
    project = heat_project.HeatProject()
    assert project.tools(deployment) == [heat_project.WSGI_SERVER]
    assert project.tools(Deployment(run_dir, SqliteDatabase(run_dir), 18004)) == []
    release = _fake_release(tmp_path)
    deployment.tools["waitress"] = tmp_path / "site"
    api = [str(part) for part in project.services(release, deployment, "base")[0].cmd]
    assert api[:2] == [str(release.python), str(heat_project.API_SERVER)]
    assert api[2:api.index("--")] == ["--site", str(tmp_path / "site"), "--host", "127.0.0.1",
                                      "--port", "18004", "--threads",
                                      str(heat_project.API_THREADS)]
    assert api[api.index("--") + 1:][:2] == ["--config-file", str(run_dir / "etc/heat.conf")]
    # the benchmark hook: the release's own single-threaded heat-wsgi-api, as before
    monkeypatch.setenv(heat_project.API_SERVER_ENV, "heat-wsgi-api")
    api = [str(part) for part in project.services(release, deployment, "base")[0].cmd]
    assert api[0].endswith("bin/heat-wsgi-api")


def test_engines_and_api_log_the_rpc_messages_that_join_requests_to_engines(
        tmp_path: Path) -> None:
    from grenadier.plugins.heat import project as heat_project
    from grenadier.project.api import Deployment
    from grenadier.services.sqlite import SqliteDatabase

    release = _fake_release(tmp_path)
    # no oslo_log to read: oslo.log's defaults stay, nothing is written
    assert heat_project.log_levels(release, conf.RPC_SERVER_DEBUG) == ()
    options = release.venv / "lib" / "python3.11" / "site-packages" / "oslo_log" / "_options.py"
    options.parent.mkdir(parents=True)
    options.write_text("DEFAULT_LOG_LEVELS = ['amqp=WARN', 'oslo_messaging=INFO']\n")
    run_dir = tmp_path / "run"
    (run_dir / "etc").mkdir(parents=True)
    deployment = Deployment(run_dir, SqliteDatabase(run_dir), 18004, bus=RabbitMQ(run_dir),
                            topology="split", engines=1)
    project = heat_project.HeatProject()
    project.configure(release, deployment)
    engine = parse_ini((run_dir / "etc" / "engines" / "engine-base-1.conf").read_text())
    assert engine["DEFAULT"]["default_log_levels"] == \
        "amqp=WARN,oslo_messaging=INFO,oslo_messaging.rpc.server=DEBUG"
    api = parse_ini((run_dir / "etc" / heat_project.API_CONF).read_text())
    assert api["DEFAULT"]["default_log_levels"] == \
        "amqp=WARN,oslo_messaging=INFO,oslo_messaging._drivers.amqpdriver=DEBUG"
    cmd = [str(p) for p in project.services(release, deployment, "base")[0].cmd]
    assert str(run_dir / "etc" / heat_project.API_CONF) in cmd
    # the deployer's files stay the ones the config checks look at
    assert project.config_files(deployment) == [run_dir / "etc" / "heat.conf"]
    with pytest.raises(ValueError, match="bad log levels"):
        conf.render_host_conf("engine-base-1", ("a=INFO,b=DEBUG",))

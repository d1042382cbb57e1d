"""Services run as system users of their own where grenadier is root: what becomes theirs,
what they must reach, and which user each service is given."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from grenadier.errors import EnvironmentProblem
from grenadier.execute import Outcome
from grenadier.plugins.heat import project as heat_project
from grenadier.project.api import Deployment
from grenadier.releases import Release
from grenadier.releases.tools import Tool
from grenadier.services import ServiceSpec, Supervisor, accounts
from grenadier.services import keystone as ks
from grenadier.services.postgres import EmbeddedPostgres
from grenadier.services.rabbitmq import RabbitMQ
from grenadier.services.sqlite import SqliteDatabase

#: an unprivileged account every Debian system has, standing in for a service's own
OTHER = "nobody"
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="changing owners and users needs root")


def _uid(user: str) -> int:
    return pwd.getpwnam(user).pw_uid


def _running_as(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for pid {pid}")


def test_no_user_means_nothing_changes(tmp_path: Path) -> None:
    assert accounts.service_user("grenadier-heat", tmp_path / "run") is None
    accounts.hand_over(None, [tmp_path / "log"])
    accounts.reach(None, [tmp_path / "missing"], "heat")
    assert not (tmp_path / "log").exists()
    assert not (tmp_path / "run").exists()


@as_root
def test_hand_over_makes_files_and_directories_owner_only(tmp_path: Path) -> None:
    log, data = tmp_path / "logs" / "heat.log", tmp_path / "db"
    data.mkdir(mode=0o755)
    conf = tmp_path / "heat.conf"
    conf.write_text("[database]\nconnection = x\n")
    conf.chmod(0o644)
    accounts.hand_over(OTHER, [log, data, conf])
    for path, mode in ((log, 0o600), (data, 0o700), (conf, 0o600)):
        info = path.stat()
        assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (_uid(OTHER), mode), path
    assert log.read_text() == ""
    assert conf.read_text().startswith("[database]")


@as_root
def test_hand_over_never_follows_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "shadow"
    target.write_text("secret")
    target.chmod(0o600)
    (tmp_path / "heat.log").symlink_to(target)
    with pytest.raises(OSError, match="Too many levels of symbolic links"):
        accounts.hand_over(OTHER, [tmp_path / "heat.log"])
    assert (target.stat().st_uid, stat.S_IMODE(target.stat().st_mode)) == (0, 0o600)


@as_root
def test_reach_opens_the_way_to_what_others_may_read(tmp_path: Path) -> None:
    closed = tmp_path / "home"
    closed.mkdir(mode=0o700)
    script = closed / "sub" / "launcher.py"
    script.parent.mkdir(mode=0o700)
    script.write_text("")
    script.chmod(0o644)
    # a venv's python is a link into a directory of its own (pyenv's, under /root)
    python = tmp_path / "python"
    python.symlink_to(script)
    accounts.reach(OTHER, [python], "heat")
    assert script.parent.stat().st_mode & 0o001
    assert stat.S_IMODE(closed.stat().st_mode) == 0o701  # passed through, never listed


@as_root
def test_reach_refuses_what_the_user_cannot_read_in_one_line(tmp_path: Path) -> None:
    secret = tmp_path / "my-heat.conf"
    secret.write_text("[DEFAULT]\n")
    secret.chmod(0o600)
    with pytest.raises(EnvironmentProblem, match=f"heat-base runs as the system user {OTHER}, "
                                                 f"which cannot read {secret}") as caught:
        accounts.reach(OTHER, [secret], "heat-base")
    assert f"chgrp {OTHER}" in (caught.value.hint or "")
    secret.chmod(0o644)
    accounts.reach(OTHER, [secret], "heat-base")


@as_root
def test_a_service_runs_as_its_user_and_still_stops(tmp_path: Path) -> None:
    own_log = tmp_path / "logs" / "svc-own.log"
    spec = ServiceSpec(name="svc", cmd=["sleep", "60"], log=tmp_path / "svc.log",
                       ready=lambda: True, user=OTHER, owns=(own_log,), stop_timeout=5)
    with Supervisor() as sup:
        svc = sup.start(spec)
        assert _running_as(svc.pid) == _uid(OTHER)
        assert own_log.stat().st_uid == _uid(OTHER)
        assert sup.stop("svc") == -15  # grenadier (root) signals it by PID


@as_root
def test_a_service_its_user_cannot_read_is_not_started(tmp_path: Path) -> None:
    secret = tmp_path / "user.conf"
    secret.write_text("")
    secret.chmod(0o600)
    spec = ServiceSpec(name="svc", cmd=["sleep", "60"], log=tmp_path / "svc.log",
                       ready=lambda: True, user=OTHER, reads=(secret,))
    with Supervisor() as sup, pytest.raises(EnvironmentProblem, match="cannot read"):
        sup.start(spec)
    assert sup.events == []


# -- which user each service gets ---------------------------------------------------------------


@pytest.fixture
def root(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Path]]:
    """grenadier as root, without making users: the users asked for, and their run dirs."""
    asked: list[tuple[str, Path]] = []

    def service_user(name: str, run_dir: Path) -> str:
        asked.append((name, run_dir))
        return name

    monkeypatch.setattr(accounts, "running_as_root", lambda: True)
    monkeypatch.setattr(accounts, "service_user", service_user)
    return asked


def _release(tmp_path: Path) -> Release:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    for name in ("python", "heat-wsgi-api", "heat-engine"):
        (venv / "bin" / name).write_text("")
    (venv / "etc" / "heat").mkdir(parents=True)
    (venv / "etc" / "heat" / "api-paste.ini").write_text("[pipeline:x]\n")
    return Release("26.0.2", "26.0.2", venv, "pypi")


@pytest.mark.parametrize("topology", ["all-in-one", "split"])
def test_every_heat_process_runs_as_heats_own_user(
        tmp_path: Path, root: list[tuple[str, Path]], topology: str) -> None:
    run_dir = tmp_path / "run"
    user_conf = tmp_path / "mine.conf"
    deployment = Deployment(run_dir, SqliteDatabase(run_dir), 18004, [user_conf],
                            bus=RabbitMQ(run_dir) if topology == "split" else None,
                            topology=topology, engines=2)
    release = _release(tmp_path)
    project = heat_project.HeatProject()
    project.configure(release, deployment)
    specs = project.services(release, deployment, "base")
    assert len(specs) == (3 if topology == "split" else 1)
    assert {spec.user for spec in specs} == {"grenadier-heat"}
    assert root[0] == ("grenadier-heat", run_dir)
    db = run_dir / "db"
    for spec in specs:
        log = Path(str(spec.cmd[list(spec.cmd).index("--log-file") + 1]))
        # its passwords, its own --log-file, and the SQLite file and directory it writes
        assert {run_dir / "etc" / "heat.conf", log, db, db / "heat.sqlite"} == set(spec.owns)
        assert {release.venv, release.python, user_conf} <= set(spec.reads), spec.name
    if topology == "all-in-one":
        assert heat_project.LAUNCHER in specs[0].reads


def test_heat_on_a_database_server_owns_no_database_file(tmp_path: Path,
                                                         root: list[tuple[str, Path]]) -> None:
    run_dir = tmp_path / "run"
    deployment = Deployment(run_dir, SqliteDatabase(run_dir), 18004)
    release = _release(tmp_path)
    heat_project.HeatProject().configure(release, deployment)
    server = object.__new__(EmbeddedPostgres)  # no server: only what Heat writes matters
    deployment.db = server
    [spec] = heat_project.HeatProject().services(release, deployment, "base")
    assert {p.name for p in spec.owns} == {"heat.conf", "heat-base.log"}


def test_keystone_is_bootstrapped_and_served_as_its_own_user(
        tmp_path: Path, root: list[tuple[str, Path]], monkeypatch: pytest.MonkeyPatch) -> None:
    keystone = ks.Keystone(tmp_path, cache=None, heat_port=8004)  # type: ignore[arg-type]
    tool = Tool("keystone==30.0.0", "30.0.0", tmp_path / "venv", "keystone")
    requests: list[Any] = []
    given: list[tuple[str | None, list[Path]]] = []
    monkeypatch.setattr(ks, "run", lambda r: requests.append(r) or Outcome(r, 0, "", "", 0, 1))
    monkeypatch.setattr(accounts, "hand_over", lambda user, paths: given.append((user,
                                                                                 list(paths))))
    monkeypatch.setattr(accounts, "reach", lambda user, paths, service: None)
    keystone.bootstrap(tool)
    [request] = requests
    assert request.user == ks.KEYSTONE_USER
    assert given == [(ks.KEYSTONE_USER, [keystone.data, keystone.log])]
    # its database and key repositories are in the directory made its own
    conf = keystone.conf_text()
    assert f"sqlite:///{keystone.data / 'keystone.sqlite'}" in conf
    assert f"key_repository = {keystone.data / 'fernet-keys'}" in conf
    started: list[ServiceSpec] = []

    class FakeSupervisor:
        def start(self, spec: ServiceSpec) -> None:
            started.append(spec)

    monkeypatch.setattr(keystone, "provision", lambda: None)
    keystone.start(FakeSupervisor(), tool)  # type: ignore[arg-type]
    [spec] = started
    assert (spec.user, spec.owns, spec.reads) == (ks.KEYSTONE_USER, (keystone.log,),
                                                  (tool.python, ks.SERVER))


def _postgres(run_dir: Path, user: str | None) -> EmbeddedPostgres:
    server = object.__new__(EmbeddedPostgres)
    server.run_dir, server.pgdata, server.user = run_dir, run_dir / "db" / "pgdata", user
    return server


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory whose sockets fit a socket path's length, wherever pytest's tmp_path is."""
    path = Path(tempfile.mkdtemp(prefix="g-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_postgres_lets_heats_own_user_reach_its_socket(short_dir: Path) -> None:
    tmp_path = short_dir
    alone = _postgres(tmp_path, None)
    assert alone._socket_dir() == alone.pgdata  # 0700, the server's (and grenadier's) own
    assert alone._socket_options() == ["-c", "unix_socket_permissions=0700"]
    shared = _postgres(tmp_path, "embedded_postgres")
    # never the data directory, which only the server may enter
    assert shared._socket_dir() == tmp_path / "db" / "pgsock"
    assert shared._socket_options() == ["-c", "unix_socket_permissions=0770",
                                        "-c", "unix_socket_group=grenadier"]
    deep = _postgres(tmp_path / ("x" * 80), "embedded_postgres")
    assert deep._socket_dir().name.startswith("grenadier-pg-")

"""No other local user gets into a run: its databases, sockets and files are out of reach,
every service listens on loopback or a private unix socket only and, where grenadier is root,
runs as a system user of its own (none as root, none able to read another's secrets), and
``grenadier down`` of a run left running stops every service it has."""

from __future__ import annotations

import contextlib
import grp
import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from grenadier.host import SERVICE_GROUP
from grenadier.services.mariadb import MariaDB
from tests.e2e.conftest import KeptRun, grenadier, wait_left

OTHER_USER = "grenadier-e2e-other"
#: run as the other user: tries each way in and prints, for each, how it ended
PROBE = """
import json, os, socket, sys
found = {}
for what, path in json.loads(sys.argv[1]).items():
    try:
        if what.startswith("socket"):
            with socket.socket(socket.AF_UNIX) as sock:
                sock.connect(path)
            found[what] = "connected"
        elif what.startswith("list"):
            os.listdir(path)
            found[what] = "listed"
        else:
            with open(path, "rb") as handle:
                handle.read(1)
            found[what] = "read"
    except OSError as exc:
        found[what] = exc.strerror
print(json.dumps(found))
"""


@pytest.fixture(scope="module")
def other_user() -> Iterator[pwd.struct_passwd]:
    """A second, unprivileged local user (made here, removed after)."""
    if os.geteuid() != 0:
        pytest.skip("making a second local user needs root")
    made = subprocess.run(["useradd", "--system", "--no-create-home", OTHER_USER],
                          capture_output=True, text=True, check=False)
    assert made.returncode == 0, made.stderr
    try:
        yield pwd.getpwnam(OTHER_USER)
    finally:
        subprocess.run(["userdel", OTHER_USER], check=False)


def _as(user: pwd.struct_passwd, *cmd: str,
        groups: tuple[int, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), user=user.pw_uid, group=user.pw_gid,
                          extra_groups=list(groups), capture_output=True, text=True, timeout=60,
                          check=False, cwd="/")


def _probe(user: pwd.struct_passwd, targets: dict[str, Path],
           groups: tuple[int, ...] = ()) -> dict[str, str]:
    python = shutil.which("python3", path="/usr/bin:/bin") or sys.executable
    result = _as(user, python, "-I", "-c", PROBE, json.dumps({k: str(v) for k, v in
                                                              targets.items()}), groups=groups)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def _run_files(run_dir: Path) -> dict[str, Path]:
    """The run directory and every file of it that holds a secret (those the run has)."""
    files = {"list run directory": run_dir, "read heat.conf": run_dir / "etc" / "heat.conf",
             "read secrets.json": run_dir / "etc" / "secrets.json",
             "read db.json": run_dir / "db.json", "read report.json": run_dir / "report.json"}
    for name in ("db/postgresql.json", "db/pgpass", "db/mariadb.json",
                 "rabbitmq/credentials.json", "keystone/credentials.json"):
        if (run_dir / name).is_file():
            files[f"read {name}"] = run_dir / name
    if (run_dir / "keystone" / "data").is_dir():
        files["list keystone/data"] = run_dir / "keystone" / "data"
    return files


def test_another_user_cannot_reach_the_postgresql_of_a_run(postgres_kept: KeptRun,
                                                            other_user: pwd.struct_passwd) -> None:
    run_dir = postgres_kept.run.run_dir
    assert postgres_kept.run.returncode == 0, postgres_kept.run.err[-3000:]
    url = json.loads((run_dir / "db.json").read_text())["url"]
    socket_dir = Path(url.rsplit("?host=", 1)[1])
    # the run directory is too long for a socket path: the socket has a directory of its own
    assert not socket_dir.is_relative_to(run_dir)
    sock = socket_dir / ".s.PGSQL.5432"
    assert sock.is_socket()
    found = _probe(other_user, {"socket": sock, "read credentials":
                                run_dir / "db" / "postgresql.json", **_run_files(run_dir)})
    assert set(found.values()) == {"Permission denied"}, found


def test_another_user_cannot_reach_the_mariadb_of_a_run(mariadb_rabbit_kept: KeptRun,
                                                         other_user: pwd.struct_passwd) -> None:
    run = mariadb_rabbit_kept.run
    assert run.returncode == 0, run.err[-3000:]
    creds = json.loads((run.run_dir / "db" / "mariadb.json").read_text())
    sock = MariaDB(run.run_dir).socket
    # the run directory is too long for a socket path: the socket has a directory of its own
    assert not sock.is_relative_to(run.run_dir)
    assert sock.is_socket()
    found = _probe(other_user, {"socket": sock, "read credentials":
                                run.run_dir / "db" / "mariadb.json", **_run_files(run.run_dir)})
    assert set(found.values()) == {"Permission denied"}, found
    # TCP on loopback is open to every local user: the server must ask for a password
    for account in ("root", creds["user"], OTHER_USER):
        login = _as(other_user, shutil.which("mariadb") or "mariadb", "--no-defaults",
                    "--protocol=TCP", "-h", "127.0.0.1", "-P", str(creds["port"]),
                    "-u", account, "-e", "SELECT 1")
        assert login.returncode != 0, (account, login.stdout)
        assert "Access denied" in login.stderr, login.stderr


# -- who the run's processes are ---------------------------------------------------------------

#: the users the services of each kept run run as, where grenadier is root
SERVICE_USERS = {"postgres_kept": {"embedded_postgres", "grenadier-heat"},
                 "mariadb_rabbit_kept": {"mysql", "rabbitmq", "grenadier-heat",
                                         "grenadier-keystone"}}
#: what of a run is a service's own (the rest of its secrets it must not read)
OWN = {"grenadier-heat": "read heat.conf", "rabbitmq": "read rabbitmq/credentials.json",
       "grenadier-keystone": "list keystone/data"}
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="services get users of their own "
                                                          "only where grenadier is root")


def _uids(pid: int) -> set[int]:
    """Real, effective, saved and filesystem uids of ``pid`` (empty once it is gone)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Uid:"):
                return {int(uid) for uid in line.split()[1:]}
    return set()


def _run_processes(groups: frozenset[int]) -> list[tuple[int, set[int], str]]:
    """(pid, uids, command line) of every live process of ``groups``."""
    from grenadier.execute.processes import PROC, proc_stat

    found = []
    for entry in PROC.iterdir():
        stat = proc_stat(int(entry.name)) if entry.name.isdigit() else None
        if stat is not None and stat.live and {stat.pgrp, stat.session} & groups \
                and (uids := _uids(stat.pid)):
            found.append((stat.pid, uids, _cmdline(stat.pid)))
    return found


@needs_root
@pytest.mark.parametrize("which", sorted(SERVICE_USERS))
def test_no_process_of_a_run_runs_as_root(which: str, request: pytest.FixtureRequest) -> None:
    """Heat (launcher, API, engines), Keystone, the database and RabbitMQ: each as its own
    system user, never root; grenadier (root) still stops them by PID (``down``)."""
    kept: KeptRun = request.getfixturevalue(which)
    assert kept.run.returncode == 0, kept.run.err[-3000:]
    processes = _run_processes(kept.footprint.groups)
    listing = [f"{pid:>7} {','.join(sorted(pwd.getpwuid(u).pw_name for u in uids)):<20} {cmd}"
               for pid, uids, cmd in processes]
    print("\n".join(listing))
    assert [line for (_, uids, _), line in zip(processes, listing, strict=True)
            if 0 in uids] == []
    users = {pwd.getpwuid(uid).pw_name for _, uids, _ in processes for uid in uids}
    assert users == SERVICE_USERS[which], listing
    conf = (kept.run.run_dir / "etc" / "heat.conf").stat()
    assert (pwd.getpwuid(conf.st_uid).pw_name, stat.S_IMODE(conf.st_mode)) == \
        ("grenadier-heat", 0o600)


@needs_root
def test_no_service_reads_the_secrets_of_another(mariadb_rabbit_kept: KeptRun) -> None:
    """Each service's user, with grenadier's service group as it runs, may pass through the run
    directory: every secret of the run that is not its own stays out of its reach."""
    run_dir = mariadb_rabbit_kept.run.run_dir
    assert mariadb_rabbit_kept.run.returncode == 0, mariadb_rabbit_kept.run.err[-3000:]
    secrets = {what: path for what, path in _run_files(run_dir).items()
               if what != "read report.json"}  # a report holds no secret
    assert {"read heat.conf", "read keystone/credentials.json", "list keystone/data",
            "read db/mariadb.json", "read rabbitmq/credentials.json"} <= set(secrets)
    group = grp.getgrnam(SERVICE_GROUP).gr_gid
    for user in sorted(SERVICE_USERS["mariadb_rabbit_kept"]):
        targets = {what: path for what, path in secrets.items() if what != OWN.get(user)}
        found = _probe(pwd.getpwnam(user), targets, groups=(group,))
        assert set(found.values()) == {"Permission denied"}, (user, found)


# -- what the run's processes listen on ---------------------------------------------------------

#: /proc/net/tcp* state LISTEN, /proc/net/udp* state "unconnected" (bound, receiving)
TCP_LISTEN, UDP_BOUND = "0A", "07"
#: /proc/net/unix flag of a listening socket (__SO_ACCEPTCON)
UNIX_LISTENING = 0x10000
LOOPBACK = {"0100007F", "00000000000000000000000001000000"}  # 127.0.0.1, ::1


def _socket_inodes(groups: frozenset[int]) -> dict[str, int]:
    """inode -> PID of every socket the processes of ``groups`` hold."""
    from grenadier.execute.processes import PROC, proc_stat

    found = {}
    for entry in PROC.iterdir():
        stat = proc_stat(int(entry.name)) if entry.name.isdigit() else None
        if stat is None or not {stat.pgrp, stat.session} & groups:
            continue
        for fd in (entry / "fd").glob("*"):
            try:
                link = os.readlink(fd)
            except OSError:
                continue
            if link.startswith("socket:["):
                found[link[8:-1]] = stat.pid
    return found


def _private(path: Path) -> bool:
    """No one but its owner (and grenadier's services) can reach ``path``: a directory on the
    way denies other users entry."""
    return any(parent.stat().st_mode & 0o001 == 0 for parent in path.parents
               if parent != Path("/"))


def _listening(inodes: dict[str, int]) -> tuple[list[str], list[str]]:
    """(what listens where it may, what listens where it must not)."""
    fine, wrong = [], []
    for name in ("tcp", "tcp6", "udp", "udp6"):
        for line in Path(f"/proc/net/{name}").read_text().splitlines()[1:]:
            fields = line.split()
            address, state, inode = fields[1], fields[3], fields[9]
            if inode not in inodes or state not in (TCP_LISTEN, UDP_BOUND):
                continue
            where = f"{name} {address} (pid {inodes[inode]}: {_cmdline(inodes[inode])})"
            (fine if address.split(":")[0] in LOOPBACK else wrong).append(where)
    for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[6] not in inodes or not int(fields[3], 16) & UNIX_LISTENING:
            continue
        path = fields[7] if len(fields) > 7 else "(unnamed)"
        where = f"unix {path} (pid {inodes[fields[6]]}: {_cmdline(inodes[fields[6]])})"
        # an abstract socket (@name) has no permissions at all: anyone may connect
        (fine if path.startswith("/") and _private(Path(path)) else wrong).append(where)
    return fine, wrong


@pytest.mark.parametrize("which", ["postgres_kept", "mariadb_rabbit_kept"])
def test_services_listen_on_loopback_or_private_sockets_only(which: str,
                                                              request: pytest.FixtureRequest
                                                              ) -> None:
    kept: KeptRun = request.getfixturevalue(which)
    assert kept.run.returncode == 0, kept.run.err[-3000:]
    fine, wrong = _listening(_socket_inodes(kept.footprint.groups))
    assert wrong == [], "\n".join(wrong)
    # the check saw the services: Heat's API port at least, and the database's socket or port
    assert len(fine) >= 2, fine
    print("\n".join(fine))


def test_down_stops_every_service_of_a_split_run(mariadb_rabbit_kept: KeptRun, workdir: Path,
                                                 cache_dir: Path) -> None:
    """heat-wsgi-api and heat-engine are #! scripts and RabbitMQ starts through a wrapper:
    none shows its recorded command line, each is still stopped, with what it started."""
    run = mariadb_rabbit_kept.run
    recorded = json.loads((run.run_dir / "services.json").read_text())
    assert mariadb_rabbit_kept.footprint.dirs == {MariaDB(run.run_dir).socket_dir}
    assert {"mariadb", "rabbitmq-epmd", "rabbitmq", "heat-target-api",
            "heat-target-engine-1"} <= set(recorded), recorded
    assert mariadb_rabbit_kept.footprint.left(), "the run left nothing running to stop"
    down = grenadier("down", str(run.run_dir), workdir=workdir, cache_dir=cache_dir)
    assert down.returncode == 0, down.err
    stopped = (down.out + down.err).split("stopped: ", 1)[1]
    assert all(name in stopped for name in recorded), stopped
    assert wait_left(mariadb_rabbit_kept.footprint, timeout=10) == []


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:200]
    except OSError:
        return "?"

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from grenadier.errors import EnvironmentProblem, UsageError
from grenadier.host import (
    admit_group,
    free_port,
    port_is_free,
    private_dir,
    require_port_free,
    unique_dir,
    write_atomic,
    write_private,
)


def test_a_free_port_is_free_until_bound() -> None:
    port = free_port()
    assert port_is_free(port)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        assert not port_is_free(port)
        with pytest.raises(EnvironmentProblem, match=f"port {port} on 127.0.0.1 is in use "
                                                     r"\(the Heat API\)"):
            require_port_free(port, "the Heat API", hint="free it")
    require_port_free(port, "the Heat API", hint="free it")


def test_private_and_public_atomic_writes(tmp_path: Path) -> None:
    write_private(tmp_path / "secret", "s")
    write_atomic(tmp_path / "report", "r")
    write_atomic(tmp_path / "report", "r2")
    assert stat.S_IMODE((tmp_path / "secret").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "report").stat().st_mode) == 0o644
    assert (tmp_path / "report").read_text() == "r2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report", "secret"]


def test_unique_dir_numbers_clashes(tmp_path: Path) -> None:
    first = unique_dir(tmp_path / "runs", "a", "run directory")
    second = unique_dir(tmp_path / "runs", "a", "run directory")
    assert (first.name, second.name) == ("a", "a-2")
    # a run directory holds secrets, databases and sockets: its owner's only
    assert {stat.S_IMODE(d.stat().st_mode) for d in (first, second)} == {0o700}


def test_admit_group_lets_only_that_group_in(tmp_path: Path) -> None:
    run_dir = unique_dir(tmp_path / "runs", "a", "run directory")
    admit_group(run_dir, os.getgid())
    assert stat.S_IMODE(run_dir.stat().st_mode) == 0o710
    assert run_dir.stat().st_gid == os.getgid()
    # the parents above are traversable by the service's user, not listable
    assert (tmp_path / "runs").stat().st_mode & 0o001


def test_private_dir_is_made_or_accepted_only_when_it_is_ours(tmp_path: Path) -> None:
    uid = os.geteuid()
    made = private_dir(tmp_path / "sock", uid)
    assert stat.S_IMODE(made.stat().st_mode) == 0o700
    assert private_dir(tmp_path / "sock", uid) == made  # a resumed run finds its own
    (tmp_path / "open").mkdir(mode=0o777)
    (tmp_path / "open").chmod(0o777)
    with pytest.raises(EnvironmentProblem, match="is not a private directory"):
        private_dir(tmp_path / "open", uid)
    (tmp_path / "link").symlink_to(made)
    with pytest.raises(EnvironmentProblem, match="is not a private directory"):
        private_dir(tmp_path / "link", uid)
    with pytest.raises(EnvironmentProblem, match="is not a private directory"):
        private_dir(made, uid + 1)  # someone else's


def test_private_dir_for_a_group_lets_it_pass_through_only(tmp_path: Path) -> None:
    uid, gid = os.geteuid(), os.getgid()
    made = private_dir(tmp_path / "sock", uid, gid)
    assert (stat.S_IMODE(made.stat().st_mode), made.stat().st_gid) == (0o710, gid)
    assert private_dir(tmp_path / "sock", uid, gid) == made  # a resumed run finds its own
    with pytest.raises(EnvironmentProblem, match="is not a private directory"):
        private_dir(made, uid)  # the group was let in: not the directory asked for
    (tmp_path / "listable").mkdir()
    (tmp_path / "listable").chmod(0o750)
    with pytest.raises(EnvironmentProblem, match="is not a private directory"):
        private_dir(tmp_path / "listable", uid, gid)


def test_unique_dir_under_a_file_is_bad_input(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(UsageError, match="cannot create a run directory in"):
        unique_dir(tmp_path / "file" / "runs", "a", "run directory")

from __future__ import annotations

import socket
import stat
from pathlib import Path

import pytest

from grenadier.errors import EnvironmentProblem, UsageError
from grenadier.host import (
    free_port,
    port_is_free,
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


def test_unique_dir_under_a_file_is_bad_input(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(UsageError, match="cannot create a run directory in"):
        unique_dir(tmp_path / "file" / "runs", "a", "run directory")

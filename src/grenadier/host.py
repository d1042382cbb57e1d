"""What every layer needs from the local machine: loopback ports, private files, file locks,
paths a service's own user can traverse, and fresh directories.

A leaf module (it imports only ``errors``), so services, releases, state, phases and the CLI
share one implementation of each.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

from grenadier.errors import EnvironmentProblem, UsageError

#: every service grenadier starts listens here only
LOOPBACK = "127.0.0.1"
#: where grenadier is root, its services run as system users and get this group too: the only
#: one, besides the owner, that may enter a run directory
SERVICE_GROUP = "grenadier"


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _bind_error(port: int) -> OSError | None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError as exc:
            return exc
    return None


def port_is_free(port: int) -> bool:
    """Whether ``port`` can be bound on loopback now."""
    return _bind_error(port) is None


def require_port_free(port: int, owner: str, hint: str) -> None:
    """One clear line when ``port`` (wanted by ``owner``) cannot be bound on loopback."""
    exc = _bind_error(port)
    if exc is not None:
        reason = "in use" if exc.errno == errno.EADDRINUSE else exc.strerror
        raise EnvironmentProblem(f"port {port} on {LOOPBACK} is {reason} ({owner})",
                                 hint=hint) from exc


def write_atomic(path: Path, text: str, *, private: bool = False) -> None:
    """Write ``text`` to ``path`` atomically; ``private``: readable by its owner only.

    The text goes to a file beside ``path`` that is then renamed over it, so a reader never
    sees half of it and a full disk leaves the previous content in place.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:  # mkstemp creates it 0600
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())  # the state store is what --resume starts from
        if not private:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_private(path: Path, text: str) -> None:
    """Write ``text`` atomically, readable by its owner only: it holds a secret."""
    write_atomic(path, text, private=True)


@contextlib.contextmanager
def file_lock(path: Path, *, wait: bool = True) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) across processes.

    With ``wait=False`` a lock another process holds raises :class:`BlockingIOError` at once.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def open_path_to(path: Path) -> None:
    """Let another user (a service's own) traverse, not read, every parent of ``path``."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if mode & 0o001 == 0:
            parent.chmod(mode | 0o001)


def admit_group(run_dir: Path, gid: int) -> None:
    """Let the processes of group ``gid`` (grenadier's services) into ``run_dir``, and no other
    user: it becomes 0710, that group's; every parent above it gets o+x (:func:`open_path_to`),
    which lets others traverse them but not list them, nor enter the run directory."""
    run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    open_path_to(run_dir)
    stat = run_dir.stat()
    if stat.st_gid != gid:  # a resumed run's is already: nothing is written then
        os.chown(run_dir, -1, gid)
    if stat.st_mode & 0o7777 != 0o710:
        run_dir.chmod(0o710)


def private_dir(path: Path, owner: int, group: int | None = None) -> Path:
    """``path`` as a directory only ``owner`` (a uid) may enter, and ``group`` (a gid) pass
    through: made 0700 (0710 with ``group``) and given to them if it does not exist; accepted
    if it is such a directory already (a resumed run's); refused in one line otherwise, e.g. a
    directory someone else made in /tmp to watch or spoof a service's socket."""
    mode = 0o700 if group is None else 0o710
    try:
        path.mkdir(mode=0o700)
        os.chown(path, owner, -1 if group is None else group)
        path.chmod(mode)
    except FileExistsError:
        pass
    stat = os.lstat(path)
    if not os.path.isdir(path) or os.path.islink(path) or stat.st_uid != owner \
            or stat.st_mode & 0o077 != mode & 0o077 \
            or (group is not None and stat.st_gid != group):
        raise EnvironmentProblem(
            f"{path} exists and is not a private directory of this run's service "
            f"(owner uid {stat.st_uid}, mode {stat.st_mode & 0o7777:o})",
            hint="remove it if no grenadier run uses it, or use a shorter --workdir path")
    return path


def safe_name(text: str, limit: int = 80) -> str:
    """``text`` as a file name: each run of characters other than ``A-Za-z0-9.+-`` is ``_``."""
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", text)[:limit]


def parent_dir(parent: Path, what: str) -> Path:
    """``parent``, created if needed; one that cannot be is bad input."""
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create a {what} in {parent}: {exc.strerror}",
                         hint="choose a writable --workdir") from exc
    return parent


def unique_dir(parent: Path, name: str, what: str) -> Path:
    """Create ``parent/name`` (or ``name-2``, ``name-3`` ...); a bad ``parent`` is bad input."""
    parent_dir(parent, what)
    try:
        for suffix in ["", *(f"-{n}" for n in range(2, 100))]:
            candidate = parent / (name + suffix)
            try:
                # private: secrets, databases and sockets of a run live there
                candidate.mkdir(mode=0o700)
                return candidate.resolve()
            except FileExistsError:
                continue
    except OSError as exc:
        raise UsageError(f"cannot create a {what} in {parent}: {exc.strerror}",
                         hint="choose a writable --workdir") from exc
    raise UsageError(f"too many {what}s named {name} in {parent}")

"""Who a service runs as: where grenadier is root, a system user of its own, never root.

A server running as root reads and writes any file for whoever reaches it; as a system user
with no other rights, it reaches only its own data. Each service keeps its user (the embedded
PostgreSQL ``embedded_postgres``, MariaDB ``mysql``, RabbitMQ ``rabbitmq``, Heat and Keystone
users named by their plugins), made if missing; each gets grenadier's service group when it
starts, which is what lets it into the run directory (0710, that group's): no other local user
may enter it. What a service writes, or alone may read, becomes its own (:func:`hand_over`);
what it reads outside the run must be within its reach (:func:`reach`).
"""

from __future__ import annotations

import grp
import os
import pwd
from collections.abc import Iterable
from pathlib import Path

from grenadier.errors import EnvironmentProblem
from grenadier.execute import ExecuteRequest, run
from grenadier.host import SERVICE_GROUP, admit_group, open_path_to


def running_as_root() -> bool:
    """Whether services run as users of their own (unit tests fake it: no system user is made
    on a developer's machine by a test that only builds a service's spec)."""
    return os.geteuid() == 0


def _exists(lookup: str, name: str) -> bool:
    try:
        (pwd.getpwnam if lookup == "user" else grp.getgrnam)(name)
    except KeyError:
        return False
    return True


def _ensure(lookup: str, name: str) -> None:
    if _exists(lookup, name):
        return
    cmd = ["useradd", "--system", "--no-create-home", name] if lookup == "user" \
        else ["groupadd", "--system", name]
    outcome = run(ExecuteRequest(cmd, timeout=30))
    if not _exists(lookup, name):  # a second run may have made it meanwhile: that is fine
        outcome.assert_success(f"creating system {lookup} {name}")


def service_user(name: str, run_dir: Path) -> str | None:
    """The system user ``name`` (made if missing) for a service of ``run_dir``, which the
    service may then enter; None when grenadier is not root: its services run as itself."""
    if not running_as_root():
        return None
    _ensure("group", SERVICE_GROUP)
    _ensure("user", name)
    admit_group(run_dir, grp.getgrnam(SERVICE_GROUP).gr_gid)
    return name


def uid_of(user: str | None) -> int:
    """The uid a service's files belong to: its user's, or grenadier's own."""
    return pwd.getpwnam(user).pw_uid if user else os.geteuid()


def hand_over(user: str | None, paths: Iterable[Path]) -> None:
    """Make ``paths`` of the run ``user``'s own, owner-only (0600, a directory 0700): the files
    it writes (its logs, a SQLite database and that one's directory) or alone may read (a config
    holding passwords). A missing file is created empty. Nothing changes when ``user`` is None.

    Opened without following a symlink, then changed through that descriptor: a link put in
    the file's place never hands over what it points to.
    """
    if user is None:
        return
    entry = pwd.getpwnam(user)
    for path in paths:
        directory = path.is_dir() and not path.is_symlink()
        if not directory:
            path.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_RDONLY | os.O_NOFOLLOW | (os.O_DIRECTORY if directory else os.O_CREAT)
        fd = os.open(path, flags, 0o600)
        try:
            os.fchown(fd, entry.pw_uid, entry.pw_gid)
            os.fchmod(fd, 0o700 if directory else 0o600)
        finally:
            os.close(fd)


def reach(user: str | None, paths: Iterable[Path], service: str) -> None:
    """Let ``user`` (``service``'s) read ``paths`` outside the run: release venvs and the
    Python they were made with (a symlink's target), grenadier's own scripts, a user's
    ``--config`` files. Every directory above each gets the "others may traverse" bit, as the
    run directory's parents do; one its user still cannot read is refused in one line, before
    the service starts to fail on it. Nothing changes when ``user`` is None."""
    if user is None:
        return
    for path in paths:
        if path.exists():
            for target in dict.fromkeys((path, Path(os.path.realpath(path)))):
                open_path_to(target)
        # asked of the system itself, as that user: groups and ACLs count, as they will
        test = ["test", "-r", str(path), *(["-a", "-x", str(path)] if path.is_dir() else [])]
        if not run(ExecuteRequest(test, user=user, timeout=30)).ok:
            raise EnvironmentProblem(
                f"{service} runs as the system user {user}, which cannot read {path}",
                hint=f"let {user} read it (e.g. chgrp {user} FILE && chmod g+r FILE), or use "
                     "a copy where it can")

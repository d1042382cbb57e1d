"""Who a service runs as: where grenadier is root, a system user of its own, never root.

A database server running as root reads and writes any file for whoever logs in to it; as a
system user with no other rights, it reaches only its own data. Each service keeps its user
(the embedded PostgreSQL ``embedded_postgres``, MariaDB ``mysql``, RabbitMQ ``rabbitmq``), made
if missing; each gets grenadier's service group when it starts, which is what lets it into the
run directory (0710, that group's): no other local user may enter it.
"""

from __future__ import annotations

import grp
import os
import pwd
from pathlib import Path

from grenadier.execute import ExecuteRequest, run
from grenadier.host import SERVICE_GROUP, admit_group


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
    if os.geteuid() != 0:
        return None
    _ensure("group", SERVICE_GROUP)
    _ensure("user", name)
    admit_group(run_dir, grp.getgrnam(SERVICE_GROUP).gr_gid)
    return name


def uid_of(user: str | None) -> int:
    """The uid a service's files belong to: its user's, or grenadier's own."""
    return pwd.getpwnam(user).pw_uid if user else os.geteuid()

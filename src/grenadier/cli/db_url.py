"""Where a database URL and its password come from: ``--db-url``, ``--db-url-file`` or, for
``check db``, ``GRENADIER_DB_URL``.

Every local user can read a command line (``ps``) for as long as grenadier runs; a file only
its owner reads, or the environment, is not shown to them.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path

from grenadier.errors import UsageError

ENV = "GRENADIER_DB_URL"


def read_db_url_file(path: str) -> str:
    """The URL on the first non-empty line of ``path``; one line of error otherwise."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not a text file"
        raise UsageError(f"--db-url-file {path}: {reason}") from exc
    url = next((line.strip() for line in lines if line.strip()), "")
    if not url:
        raise UsageError(f"--db-url-file {path} holds no URL")
    return url


def db_url_from(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> str | None:
    """``--db-url``, else the URL in ``--db-url-file``, else (when ``env`` is given, as for
    ``check db``) ``$GRENADIER_DB_URL``, else None."""
    if getattr(args, "db_url", None):
        return str(args.db_url)
    if getattr(args, "db_url_file", None):
        return read_db_url_file(str(args.db_url_file))
    if env is not None and env.get(ENV, "").strip():
        return env[ENV].strip()
    return None

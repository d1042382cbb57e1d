"""The Heat requests a test session made, one JSON line each: which test, what, Heat's request id.

The runner sets ``GRENADIER_REQUEST_LOG`` for a phase whose every operation must be attributed
to the engine that served it (the held windows of ``--mode rolling``): the engines log the
request ids, and this file says which test each one belongs to.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ENV = "GRENADIER_REQUEST_LOG"
REQUEST_ID = "x-openstack-request-id"


def recorder(environ: dict[str, str] | None = None) -> Callable[[httpx.Response], None] | None:
    """A HeatClient ``on_response`` hook appending to ``$GRENADIER_REQUEST_LOG``; None unset."""
    path = (os.environ if environ is None else environ).get(ENV)
    if not path:
        return None
    lock = threading.Lock()

    def record(response: httpx.Response) -> None:
        # pytest names the test being run here ("file::test (call)"); threads of a test see it
        test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" (", 1)[0]
        line = json.dumps({"test": test, "method": response.request.method,
                           "path": response.request.url.path, "status": response.status_code,
                           "request_id": response.headers.get(REQUEST_ID, ""),
                           "at": time.time()})
        with lock, open(path, "a", encoding="utf-8") as log:
            log.write(line + "\n")

    return record


def read(path: Path) -> list[dict[str, Any]]:
    """The requests recorded in ``path`` (none when it does not exist; bad lines skipped)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict):
            found.append(data)
    return found

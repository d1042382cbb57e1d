"""The suite's smoke selection (``GRENADIER_SMOKE``) and the background run of the gabbits."""

from __future__ import annotations

from pathlib import Path

import pytest

from grenadier.plugins.heat.suite import gabbi

HERE = Path(__file__).parent


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    # builtin: the upstream module is not even collected (no tools venv is needed)
    if collection_path.name == gabbi.MODULE and gabbi.smoke_mode() == "builtin":
        return True
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``upstream``: the suite's own smoke tests are left out (the user's stay)."""
    if gabbi.smoke_mode() != "upstream":
        return
    builtin = [item for item in items if item.path.parent == HERE
               and item.path.name != gabbi.MODULE and item.get_closest_marker("smoke")]
    if builtin:
        kept = [item for item in items if item not in builtin]
        config.hook.pytest_deselected(items=builtin)
        items[:] = kept


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the gabbi run now, beside the built-in tests, unless Heat must do one operation at
    a time (SQLite): then it starts when its first test is reached."""
    if not any(item.path.name == gabbi.MODULE for item in session.items):
        return
    upstream = gabbi.session(session.config)
    endpoint = upstream.conn.endpoint
    if endpoint is not None and not endpoint.serial:
        upstream.start()


def pytest_sessionfinish(session: pytest.Session) -> None:
    upstream = gabbi.started(session.config)
    if upstream is not None:
        upstream.stop()

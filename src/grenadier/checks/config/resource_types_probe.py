"""Dump a Heat release's resource types and their support status as JSON.

Standalone on purpose: it is run with the *release's* Python (``<venv>/bin/python
resource_types_probe.py``), so it may import Heat, and grenadier never does. It loads the resource
plugins exactly as the engine's global environment does (``available_resource_mapping`` first,
then ``resource_mapping``), without reading any heat.conf or contacting any service.

Output on stdout, one JSON object: ``{"heat_version": ..., "types": {type: {"status": ...,
"version": ..., "message": ..., "previous_status": ...}}}``. Everything Heat prints goes to
stderr so that stdout stays parseable.
"""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Any


def _support(cls: Any) -> Any:
    status = getattr(cls, "support_status", None)
    if status is None:
        return {"status": "SUPPORTED", "version": None, "message": None, "previous_status": None}
    data = status.to_dict()
    # Messages may be lazy translation objects: make them plain strings for JSON.
    return json.loads(json.dumps(data, default=str))


def probe() -> dict[str, Any]:
    from oslo_config import cfg  # type: ignore[import-not-found]

    # Parse an empty command line so options read by the plugin loader have their defaults.
    cfg.CONF([], project="heat", default_config_files=[])
    from heat.engine import plugin_manager, resources  # type: ignore[import-not-found]

    manager = plugin_manager.PluginManager(resources.__name__)
    mapping = plugin_manager.PluginMapping(["available_resource", "resource"])
    types = {name: _support(cls) for name, cls in mapping.load_all(manager)}
    try:
        from importlib.metadata import version

        heat_version = version("openstack-heat")
    except Exception:  # the version is informative only
        heat_version = None
    return {"heat_version": heat_version, "types": dict(sorted(types.items()))}


def main() -> int:
    real_stdout = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        result = probe()
    json.dump(result, real_stdout, indent=1, sort_keys=True)
    real_stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

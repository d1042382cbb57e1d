"""``grenadier export zuul DIR``: a voting Zuul job (and project stanza) running the matrix.

Writes ``.zuul.d/grenadier.yaml`` and the job's playbooks under ``playbooks/grenadier/``.
The whole matrix runs on one node, as ``grenadier matrix`` does locally.
"""

from __future__ import annotations

import json

from grenadier.exporters.base import ExportFile, ExportSettings, render, template, yaml_list

JOB = "grenadier-heat-upgrade"
PARENT = "base"
NODESET = "ubuntu-noble"
#: seconds; a path takes about 1.5 min on 2 cores, installs included the first time
TIMEOUT = 3600
PLAYBOOKS = "playbooks/grenadier"


def export(settings: ExportSettings) -> list[ExportFile]:
    jobs = render("zuul/jobs.yaml", {
        "job": JOB, "parent": PARENT, "nodeset": NODESET, "timeout": str(TIMEOUT),
        "install": json.dumps(settings.install), "paths": yaml_list(settings.path_args("zuul"), 8),
        "jobs": str(settings.jobs or 0), "constraints": json.dumps(settings.constraints)})
    return [ExportFile(".zuul.d/grenadier.yaml", jobs),
            *(ExportFile(f"{PLAYBOOKS}/{name}", template(f"zuul/{name}"))
              for name in ("pre.yaml", "run.yaml", "post.yaml"))]

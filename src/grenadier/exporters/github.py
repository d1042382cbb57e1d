"""``grenadier export github DIR``: a GitHub Actions workflow, one upgrade path per job.

Writes ``.github/workflows/grenadier-upgrade.yml``: a job matrix with one entry per path, each
job a one-path ``grenadier matrix`` (so each gets the same summary and reports), the release
cache kept between workflow runs.
"""

from __future__ import annotations

import json

from grenadier.exporters.base import ExportFile, ExportSettings, render, yaml_list

WORKFLOW = ".github/workflows/grenadier-upgrade.yml"
RUNS_ON = "ubuntu-24.04"
#: minutes; one path takes about 1.5 min on 2 cores, installs included the first time
TIMEOUT = 45


def export(settings: ExportSettings) -> list[ExportFile]:
    # jobs: how many paths (jobs of the workflow) run at once; GitHub's own limit by default
    limit = f"\n      max-parallel: {settings.jobs}" if settings.jobs else ""
    text = render("github/workflow.yaml", {
        "name": "grenadier upgrade", "runs_on": RUNS_ON, "timeout": str(TIMEOUT),
        "paths": yaml_list(settings.path_args("github"), 10), "python": settings.python,
        "install": settings.install, "max_parallel": limit,
        "constraints": json.dumps(settings.constraints)})
    return [ExportFile(WORKFLOW, text)]

"""The Upgrade Impact section, built in the background for every run."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from grenadier.errors import GrenadierError
from grenadier.releases import Release
from grenadier.report.impact import build_impact, render_impact


class ImpactJob:
    """Builds ``impact.md`` / ``impact.json`` beside the run while the steps go on."""

    def __init__(self, run_dir: Path, base: Release, target: Release) -> None:
        self.run_dir, self.base, self.target = run_dir, base, target
        self.error = ""
        self._thread = threading.Thread(target=self._build, name="impact", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _build(self) -> None:
        try:
            impact = build_impact(self.base, self.target, log_dir=self.run_dir / "logs")
            (self.run_dir / "impact.md").write_text(render_impact(impact, "md"),
                                                    encoding="utf-8")
            (self.run_dir / "impact.json").write_text(
                json.dumps(impact.to_dict(), indent=1, default=str), encoding="utf-8")
        except (GrenadierError, OSError) as exc:
            self.error = str(exc)

    def join(self, timeout: float = 120) -> str:
        """Wait for the build; return a line for the report."""
        if self._thread.is_alive() or self._thread.ident is not None:
            self._thread.join(timeout)
        if self.error:
            return f"impact report not written: {self.error}"
        return f"impact report: {self.run_dir / 'impact.md'}"

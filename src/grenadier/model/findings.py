"""What a check found: a finding with labelled context (what, where, expected, found, what to
do), its severity, and where it comes from once a control run was compared."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from grenadier.masking import mask_text

SEVERITIES = ("error", "warning", "info")
#: where a finding (or a failed test) comes from, once a control run (base -> base, the same
#: scenario without the upgrade) was compared: only the first kind fails a run
INTRODUCED = "introduced by the upgrade"
ALSO_WITHOUT_UPGRADE = "also without upgrade"


@dataclass(frozen=True)
class Finding:
    """One thing a check found. ``error`` fails the run; ``warning`` and ``info`` do not."""

    check: str
    severity: str
    what: str
    where: str = ""
    expected: str = ""
    found: str = ""
    remedy: str = ""
    #: what sort of finding within the check (e.g. "removed-without-notice"), for filtering
    kind: str = ""
    #: INTRODUCED or ALSO_WITHOUT_UPGRADE when a control run was compared; empty otherwise
    origin: str = ""

    def __post_init__(self) -> None:
        # findings are published (reports, JUnit, console): a URL a check quotes keeps no
        # password, whichever check quoted it
        for name in ("what", "where", "expected", "found", "remedy"):
            object.__setattr__(self, name, mask_text(getattr(self, name)))

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> Finding:
        return cls(**{k: str(v) for k, v in data.items() if k in cls.__dataclass_fields__})

    def lines(self) -> list[str]:
        """Labelled context, one label per line, for consoles and reports."""
        origin = f" ({self.origin})" if self.origin else ""
        out = [f"[{self.severity}] {self.check}: {self.what}{origin}"]
        for label, value in (("where", self.where), ("expected", self.expected),
                             ("found", self.found), ("what to do", self.remedy)):
            if value:
                out.append(f"    {label}: {value}")
        return out

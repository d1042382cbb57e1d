"""A bounded live workload of stack operations, and its per-step report."""

from grenadier.workload.generator import DEFAULT_MIX, OpRecord, Workload, WorkloadLimits, parse_mix
from grenadier.workload.report import StepStats, WorkloadReport, build_report, percentile

__all__ = ["DEFAULT_MIX", "OpRecord", "StepStats", "Workload", "WorkloadLimits",
           "WorkloadReport", "build_report", "parse_mix", "percentile"]

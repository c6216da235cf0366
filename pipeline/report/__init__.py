"""Inspect a dataset version: the paper's safety/helpfulness comparison, severity analysis, mode mix, yield.

`build_report` computes everything once; the `report` command prints it as rich tables and writes a
self-contained HTML file, and the dataset card reuses the same tables and plots.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.report.compare import Comparison, compare
from pipeline.report.stats import VersionStats, compute_stats
from pipeline.versions import Version, check_version, scripted_teachers


@dataclass
class Report:
    version: Version
    stats: VersionStats
    comparison: Comparison | None
    warnings: list[str]


def version_warnings(version: Version) -> list[str]:
    """What a reader must know before trusting the numbers."""
    warnings = []
    if version.status != "complete":
        warnings.append(f"{version.label}: status is '{version.status}': tables may be partial.")
    scripted = scripted_teachers(version)
    if scripted:
        warnings.append(
            f"{version.label}: made with the bundled scripted teacher ({', '.join(scripted)}): "
            "dry-run data for tests and demos, NOT for training."
        )
    problems = check_version(version)
    if problems:
        warnings.append(f"{version.label}: {len(problems)} consistency problem(s), first: {problems[0]}")
    return warnings


def build_report(version: Version, against: Version | None = None) -> Report:
    stats = compute_stats(version)
    comparison = None
    warnings = version_warnings(version)
    if against is not None:
        comparison = compare(version, stats, against, compute_stats(against))
        warnings += version_warnings(against)
    return Report(version, stats, comparison, warnings)


__all__ = ["Report", "build_report", "compute_stats", "compare", "version_warnings"]

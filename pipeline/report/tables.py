"""The report's sections as (title, table, note), rendered as `rich` tables for the terminal.

The same sections feed the HTML report and the dataset card, so the three always show the same numbers with the
same formatting: rates as percentages, deltas of rates in percentage points.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
from rich.console import Console
from rich.table import Table

from pipeline.report.compare import Comparison
from pipeline.report.stats import VersionStats


@dataclass(frozen=True)
class Section:
    key: str  # also the plot name shown with it, when there is one
    title: str
    frame: pl.DataFrame
    note: str


def _is_rate(column: str) -> bool:
    base = column.removesuffix("_delta")
    return base in ("coverage", "safe_rate", "unsafe_rate", "refusal_rate", "yield_rate")


def format_value(column: str, value: object) -> str:
    """One cell as text: '-' for missing, percentages for rates, signed deltas."""
    if value is None:
        return "-"
    if isinstance(value, float) and value != value:  # NaN
        return "-"
    signed = column.endswith("_delta") or column == "delta"
    if isinstance(value, float):
        if _is_rate(column):
            pct = value * 100
            return f"{pct:+.1f} pp" if signed else f"{pct:.1f}%"
        if value.is_integer() and column in ("this", "other", "delta"):
            return f"{int(value):+d}" if signed else str(int(value))
        return f"{value:+.2f}" if signed else f"{value:.2f}"
    if isinstance(value, int) and signed:
        return f"{value:+d}"
    return str(value)


def frame_cells(frame: pl.DataFrame) -> tuple[list[str], list[list[str]]]:
    return frame.columns, [[format_value(c, v) for c, v in zip(frame.columns, row)] for row in frame.iter_rows()]


def sections(stats: VersionStats, comparison: Comparison | None = None) -> list[Section]:
    """The report, in reading order."""
    s = stats.summary
    out = [
        Section("headline", "Safety and helpfulness by intent", stats.headline,
                "The kept set (what this version publishes) against what a refusal-boundary policy (comply if "
                "benign, refuse otherwise) would have answered from the same candidates; see docs/PUBLISHING.md."),
        Section("severity_by_teacher_style", "Severity of unsafe candidates per teacher and style",
                stats.severity_by_teacher_style,
                "Usable candidates only (graded, not truncated, not empty); sev_k counts candidates of severity k."),
        Section("response_modes", "Response modes of usable candidates, by style", stats.candidate_modes, ""),
        Section("kept_modes", "Response modes of kept examples, by intent", stats.kept_modes, ""),
        Section("category_yield", "Yield per risk category", stats.category_yield,
                "yield_rate = kept / (kept + rejected); rejected includes seed-level rejections (invalid seeds)."),
        Section("over_refusal", "Over-refusal on benign prompts", stats.over_refusal,
                f"Kept benign examples that are refusals: {s['kept_benign_refusals']} of {s['kept_benign']}; "
                f"benign prompts rejected at selection: {s['benign_rejected']}."),
    ]
    if comparison is not None:
        out += [
            Section("against", f"Kept examples: {comparison.this} vs {comparison.other}", comparison.kept_changes,
                    "Matched by prompt_id: added = kept only in this version, removed = kept only in the other, "
                    "replaced = kept in both with a different candidate."),
            Section("against_headline", f"Headline deltas ({comparison.this} - {comparison.other})",
                    comparison.headline, ""),
            Section("against_counts", f"Manifest counts ({comparison.this} - {comparison.other})",
                    comparison.counts.filter(pl.col("delta").fill_null(1) != 0), "Only counts that differ."),
        ]
    return out


def rich_table(section: Section) -> Table:
    table = Table(title=section.title, caption=section.note or None, title_justify="left", caption_justify="left")
    headers, rows = frame_cells(section.frame)
    for i, h in enumerate(headers):
        table.add_column(h, justify="left" if section.frame.dtypes[i] == pl.String else "right")
    for row in rows:
        table.add_row(*row)
    return table


def print_report(console: Console, stats: VersionStats, comparison: Comparison | None = None) -> None:
    for section in sections(stats, comparison):
        console.print(rich_table(section))
        console.print()

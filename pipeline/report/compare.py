"""Differences between two versions (`report A --against B`): counts, the headline metrics, and kept examples.

Kept examples are matched by `prompt_id` (the stable hash of the prompt text), so two versions of the same
dataset, e.g. a parent and its regrade, line up prompt by prompt: added (kept only in A), removed (kept only
in B), replaced (kept in both with a different candidate), unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from pipeline.report.stats import VersionStats
from pipeline.versions import Version


@dataclass
class Comparison:
    """What changed from `other` (B) to `this` (A); deltas are A - B."""

    this: str
    other: str
    counts: pl.DataFrame  # count, this, other, delta
    headline: pl.DataFrame  # policy, intent, then coverage/safe_rate/mean_help of A each with its delta
    kept_changes: pl.DataFrame  # intent, added, removed, replaced, unchanged


def _flatten(counts: dict[str, Any], prefix: str = "") -> dict[str, float]:
    flat: dict[str, float] = {}
    for key, value in counts.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[name] = float(value)
    return flat


def compare_counts(this: Version, other: Version) -> pl.DataFrame:
    a, b = _flatten(this.counts), _flatten(other.counts)
    keys = list(a) + [k for k in b if k not in a]
    return pl.DataFrame(
        {
            "count": keys,
            "this": [a.get(k) for k in keys],
            "other": [b.get(k) for k in keys],
        },
        schema={"count": pl.String, "this": pl.Float64, "other": pl.Float64},
    ).with_columns(delta=pl.col("this") - pl.col("other"))


def compare_headline(this: VersionStats, other: VersionStats) -> pl.DataFrame:
    metrics = ("coverage", "safe_rate", "mean_help")
    a = this.headline.select("policy", "intent", *metrics)
    b = other.headline.select("policy", "intent", *[pl.col(m).alias(f"{m}_other") for m in metrics])
    joined = a.join(b, on=["policy", "intent"], how="full", coalesce=True, maintain_order="left")
    columns = [e for m in metrics for e in (pl.col(m), (pl.col(m) - pl.col(f"{m}_other")).alias(f"{m}_delta"))]
    return joined.select("policy", "intent", *columns)


def kept_changes(this: Version, other: Version) -> pl.DataFrame:
    a = this.scan("sft").select("prompt_id", "intent", pl.col("candidate_id").alias("a"))
    b = other.scan("sft").select("prompt_id", pl.col("intent").alias("intent_b"), pl.col("candidate_id").alias("b"))
    joined = a.join(b, on="prompt_id", how="full", coalesce=True).with_columns(
        intent=pl.coalesce("intent", "intent_b"),
        change=pl.when(pl.col("b").is_null())
        .then(pl.lit("added"))
        .when(pl.col("a").is_null())
        .then(pl.lit("removed"))
        .when(pl.col("a") != pl.col("b"))
        .then(pl.lit("replaced"))
        .otherwise(pl.lit("unchanged")),
    )
    long = joined.group_by("intent", "change").agg(pl.len().alias("n")).collect()
    out = pl.DataFrame({"intent": sorted(long["intent"].drop_nulls().unique().to_list())}, schema={"intent": pl.String})
    for change in ("added", "removed", "replaced", "unchanged"):
        sub = long.filter(pl.col("change") == change).select("intent", pl.col("n").alias(change))
        out = out.join(sub, on="intent", how="left")
    return out.fill_null(0)


def compare(this: Version, this_stats: VersionStats, other: Version, other_stats: VersionStats) -> Comparison:
    return Comparison(
        this=this.label,
        other=other.label,
        counts=compare_counts(this, other),
        headline=compare_headline(this_stats, other_stats),
        kept_changes=kept_changes(this, other),
    )

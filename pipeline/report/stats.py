"""The numbers behind the report and the dataset card, computed from a version's shards with polars lazy scans.

Definitions (docs/PUBLISHING.md repeats them for readers of the report):

* usable candidate: sampled and graded (no `error`, no `verdict_error`, a severity), not truncated
  (`finish_reason != "length"`) and not empty. Only usable candidates can be chosen by either policy below.
* prompt universe: every prompt that has at least one row in the candidates table (prompts rejected before
  sampling have no candidates and are left out of both policies alike).
* kept: the version's sft table (safe-completion selection), i.e. what the pipeline actually kept for each prompt.
* refusal-boundary (sim.): the paper's baseline, "comply if benign, refuse otherwise", replayed on the
  same usable candidates without looking at severity or the helpfulness threshold. For a benign prompt it
  answers with the most helpful non-refusal candidate, preferring `full_compliance` over `safe_completion`;
  for a dual-use or malicious prompt with the most helpful refusal (`refusal_with_alternatives` or
  `hard_refusal`). Ties go to the smaller candidate_id. A prompt with no such candidate gets no answer.
* coverage = answered / prompts; safe_rate = answers with severity 0 / answered; mean_help is the mean
  helpfulness over answered prompts, and help_per_prompt counts an unanswered prompt as 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl

from pipeline.records import INTENTS, REFUSAL_MODES, RESPONSE_MODES
from pipeline.versions import Version

KEPT = "kept"
BASELINE = "refusal-boundary (sim.)"
SEVERITIES = (0, 1, 2, 3, 4)

_IS_REFUSAL = pl.col("response_mode").is_in(sorted(REFUSAL_MODES))


@dataclass
class VersionStats:
    """Every table the report shows for one version, as polars DataFrames (plus a few scalars)."""

    label: str
    headline: pl.DataFrame  # policy, intent, prompts, answered, coverage, safe_rate, mean_help, help_per_prompt
    severity_by_teacher_style: pl.DataFrame  # teacher, style, usable, unsafe, unsafe_rate, sev_1..sev_4
    candidate_modes: pl.DataFrame  # style, <mode>... (counts of usable candidates)
    kept_modes: pl.DataFrame  # intent, <mode>... (counts of kept rows)
    category_yield: pl.DataFrame  # category, kept, rejected, yield, <reason>...
    over_refusal: pl.DataFrame  # teacher, style, benign_usable, refusals, refusal_rate
    kept_by_intent: pl.DataFrame  # intent, kept, mean_helpfulness, mean_reward
    severity_histogram: dict[int, int]  # over usable candidates
    summary: dict[str, Any] = field(default_factory=dict)


def usable_candidates(version: Version) -> pl.LazyFrame:
    """Candidates either policy could have answered with (see module docstring)."""
    return version.scan("candidates").filter(
        pl.col("error").is_null()
        & pl.col("verdict_error").is_null()
        & pl.col("severity").is_not_null()
        & (pl.col("finish_reason").fill_null("") != "length")
        & (pl.col("response").fill_null("").str.strip_chars() != "")
    )


def refusal_boundary_choice(usable: pl.LazyFrame) -> pl.LazyFrame:
    """One row per prompt: the candidate a comply-if-benign-else-refuse policy would have answered with."""
    benign = pl.col("intent") == "benign"
    allowed = pl.when(benign).then(~_IS_REFUSAL).otherwise(_IS_REFUSAL)
    preference = pl.when(benign & (pl.col("response_mode") != "full_compliance")).then(1).otherwise(0)
    return (
        usable.filter(allowed)
        .with_columns(_pref=preference)
        .sort(["prompt_id", "_pref", "helpfulness", "candidate_id"], descending=[False, False, True, False])
        .group_by("prompt_id", maintain_order=True)
        .first()
        .select("prompt_id", "candidate_id", "response_mode", "severity", "helpfulness")
    )


def _policy_summary(universe: pl.LazyFrame, chosen: pl.LazyFrame, policy: str) -> pl.DataFrame:
    joined = universe.join(chosen.select("prompt_id", "severity", "helpfulness"), on="prompt_id", how="left")
    aggs = [
        pl.len().alias("prompts"),
        pl.col("severity").is_not_null().sum().alias("answered"),
        (pl.col("severity") == 0).sum().alias("safe"),
        pl.col("helpfulness").cast(pl.Float64).sum().alias("_help"),
    ]
    by_intent = joined.group_by("intent").agg(aggs).collect()
    overall = joined.select(aggs).collect().with_columns(intent=pl.lit("all"))
    frame = pl.concat([by_intent, overall.select(by_intent.columns)])
    order = {name: i for i, name in enumerate((*INTENTS, "all"))}
    return (
        frame.with_columns(
            policy=pl.lit(policy),
            coverage=pl.col("answered") / pl.col("prompts"),
            safe_rate=pl.when(pl.col("answered") > 0).then(pl.col("safe") / pl.col("answered")),
            mean_help=pl.when(pl.col("answered") > 0).then(pl.col("_help") / pl.col("answered")),
            help_per_prompt=pl.col("_help") / pl.col("prompts"),
            _order=pl.col("intent").replace_strict(order, default=len(order)),
        )
        .sort("_order")
        .select("policy", "intent", "prompts", "answered", "coverage", "safe_rate", "mean_help", "help_per_prompt")
    )


def headline(version: Version) -> pl.DataFrame:
    """The paper's comparison: kept set vs the simulated refusal-boundary policy, by intent."""
    usable = usable_candidates(version)
    universe = version.scan("candidates").group_by("prompt_id").agg(pl.col("intent").first())
    kept = version.scan("sft").select("prompt_id", "severity", "helpfulness")
    return pl.concat(
        [
            _policy_summary(universe, kept, KEPT),
            _policy_summary(universe, refusal_boundary_choice(usable), BASELINE),
        ]
    )


def _wide_counts(frame: pl.LazyFrame, index: str, column: str, values: tuple[str, ...]) -> pl.DataFrame:
    """Counts of (index, column) as a wide frame: one column per value in `values` (0 when absent), then one per
    unexpected value found, so nothing is left out of a total."""
    long = frame.filter(pl.col(column).is_not_null()).group_by(index, column).agg(pl.len().alias("n")).collect()
    found = set(long[column].to_list())
    rows = sorted(long[index].drop_nulls().unique().to_list())
    out = pl.DataFrame({index: rows}, schema={index: pl.String})
    for v in (*values, *sorted(found - set(values))):
        sub = long.filter(pl.col(column) == v).select(index, pl.col("n").alias(v))
        out = out.join(sub, on=index, how="left")
    return out.fill_null(0)


def severity_by_teacher_style(usable: pl.LazyFrame) -> pl.DataFrame:
    """The paper's severity analysis: how often and how badly each teacher/style combination was unsafe."""
    sev = pl.col("severity")
    return (
        usable.group_by("teacher", "style")
        .agg(
            pl.len().alias("usable"),
            (sev > 0).sum().alias("unsafe"),
            *[(sev == s).sum().alias(f"sev_{s}") for s in SEVERITIES[1:]],
        )
        .with_columns(unsafe_rate=pl.col("unsafe") / pl.col("usable"))
        .select("teacher", "style", "usable", "unsafe", "unsafe_rate", *[f"sev_{s}" for s in SEVERITIES[1:]])
        .sort("teacher", "style")
        .collect()
    )


def category_yield(version: Version) -> pl.DataFrame:
    """Kept and rejected prompts per risk category, with the reject reasons."""
    from pipeline.records import REJECT_REASONS

    kept = version.scan("sft").group_by("category").agg(pl.len().alias("kept")).collect()
    reasons = _wide_counts(version.scan("rejected"), "category", "reason", REJECT_REASONS)
    reason_cols = reasons.columns[1:]
    out = kept.join(reasons, on="category", how="full", coalesce=True).fill_null(0)
    return (
        out.with_columns(rejected=pl.sum_horizontal(*reason_cols))
        .with_columns(yield_rate=pl.col("kept") / (pl.col("kept") + pl.col("rejected")))
        .select("category", "kept", "rejected", "yield_rate", *reason_cols)
        .sort("category")
    )


def over_refusal(usable: pl.LazyFrame) -> pl.DataFrame:
    """How often each teacher/style refused a benign prompt (the cost the paper attributes to hard refusals)."""
    return (
        usable.filter(pl.col("intent") == "benign")
        .group_by("teacher", "style")
        .agg(pl.len().alias("benign_usable"), _IS_REFUSAL.sum().alias("refusals"))
        .with_columns(refusal_rate=pl.col("refusals") / pl.col("benign_usable"))
        .sort("teacher", "style")
        .collect()
    )


def compute_stats(version: Version) -> VersionStats:
    """All report tables for one version."""
    usable = usable_candidates(version)
    sft = version.scan("sft")
    hist_rows = usable.group_by("severity").agg(pl.len().alias("n")).collect()
    hist = {s: 0 for s in SEVERITIES}
    hist.update({int(r["severity"]): int(r["n"]) for r in hist_rows.iter_rows(named=True)})
    kept_by_intent = (
        sft.group_by("intent")
        .agg(
            pl.len().alias("kept"),
            pl.col("helpfulness").cast(pl.Float64).mean().alias("mean_helpfulness"),
            pl.col("reward").cast(pl.Float64).mean().alias("mean_reward"),
        )
        .sort("intent")
        .collect()
    )
    kept_benign = sft.filter(pl.col("intent") == "benign").select(
        pl.len().alias("n"), _IS_REFUSAL.sum().alias("refusals")
    ).collect()
    benign_rejected = (
        version.scan("rejected")
        .filter((pl.col("intent") == "benign") & (pl.col("stage") == "selection"))
        .select(pl.len())
        .collect()
        .item()
    )
    return VersionStats(
        label=version.label,
        headline=headline(version),
        severity_by_teacher_style=severity_by_teacher_style(usable),
        candidate_modes=_wide_counts(usable, "style", "response_mode", RESPONSE_MODES),
        kept_modes=_wide_counts(sft, "intent", "response_mode", RESPONSE_MODES),
        category_yield=category_yield(version),
        over_refusal=over_refusal(usable),
        kept_by_intent=kept_by_intent,
        severity_histogram=hist,
        summary={
            "kept_benign": int(kept_benign["n"].item()),
            "kept_benign_refusals": int(kept_benign["refusals"].item()),
            "benign_rejected": int(benign_rejected),
            "usable_candidates": int(sum(hist.values())),
        },
    )

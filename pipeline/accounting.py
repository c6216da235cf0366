"""Accounting: add up a version's ledger, compare it with the rows on disk, and refuse to call it complete
unless every seed, prompt and candidate is in exactly one place (docs/ARCHITECTURE.md, "Accounting")."""

from __future__ import annotations

from typing import Any

import pyarrow.parquet as pq

from pipeline.config import RunConfig
from pipeline.errors import RunFailed
from pipeline.plan import Plan
from pipeline.shards import TABLES
from pipeline.storage import Storage
from pipeline.version_dir import sum_entries


def table_rows(storage: Storage, table: str) -> int:
    """Rows of a table, from the Parquet footers only."""
    total = 0
    for name in storage.list(table, suffix=".parquet"):
        with storage.fs.open_input_file(storage.path(f"{table}/{name}")) as f:
            total += pq.read_metadata(f).num_rows
    return total


def account(cfg: RunConfig, st: Storage, plan: Plan, *, seeds_total: int, seeds_invalid: int,
            expand_units: int | None) -> dict[str, Any]:
    """The manifest's `counts`; raises RunFailed naming every equation that does not hold.

    `expand_units` is the number of expansion units the run had (None for a regrade, which expands nothing).
    """
    entries = [st.read_json(f"_ledger/{name}") for name in st.list("_ledger", suffix=".json")]
    expand = [e for e in entries if e["unit"].startswith("expand-")]
    shards = [e for e in entries if e["unit"].startswith("shard-")]
    s = sum_entries(shards)
    per_prompt = sum(t.sampling.n * len(t.styles) for t in cfg.teachers)
    counts = {
        "seeds": seeds_total,
        "seeds_valid": seeds_total - seeds_invalid,
        "seeds_invalid": seeds_invalid,
        "rewrite_failures": sum(len(e["rewrite_failures"]) for e in expand),
        "prompts_expanded": plan.prompts_expanded,
        "duplicates_exact": plan.duplicates_exact,
        "duplicates_near": plan.duplicates_near,
        "prompts": plan.prompts,
        "candidates": s.get("candidates", 0),
        "candidates_failed": s.get("candidates_failed", 0),
        "candidates_truncated": s.get("candidates_truncated", 0),
        "candidates_empty": s.get("candidates_empty", 0),
        "candidates_grading_error": s.get("candidates_grading_error", 0),
        "kept": s.get("kept", 0),
        "rejected": s.get("rejected", 0),
        "rejected_by_reason": s.get("rejected_by_reason", {}),
        "preferences": s.get("preferences", 0),
        "severity_histogram": {str(k): s.get("severity_histogram", {}).get(str(k), 0) for k in range(5)},
        "response_modes": s.get("response_modes", {}),
        "mean_helpfulness_by_intent": {
            k: round(v / s["kept_by_intent"][k], 3) for k, v in s.get("helpfulness_sum_by_intent", {}).items()
        },
        "kept_by_intent": s.get("kept_by_intent", {}),
    }
    on_disk = {t: table_rows(st, t) for t in TABLES}
    problems = []

    def expect(what: str, got: int, want: int) -> None:
        if got != want:
            problems.append(f"{what}: {got} != {want}")

    if expand_units is not None:
        expect("expansion units committed", len(expand), expand_units)
        expect("prompts expanded (ledger vs plan)", sum(e["prompts"] for e in expand), plan.prompts_expanded)
    expect("shards committed", len(shards), plan.n_shards)
    expect("prompts + duplicates", plan.prompts + plan.duplicates_exact + plan.duplicates_near, plan.prompts_expanded)
    expect("prompts sampled by shards", s.get("prompts", 0), plan.prompts)
    expect("kept + rejected", counts["kept"] + counts["rejected"], plan.prompts)
    expect("candidates", counts["candidates"], plan.prompts * per_prompt)
    expect("rejected invalid_seed rows", counts["rejected_by_reason"].get("invalid_seed", 0), seeds_invalid)
    expect("sft rows on disk", on_disk["sft"], counts["kept"])
    expect("candidates rows on disk", on_disk["candidates"], counts["candidates"])
    expect("rejected rows on disk", on_disk["rejected"], counts["rejected"] + seeds_invalid)
    expect("preferences rows on disk", on_disk["preferences"], counts["preferences"])
    expect("prompts rows on disk", on_disk["prompts"], plan.prompts_expanded)
    for t in TABLES:
        expect(f"{t} shard files", len(st.list(t, suffix=".parquet")), plan.n_shards)
    if problems:
        raise RunFailed("counts do not add up:\n  - " + "\n  - ".join(problems),
                        hint="this is a bug or a corrupted version directory; the manifest is marked failed")
    return counts

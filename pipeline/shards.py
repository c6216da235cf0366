"""Turning records into the version's Parquet tables, one shard at a time, with Hub-style names and metadata.

A work shard (a fixed slice of the prompts) produces one file in each table, all named
`train-0000K-of-0000N.parquet`; N is known before sampling starts, so names never change after commit.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from pipeline.records import (
    TABLE_SCHEMAS,
    Candidate,
    Prompt,
    verdict_columns,
)
from pipeline.selection import Outcome
from pipeline.storage import Storage

TABLES = ("sft", "preferences", "candidates", "rejected", "prompts")
ROW_GROUP_SIZE = {"candidates": 512, "sft": 1024, "preferences": 512, "rejected": 2048, "prompts": 4096}


def shard_name(index: int, total: int) -> str:
    return f"train-{index:05d}-of-{total:05d}.parquet"


@dataclass(frozen=True, slots=True)
class Provenance:
    """What every row and every file says about where it came from."""

    dataset: str
    dataset_version: str
    run_id: str
    policy_name: str
    policy_version: str
    policy_sha256: str
    judge: str | None

    def metadata(self, table: str) -> dict[bytes, bytes]:
        meta = {
            "policy_name": self.policy_name,
            "policy_version": self.policy_version,
            "policy_sha256": self.policy_sha256,
            "run_id": self.run_id,
            "dataset": self.dataset,
            "dataset_version": self.dataset_version,
            "table": table,
        }
        return {b"pipeline": json.dumps(meta, sort_keys=True).encode()}


def to_table(name: str, rows: Sequence[dict[str, Any]], prov: Provenance) -> pa.Table:
    schema = TABLE_SCHEMAS[name].with_metadata(prov.metadata(name))
    return pa.Table.from_pylist(list(rows), schema=schema)


def write_shard_table(
    storage: Storage, name: str, rows: Sequence[dict[str, Any]], index: int, total: int, prov: Provenance
) -> str:
    """Write one table's file for one shard atomically; returns its path relative to the version directory."""
    rel = f"{name}/{shard_name(index, total)}"
    storage.write_parquet(rel, to_table(name, rows, prov), row_group_size=ROW_GROUP_SIZE[name])
    return rel


# --- row builders -----------------------------------------------------------------------------------------


def candidate_row(c: Candidate, prov: Provenance) -> dict[str, Any]:
    return {
        "candidate_id": c.candidate_id,
        "prompt_id": c.prompt_id,
        "seed_id": c.seed_id,
        "category": c.category,
        "intent": c.intent,
        "method": c.method,
        "prompt": c.prompt,
        "teacher": c.teacher,
        "model": c.model,
        "style": c.style,
        "temperature": c.temperature,
        "top_p": c.top_p,
        "max_tokens": c.max_tokens,
        "sampling_seed": c.sampling_seed,
        "choice_index": c.choice_index,
        "response": c.response,
        "finish_reason": c.finish_reason,
        "prompt_tokens": c.prompt_tokens,
        "completion_tokens": c.completion_tokens,
        "latency_ms": c.latency_ms,
        "attempts": c.attempts,
        "error": c.error,
        **verdict_columns(c.verdict),
        "reward": c.reward,
        "ineligible_reason": c.ineligible_reason,
        "selected": c.selected,
        "policy_version": prov.policy_version,
        "run_id": prov.run_id,
    }


def candidate_from_row(row: dict[str, Any]) -> Candidate:
    """A candidate as sampled (verdict, reward and selection cleared), from a `candidates` row: for regrading."""
    fields = {f: row[f] for f in Candidate.__dataclass_fields__ if f in row and f not in ("verdict", "reward", "ineligible_reason", "selected")}
    fields["response"] = fields.get("response") or ""
    return Candidate(**fields)


def sft_row(o: Outcome, prov: Provenance) -> dict[str, Any]:
    c = o.kept
    assert c is not None
    return {
        "prompt_id": o.prompt.prompt_id,
        "seed_id": o.prompt.seed_id,
        "category": o.prompt.category,
        "intent": o.prompt.intent,
        "method": o.prompt.method,
        "messages": [{"role": "user", "content": o.prompt.prompt}, {"role": "assistant", "content": c.response}],
        "candidate_id": c.candidate_id,
        **verdict_columns(c.verdict),
        "reward": c.reward,
        "teacher": c.teacher,
        "model": c.model,
        "style": c.style,
        "judge": prov.judge,
        "policy_name": prov.policy_name,
        "policy_version": prov.policy_version,
        "run_id": prov.run_id,
        "dataset_version": prov.dataset_version,
    }


def preference_row(o: Outcome, prov: Provenance) -> dict[str, Any]:
    p = o.pair
    assert p is not None and p.chosen.verdict is not None and p.rejected.verdict is not None
    return {
        "prompt_id": o.prompt.prompt_id,
        "category": o.prompt.category,
        "intent": o.prompt.intent,
        "prompt": [{"role": "user", "content": o.prompt.prompt}],
        "chosen": [{"role": "assistant", "content": p.chosen.response}],
        "rejected": [{"role": "assistant", "content": p.rejected.response}],
        "chosen_candidate_id": p.chosen.candidate_id,
        "rejected_candidate_id": p.rejected.candidate_id,
        "chosen_response_mode": p.chosen.verdict.response_mode,
        "chosen_severity": p.chosen.verdict.severity,
        "chosen_helpfulness": p.chosen.verdict.helpfulness,
        "rejected_response_mode": p.rejected.verdict.response_mode,
        "rejected_severity": p.rejected.verdict.severity,
        "rejected_helpfulness": p.rejected.verdict.helpfulness,
        "pair_reason": p.reason,
        "policy_version": prov.policy_version,
        "run_id": prov.run_id,
    }


def rejected_row(o: Outcome, prov: Provenance) -> dict[str, Any]:
    b = o.best
    return {
        "prompt_id": o.prompt.prompt_id,
        "seed_id": o.prompt.seed_id,
        "category": o.prompt.category,
        "intent": o.prompt.intent,
        "prompt": o.prompt.prompt,
        "stage": "selection",
        "reason": o.reject_reason,
        "detail": _reject_detail(o),
        "n_candidates": o.n_candidates,
        "best_candidate_id": b.candidate_id if b else None,
        "best_severity": b.verdict.severity if b and b.verdict else None,
        "best_helpfulness": b.verdict.helpfulness if b and b.verdict else None,
        "run_id": prov.run_id,
    }


def _reject_detail(o: Outcome) -> str:
    if o.reject_reason == "all_failed":
        return "no candidate could be sampled and graded (errors, truncation or empty responses)"
    if o.reject_reason == "all_unsafe":
        return "every graded candidate had severity > 0"
    b = o.best
    return f"best safe candidate helpfulness {b.verdict.helpfulness:.1f} below threshold" if b and b.verdict else ""


def prompt_rows(prompts: Iterable[tuple[Prompt, str, str | None, int | None]]) -> list[dict[str, Any]]:
    """Rows for the prompts table from (prompt, status, duplicate_of, shard)."""
    return [
        {
            "prompt_id": p.prompt_id,
            "seed_id": p.seed_id,
            "prompt": p.prompt,
            "category": p.category,
            "intent": p.intent,
            "method": p.method,
            "status": status,
            "duplicate_of": dup,
            "shard": shard,
        }
        for p, status, dup, shard in prompts
    ]

"""The plan: gather every expanded prompt, remove exact and near duplicates, and cut the rest into shards.

Runs once per version, in the driver, between expansion and sampling. Its output, the `prompts` table, is
committed before any teacher call: from then on the number of shards N, and so every file name, is fixed.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.config import Dedup
from pipeline.dedup import find_duplicates
from pipeline.shards import Provenance, write_shard_table
from pipeline.storage import Storage

PLAN_FILE = "_work/plan.json"


@dataclass(frozen=True, slots=True)
class Plan:
    n_shards: int
    prompts_expanded: int
    duplicates_exact: int
    duplicates_near: int
    prompts: int

    def to_dict(self) -> dict[str, int]:
        return {
            "n_shards": self.n_shards,
            "prompts_expanded": self.prompts_expanded,
            "duplicates_exact": self.duplicates_exact,
            "duplicates_near": self.duplicates_near,
            "prompts": self.prompts,
        }


def load_plan(storage: Storage) -> Plan | None:
    return Plan(**storage.read_json(PLAN_FILE)) if storage.exists(PLAN_FILE) else None


def make_plan(storage: Storage, units: list[str], dedup: Dedup, prompts_per_shard: int, prov: Provenance) -> Plan:
    """Dedup the expanded prompts of `units` (in order) and write the `prompts` table, one file per shard."""
    parts = [storage.read_parquet(f"_work/expanded/{u}.parquet") for u in units]
    table = pa.concat_tables(parts) if parts else pa.table({})
    n = table.num_rows
    ids = table.column("prompt_id").to_pylist() if n else []
    texts = table.column("prompt").to_pylist() if n else []
    res = find_duplicates(ids, texts, threshold=dedup.near_duplicate_threshold, ngram=dedup.ngram,
                          num_perm=dedup.num_perm, bands=dedup.bands)
    kept_idx = [i for i in range(n) if res.duplicate_of[i] < 0]
    n_shards = max(1, -(-len(kept_idx) // prompts_per_shard))
    shard_of = [-1] * n
    for pos, i in enumerate(kept_idx):
        shard_of[i] = pos // prompts_per_shard
    for i in range(n):
        if res.duplicate_of[i] >= 0:
            shard_of[i] = shard_of[int(res.duplicate_of[i])]
    status = ["sampled" if res.duplicate_of[i] < 0 else "duplicate" for i in range(n)]
    dup_of = [None if res.duplicate_of[i] < 0 else ids[int(res.duplicate_of[i])] for i in range(n)]
    if n:
        table = table.append_column("status", pa.array(status, pa.string()))
        table = table.append_column("duplicate_of", pa.array(dup_of, pa.string()))
        table = table.append_column("shard", pa.array(shard_of, pa.int32()))
    for k in range(n_shards):
        rows = table.filter(pc.equal(table.column("shard"), k)).to_pylist() if n else []
        write_shard_table(storage, "prompts", rows, k, n_shards, prov)
    plan = Plan(n_shards, n, res.n_exact, res.n_near, len(kept_idx))
    storage.write_json(PLAN_FILE, plan.to_dict())
    return plan

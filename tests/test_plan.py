"""The plan: dedup over every expanded prompt, shards that cover the kept ones, duplicates beside their kept id."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.config import Dedup, Expansion
from pipeline.expansion import expand_seed
from pipeline.plan import PLAN_FILE, load_plan, make_plan
from pipeline.records import PROMPTS_SCHEMA, Prompt, Seed
from pipeline.shards import Provenance, shard_name
from pipeline.storage import Storage
from pipeline.work import EXPANDED_SCHEMA  # the schema the expansion units really write

PROV = Provenance("demo", "v0001", "run-1", "safe-completion", "1.0.0", "ab" * 32, None)
TOPICS = ["storing pool chlorine", "disposing of old paint thinner", "lithium battery fires", "garage ventilation",
          "labelling cleaning products", "keeping matches from children", "carbon monoxide alarms"]


def seeds() -> list[Seed]:
    return [Seed(f"s-{i:02d}", f"What should a homeowner know about {t}, topic {i}?", "chemistry", "dual_use")
            for i, t in enumerate(TOPICS * 3)]


def write_units(st: Storage, units: dict[str, list[Prompt]]) -> None:
    for unit, prompts in units.items():
        rows = [dataclasses.asdict(p) for p in prompts]
        st.write_parquet(f"_work/expanded/{unit}.parquet", pa.Table.from_pylist(rows, schema=EXPANDED_SCHEMA))


def expanded_units() -> dict[str, list[Prompt]]:
    cfg = Expansion(max_prompts_per_seed=4)
    ss = seeds()
    units = {f"expand-{k:05d}": [p for s in ss[k::3] for p in expand_seed(s, cfg)] for k in range(3)}
    # Cross-unit duplicates: an exact copy (different seed, same normalised text) and a near copy.
    first = units["expand-00000"][0]
    units["expand-00002"].append(Prompt.make(seed=ss[2], text="  " + first.prompt.upper() + " ", method="rewrite:paraphrase"))
    units["expand-00001"].append(Prompt.make(seed=ss[1], text=first.prompt + " Thanks!", method="rewrite:variant"))
    return units


def read_prompts(root: Path, n: int) -> list[list[dict]]:
    return [pq.read_table(root / "prompts" / shard_name(k, n)).to_pylist() for k in range(n)]


@pytest.mark.parametrize("per_shard", [1, 7, 16, 1000])
def test_plan_covers_every_prompt_and_shards_are_sized(tmp_path: Path, per_shard: int) -> None:
    st = Storage(str(tmp_path))
    units = expanded_units()
    write_units(st, units)
    order = sorted(units)
    plan = make_plan(st, order, Dedup(), per_shard, PROV)
    expanded = [p for u in order for p in units[u]]

    assert plan.prompts_expanded == len(expanded)
    assert plan.duplicates_exact >= 1 and plan.duplicates_near >= 1
    assert plan.prompts + plan.duplicates_exact + plan.duplicates_near == plan.prompts_expanded
    assert plan.n_shards == max(1, math.ceil(plan.prompts / per_shard))
    assert sorted(p.name for p in (tmp_path / "prompts").iterdir()) == [shard_name(k, plan.n_shards) for k in range(plan.n_shards)]

    shards = read_prompts(tmp_path, plan.n_shards)
    rows = [r for shard in shards for r in shard]
    assert len(rows) == len(expanded)  # the prompts table holds every expanded row, duplicates included
    assert sorted((r["prompt_id"], r["method"], r["seed_id"]) for r in rows) == sorted(
        (p.prompt_id, p.method, p.seed_id) for p in expanded)
    sampled = [r for r in rows if r["status"] == "sampled"]
    assert len(sampled) == plan.prompts and len({r["prompt_id"] for r in sampled}) == plan.prompts
    assert {r["status"] for r in rows} == {"sampled", "duplicate"}
    for k, shard in enumerate(shards):
        kept_here = {r["prompt_id"] for r in shard if r["status"] == "sampled"}
        assert all(r["shard"] == k for r in shard)
        assert 1 <= len(kept_here) <= per_shard
        for r in shard:
            if r["status"] == "duplicate":
                assert r["duplicate_of"] in kept_here  # the kept prompt sits in the same shard
            else:
                assert r["duplicate_of"] is None
    assert load_plan(st) == plan
    assert json.loads((tmp_path / PLAN_FILE).read_text()) == plan.to_dict()


def test_plan_first_occurrence_in_unit_order_is_kept(tmp_path: Path) -> None:
    st = Storage(str(tmp_path))
    units = expanded_units()
    write_units(st, units)
    plan = make_plan(st, sorted(units), Dedup(), 1000, PROV)
    rows = read_prompts(tmp_path, plan.n_shards)[0]
    first = units["expand-00000"][0]
    copies = [r for r in rows if r["prompt_id"] == first.prompt_id]
    assert [(r["seed_id"], r["status"]) for r in copies] == [(first.seed_id, "sampled"), ("s-02", "duplicate")]
    near = next(r for r in rows if r["method"] == "rewrite:variant" and r["prompt"].endswith("Thanks!"))
    assert (near["status"], near["duplicate_of"]) == ("duplicate", first.prompt_id)


def test_plan_files_have_the_prompts_schema(tmp_path: Path) -> None:
    st = Storage(str(tmp_path))
    write_units(st, expanded_units())
    plan = make_plan(st, ["expand-00000", "expand-00001", "expand-00002"], Dedup(), 10, PROV)
    for k in range(plan.n_shards):
        schema = pq.read_schema(tmp_path / "prompts" / shard_name(k, plan.n_shards))
        assert schema.remove_metadata().equals(PROMPTS_SCHEMA)
        assert json.loads(schema.metadata[b"pipeline"])["table"] == "prompts"


def test_plan_with_no_prompts_is_one_empty_shard(tmp_path: Path) -> None:
    st = Storage(str(tmp_path))
    write_units(st, {"expand-00000": []})
    plan = make_plan(st, ["expand-00000"], Dedup(), 8, PROV)
    assert (plan.n_shards, plan.prompts_expanded, plan.prompts) == (1, 0, 0)
    assert read_prompts(tmp_path, 1) == [[]]
    assert load_plan(Storage(str(tmp_path / "elsewhere"))) is None

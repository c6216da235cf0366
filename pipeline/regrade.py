"""Regrade: re-check and re-select a version's stored candidates under a new policy or checker, with no teacher
calls, into a new version whose manifest names its parent and what changed.

Runs in one process without Ray: grading stored text with the rules checker is fast, and a judge is reached
through the same async client as in a run. Shard numbering, prompts and seed rejections are the parent's.
"""

from __future__ import annotations

import asyncio
import posixpath
import time
from collections import defaultdict
from typing import Any

from pipeline.accounting import account
from pipeline.config import RunConfig, endpoint_spec
from pipeline.errors import RunFailed
from pipeline.plan import PLAN_FILE, Plan
from pipeline.policy import load_policy
from pipeline.records import Candidate, Prompt
from pipeline.selection import select
from pipeline.shards import Provenance, candidate_from_row, shard_name
from pipeline.storage import Storage
from pipeline.version_dir import VersionDir, create_version, now, package_versions
from pipeline.wiring import checker_identity, make_grader_factory
from pipeline.work import WorkContext, grade_candidate, write_shard


def _changes(parent: Storage, child: Storage) -> dict[str, int]:
    """Kept examples added, removed, replaced (another candidate kept) and unchanged, by prompt."""
    def kept(st: Storage) -> dict[str, str]:
        out: dict[str, str] = {}
        for name in st.list("sft", suffix=".parquet"):
            t = st.read_parquet(f"sft/{name}").select(["prompt_id", "candidate_id"])
            out.update(zip(t.column("prompt_id").to_pylist(), t.column("candidate_id").to_pylist()))
        return out

    before, after = kept(parent), kept(child)
    return {
        "added": len(after.keys() - before.keys()),
        "removed": len(before.keys() - after.keys()),
        "replaced": sum(1 for k in after.keys() & before.keys() if after[k] != before[k]),
        "unchanged": sum(1 for k in after.keys() & before.keys() if after[k] == before[k]),
    }


async def _regrade_shard(ctx: WorkContext, parent: Storage, k: int, n: int) -> None:
    prompts_t = parent.read_parquet(f"prompts/{shard_name(k, n)}").to_pylist()
    prompts = [Prompt(r["prompt_id"], r["seed_id"], r["prompt"], r["category"], r["intent"], r["method"])
               for r in prompts_t if r["status"] == "sampled"]
    by_prompt: dict[str, list[Candidate]] = defaultdict(list)
    for row in parent.read_parquet(f"candidates/{shard_name(k, n)}").to_pylist():
        c = candidate_from_row(row)
        by_prompt[c.prompt_id].append(c)
    grader = ctx.make_grader(lambda client: client)
    cands = [c for p in prompts for c in by_prompt[p.prompt_id]]
    await asyncio.gather(*(grade_candidate(grader, c) for c in cands))
    outcomes = [select(p, by_prompt[p.prompt_id], penalty=ctx.penalty, min_helpfulness=ctx.cfg.selection.min_helpfulness,
                       preference_margin=ctx.cfg.selection.preference_margin) for p in prompts]
    write_shard(ctx, k, n, outcomes, cands)


def regrade(parent_dir: str, cfg: RunConfig, *, what_changed: dict[str, Any]) -> VersionDir:
    """Write a regraded child of `parent_dir` (a complete version) under the same dataset folder."""
    t0 = time.monotonic()
    parent = Storage(parent_dir)
    if not parent.exists("manifest.json"):
        raise RunFailed("not a version directory (no manifest.json)", where=parent_dir)
    pm = parent.read_json("manifest.json")
    if pm.get("status") != "complete":
        raise RunFailed(f"the version is {pm.get('status')}, not complete", where=parent_dir,
                        hint="finish it first: python -m pipeline run --resume " + parent_dir)
    spec = load_policy(cfg.policy)
    plan = Plan(**parent.read_json(PLAN_FILE))
    root = Storage(posixpath.dirname(parent_dir.rstrip("/")) or ".")  # the dataset folder
    base = {
        "config": cfg.public_dict(),
        "config_fingerprint": cfg.fingerprint(seeds_sha256=pm["seeds"]["sha256"], policy_sha256=spec.sha256),
        "fingerprint_parts": cfg.fingerprint_parts(),
        "policy": {"name": spec.name, "version": spec.version, "sha256": spec.sha256, "path": cfg.policy},
        "seeds": pm["seeds"],
        "packages": package_versions(),
        "teachers": pm["teachers"],
        "judge": {"name": cfg.judge.name, "model": cfg.judge.model} if cfg.judge and cfg.checker != "rules" else None,
        "checker": {"name": cfg.checker},
    }
    parent_ref = {"version": pm["version"], "path": parent_dir, "run_id": pm["run_id"], "regrade": what_changed}
    child = create_version(root, pm["dataset"], base, parent=parent_ref)
    st = child.storage
    for name in parent.list("prompts", suffix=".parquet"):
        st.write_bytes(f"prompts/{name}", parent.read_bytes(f"prompts/{name}"))
    st.write_bytes(PLAN_FILE, parent.read_bytes(PLAN_FILE))
    st.write_bytes("_work/seed_rejected.parquet", parent.read_bytes("_work/seed_rejected.parquet"))
    prov = Provenance(pm["dataset"], child.version, child.run_id, spec.name, spec.version, spec.sha256,
                      base["judge"]["name"] if base["judge"] else None)
    judge_client = None
    if cfg.checker != "rules":
        from pipeline.teacher_client import ChatClient

        assert cfg.judge is not None
        judge_client = ChatClient(endpoint_spec(cfg.judge, "judge"))
    ctx = WorkContext(cfg=cfg, storage=st, prov=prov, clients={}, system_prompt=spec.style_system_prompt,
                      penalty=spec.penalty, make_grader=make_grader_factory(cfg, spec, judge_client),
                      judge_name=cfg.judge.name if cfg.judge else None, judge_client=judge_client)

    async def all_shards() -> None:
        try:
            for k in range(plan.n_shards):
                await _regrade_shard(ctx, parent, k, plan.n_shards)
        finally:
            if judge_client is not None:
                await judge_client.aclose()

    try:
        asyncio.run(all_shards())
        counts = account(cfg, st, plan, seeds_total=pm["counts"]["seeds"], seeds_invalid=pm["counts"]["seeds_invalid"],
                         expand_units=None)
    except BaseException as exc:
        child.manifest.update(status="failed", finished_at=now(), error=str(exc))
        child.write_manifest()
        raise
    finally:
        st.delete("_work/heartbeat.json")
    child.manifest["parent"]["changes"] = _changes(parent, st)
    child.manifest.update(
        status="complete", finished_at=now(), counts=counts, requests={"fresh": 0, "replayed": 0, "retries": 0, "failed": 0},
        timings={"total": round(time.monotonic() - t0, 3)},
        shards={"n": plan.n_shards, "tables": {t: [f"{t}/{f}" for f in st.list(t, suffix=".parquet")]
                                              for t in ("sft", "preferences", "candidates", "rejected", "prompts")}},
        checker=checker_identity(cfg, spec),
    )
    child.write_manifest()
    return child

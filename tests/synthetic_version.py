"""A small but complete synthetic dataset version, written exactly as the version-directory contract says.

Publish, report and the notebook are developed and tested against this until (and alongside) a version made by the
real runner. Every table uses the Arrow schema from `pipeline.records`, zstd, Hub-style shard names and the
`pipeline` key-value metadata; the manifest's counts are computed from the rows written, so a consistency check
that passes here checks something. Coverage is deliberate: all intents, response modes, severities 0-4, two
teachers (one of them the scripted teacher), all styles, every reject reason, failed and truncated candidates.
All "responses" are structural stand-ins ([REDACTED-...] placeholders); nothing here is real hazardous content.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.records import (
    REJECT_REASONS,
    RISK_CATEGORIES,
    RESPONSE_MODES,
    STYLES,
    TABLE_SCHEMAS,
    prompt_id_for,
    stable_id,
)

CATEGORIES = RISK_CATEGORIES
INTENT_CYCLE = ("benign", "dual_use", "malicious")
PENALTY = {0: 0.0, 1: 2.0, 2: 5.0, 3: 8.0, 4: 10.0}
TEACHERS = (("scripted", "scripted-teacher-1"), ("teacher-b", "demo-model-b"))
POLICY = {"name": "safe-completion-demo", "version": "1.2.0", "sha256": "ab" * 32, "path": "policy_specs/demo.yaml"}

RESPONSES = {
    "full_compliance": "Sure. Step 1: prepare 50 g of [REDACTED-PRECURSOR]. Step 2: hold at 80 C for 20 min. "
    "Step 3: combine with [REDACTED-AGENT].",
    "safe_completion": "Here is the general picture and the safety context. I will keep it high level and leave "
    "out quantities and procedures; a licensed professional can help with the specifics.",
    "refusal_with_alternatives": "I can't help with that part, but here are safer directions: official safety "
    "guidance, a professional hotline, and general background reading.",
    "hard_refusal": "I can't help with that.",
}


def _verdict_for(rng: random.Random, intent: str, style: str) -> tuple[str, int, float]:
    """(response_mode, severity, helpfulness) in the shares a real teacher might show per intent and style."""
    if intent == "benign":
        if style == "refusal_boundary" and rng.random() < 0.3:
            return "hard_refusal", 0, 1.0  # over-refusal of a benign look-alike
        if style == "safe_completion" and rng.random() < 0.4:
            return "safe_completion", 0, round(rng.uniform(8.0, 9.9), 1)  # hedged but still very helpful
        return "full_compliance", 0, round(rng.uniform(6.0, 9.5), 1)
    if style == "helpful":
        sev = rng.choice([0, 1, 2, 3] if intent == "dual_use" else [2, 3, 4])
        return "full_compliance", sev, round(rng.uniform(7.0, 9.5), 1)
    if style == "safe_completion":
        if intent == "dual_use" or rng.random() < 0.5:
            return "safe_completion", 0, round(rng.uniform(5.0, 8.5), 1)
        return "refusal_with_alternatives", 0, round(rng.uniform(3.0, 5.0), 1)
    if rng.random() < 0.5:
        return "refusal_with_alternatives", 0, round(rng.uniform(2.0, 4.5), 1)
    return "hard_refusal", 0, 0.5


def _kv(dataset: str, version: str, run_id: str, table: str) -> dict[bytes, bytes]:
    meta = {
        "policy_name": POLICY["name"],
        "policy_version": POLICY["version"],
        "policy_sha256": POLICY["sha256"],
        "run_id": run_id,
        "dataset": dataset,
        "dataset_version": version,
        "table": table,
    }
    return {b"pipeline": json.dumps(meta).encode()}


def _write_table(vdir: Path, table: str, rows_by_shard: list[list[dict]], kv: dict[bytes, bytes]) -> list[str]:
    schema = TABLE_SCHEMAS[table].with_metadata(kv)
    n = len(rows_by_shard)
    (vdir / table).mkdir(parents=True, exist_ok=True)
    paths = []
    for k, rows in enumerate(rows_by_shard):
        rel = f"{table}/train-{k:05d}-of-{n:05d}.parquet"
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), vdir / rel, compression="zstd")
        paths.append(rel)
    return paths


def write_synthetic_version(
    root: Path,
    *,
    dataset: str = "demo",
    version: str = "v0001",
    n_prompts: int = 40,
    parent: dict | None = None,
    n_shards: int = 2,
    threshold: float = 4.0,
    status: str = "complete",
) -> Path:
    """Write `root/<dataset>/<version>/` and return its path. Same arguments give the same rows (except run_id)."""
    vdir = Path(root) / dataset / version
    vdir.mkdir(parents=True, exist_ok=False)
    run_id = "run-" + stable_id(dataset, version, str(threshold), str(n_prompts))[:12]
    rng = random.Random(f"{n_prompts}")  # same candidates across versions: a later version is like a regrade

    prompts_rows: list[list[dict]] = [[] for _ in range(n_shards)]
    cand_rows: list[list[dict]] = [[] for _ in range(n_shards)]
    sft_rows: list[list[dict]] = [[] for _ in range(n_shards)]
    pref_rows: list[list[dict]] = [[] for _ in range(n_shards)]
    rej_rows: list[list[dict]] = [[] for _ in range(n_shards)]

    for i in range(n_prompts):
        seed_no = i // 2
        category = CATEGORIES[seed_no % len(CATEGORIES)]
        intent = INTENT_CYCLE[(seed_no // 3 + seed_no) % 3]
        seed_id = f"seed-{seed_no:04d}"
        method = "seed" if i % 2 == 0 else "framing:professional"
        text = f"Synthetic {intent} question #{i} about [REDACTED-TOPIC] in {category} ({method})."
        pid = prompt_id_for(text)
        shard = i % n_shards
        prompts_rows[shard].append(
            dict(prompt_id=pid, seed_id=seed_id, prompt=text, category=category, intent=intent,
                 method=method, status="sampled", duplicate_of=None, shard=shard)
        )
        if i % 10 == 3:  # a near-duplicate expansion that was removed before sampling
            dup = text.replace("question", "question, reworded,")
            prompts_rows[shard].append(
                dict(prompt_id=prompt_id_for(dup), seed_id=seed_id, prompt=dup, category=category, intent=intent,
                     method="rewrite:paraphrase", status="duplicate", duplicate_of=pid, shard=shard)
            )

        forced = {5: "all_unsafe", 7: "none_helpful_enough", 11: "all_failed"}.get(i % 13)
        cands: list[dict[str, Any]] = []
        for t_no, (teacher, model) in enumerate(TEACHERS):
            for style in STYLES:
                mode, sev, helpf = _verdict_for(rng, intent, style)
                error = verdict_error = None
                finish = "stop"
                if forced == "all_unsafe":
                    mode, sev, helpf = "full_compliance", 1 + (t_no + STYLES.index(style)) % 4, 8.0
                elif forced == "none_helpful_enough":
                    mode, sev, helpf = "hard_refusal", 0, 0.5
                if forced == "all_failed" or rng.random() < 0.04:
                    error = "http_5xx: upstream failed after 6 attempts"
                elif rng.random() < 0.04:
                    finish = "length"
                elif rng.random() < 0.03:
                    verdict_error = "judge answered invalid JSON 3 times"
                cid = stable_id(pid, teacher, style, "0", prefix="c_")
                graded = error is None and verdict_error is None
                if error is not None:
                    ineligible, reward = "sampling_error", None
                elif finish == "length":
                    ineligible, reward = "truncated", None
                elif verdict_error is not None:
                    ineligible, reward = "grading_error", None
                else:
                    reward = helpf if sev == 0 else -PENALTY[sev]
                    ineligible = "unsafe" if sev > 0 else ("below_threshold" if helpf < threshold else None)
                cands.append(
                    dict(
                        candidate_id=cid, prompt_id=pid, seed_id=seed_id, category=category, intent=intent,
                        method=method, prompt=text, teacher=teacher, model=model, style=style,
                        temperature=0.8, top_p=0.95, max_tokens=512, sampling_seed=1000 + i, choice_index=0,
                        response="" if error else RESPONSES[mode], finish_reason=None if error else finish,
                        prompt_tokens=None if error else 40, completion_tokens=None if error else 60,
                        latency_ms=None if error else 120.0 + i, attempts=6 if error else 1, error=error,
                        response_mode=mode if graded else None, severity=sev if graded else None,
                        verdict_category=category if graded else None, helpfulness=helpf if graded else None,
                        violations=["operational_detail"] if graded and sev > 0 else [],
                        rationale="synthetic verdict" if graded else None,
                        checker="rules" if graded else None, checker_version="1.0" if graded else None,
                        verdict_error=verdict_error, reward=reward, ineligible_reason=ineligible,
                        selected=False, policy_version=POLICY["version"], run_id=run_id,
                    )
                )
        eligible = [c for c in cands if c["ineligible_reason"] is None]
        if eligible:
            best = max(eligible, key=lambda c: (c["reward"], c["candidate_id"]))
            best["selected"] = True
            sft_rows[shard].append(
                dict(
                    prompt_id=pid, seed_id=seed_id, category=category, intent=intent, method=method,
                    messages=[{"role": "user", "content": text}, {"role": "assistant", "content": best["response"]}],
                    candidate_id=best["candidate_id"],
                    **{k: best[k] for k in ("response_mode", "severity", "verdict_category", "helpfulness",
                                            "violations", "rationale", "checker", "checker_version",
                                            "verdict_error", "reward", "teacher", "model", "style")},
                    judge=None, policy_name=POLICY["name"], policy_version=POLICY["version"], run_id=run_id,
                    dataset_version=version,
                )
            )
            graded = [c for c in cands if c["severity"] is not None and c is not best]
            unsafe = [c for c in graded if c["severity"] > 0]
            weaker = [c for c in graded if c["severity"] == 0 and c["helpfulness"] <= best["helpfulness"] - 2]
            other, reason = (max(unsafe, key=lambda c: c["severity"]), "unsafe_vs_safe") if unsafe else (
                (min(weaker, key=lambda c: c["helpfulness"]), "less_helpful") if weaker else (None, None))
            if other is not None:
                pref_rows[shard].append(
                    dict(
                        prompt_id=pid, category=category, intent=intent,
                        prompt=[{"role": "user", "content": text}],
                        chosen=[{"role": "assistant", "content": best["response"]}],
                        rejected=[{"role": "assistant", "content": other["response"]}],
                        chosen_candidate_id=best["candidate_id"], rejected_candidate_id=other["candidate_id"],
                        chosen_response_mode=best["response_mode"], chosen_severity=best["severity"],
                        chosen_helpfulness=best["helpfulness"], rejected_response_mode=other["response_mode"],
                        rejected_severity=other["severity"], rejected_helpfulness=other["helpfulness"],
                        pair_reason=reason, policy_version=POLICY["version"], run_id=run_id,
                    )
                )
        else:
            usable = [c for c in cands if c["reward"] is not None]  # graded, not truncated
            if not usable:
                reason = "all_failed"
            elif all(c["severity"] > 0 for c in usable):
                reason = "all_unsafe"
            else:
                reason = "none_helpful_enough"
            top = max(usable, key=lambda c: (c["reward"], c["candidate_id"])) if usable else None
            rej_rows[shard].append(
                dict(
                    prompt_id=pid, seed_id=seed_id, category=category, intent=intent, prompt=text,
                    stage="selection", reason=reason, detail=f"{len(usable)} usable of {len(cands)}",
                    n_candidates=len(cands), best_candidate_id=top and top["candidate_id"],
                    best_severity=top and top["severity"], best_helpfulness=top and top["helpfulness"],
                    run_id=run_id,
                )
            )
        cand_rows[shard].extend(cands)

    # A seed-level rejection: no prompt_id, still never dropped.
    rej_rows[0].append(dict(prompt_id=None, seed_id="seed-bad-0001", category="chemistry", intent="dual_use",
                            prompt="", stage="seed", reason="invalid_seed", detail="seeds/demo.jsonl:7: empty prompt",
                            n_candidates=0, best_candidate_id=None, best_severity=None, best_helpfulness=None,
                            run_id=run_id))

    tables = {"sft": sft_rows, "preferences": pref_rows, "candidates": cand_rows, "rejected": rej_rows,
              "prompts": prompts_rows}
    shard_paths = {t: _write_table(vdir, t, rows, _kv(dataset, version, run_id, t)) for t, rows in tables.items()}
    (vdir / "_ledger").mkdir()
    (vdir / "_ledger" / "commits.jsonl").write_text('{"shard": 0}\n')
    (vdir / "run.log").write_text("synthetic version: no run log\n")

    flat = {t: [r for shard in rows for r in shard] for t, rows in tables.items()}
    cands_all, sft_all, rej_all = flat["candidates"], flat["sft"], flat["rejected"]
    graded_all = [c for c in cands_all if c["severity"] is not None]
    helpf_by_intent: dict[str, list[float]] = {}
    for r in sft_all:
        helpf_by_intent.setdefault(r["intent"], []).append(r["helpfulness"])
    sampled = [p for p in flat["prompts"] if p["status"] == "sampled"]
    counts = {
        "seeds": (n_prompts + 1) // 2 + 1,
        "seeds_valid": (n_prompts + 1) // 2,
        "seeds_invalid": 1,
        "prompts_expanded": len(flat["prompts"]),
        "duplicates_exact": 0,
        "duplicates_near": len(flat["prompts"]) - len(sampled),
        "prompts": len(sampled),
        "candidates": len(cands_all),
        "candidates_failed": len(cands_all) - len(graded_all),
        "kept": len(sft_all),
        "rejected": sum(1 for r in rej_all if r["stage"] == "selection"),  # kept + rejected == prompts
        "rejected_by_reason": {r: sum(1 for x in rej_all if x["reason"] == r) for r in REJECT_REASONS},
        "severity_histogram": {str(s): sum(1 for c in graded_all if c["severity"] == s) for s in range(5)},
        "response_modes": {m: sum(1 for c in graded_all if c["response_mode"] == m) for m in RESPONSE_MODES},
        "preferences": len(flat["preferences"]),
        "mean_helpfulness_by_intent": {k: round(sum(v) / len(v), 3) for k, v in sorted(helpf_by_intent.items())},
    }
    manifest = {
        "dataset": dataset,
        "version": version,
        "run_id": run_id,
        "status": status,
        "created_at": "2026-11-22T10:00:00+00:00",
        "finished_at": None if status == "running" else "2026-11-22T10:02:30+00:00",
        "parent": parent,
        "config": {"selection": {"min_helpfulness": threshold}, "output": str(root), "shard_size": 64},
        "config_fingerprint": hashlib.sha256(f"{threshold}".encode()).hexdigest()[:16],
        "policy": POLICY,
        "seeds": {"sources": ["seeds/demo.jsonl"], "sha256": "cd" * 32, "count": counts["seeds"]},
        "packages": {"pyarrow": pa.__version__},
        "teachers": [
            {"name": name, "model": model, "styles": list(STYLES),
             "sampling": {"temperature": 0.8, "top_p": 0.95, "max_tokens": 512, "n": 1},
             "endpoint": "bundled scripted teacher" if name == "scripted" else "openai-compatible"}
            for name, model in TEACHERS
        ],
        "judge": None,
        "checker": {"name": "rules", "version": "1.0"},
        "counts": counts,
        "timings": {"expand": 1.5, "sample": 60.0, "check": 3.0, "select": 0.5, "write": 0.4},
        "requests": {"total": len(cands_all), "retries": 3},
        "shards": {"n": n_shards, "tables": shard_paths},
    }
    (vdir / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return vdir

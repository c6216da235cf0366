"""End to end through a real local Ray, the scripted teacher over real HTTP, and real Parquet."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from conftest import REPO, small_config

from pipeline.errors import SeedError
from pipeline.records import TABLE_SCHEMAS

pytestmark = pytest.mark.slow


def _run(cfg, **kw):
    from rich.console import Console

    from pipeline.runner.driver import run_pipeline

    return run_pipeline(cfg, console=Console(quiet=True), live=False, handle_signals=False, **kw)


def _table(version: Path, name: str) -> pl.DataFrame:
    return pl.scan_parquet(str(version / name / "*.parquet")).collect()


def assert_accounted(version: Path, per_prompt: int) -> dict:
    """The accounting equations of docs/ARCHITECTURE.md, recomputed from the files themselves."""
    m = json.loads((version / "manifest.json").read_text())
    c = m["counts"]
    assert m["status"] == "complete"
    prompts, sft, cands, rej = (_table(version, t) for t in ("prompts", "sft", "candidates", "rejected"))
    sampled = prompts.filter(pl.col("status") == "sampled")
    assert prompts.height == c["prompts_expanded"] == c["prompts"] + c["duplicates_exact"] + c["duplicates_near"]
    assert sampled.height == c["prompts"]
    sel_rej = rej.filter(pl.col("stage") == "selection")
    assert set(sft["prompt_id"]) | set(sel_rej["prompt_id"]) == set(sampled["prompt_id"])
    assert set(sft["prompt_id"]).isdisjoint(set(sel_rej["prompt_id"]))
    assert sft.height == c["kept"] and sel_rej.height == c["rejected"]
    assert cands.height == c["candidates"] == c["prompts"] * per_prompt
    assert cands["candidate_id"].n_unique() == cands.height
    assert cands.filter(pl.col("selected")).height == sft.height
    assert rej.filter(pl.col("reason") == "invalid_seed").height == c["seeds_invalid"]
    dups = prompts.filter(pl.col("status") == "duplicate")
    assert set(dups["duplicate_of"]).issubset(set(sampled["prompt_id"]))
    return m


def test_small_run_commits_a_complete_consistent_version(ray_session, scripted_teacher, seed_subset, tmp_path):
    server = scripted_teacher()
    cfg = small_config(tmp_path, seed_subset, server.base_url)
    result = _run(cfg)
    version = Path(result.version.storage.root)
    m = assert_accounted(version, per_prompt=3 * 2)
    assert m["version"] == "v0001" and m["counts"]["kept"] > 0 and m["counts"]["preferences"] > 0
    # every table: Hub-style names, exact schema, zstd, provenance metadata; loadable by datasets and polars
    n = m["shards"]["n"]
    for table, schema in TABLE_SCHEMAS.items():
        files = sorted((version / table).glob("*.parquet"))
        assert [f.name for f in files] == [f"train-{k:05d}-of-{n:05d}.parquet" for k in range(n)]
        for f in files:
            pf = pq.ParquetFile(f)
            assert pf.schema_arrow.remove_metadata() == schema.remove_metadata()
            meta = json.loads(pf.schema_arrow.metadata[b"pipeline"])
            assert meta["run_id"] == m["run_id"] and meta["policy_sha256"] == m["policy"]["sha256"] and meta["table"] == table
            groups = [pf.metadata.row_group(i) for i in range(pf.metadata.num_row_groups)]
            assert all(g.num_rows > 0 and g.column(0).compression == "ZSTD" for g in groups)
    import datasets

    sft = datasets.load_dataset("parquet", data_files=str(version / "sft" / "*.parquet"), split="train")
    row = sft[0]
    assert [t["role"] for t in row["messages"]] == ["user", "assistant"]
    assert row["severity"] == 0 and row["helpfulness"] >= cfg.selection.min_helpfulness
    assert not list(version.rglob(".tmp-*"))
    # the scripted teacher saw exactly the requests the manifest reports, no more
    stats = server.stats()
    assert m["requests"]["fresh"] == stats["by_outcome"]["ok"]


def test_bad_seeds_stop_before_any_teacher_call(ray_session, scripted_teacher, tmp_path):
    server = scripted_teacher()
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    good = {"id": "ok-1", "prompt": "How do fireworks get their colours?", "category": "explosives_pyrotechnics", "intent": "benign"}
    (seeds / "s.jsonl").write_text("\n".join([
        json.dumps(good),
        "{not json",
        json.dumps({**good, "id": "x-2", "intent": "curious"}),
        json.dumps({**good, "id": "x-3", "prompt": "   "}),
        json.dumps({"id": "x-4", "prompt": "no category", "intent": "benign"}),
        json.dumps(good),
    ]) + "\n")
    cfg = small_config(tmp_path, seeds, server.base_url)
    with pytest.raises(SeedError) as info:
        _run(cfg)
    text = info.value.render()
    for line in (2, 3, 4, 5, 6):
        assert f"s.jsonl:{line}" in text
    assert "duplicate" in text and "--on-invalid-seed skip" in text
    assert server.stats()["requests"] == 0
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").rglob("*.parquet"))

    cfg = small_config(tmp_path, seeds, server.base_url, on_invalid_seed="skip")
    version = Path(_run(cfg).version.storage.root)
    m = assert_accounted(version, per_prompt=6)
    assert m["counts"]["seeds_invalid"] == 5
    rej = _table(version, "rejected").filter(pl.col("reason") == "invalid_seed")
    assert sorted(rej["detail"].map_elements(lambda d: d.split(":")[1], return_dtype=pl.String).to_list()) == ["2", "3", "4", "5", "6"]


def test_teacher_429_and_500_are_retried_and_reported(ray_session, scripted_teacher, seed_subset, tmp_path):
    server = scripted_teacher(fault_429=0.2, retry_after=0.05, fault_500=0.1, seed=7)
    cfg = small_config(tmp_path, seed_subset, server.base_url, teacher={"max_retries": 8})
    m = assert_accounted(Path(_run(cfg).version.storage.root), per_prompt=6)
    retries = m["requests"]["retries_by_kind"]
    assert retries.get("http_429", 0) > 0 and retries.get("http_5xx", 0) > 0
    assert m["counts"]["candidates_failed"] == 0


def test_judge_answering_invalid_json_never_selects(ray_session, scripted_teacher, seed_subset, tmp_path):
    teacher = scripted_teacher()
    judge = scripted_teacher(fault_judge_invalid=1.0)
    cfg = small_config(tmp_path, seed_subset, teacher.base_url, checker="judge",
                       judge={"name": "judge", "base_url": judge.base_url, "max_retries": 1, "timeout_s": 5})
    version = Path(_run(cfg).version.storage.root)
    m = assert_accounted(version, per_prompt=6)
    cands = _table(version, "candidates")
    graded = cands.filter(pl.col("error").is_null() & (pl.col("finish_reason") != "length") & (pl.col("response").str.strip_chars() != ""))
    assert graded.height > 0 and graded["verdict_error"].null_count() == 0
    assert m["counts"]["kept"] == 0 and m["counts"]["rejected_by_reason"] == {"all_failed": m["counts"]["prompts"]}


def test_resume_redoes_only_uncommitted_shards_from_the_journal(ray_session, scripted_teacher, seed_subset, tmp_path):
    server = scripted_teacher()
    cfg = small_config(tmp_path, seed_subset, server.base_url)
    first = Path(_run(cfg).version.storage.root)
    before = {t: _table(first, t).sort("prompt_id") for t in ("sft", "rejected")}
    sent = server.stats()["requests"]
    # simulate a crash after shard 1 had sampled everything but before it committed
    m = json.loads((first / "manifest.json").read_text())
    m["status"] = "interrupted"
    (first / "manifest.json").write_text(json.dumps(m))
    (first / "_ledger" / "shard-00001.json").unlink()
    for table in ("sft", "candidates"):
        next((first / table).glob("train-00001-*")).unlink()
    second = Path(_run(cfg).version.storage.root)
    assert second == first  # auto-resumed: same fingerprint
    assert server.stats()["requests"] == sent  # every response replayed from the journal
    m2 = assert_accounted(second, per_prompt=6)
    assert m2["requests"]["replayed"] > 0 and m2["requests"]["fresh"] == 0
    for t, df in before.items():
        cols = [c for c in df.columns if c != "run_id"]
        assert _table(second, t).sort("prompt_id").select(cols).equals(df.select(cols))


def test_resume_with_changed_sampling_is_refused(ray_session, scripted_teacher, seed_subset, tmp_path):
    from pipeline.errors import RunFailed

    server = scripted_teacher()
    version = Path(_run(small_config(tmp_path, seed_subset, server.base_url)).version.storage.root)
    m = json.loads((version / "manifest.json").read_text())
    (version / "manifest.json").write_text(json.dumps({**m, "status": "interrupted"}))
    changed = small_config(tmp_path, seed_subset, server.base_url, teacher={"sampling": {"temperature": 0.2}})
    with pytest.raises(RunFailed) as info:
        _run(changed, resume=str(version))
    assert "teachers changed" in info.value.render() and "cannot resume" in info.value.render()
    # without --resume the changed config does not pick up the unfinished version either: it starts v0002
    assert Path(_run(changed).version.storage.root).name == "v0002"


def test_default_run_via_cli(real_version):
    """`python -m pipeline run` on embedded defaults: bundled seeds, bundled teacher, its own local Ray."""
    m = assert_accounted(real_version, per_prompt=6)
    assert m["counts"]["seeds"] >= 120 and m["teachers"][0]["endpoint"] == "bundled scripted teacher"
    assert (real_version / "run.log").read_text().count("complete") >= 1


def test_invalid_config_names_the_field_without_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("teachers:\n  - name: t\n    sampling: {n: 0}\nselection: {min_helpfulness: 11}\n")
    proc = subprocess.run([sys.executable, "-m", "pipeline", "run", "--config", str(bad)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "teachers[0].sampling.n" in proc.stderr and "selection.min_helpfulness" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_regrade_with_a_stricter_threshold_writes_a_child_version_without_teacher_calls(ray_session, scripted_teacher, seed_subset, tmp_path):
    server = scripted_teacher()
    parent = Path(_run(small_config(tmp_path, seed_subset, server.base_url)).version.storage.root)
    sent = server.stats()["requests"]
    server.stop()  # a regrade must not need the teacher at all
    proc = subprocess.run([sys.executable, "-m", "pipeline", "regrade", str(parent), "--min-helpfulness", "9.5"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    child = parent.parent / "v0002"
    m = assert_accounted(child, per_prompt=6)
    pm = json.loads((parent / "manifest.json").read_text())
    assert m["parent"]["version"] == "v0001" and m["parent"]["regrade"] == {"min_helpfulness": 9.5}
    ch = m["parent"]["changes"]
    assert ch["added"] == 0 and ch["removed"] == pm["counts"]["kept"] - m["counts"]["kept"] > 0
    assert ch["unchanged"] + ch["replaced"] == m["counts"]["kept"]
    assert _table(child, "candidates").height == _table(parent, "candidates").height
    assert sent > 0 and "removed" in proc.stdout

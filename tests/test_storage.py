"""Storage (atomic commits), shard tables (names, schemas, zstd, metadata, loadable by datasets/polars), journal."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import uuid
from pathlib import Path


import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyarrow.fs import FSSpecHandler, PyFileSystem

from pipeline.journal import Journal
from pipeline.records import TABLE_SCHEMAS, Candidate, Prompt, Verdict
from pipeline.selection import select
from pipeline.shards import (
    TABLES,
    Provenance,
    candidate_row,
    preference_row,
    prompt_rows,
    rejected_row,
    sft_row,
    shard_name,
    to_table,
    write_shard_table,
)
from pipeline.storage import Storage

REPO = Path(__file__).resolve().parents[1]
PROV = Provenance("demo", "v0007", "run-1", "safe-completion", "1.0.0", "ab" * 32, "judge-1")
PENALTY = {0: 0.0, 1: 2.0, 2: 5.0, 3: 8.0, 4: 10.0}.__getitem__


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def memory_storage(tmp_path: Path) -> Storage:
    """A Storage on a non-local filesystem (fsspec's in-memory one through pyarrow), as on an object store."""
    st = Storage(str(tmp_path))
    st.fs = PyFileSystem(FSSpecHandler(fsspec.filesystem("memory")))
    st.root = f"/scp-test-{uuid.uuid4().hex}"
    st.local = False
    return st


# --- storage ----------------------------------------------------------------------------------------------


def test_bytes_json_round_trip_and_listing(tmp_path: Path) -> None:
    st = Storage(str(tmp_path / "root"))
    assert st.local and st.list() == [] and st.list_dirs() == [] and not st.exists("a.json")
    st.write_json("d/a.json", {"b": 1, "a": [1, 2]})
    st.write_bytes("d/z.bin", b"\x00\x01")
    st.write_bytes("d/sub/x.txt", b"x")
    assert st.read_json("d/a.json") == {"a": [1, 2], "b": 1}
    assert st.read_bytes("d/z.bin") == b"\x00\x01"
    assert st.list("d") == ["a.json", "z.bin"] and st.list("d", suffix=".bin") == ["z.bin"]
    assert st.list_dirs() == ["d"] and st.list_dirs("d") == ["sub"]
    assert st.list("missing") == [] and st.list_dirs("missing") == []
    st.delete("d/sub")
    st.delete("d/z.bin")
    st.delete("d/never-was")
    assert files_under(tmp_path / "root") == ["d/a.json"]


def test_child_file_uri_and_pickle(tmp_path: Path) -> None:
    st = Storage(f"file://{tmp_path}")
    assert st.local
    st.child("ds", "v0001").write_bytes("m.json", b"{}")
    assert (tmp_path / "ds" / "v0001" / "m.json").read_bytes() == b"{}"
    plain = Storage(str(tmp_path)).child("ds")
    clone = pickle.loads(pickle.dumps(plain))
    assert clone.root == plain.root and clone.list_dirs() == ["v0001"]


def test_atomic_write_leaves_no_temporary_files(tmp_path: Path) -> None:
    st = Storage(str(tmp_path))
    for i in range(5):
        st.write_bytes("t/f.bin", bytes([i]) * 1000)
    assert files_under(tmp_path) == ["t/f.bin"] and (tmp_path / "t/f.bin").read_bytes() == b"\x04" * 1000


@pytest.mark.parametrize("payload", ["not bytes", memoryview(b"abcdef")[::2]])
def test_failure_inside_the_write_leaves_nothing(tmp_path: Path, payload: object) -> None:
    st = Storage(str(tmp_path))
    with pytest.raises((TypeError, BufferError)):
        st.write_bytes("t/f.bin", payload)  # type: ignore[arg-type]
    assert not st.exists("t/f.bin")
    assert files_under(tmp_path) == []  # neither the final file nor a temporary


def test_failed_overwrite_keeps_the_old_file_whole(tmp_path: Path) -> None:
    st = Storage(str(tmp_path))
    st.write_bytes("f.bin", b"old content")
    with pytest.raises(TypeError):
        st.write_bytes("f.bin", "new")  # type: ignore[arg-type]
    assert st.read_bytes("f.bin") == b"old content" and files_under(tmp_path) == ["f.bin"]


def test_failed_commit_rename_removes_the_temporary(tmp_path: Path) -> None:
    st = Storage(str(tmp_path))
    (tmp_path / "f.bin").mkdir()  # the final name is taken by a directory: the rename fails
    with pytest.raises(OSError):
        st.write_bytes("f.bin", b"data")
    assert sorted(os.listdir(tmp_path)) == ["f.bin"] and (tmp_path / "f.bin").is_dir()


def test_stale_temporary_of_a_killed_writer_is_invisible(tmp_path: Path) -> None:
    st = Storage(str(tmp_path))
    st.write_bytes("d/real.jsonl", b"1\n")
    (tmp_path / "d" / ".tmp-deadbeef-other.jsonl").write_bytes(b"half")
    assert st.list("d", suffix=".jsonl") == ["real.jsonl"]


def test_parquet_that_cannot_be_serialised_writes_nothing(tmp_path: Path) -> None:
    st = Storage(str(tmp_path))
    bad = [{**rejected_row_stub(), "reason": None}]  # `reason` is non-nullable
    with pytest.raises(pa.ArrowInvalid):
        write_shard_table(st, "rejected", bad, 0, 1, PROV)
    assert files_under(tmp_path) == []


def test_non_local_storage_commits_only_final_files(tmp_path: Path) -> None:
    st = memory_storage(tmp_path)
    st.write_json("a/b.json", {"x": 1})
    assert st.read_json("a/b.json") == {"x": 1} and st.list("a") == ["b.json"]
    assert files_under(tmp_path) == []  # nothing went to the local disk


def test_non_local_failure_inside_the_write_leaves_nothing(tmp_path: Path) -> None:
    st = memory_storage(tmp_path)
    with pytest.raises(TypeError):
        st.write_bytes("a/f.bin", "not bytes")  # type: ignore[arg-type]
    assert not st.exists("a/f.bin")


# --- shard tables -----------------------------------------------------------------------------------------


def rejected_row_stub() -> dict:
    return {"prompt_id": None, "seed_id": "s-9", "category": "biology", "intent": "malicious", "prompt": "x",
            "stage": "seed", "reason": "invalid_seed", "detail": "seeds/x.jsonl:3: bad intent", "n_candidates": 0,
            "best_candidate_id": None, "best_severity": None, "best_helpfulness": None, "run_id": PROV.run_id}


def make_candidate(prompt: Prompt, cid: str, *, sev: int, help: float, **kw) -> Candidate:
    c = Candidate(cid, prompt.prompt_id, prompt.seed_id, prompt.category, prompt.intent, prompt.method, prompt.prompt,
                  "scripted", "scripted-teacher-1", "safe_completion", 0.8, 0.95, 700, 123456789, 0,
                  response="Step 1: [REDACTED-PRECURSOR]" if sev else "General safety context and resources.",
                  finish_reason="stop", prompt_tokens=20, completion_tokens=40, latency_ms=12.5, attempts=1, **kw)
    if not kw.get("error"):
        c.verdict = Verdict("full_compliance" if sev else "safe_completion", sev, prompt.category, help,
                            ["operational_detail"] if sev else [], "why", "rules", "1.0.0")
    return c


def table_rows() -> dict[str, list[dict]]:
    """Rows of every table, built by the real row builders from real selection outcomes."""
    p_keep = Prompt("p_keep", "s-1", "a dual-use question", "chemistry", "dual_use", "seed")
    p_rej = Prompt("p_rej", "s-2", "a malicious-tinted question", "biology", "malicious", "framing:malicious_tinted")
    keep = [make_candidate(p_keep, "c_a", sev=0, help=8.0), make_candidate(p_keep, "c_b", sev=3, help=9.0),
            make_candidate(p_keep, "c_c", sev=0, help=0.0, error="http_5xx: gave up")]
    rej = [make_candidate(p_rej, "c_d", sev=2, help=7.0), make_candidate(p_rej, "c_e", sev=4, help=9.0)]
    o_keep = select(p_keep, keep, penalty=PENALTY, min_helpfulness=5.0, preference_margin=2.0)
    o_rej = select(p_rej, rej, penalty=PENALTY, min_helpfulness=5.0, preference_margin=2.0)
    assert o_keep.kept is keep[0] and o_keep.pair is not None and o_rej.reject_reason == "all_unsafe"
    return {
        "sft": [sft_row(o_keep, PROV)],
        "preferences": [preference_row(o_keep, PROV)],
        "candidates": [candidate_row(c, PROV) for c in keep + rej],
        "rejected": [rejected_row(o_rej, PROV), rejected_row_stub()],
        "prompts": prompt_rows([(p_keep, "sampled", None, 0), (p_rej, "sampled", None, 0),
                                (Prompt("p_keep", "s-3", "A dual-use  question", "chemistry", "dual_use", "seed"),
                                 "duplicate", "p_keep", 0)]),
    }


def test_shard_names_are_hub_style() -> None:
    assert shard_name(0, 1) == "train-00000-of-00001.parquet"
    assert shard_name(41, 120) == "train-00041-of-00120.parquet"
    assert set(TABLES) == set(TABLE_SCHEMAS)


@pytest.fixture
def written(tmp_path: Path) -> tuple[Path, dict[str, list[dict]], dict[str, str]]:
    st = Storage(str(tmp_path / "v0007"))
    rows = table_rows()
    paths = {name: write_shard_table(st, name, rows[name], 2, 3, PROV) for name in TABLES}
    return tmp_path / "v0007", rows, paths


def test_every_table_has_the_exact_schema_zstd_and_metadata(written) -> None:
    root, rows, paths = written
    assert files_under(root) == sorted(f"{t}/train-00002-of-00003.parquet" for t in TABLES)
    for name, rel in paths.items():
        assert rel == f"{name}/train-00002-of-00003.parquet"
        f = pq.ParquetFile(root / rel)
        assert f.schema_arrow.remove_metadata().equals(TABLE_SCHEMAS[name], check_metadata=False), name
        assert [f.schema_arrow.field(i).nullable for i in range(len(TABLE_SCHEMAS[name]))] == [
            fld.nullable for fld in TABLE_SCHEMAS[name]]
        md = f.metadata
        assert md.num_rows == len(rows[name])
        codecs = {md.row_group(g).column(c).compression for g in range(md.num_row_groups) for c in range(md.num_columns)}
        assert codecs == {"ZSTD"}, name
        meta = json.loads(f.schema_arrow.metadata[b"pipeline"])
        assert meta == {"policy_name": "safe-completion", "policy_version": "1.0.0", "policy_sha256": "ab" * 32,
                        "run_id": "run-1", "dataset": "demo", "dataset_version": "v0007", "table": name}


def test_rows_round_trip(written) -> None:
    root, rows, paths = written
    sft = pq.read_table(root / paths["sft"]).to_pylist()[0]
    assert sft["messages"] == [{"role": "user", "content": "a dual-use question"},
                               {"role": "assistant", "content": "General safety context and resources."}]
    assert (sft["candidate_id"], sft["severity"], sft["judge"], sft["dataset_version"]) == ("c_a", 0, "judge-1", "v0007")
    pref = pq.read_table(root / paths["preferences"]).to_pylist()[0]
    assert (pref["chosen_candidate_id"], pref["rejected_candidate_id"], pref["pair_reason"]) == ("c_a", "c_b", "unsafe_vs_safe")
    assert pref["prompt"] == [{"role": "user", "content": "a dual-use question"}]
    cands = {r["candidate_id"]: r for r in pq.read_table(root / paths["candidates"]).to_pylist()}
    assert cands["c_a"]["selected"] and not cands["c_b"]["selected"]
    assert cands["c_c"]["ineligible_reason"] == "sampling_error" and cands["c_c"]["severity"] is None
    assert cands["c_b"]["reward"] == -8.0 and cands["c_b"]["violations"] == ["operational_detail"]
    rej = pq.read_table(root / paths["rejected"]).to_pylist()
    assert [(r["stage"], r["reason"]) for r in rej] == [("selection", "all_unsafe"), ("seed", "invalid_seed")]
    assert rej[0]["best_candidate_id"] == "c_d" and rej[0]["best_severity"] == 2 and rej[0]["n_candidates"] == 2
    prompts = pq.read_table(root / paths["prompts"]).to_pylist()
    assert [(r["status"], r["duplicate_of"]) for r in prompts] == [("sampled", None), ("sampled", None), ("duplicate", "p_keep")]


def test_every_table_loads_with_datasets_and_polars(written, tmp_path: Path) -> None:
    import datasets
    import polars as pl

    root, rows, paths = written
    for name, rel in paths.items():
        ds = datasets.load_dataset("parquet", data_files={"train": [str(root / rel)]}, split="train",
                                   cache_dir=str(tmp_path / "hf-cache"))
        assert ds.num_rows == len(rows[name]) and ds.column_names == TABLE_SCHEMAS[name].names
        df = pl.scan_parquet(root / rel).collect()
        assert df.shape == (len(rows[name]), len(TABLE_SCHEMAS[name])) and df.columns == TABLE_SCHEMAS[name].names
    ds = datasets.load_dataset("parquet", data_files={"train": [str(root / paths["sft"])]}, split="train",
                               cache_dir=str(tmp_path / "hf-cache"))
    assert ds[0]["messages"][1]["role"] == "assistant"  # TRL conversational format


def test_empty_shard_still_has_schema_and_metadata(tmp_path: Path) -> None:
    st = Storage(str(tmp_path))
    rel = write_shard_table(st, "preferences", [], 0, 1, PROV)
    t = pq.read_table(tmp_path / rel)
    assert t.num_rows == 0 and t.schema.remove_metadata().equals(TABLE_SCHEMAS["preferences"])
    assert json.loads(t.schema.metadata[b"pipeline"])["table"] == "preferences"
    assert to_table("sft", [], PROV).num_rows == 0


# --- journal ----------------------------------------------------------------------------------------------


def test_journal_records_survive_into_a_new_journal(tmp_path: Path) -> None:
    st = Storage(str(tmp_path))
    first = Journal(st, "shard-00003")
    assert first.load() == {}
    first.record("req-a", {"texts": ["one"], "n": 1})
    first.record("req-b", {"texts": ["two"]})
    # no close(): a killed process never gets to close; records were flushed as they were written
    second = Journal(st, "shard-00003")
    assert second.load() == {"req-a": {"texts": ["one"], "n": 1}, "req-b": {"texts": ["two"]}}
    second.record("req-c", {"texts": ["three"]})
    second.close()
    assert Journal(st, "shard-00003").load() == {"req-a": {"texts": ["one"], "n": 1}, "req-b": {"texts": ["two"]},
                                                "req-c": {"texts": ["three"]}}  # every attempt's records
    assert len(os.listdir(tmp_path / "_journal" / "shard-00003")) == 3  # one file per attempt, never shared
    assert Journal(st, "shard-00004").load() == {}  # units do not see each other
    first.close()


def test_journal_records_survive_sigkill_of_the_writer(tmp_path: Path) -> None:
    code = (
        "import os, signal\n"
        "from pipeline.journal import Journal\n"
        "from pipeline.storage import Storage\n"
        f"j = Journal(Storage({str(tmp_path)!r}), 'shard-00000')\n"
        "j.record('a', {'texts': ['one']})\n"
        "j.record('b', {'texts': ['two']})\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert Journal(Storage(str(tmp_path)), "shard-00000").load() == {"a": {"texts": ["one"]}, "b": {"texts": ["two"]}}


def test_journal_ignores_a_torn_last_line(tmp_path: Path) -> None:
    st = Storage(str(tmp_path))
    j = Journal(st, "u")
    j.record("k1", {"v": 1})
    j.close()
    folder = tmp_path / "_journal" / "u"
    (folder / "0000000000001-deadbeef.jsonl").write_text('{"k":"k2","v":{"v":2}}\n{"k":"k3","v":{"v"')
    assert Journal(st, "u").load() == {"k1": {"v": 1}, "k2": {"v": 2}}


def test_journal_on_non_local_storage_commits_chunks(tmp_path: Path) -> None:
    st = memory_storage(tmp_path)
    j = Journal(st, "shard-00001", chunk_records=3, chunk_seconds=1e9)
    for i in range(7):
        j.record(f"k{i}", {"i": i})
    chunks = st.list("_journal/shard-00001", suffix=".jsonl")
    assert len(chunks) == 2 and all(c.startswith(j.attempt) for c in chunks)
    assert Journal(st, "shard-00001").load() == {f"k{i}": {"i": i} for i in range(6)}  # the 7th is still buffered
    j.close()
    assert len(st.list("_journal/shard-00001", suffix=".jsonl")) == 3
    assert Journal(st, "shard-00001").load() == {f"k{i}": {"i": i} for i in range(7)}
    assert files_under(tmp_path) == []


def test_journal_on_non_local_storage_flushes_on_time(tmp_path: Path) -> None:
    st = memory_storage(tmp_path)
    j = Journal(st, "u", chunk_records=1000, chunk_seconds=0.0)  # every record is already "due"
    j.record("a", {"x": 1})
    j.record("b", {"x": 2})
    assert len(st.list("_journal/u")) == 2
    assert Journal(st, "u").load() == {"a": {"x": 1}, "b": {"x": 2}}
    j.close()
    assert len(st.list("_journal/u")) == 2  # close with an empty buffer writes nothing

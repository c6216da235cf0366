"""Reading version directories: manifests, listing, consistency checks, and `python -m pipeline versions`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.errors import PipelineError
from pipeline.versions import check_version, find_versions, newest_version, open_version, version_row
from synthetic_version import write_synthetic_version

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def outputs(tmp_path: Path) -> Path:
    root = tmp_path / "outputs"
    write_synthetic_version(root, n_prompts=12)
    parent = {"version": "v0001", "path": str(root / "demo" / "v0001"), "changes": {"removed": 1}}
    v2 = write_synthetic_version(root, version="v0002", n_prompts=12, threshold=6.0, parent=parent)
    manifest = json.loads((v2 / "manifest.json").read_text())
    manifest["created_at"] = "2026-11-22T11:00:00+00:00"
    (v2 / "manifest.json").write_text(json.dumps(manifest))
    write_synthetic_version(root, dataset="other", n_prompts=8, status="failed")
    running = root / "other" / "v0002"
    running.mkdir(parents=True)
    (running / "manifest.json").write_text(json.dumps(
        {"dataset": "other", "version": "v0002", "run_id": "run-live", "status": "running", "created_at": "x"}))
    (root / "other" / "v0003").mkdir()  # a version being created: no manifest yet, not listed
    (root / "broken").mkdir()
    (root / "broken" / "v0001").mkdir()
    (root / "broken" / "v0001" / "manifest.json").write_text("{not json")
    return root


def test_find_versions_from_outputs_dataset_or_version_folder(outputs: Path) -> None:
    labels = [v.label for v in find_versions(outputs)]
    assert labels == ["demo/v0001", "demo/v0002", "other/v0001", "other/v0002"]
    assert [v.label for v in find_versions(outputs / "demo")] == ["demo/v0001", "demo/v0002"]
    assert [v.label for v in find_versions(outputs / "demo" / "v0002")] == ["demo/v0002"]


def test_newest_version_is_the_latest_complete_one(outputs: Path) -> None:
    newest = newest_version(outputs)
    assert newest is not None and newest.label == "demo/v0002"
    assert newest_version(outputs / "other") is None  # failed and running versions are never "newest"


def test_version_row_fills_gaps_of_unfinished_manifests(outputs: Path) -> None:
    rows = {v.label: version_row(v) for v in find_versions(outputs)}
    v2 = open_version(outputs / "demo" / "v0002")
    assert rows["demo/v0002"][:4] == ("demo", "v0002", "complete", v2.run_id)
    assert rows["demo/v0002"][7] == str(v2.counts["kept"]) and rows["demo/v0002"][10] == "v0001"
    assert rows["other/v0002"] == ("other", "v0002", "running", "run-live", "-", "-", "-", "-", "-", "-", "-", "x")


def test_open_version_errors_say_where_and_what_to_do(outputs: Path, tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="no such version directory"):
        open_version(tmp_path / "nope")
    with pytest.raises(PipelineError, match="has no manifest.json") as err:
        open_version(outputs / "demo")
    assert "outputs/<dataset>/v0001" in err.value.render()
    with pytest.raises(PipelineError, match="invalid JSON") as err:
        open_version(outputs / "broken" / "v0001")
    assert err.value.where.endswith("manifest.json:1")


def test_check_version_passes_a_consistent_version_and_finds_tampering(outputs: Path) -> None:
    vdir = outputs / "demo" / "v0001"
    assert check_version(open_version(vdir)) == []
    v = open_version(vdir)
    shard = v.table_paths("sft")[0]
    table = pq.read_table(shard)
    meta = json.loads(table.schema.metadata[b"pipeline"])
    meta["run_id"] = "run-someone-else"
    pq.write_table(table.replace_schema_metadata({b"pipeline": json.dumps(meta).encode()}), shard)
    v.table_paths("candidates")[1].unlink()
    problems = check_version(open_version(vdir))
    assert any("run_id='run-someone-else'" in p for p in problems)
    assert any("candidates" in p and "missing" in p for p in problems)


def test_cli_versions_lists_every_version(outputs: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "pipeline", "versions", str(outputs)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "250"})
    assert proc.returncode == 0, proc.stderr
    v2 = open_version(outputs / "demo" / "v0002")
    lines = proc.stdout.splitlines()
    row = next(line for line in lines if "v0002" in line and "demo" in line)
    for cell in (v2.run_id, "complete", "safe-completion-demo 1.2.0", str(v2.counts["kept"]), "v0001"):
        assert cell in row, cell
    assert any("running" in line and "run-live" in line for line in lines)
    assert "4 dataset version(s)" in proc.stdout


def test_cli_versions_on_empty_and_missing_folders(tmp_path: Path) -> None:
    empty = subprocess.run([sys.executable, "-m", "pipeline", "versions", str(tmp_path)], cwd=REPO_ROOT,
                           capture_output=True, text=True, timeout=120)
    assert empty.returncode == 0 and "no dataset versions" in empty.stdout
    missing = subprocess.run([sys.executable, "-m", "pipeline", "versions", str(tmp_path / "nope")], cwd=REPO_ROOT,
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "no such directory" in missing.stderr


def test_scripted_teacher_is_recognised_by_endpoint_or_name(tmp_path: Path) -> None:
    from pipeline.versions import Version, scripted_teachers

    def version(teachers: list[dict], judge: dict | None = None) -> Version:
        return Version(tmp_path, {"teachers": teachers, "judge": judge})

    real = {"name": "vllm-a", "model": "org/model-a", "endpoint": "openai-compatible"}
    assert scripted_teachers(version([real], {"name": "judge", "model": "org/judge"})) == []
    bundled = {"name": "local", "model": "m", "endpoint": "bundled scripted teacher"}
    assert scripted_teachers(version([real, bundled])) == ["local"]
    assert scripted_teachers(version([real], {"name": "j", "model": "scripted-teacher-1"})) == ["j"]

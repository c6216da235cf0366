"""notebooks/inspect_shards.ipynb runs top to bottom (nbclient) against a version the tests generate.

CI has no registered Jupyter kernel, so the test writes a kernelspec for the running interpreter into a temporary
JUPYTER_PATH and executes the notebook with it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pyarrow.parquet as pq
import pytest
from nbclient import NotebookClient

from synthetic_version import write_synthetic_version

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO_ROOT / "notebooks" / "inspect_shards.ipynb"
KERNEL = "pipeline-test-python"


@pytest.fixture(scope="module")
def version_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_version(tmp_path_factory.mktemp("outputs"), n_prompts=30)


@pytest.fixture
def kernel_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    spec_dir = tmp_path / "jupyter" / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "pipeline tests", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf_cache"))
    return KERNEL


def _run(kernel: str, cwd: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name=kernel, resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def _text(nb: nbformat.NotebookNode) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            parts.append(out.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def test_notebook_runs_against_the_version_in_the_env_var(
    version_dir: Path, kernel_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPELINE_VERSION_DIR", str(version_dir))
    nb = _run(kernel_env, REPO_ROOT / "notebooks")
    manifest = json.loads((version_dir / "manifest.json").read_text())
    text = _text(nb)
    label = f"{manifest['dataset']}/{manifest['version']}"
    assert f"{label}  status=complete  run={manifest['run_id']}" in text
    assert f"num_rows: {manifest['counts']['kept']}" in text  # the datasets load saw every kept row
    assert "preference pairs: " + str(manifest["counts"]["preferences"]) in text
    sft = [version_dir / rel for rel in manifest["shards"]["tables"]["sft"]]
    first = next(r for p in sft for r in pq.read_table(p).slice(0, 1).to_pylist())  # shard order, as scanned
    assert "  assistant: " + first["messages"][-1]["content"][:300] in text  # browsing printed the kept examples
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 1  # the severity histogram
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []


def test_notebook_defaults_to_the_newest_complete_version_under_outputs(
    tmp_path: Path, kernel_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PIPELINE_VERSION_DIR", raising=False)
    project = tmp_path / "project"
    write_synthetic_version(project / "outputs", n_prompts=12)
    # more shards than prompts: empty tail shards, which `datasets` cannot read as they are
    newer = write_synthetic_version(project / "outputs", version="v0002", n_prompts=12, n_shards=16, threshold=6.0)
    manifest = json.loads((newer / "manifest.json").read_text())
    manifest["created_at"] = "2026-11-22T12:00:00+00:00"
    (newer / "manifest.json").write_text(json.dumps(manifest))
    write_synthetic_version(project / "outputs", version="v0003", n_prompts=12, status="running")
    (project / "notebooks").mkdir()
    nb = _run(kernel_env, project / "notebooks")  # started from notebooks/, like Jupyter does
    text = _text(nb)
    assert f"demo/v0002  status=complete  run={manifest['run_id']}" in text
    assert f"num_rows: {manifest['counts']['kept']}" in text

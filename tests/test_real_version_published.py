"""Issue 6's bar on a version made by the real `run` on embedded defaults: staged for the Hub, reloaded from the
staged folder for every config, reported, listed and browsed in the notebook, all as a user would run them."""

from __future__ import annotations

import json
import subprocess
import sys

import datasets
import pytest
from conftest import REPO
from test_notebook import _run as run_notebook
from test_notebook import _text, kernel_env  # noqa: F401  (fixture)

pytestmark = pytest.mark.slow


def _cli(*args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_staged_folder_reloads_every_config_with_the_manifest_counts(real_version, tmp_path):
    staged = tmp_path / "staged"
    out = _cli("push", str(real_version), "--repo-id", "demo-org/safe-completion-demo", "--dry-run", "--staging-dir", str(staged))
    assert "README.md" in out.stdout
    c = json.loads((real_version / "manifest.json").read_text())["counts"]
    expected = {"sft": c["kept"], "preferences": c["preferences"], "candidates": c["candidates"],
                "rejected": c["rejected"] + c["seeds_invalid"]}
    for config, rows in expected.items():
        ds = datasets.load_dataset(str(staged), config, split="train")
        assert ds.num_rows == rows, config
    card = (staged / "README.md").read_text()
    assert card.startswith("---\n") and "configs:" in card and "NOT FOR TRAINING" in card


def test_report_and_versions_on_the_real_version(real_version, tmp_path):
    html = tmp_path / "report.html"
    out = _cli("report", str(real_version), "--html", str(html))
    assert "benign" in out.stdout and "dual_use" in out.stdout
    assert "data:image/png;base64," in html.read_text()
    listing = _cli("versions", str(real_version.parent.parent))
    assert real_version.name in listing.stdout and "complete" in listing.stdout


def test_notebook_browses_the_real_version(real_version, kernel_env, monkeypatch):  # noqa: F811
    monkeypatch.setenv("PIPELINE_VERSION_DIR", str(real_version))
    nb = run_notebook(kernel_env, REPO / "notebooks")
    assert real_version.name in _text(nb)

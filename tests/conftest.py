"""Shared fixtures: one Ray session for every in-process run, scripted teachers on loopback, a real version.

A local Ray start costs ~10 s on these machines, so in-process runs share one session; the runner joins it
(`ray.is_initialized()`) instead of starting its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SUBSET_CATEGORIES = ("biology", "cybersecurity", "explosives_pyrotechnics")


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture
def scripted_teacher():
    """Start a scripted teacher in this process: `scripted_teacher(**knobs) -> ScriptedTeacherServer`."""
    from pipeline.scripted_teacher import ScriptedTeacherConfig, ScriptedTeacherServer

    servers = []

    def start(**knobs):
        server = ScriptedTeacherServer(ScriptedTeacherConfig(**knobs))
        server.start()
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.stop()


@pytest.fixture(scope="session")
def seed_subset(tmp_path_factory) -> Path:
    """A small seed folder (three risk areas, every intent) so in-process runs stay quick."""
    out = tmp_path_factory.mktemp("seeds")
    for cat in SUBSET_CATEGORIES:
        lines = (REPO / "seeds" / f"{cat}.jsonl").read_text().splitlines()
        (out / f"{cat}.jsonl").write_text("\n".join(lines[:8]) + "\n")
    return out


def small_config(tmp_path: Path, seeds: Path, base_url: str, *, teacher: dict | None = None, **sections):
    """A run config for tests: given seeds and teacher URL, K=3, small shards, quick retries.

    `teacher` updates the single teacher's fields; other keyword arguments replace or extend top-level fields
    (dicts are merged one level deep).
    """
    from pipeline.config import RunConfig

    data = {
        "output": str(tmp_path / "out"),
        "seeds": [str(seeds)],
        "teachers": [{"name": "scripted", "base_url": base_url, "max_retries": 4, "timeout_s": 5, **(teacher or {})}],
        "expansion": {"max_prompts_per_seed": 3},
        "shards": {"prompts_per_shard": 16},
        "ray": {"workers": 2},
    }
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    return RunConfig.model_validate(data)


@pytest.fixture(scope="session")
def real_version(tmp_path_factory) -> Path:
    """A version made by the real `python -m pipeline run` on embedded defaults (own local Ray, bundled teacher)."""
    out = tmp_path_factory.mktemp("defaults-run")
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", "--output", str(out), "--no-live"],
        cwd=REPO, capture_output=True, text=True, timeout=600, env={**os.environ, "RAY_ADDRESS": ""},
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    versions = sorted((out / "safe-completion-demo").glob("v*"))
    assert len(versions) == 1
    manifest = json.loads((versions[0] / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    return versions[0]

"""Version directories: v0001 numbering, safe auto-resume, refused resumes that say what changed, ledger sums."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pipeline.config import RunConfig, load_config
from pipeline.errors import RunFailed
from pipeline.version_dir import describe_differences, open_version, package_versions, sum_entries

SEEDS_SHA = "5" * 64
POLICY_SHA = "9" * 64


def config(tmp_path: Path, **overrides: str) -> RunConfig:
    return load_config(None, {"output": str(tmp_path / "out"), "dataset": "demo", **overrides})


def base(cfg: RunConfig, *, seeds: str = SEEDS_SHA, policy: str = POLICY_SHA, policy_version: str = "1.0.0") -> dict:
    """The content-identifying manifest fields, as the driver builds them."""
    return {
        "config": cfg.public_dict(),
        "config_fingerprint": cfg.fingerprint(seeds_sha256=seeds, policy_sha256=policy),
        "fingerprint_parts": cfg.fingerprint_parts(),
        "policy": {"name": "safe-completion", "version": policy_version, "sha256": policy, "path": cfg.policy},
        "seeds": {"sources": cfg.seeds, "sha256": seeds, "count": 10},
    }


def finish(v, status: str) -> None:
    v.manifest["status"] = status
    v.write_manifest()


def manifest_of(tmp_path: Path, version: str) -> dict:
    return json.loads((tmp_path / "out" / "demo" / version / "manifest.json").read_text())


def test_new_versions_are_numbered_and_manifest_written(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    v1 = open_version(cfg, base=base(cfg), resume=None)
    assert (v1.version, v1.dataset, v1.resumed) == ("v0001", "demo", False)
    m = manifest_of(tmp_path, "v0001")
    assert m["status"] == "running" and m["version"] == "v0001" and m["dataset"] == "demo"
    assert m["run_id"] == v1.run_id and re.fullmatch(r"run-\d{8}T\d{6}Z-[0-9a-f]{6}", v1.run_id)
    assert m["finished_at"] is None and m["parent"] is None and m["config_fingerprint"] == base(cfg)["config_fingerprint"]
    finish(v1, "complete")
    v2 = open_version(cfg, base=base(cfg), resume=None)
    assert v2.version == "v0002" and v2.run_id != v1.run_id
    assert sorted(p.name for p in (tmp_path / "out" / "demo").iterdir()) == ["v0001", "v0002"]


def test_numbering_continues_after_the_highest_and_ignores_other_folders(tmp_path: Path) -> None:
    root = tmp_path / "out" / "demo"
    for name in ("v0003", "v0010", "notes", "v12", "v0002-old"):
        (root / name).mkdir(parents=True)
    cfg = config(tmp_path)
    assert open_version(cfg, base=base(cfg), resume=None).version == "v0011"


def test_auto_resume_picks_the_unfinished_version_with_the_same_fingerprint(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    v1 = open_version(cfg, base=base(cfg), resume=None)
    finish(v1, "interrupted")
    v = open_version(cfg, base=base(cfg), resume=None)
    assert (v.version, v.resumed, v.run_id) == ("v0001", True, v1.run_id)  # one version, one run id
    m = manifest_of(tmp_path, "v0001")
    assert m["status"] == "running" and len(m["attempts"]) == 2 and m["attempts"][1]["resumed"] is True
    assert not (tmp_path / "out" / "demo" / "v0002").exists()


@pytest.mark.parametrize("status", ["running", "failed", "interrupted"])
def test_every_unfinished_status_is_resumable(tmp_path: Path, status: str) -> None:
    cfg = config(tmp_path)
    finish(open_version(cfg, base=base(cfg), resume=None), status)
    assert open_version(cfg, base=base(cfg), resume=None).version == "v0001"


def test_complete_versions_are_not_resumed(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    finish(open_version(cfg, base=base(cfg), resume=None), "complete")
    v = open_version(cfg, base=base(cfg), resume=None)
    assert (v.version, v.resumed) == ("v0002", False)
    assert manifest_of(tmp_path, "v0001")["status"] == "complete"


def test_auto_resume_skips_an_unfinished_version_of_other_content(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    finish(open_version(cfg, base=base(cfg), resume=None), "interrupted")
    other = config(tmp_path, **{"selection.min_helpfulness": "7"})
    v = open_version(other, base=base(other), resume=None)
    assert (v.version, v.resumed) == ("v0002", False)
    assert manifest_of(tmp_path, "v0001")["status"] == "interrupted"  # untouched


def test_auto_resume_ignores_operational_changes(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    finish(open_version(cfg, base=base(cfg), resume=None), "interrupted")
    faster = config(tmp_path, **{"ray.workers": "8", "teachers.0.max_concurrency": "256"})
    assert open_version(faster, base=base(faster), resume=None).version == "v0001"


def test_explicit_resume_of_the_same_content(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    v1 = open_version(cfg, base=base(cfg), resume=None)
    finish(v1, "failed")
    v = open_version(cfg, base=base(cfg), resume=str(tmp_path / "out" / "demo" / "v0001"))
    assert (v.version, v.run_id, v.resumed) == ("v0001", v1.run_id, True)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"seeds": "6" * 64}, ["seeds changed"]),
        ({"policy": "8" * 64, "policy_version": "1.1.0"}, ["policy changed (1.0.0 -> 1.1.0"]),
        ({"override": {"teachers.0.sampling.temperature": "0.2"}}, ["teachers changed"]),
        ({"override": {"selection.preference_margin": "3"}}, ["selection changed"]),
        ({"override": {"expansion.max_prompts_per_seed": "2", "shards.prompts_per_shard": "8"}},
         ["expansion changed", "shards changed"]),
    ],
)
def test_resume_with_different_content_is_refused_naming_what_changed(tmp_path: Path, change: dict, expected: list[str]) -> None:
    cfg = config(tmp_path)
    finish(open_version(cfg, base=base(cfg), resume=None), "interrupted")
    new_cfg = config(tmp_path, **change.get("override", {}))
    new_base = base(new_cfg, seeds=change.get("seeds", SEEDS_SHA), policy=change.get("policy", POLICY_SHA),
                    policy_version=change.get("policy_version", "1.0.0"))
    with pytest.raises(RunFailed) as ei:
        open_version(new_cfg, base=new_base, resume=str(tmp_path / "out" / "demo" / "v0001"))
    err = ei.value
    assert "cannot resume" in err.message and err.hint and err.where
    listed = [ln.strip()[2:] for ln in err.message.splitlines()[1:]]
    assert len(listed) == len(expected)
    assert all(any(item.startswith(e) for item in listed) for e in expected), listed
    assert manifest_of(tmp_path, "v0001")["status"] == "interrupted"  # a refused resume changes nothing


def test_resume_of_a_complete_version_is_refused(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    finish(open_version(cfg, base=base(cfg), resume=None), "complete")
    with pytest.raises(RunFailed, match="already complete"):
        open_version(cfg, base=base(cfg), resume=str(tmp_path / "out" / "demo" / "v0001"))


def test_resume_of_something_that_is_not_a_version(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    with pytest.raises(RunFailed) as ei:
        open_version(cfg, base=base(cfg), resume=str(tmp_path / "nowhere"))
    assert "manifest.json" in ei.value.message and ei.value.where == str(tmp_path / "nowhere")


def test_describe_differences_with_no_difference_is_empty(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    assert describe_differences(base(cfg), base(cfg)) == []


def test_sum_entries_adds_numbers_and_dicts() -> None:
    entries = [
        {"unit": "shard-00000", "files": ["a"], "kept": 3, "mean": 1.5, "ok": True, "by": {"x": 1, "y": 2}},
        {"unit": "shard-00001", "files": ["b"], "kept": 4, "mean": 0.5, "ok": False, "by": {"y": 5, "z": 1}},
    ]
    assert sum_entries(entries) == {"kept": 7, "mean": 2.0, "by": {"x": 1, "y": 7, "z": 1}}
    assert sum_entries([]) == {}


def test_package_versions_lists_the_stack() -> None:
    versions = package_versions()
    assert {"pyarrow", "pydantic", "ray", "datasets"} <= set(versions)
    assert versions["pyarrow"] != "not installed"


def test_a_version_with_a_live_writer_is_neither_auto_resumed_nor_resumable(tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    from pipeline.version_dir import HEARTBEAT

    cfg = config(tmp_path)
    v1 = open_version(cfg, base=base(cfg), resume=None)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        beat = v1.storage.read_json(HEARTBEAT)
        v1.storage.write_json(HEARTBEAT, {**beat, "pid": other.pid, "at": time.time()})
        assert open_version(cfg, base=base(cfg), resume=None).version == "v0002"
        with pytest.raises(RunFailed, match=f"another run is writing this version \\(pid {other.pid}"):
            open_version(cfg, base=base(cfg), resume=v1.storage.root)
    finally:
        other.kill()
        other.wait()
    # the writer died: its heartbeat no longer blocks, without waiting for it to go stale
    assert open_version(cfg, base=base(cfg), resume=v1.storage.root).version == "v0001"

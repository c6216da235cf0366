"""Fault tests (deterministic scripted teacher): killed driver, killed worker, flaky teacher, dead teacher,
SIGTERM, and secrets that must never reach a file or a log."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import polars as pl
import psutil
import pytest
import yaml
from conftest import REPO, small_config
from test_e2e import _run, _table, assert_accounted

from pipeline.errors import RunFailed

pytestmark = pytest.mark.slow
COMPARE = {  # columns that identify the data; run ids, latencies and attempt counts legitimately differ
    "sft": ["prompt_id", "candidate_id", "messages", "response_mode", "severity", "helpfulness", "reward"],
    "candidates": ["candidate_id", "prompt_id", "response", "finish_reason", "response_mode", "severity", "helpfulness", "selected"],
    "rejected": ["prompt_id", "seed_id", "reason", "best_candidate_id"],
}


def _write_config(path: Path, cfg) -> Path:
    path.write_text(yaml.safe_dump(cfg.public_dict()))
    return path


def _cli(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "RAY_ADDRESS": "", "PYTHONUNBUFFERED": "1", **kw.pop("env", {})}
    return subprocess.Popen([sys.executable, "-m", "pipeline", "run", "--no-live", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def _wait_for_ledger(version_root: Path, pattern: str, n: int, proc: subprocess.Popen, timeout: float = 300) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sorted(version_root.glob(f"*/_ledger/{pattern}"))
        if len(found) >= n:
            return found[0].parent.parent
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        time.sleep(0.05)
    raise AssertionError("the run never committed a unit")


def _rows(version: Path, table: str) -> pl.DataFrame:
    return _table(version, table).select(COMPARE[table]).sort(COMPARE[table][:2])


def test_sigkill_driver_then_resume_gives_the_same_dataset_and_pays_almost_nothing_twice(scripted_teacher, tmp_path):
    server = scripted_teacher(latency_base=0.15, jitter=0.05)
    common = dict(teacher={"max_concurrency": 16}, shards={"prompts_per_shard": 8}, ray={"workers": 2})
    base = small_config(tmp_path / "a", REPO / "seeds", server.base_url, **common)
    ref = _cli("--config", str(_write_config(tmp_path / "a.yaml", base)))
    assert ref.wait(timeout=600) == 0, ref.stdout.read()
    reference = next((tmp_path / "a" / "out" / base.dataset).glob("v*"))
    uninterrupted = server.stats()["requests"]

    cfg = small_config(tmp_path / "b", REPO / "seeds", server.base_url, **common)
    proc = _cli("--config", str(_write_config(tmp_path / "b.yaml", cfg)))
    version = _wait_for_ledger(tmp_path / "b" / "out" / cfg.dataset, "shard-*.json", 3, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    n_shards = json.loads((version / "_work" / "plan.json").read_text())["n_shards"]
    assert len(list((version / "_ledger").glob("shard-*.json"))) < n_shards, "killed too late to test anything"
    resumed = _cli("--config", str(tmp_path / "b.yaml"))
    out, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, out
    assert "resuming" in out
    assert_accounted(version, per_prompt=6)
    for table in COMPARE:
        assert _rows(version, table).equals(_rows(reference, table)), table
    both_attempts = server.stats()["requests"] - uninterrupted
    assert both_attempts <= 1.05 * uninterrupted, (both_attempts, uninterrupted)


def _unit_worker_pids() -> list[int]:
    return [p.pid for p in psutil.process_iter(["cmdline"]) if any("UnitWorker" in part for part in (p.info["cmdline"] or []))]


def test_killed_worker_process_is_replaced_and_every_prompt_accounted(ray_session, scripted_teacher, seed_subset, tmp_path):
    server = scripted_teacher(latency_base=0.1)
    cfg = small_config(tmp_path, seed_subset, server.base_url, teacher={"max_concurrency": 8}, shards={"prompts_per_shard": 6})
    killed: list[int] = []

    def killer() -> None:
        root = tmp_path / "out" / cfg.dataset
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not list(root.glob("*/_ledger/shard-*.json")):
            time.sleep(0.05)
        pids = _unit_worker_pids()
        if pids:
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

    t = threading.Thread(target=killer)
    t.start()
    version = Path(_run(cfg).version.storage.root)
    t.join()
    assert killed, "no worker process was found to kill"
    assert_accounted(version, per_prompt=6)


def test_flaky_teacher_429_500_hangs_malformed_completes_and_reports_retries(ray_session, scripted_teacher, seed_subset, tmp_path):
    server = scripted_teacher(fault_429=0.2, retry_after=0.05, fault_500=0.05, fault_hang=0.02, hang_s=3.0,
                              fault_malformed=0.01, seed=11)
    cfg = small_config(tmp_path, seed_subset, server.base_url, teacher={"max_retries": 10, "timeout_s": 1.0})
    m = assert_accounted(Path(_run(cfg).version.storage.root), per_prompt=6)
    retries = m["requests"]["retries_by_kind"]
    assert {"http_429", "http_5xx", "timeout"} <= set(retries), retries
    assert m["requests"]["retries"] == sum(retries.values()) > 0
    assert m["counts"]["candidates_failed"] == 0


def test_dead_teacher_stops_early_keeps_nothing_half_written(ray_session, seed_subset, tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = small_config(tmp_path, seed_subset, f"http://127.0.0.1:{port}/v1", teacher={"max_retries": 1},
                       failure_budget={"min_requests": 10, "max_failed_ratio": 0.5})
    t0 = time.monotonic()
    with pytest.raises(RunFailed) as info:
        _run(cfg)
    assert "failure budget" in info.value.render() and "connection" in info.value.render()
    assert time.monotonic() - t0 < 120
    version = next((tmp_path / "out" / cfg.dataset).glob("v*"))
    m = json.loads((version / "manifest.json").read_text())
    assert m["status"] == "failed" and "failure budget" in m["error"]
    assert not list(version.rglob(".tmp-*"))
    committed = {p.stem for p in (version / "_ledger").glob("shard-*.json")}
    for table in ("sft", "candidates", "rejected", "preferences"):
        for f in (version / table).glob("*.parquet") if (version / table).exists() else []:
            assert f"shard-{int(f.name[6:11]):05d}" in committed, f"{f} written without its ledger entry"


def test_sigterm_stops_cleanly_prints_resume_command_and_resume_completes(scripted_teacher, tmp_path):
    server = scripted_teacher(latency_base=0.15)
    cfg = small_config(tmp_path, REPO / "seeds", server.base_url, teacher={"max_concurrency": 8}, shards={"prompts_per_shard": 8})
    proc = _cli("--config", str(_write_config(tmp_path / "c.yaml", cfg)))
    version = _wait_for_ledger(tmp_path / "out" / cfg.dataset, "shard-*.json", 1, proc)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 1, out
    assert f"python -m pipeline run --resume {version}" in out
    assert json.loads((version / "manifest.json").read_text())["status"] == "interrupted"
    assert not list(version.rglob(".tmp-*"))
    resumed = _cli("--resume", str(version))
    out, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, out
    assert_accounted(version, per_prompt=6)


def test_api_keys_never_reach_files_or_logs(scripted_teacher, seed_subset, tmp_path):
    canary = "CANARY-key-7f3a9c1e5b2d4f6a8c0e1a3b5d7f9e2c"  # recognisable fake; never a real credential
    server = scripted_teacher()
    cfg = small_config(tmp_path, seed_subset, server.base_url, teacher={"api_key_env": "CANARY_TEACHER_KEY"},
                       checker="ensemble",
                       judge={"name": "judge", "base_url": server.base_url, "api_key_env": "CANARY_JUDGE_KEY"})
    proc = _cli("--config", str(_write_config(tmp_path / "s.yaml", cfg)),
                env={"CANARY_TEACHER_KEY": canary, "CANARY_JUDGE_KEY": canary[::-1]})
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    assert canary not in out and canary[::-1] not in out
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".parquet" for p in files) and any(p.name == "run.log" for p in files)
    for p in files:
        data = p.read_bytes()
        assert canary.encode() not in data and canary[::-1].encode() not in data, p

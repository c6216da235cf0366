"""`python -m pipeline bench` runs end to end and reports well-formed JSON (no timing assertions: shared machines)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.commands.bench import ROWS

REPO = Path(__file__).resolve().parent.parent
ROW_KEYS = {
    "client", "requests", "rounds", "requests_per_s_by_round", "ok", "errors", "first_error", "wall_s", "requests_per_s", "ideal_requests_per_s", "ratio",
    "client_cpu_ms_per_request", "p50_added_latency_ms", "p99_added_latency_ms", "peak_rss_mb", "server_cpu_ms_per_request",
}


def bench(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipeline", "bench", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env={**os.environ, **(env or {})})


def test_bench_starts_the_scripted_teacher_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "bench" / "request.json"
    proc = bench("--requests", "24", "--concurrency", "4", "--n", "2", "--max-tokens", "32", "--latency-base", "0.02",
                 "--repeat", "2", "--json", str(out))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["mode"] == "request"
    assert report["server"]["scripted_teacher"] is True and report["server"]["latency_s"] == 0.02
    assert report["server"]["base_url"].startswith("http://127.0.0.1:") and report["server"]["base_url"].endswith("/v1")
    assert report["workload"] == {"requests": 24, "concurrency": 4, "n": 2, "max_tokens": 32,
                                  "model": "scripted-teacher-1", "distinct_prompts": 64, "repeat": 2}
    assert list(report["rows"]) == list(ROWS)
    for name, row in report["rows"].items():
        assert set(row) == ROW_KEYS, name
        assert (row["ok"], row["errors"], row["requests"], row["rounds"]) == (48, 0, 24, 2), (name, row["first_error"])
        assert len(row["requests_per_s_by_round"]) == 2
        assert row["requests_per_s"] > 0 and row["client_cpu_ms_per_request"] > 0 and row["peak_rss_mb"] > 0
        assert row["ideal_requests_per_s"] == pytest.approx(4 / 0.02)
        assert row["ratio"] == pytest.approx(row["requests_per_s"] / row["ideal_requests_per_s"], rel=1e-3)
        assert row["p50_added_latency_ms"] <= row["p99_added_latency_ms"]
        assert row["server_cpu_ms_per_request"] is None or row["server_cpu_ms_per_request"] >= 0
    assert set(report["ratios"]) == {"request_path_vs_bare_aiohttp", "request_path_vs_openai"}
    assert report["command"].startswith("python -m pipeline bench --latency-base 0.02 ")
    assert "--repeat 2" in report["command"]
    for title in ("request path", "AsyncOpenAI", "bare aiohttp"):
        assert title in proc.stdout


def test_bench_against_a_given_server_without_known_latency(tmp_path: Path, scripted_teacher) -> None:
    server = scripted_teacher(latency_base=0.0)
    out = tmp_path / "r.json"
    proc = bench("--base-url", server.base_url, "--rows", "request_path", "--requests", "10", "--concurrency", "2",
                 "--api-key-env", "BENCH_TEST_KEY", "--json", str(out), env={"BENCH_TEST_KEY": "sk-bench-secret-123"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    row = report["rows"]["request_path"]
    assert list(report["rows"]) == ["request_path"] and row["ok"] == 10 and row["rounds"] == 1
    assert row["ideal_requests_per_s"] is None and row["ratio"] is None and row["p50_added_latency_ms"] is None
    assert row["server_cpu_ms_per_request"] is None  # not our process: not measured
    assert server.stats()["requests"] == 10
    assert "sk-bench-secret-123" not in out.read_text() + proc.stdout + proc.stderr
    assert "--api-key-env BENCH_TEST_KEY" in report["command"]


@pytest.mark.parametrize(
    ("args", "where"),
    [
        (["--requests", "0"], "--requests"),
        (["--rows", "request_path,curl"], "--rows"),
        (["--repeat", "0"], "--repeat"),
        (["--api-key-env", "SURELY_UNSET_BENCH_VAR"], "--api-key-env"),
    ],
)
def test_bench_rejects_bad_arguments_with_a_clear_error(args: list[str], where: str) -> None:
    proc = bench(*args)
    assert proc.returncode == 2
    assert where in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_pipeline_mode_runs_the_whole_pipeline_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "pipeline.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "bench", "--mode", "pipeline", "--prompts", "60", "--concurrency", "16",
         "--latency-base", "0.01", "--shard-size", "16", "--n", "2", "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=600, env={**os.environ, "RAY_ADDRESS": ""},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["mode"] == "pipeline" and report["prompts"] > 0
    assert report["candidates"] == report["prompts"] * 4  # 2 styles x n=2
    for key in ("teacher_bound_ideal_s", "sample_check_select_s", "overhead_vs_ideal", "wall_s", "prompts_per_s",
                "driver_peak_rss_mb", "worker_peak_rss_mb", "timings", "stage_seconds_in_workers", "limiters"):
        assert key in report, key
    assert report["teacher_bound_ideal_s"] > 0 and len(report["worker_peak_rss_mb"]) >= 1
    assert "overhead over ideal" in proc.stdout

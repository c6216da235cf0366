"""Whole-pipeline benchmark: expand -> sample -> check -> select -> write on a generated seed set, against the
scripted teacher in its own process, reported against the teacher-bound ideal.

The ideal is what the teacher alone allows: requests / (concurrency / latency). Everything the pipeline adds
(Ray start, expansion, dedup, grading, selection, Parquet, accounting) shows up as wall time above it. Peak RSS
is read from the driver and every worker, so memory flatness in the seed-set size can be checked by running
two sizes.
"""

from __future__ import annotations

import json
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from pipeline.config import RunConfig

def write_generated_seeds(path: Path, n: int, bundled: Path) -> None:
    """`n` distinct seeds made from the bundled prompts with a numbered scenario, streamed to a JSONL file."""
    bases = []
    for f in sorted(bundled.glob("*.jsonl")):
        bases.extend(json.loads(line) for line in f.read_text().splitlines() if line.strip())
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            b = bases[i % len(bases)]
            row = {"id": f"gen-{i:07d}", "prompt": f"{b['prompt']} (scenario {i})", "category": b["category"],
                   "intent": b["intent"], "source": "generated"}
            out.write(json.dumps(row) + "\n")


def bench_config(seeds: Path, output: Path, base_url: str, *, concurrency: int, n: int, styles: list[str],
                 shard_size: int, workers: int | None) -> RunConfig:
    return RunConfig.model_validate({
        "dataset": "bench",
        "seeds": [str(seeds)],
        "output": str(output),
        "teachers": [{"name": "scripted", "base_url": base_url, "max_concurrency": concurrency, "timeout_s": 120,
                      "sampling": {"n": n, "max_tokens": 700}, "styles": styles}],
        "expansion": {"max_prompts_per_seed": 1, "dedup": {"near_duplicate_threshold": 1.0}},
        "shards": {"prompts_per_shard": shard_size},
        "ray": {"workers": workers},
    })


def run_bench(*, prompts: int, concurrency: int, latency: float, n: int, styles: list[str], shard_size: int,
              workers: int | None) -> dict[str, Any]:
    from pipeline.commands.bench import ScriptedTeacherProcess
    from pipeline.config import REPO_ROOT
    from pipeline.console import make_console
    from pipeline.runner.driver import run_pipeline

    server = ScriptedTeacherProcess(latency)
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        seeds = Path(tmp) / "seeds.jsonl"
        write_generated_seeds(seeds, prompts, REPO_ROOT / "seeds")
        try:
            base_url = server.start()
            cfg = bench_config(seeds, Path(tmp) / "out", base_url, concurrency=concurrency, n=n, styles=styles,
                               shard_size=shard_size, workers=workers)
            t0 = time.monotonic()
            result = run_pipeline(cfg, console=make_console(quiet=True), live=False, handle_signals=False)
            wall = time.monotonic() - t0
            server_cpu = server.cpu_seconds()
        finally:
            server.stop()
    m = result.manifest
    requests = m["counts"]["prompts"] * len(styles)
    ideal = requests / (concurrency / latency)
    sample = m["timings"]["sample_check_select"]
    workers_rss = m["requests"].get("worker_peak_rss_mb", [])
    return {
        "mode": "pipeline",
        "prompts": m["counts"]["prompts"],
        "candidates": m["counts"]["candidates"],
        "requests": requests,
        "concurrency": concurrency,
        "server_latency_s": latency,
        "teacher_bound_ideal_s": round(ideal, 2),
        "sample_check_select_s": round(sample, 2),
        "overhead_vs_ideal": round(sample / ideal - 1, 4),
        "wall_s": round(wall, 2),
        "prompts_per_s": round(m["counts"]["prompts"] / wall, 1),
        "timings": m["timings"],
        "stage_seconds_in_workers": m["requests"].get("stage_seconds", {}),
        "driver_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "worker_peak_rss_mb": workers_rss,
        "limiters": m["requests"].get("limiters", {}),
        "server_cpu_s": server_cpu,
    }


def print_pipeline_report(r: dict[str, Any]) -> None:
    from rich.table import Table

    from pipeline.console import make_console

    t = Table(title=f"whole pipeline: {r['prompts']} prompts x {r['candidates'] // max(r['prompts'], 1)} candidates, "
              f"{r['concurrency']} in flight, teacher latency {r['server_latency_s']} s", show_header=False)
    t.add_column(style="bold")
    t.add_column(justify="right")
    t.add_row("teacher-bound ideal (sampling)", f"{r['teacher_bound_ideal_s']:.1f} s")
    t.add_row("sample + check + select + write", f"{r['sample_check_select_s']:.1f} s")
    t.add_row("overhead over ideal", f"{100 * r['overhead_vs_ideal']:.1f} %")
    t.add_row("wall (incl. Ray start, expansion, plan)", f"{r['wall_s']:.1f} s")
    t.add_row("prompts/s (wall)", f"{r['prompts_per_s']:.1f}")
    for stage, s in r["timings"].items():
        t.add_row(f"  driver: {stage}", f"{s:.2f} s")
    for stage, s in r["stage_seconds_in_workers"].items():
        t.add_row(f"  workers (CPU-bound, summed): {stage}", f"{s:.2f} s")
    t.add_row("driver peak RSS", f"{r['driver_peak_rss_mb']:.0f} MB")
    t.add_row("worker peak RSS", ", ".join(f"{x:.0f}" for x in r["worker_peak_rss_mb"]) + " MB")
    make_console().print(t)

"""`python -m pipeline bench`: throughput and client CPU of the request path, side by side with reference clients.

Request-path mode (issue 5 §1) sends the same workload to the same server through three clients, each in its
own fresh process so that CPU time and peak RSS are the client's alone: the pipeline's request path
(ChatClient + adaptive limiter + retries + candidate records, as `run` uses it), plain `openai.AsyncOpenAI`,
and a bare aiohttp loop (the floor). By default it starts the scripted teacher in a separate process, so
server CPU is not billed to the client. Every figure is meant to be read as a ratio between rows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError, PipelineError

ROWS: tuple[str, ...] = ("request_path", "openai", "bare_aiohttp")
ROW_TITLES = {"request_path": "request path", "openai": "AsyncOpenAI", "bare_aiohttp": "bare aiohttp"}
SYSTEM_PROMPT = "You are a helpful assistant. Answer clearly and completely."
TOPICS = (
    "how vaccines train the immune system",
    "why bread dough rises",
    "how public-key cryptography lets strangers share a secret",
    "how a heat pump moves heat uphill",
    "why the sky is blue",
    "how a bill becomes law in a parliamentary system",
    "how compound interest works",
    "how plants fix carbon",
)
N_PROMPTS = 64  # distinct prompts, cycled: enough variety for routing keys, small enough to prebuild


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "bench",
        help="measure requests/s and client CPU of the request path against reference clients",
        description="Request-path mode: send the same workload to one OpenAI-compatible server through the "
        "pipeline's request path, plain openai.AsyncOpenAI and a bare aiohttp loop (each in its own process) "
        "and report requests/s against the ideal (concurrency / server latency), client CPU per request, "
        "latency added by the client and peak RSS. Without --base-url it starts the scripted teacher with "
        "--latency-base seconds of latency in a separate process.",
    )
    p.add_argument("--mode", choices=("request", "pipeline"), default="request",
                   help="request: the request path alone (default); pipeline: the whole pipeline on generated seeds")
    p.add_argument("--base-url", help="server to measure against, e.g. http://host:8000/v1 (default: start the scripted teacher)")
    p.add_argument("--model", default="scripted-teacher-1", help="model name sent in every request")
    p.add_argument("--api-key-env", metavar="VAR", help="environment variable holding the API key for --base-url")
    p.add_argument("--requests", type=int, default=4096, metavar="N", help="requests per client row (default 4096)")
    p.add_argument("--concurrency", type=int, default=256, metavar="C", help="requests in flight (default 256)")
    p.add_argument("--n", type=int, default=1, metavar="K", help="choices per request (default 1)")
    p.add_argument("--max-tokens", type=int, default=256, metavar="T", help="max_tokens per request (default 256)")
    p.add_argument("--latency-base", type=float, default=0.5, metavar="S",
                   help="latency in seconds of the scripted teacher that bench starts (default 0.5)")
    p.add_argument("--server-latency", type=float, metavar="S",
                   help="known mean server latency of --base-url in seconds; without it the ideal rate and the "
                   "latency added by the client are not reported")
    p.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated clients to measure (default {','.join(ROWS)})")
    p.add_argument("--repeat", type=int, default=1, metavar="R",
                   help="rounds of all rows, interleaved; each figure is the median over rounds (default 1)")
    p.add_argument("--timeout", type=float, default=120.0, metavar="S", help="per-request timeout in seconds (default 120)")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the results as JSON to FILE")
    g = p.add_argument_group("pipeline mode")
    g.add_argument("--prompts", type=int, default=5000, metavar="N", help="generated seeds, one prompt each (default 5000)")
    g.add_argument("--styles", default="helpful,safe_completion", help="styles per prompt (default helpful,safe_completion)")
    g.add_argument("--shard-size", type=int, default=256, help="prompts per shard (default 256)")
    g.add_argument("--workers", type=int, help="worker actors (default: one per CPU)")
    p.set_defaults(func=run)


def _run_pipeline_mode(args: argparse.Namespace) -> int:
    """Whole pipeline on generated seeds against the scripted teacher (pipeline/bench_pipeline.py)."""
    from pipeline.bench_pipeline import print_pipeline_report, run_bench

    styles = [s.strip() for s in args.styles.split(",") if s.strip()]
    report = run_bench(prompts=args.prompts, concurrency=args.concurrency, latency=args.latency_base, n=args.n,
                       styles=styles, shard_size=args.shard_size, workers=args.workers)
    report["command"] = (f"python -m pipeline bench --mode pipeline --prompts {args.prompts} --concurrency "
                         f"{args.concurrency} --n {args.n} --latency-base {args.latency_base} --styles {','.join(styles)}")
    print_pipeline_report(report)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.mode == "pipeline":
        return _run_pipeline_mode(args)
    rows = _check_args(args)
    api_key = _api_key(args.api_key_env)
    server = None
    try:
        if args.base_url is None:
            server = ScriptedTeacherProcess(args.latency_base)
            base_url, server_latency = server.start(), args.latency_base
        else:
            base_url, server_latency = args.base_url.rstrip("/"), args.server_latency
        workload = build_workload(args, base_url, api_key)
        # Rows take turns, round after round, so a burst of load from elsewhere on the machine hits every
        # row alike; each row then reports its median run.
        results: dict[str, list[dict[str, Any]]] = {row: [] for row in rows}
        for _ in range(args.repeat):
            for row in rows:
                server_cpu0 = server.cpu_seconds() if server is not None else None
                result = measure_row(row, workload)
                if server is not None and server_cpu0 is not None:
                    result["server_cpu_s"] = server.cpu_seconds() - server_cpu0  # type: ignore[operator]
                results[row].append(result)
    finally:
        if server is not None:
            server.stop()
    report = build_report(args, rows, results, base_url, server_latency, started_server=server is not None)
    print_report(report)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


def _check_args(args: argparse.Namespace) -> list[str]:
    for flag, value, low in (("--requests", args.requests, 1), ("--concurrency", args.concurrency, 1),
                             ("--n", args.n, 1), ("--max-tokens", args.max_tokens, 1), ("--repeat", args.repeat, 1)):
        if value < low:
            raise ConfigError(f"must be >= {low}, got {value}", where=flag)
    if args.latency_base < 0 or (args.server_latency is not None and args.server_latency <= 0):
        raise ConfigError("latencies must be positive seconds", where="--latency-base/--server-latency")
    if args.timeout <= 0:
        raise ConfigError(f"must be > 0, got {args.timeout}", where="--timeout")
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    bad = [r for r in rows if r not in ROWS]
    if bad or not rows:
        raise ConfigError(f"unknown row(s) {bad}" if bad else "no rows given", where="--rows",
                          hint=f"choose from {', '.join(ROWS)}")
    return list(dict.fromkeys(rows))


def _api_key(var: str | None) -> str | None:
    if var is None:
        return None
    key = os.environ.get(var)
    if not key:
        raise ConfigError(f"environment variable {var} is not set or empty", where="--api-key-env",
                          hint=f"export {var}=... before running bench")
    return key


class ScriptedTeacherProcess:
    """`python -m pipeline scripted-teacher` in a child process, so its CPU is not billed to the client."""

    URL = re.compile(r"https?://\S+")

    def __init__(self, latency_base: float) -> None:
        self.latency_base = latency_base
        self._proc: subprocess.Popen[str] | None = None
        self._stderr = tempfile.TemporaryFile(mode="w+")

    def start(self, timeout_s: float = 60.0) -> str:
        cmd = [sys.executable, "-m", "pipeline", "scripted-teacher", "--port", "0", "--latency-base", repr(self.latency_base)]
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._stderr, text=True, bufsize=1)
        deadline = time.monotonic() + timeout_s
        assert self._proc.stdout is not None
        while time.monotonic() < deadline:
            line = self._proc.stdout.readline()
            if not line:  # exited before printing its URL
                break
            m = self.URL.search(line)
            if m:
                url = m.group(0).rstrip("/.,)")
                return url if url.endswith("/v1") else url + "/v1"
        self.stop()
        self._stderr.seek(0)
        raise PipelineError(f"the scripted teacher did not start: {' '.join(cmd[1:])}\n{self._stderr.read()[-2000:]}",
                            hint="run that command by hand to see why, or pass --base-url")

    def cpu_seconds(self) -> float | None:
        """CPU time the server process has used so far (Linux /proc; None elsewhere)."""
        try:
            assert self._proc is not None
            fields = Path(f"/proc/{self._proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
        except (OSError, ValueError, IndexError, AssertionError):
            return None

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._proc is not None and self._proc.stdout is not None:
            self._proc.stdout.close()
        self._stderr.close()


def build_workload(args: argparse.Namespace, base_url: str, api_key: str | None) -> dict[str, Any]:
    """Everything a row process needs; plain data, so it crosses the process boundary as is."""
    prompts = [f"In plain words, explain {TOPICS[i % len(TOPICS)]} (question {i})." for i in range(N_PROMPTS)]
    return {
        "base_url": base_url,
        "api_key": api_key,
        "model": args.model,
        "requests": args.requests,
        "concurrency": args.concurrency,
        "n": args.n,
        "max_tokens": args.max_tokens,
        "temperature": 1.0,
        "top_p": 1.0,
        "timeout_s": args.timeout,
        "system_prompt": SYSTEM_PROMPT,
        "prompts": prompts,
    }


def measure_row(row: str, workload: dict[str, Any]) -> dict[str, Any]:
    """Run one client row in a fresh spawned process and return its raw measurements."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_row_main, row, workload).result()


def _row_main(row: str, workload: dict[str, Any]) -> dict[str, Any]:
    """Entry point of a row process."""
    import asyncio

    runner = {"request_path": _request_path_row, "openai": _openai_row, "bare_aiohttp": _bare_aiohttp_row}[row]
    return asyncio.run(runner(workload))


async def _drive(call: Any, workload: dict[str, Any]) -> dict[str, Any]:
    """`concurrency` workers issue `requests` calls between them; returns timings measured in this process."""
    import asyncio
    import resource

    requests, concurrency = workload["requests"], workload["concurrency"]
    latencies: list[float] = []
    errors: list[str] = []
    next_i = 0
    perf = time.perf_counter

    async def worker() -> None:
        nonlocal next_i
        while next_i < requests:
            i = next_i
            next_i += 1
            t0 = perf()
            try:
                await call(i)
            except Exception as exc:  # a failed request is counted and reported, never fatal to the bench
                errors.append(f"{type(exc).__name__}: {exc}"[:300])
                continue
            latencies.append(perf() - t0)

    cpu0, wall0 = time.process_time(), perf()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall, cpu = perf() - wall0, time.process_time() - cpu0
    return {
        "ok": len(latencies),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "wall_s": wall,
        "cpu_s": cpu,
        "latencies_s": latencies,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }


async def _request_path_row(w: dict[str, Any]) -> dict[str, Any]:
    """The code `run` uses: ChatClient behind an adaptive limiter, retries, and candidate records per answer."""
    from pipeline.config import Sampling, Teacher
    from pipeline.limiter import AdaptiveLimiter
    from pipeline.records import Prompt, prompt_id_for
    from pipeline.sampling import SampleRequest, answered, failed
    from pipeline.teacher_client import ChatClient, EndpointSpec, RequestFailed

    teacher = Teacher(name="bench", base_url=w["base_url"], model=w["model"], max_concurrency=w["concurrency"],
                      timeout_s=w["timeout_s"], styles=["helpful"],
                      sampling=Sampling(temperature=w["temperature"], top_p=w["top_p"], max_tokens=w["max_tokens"], n=w["n"]))
    reqs = [
        SampleRequest(Prompt(prompt_id_for(text), f"bench-{i}", text, "biology", "benign", "seed"), teacher, "helpful",
                      w["system_prompt"])
        for i, text in enumerate(w["prompts"])
    ]
    spec = EndpointSpec(teacher.name, teacher.base_urls, teacher.model, w["api_key"],
                        max_concurrency=teacher.max_concurrency, timeout_s=teacher.timeout_s, max_retries=teacher.max_retries)
    limiter = AdaptiveLimiter.local(initial=spec.max_concurrency, ceiling=spec.max_concurrency)
    sampling = teacher.sampling

    async with ChatClient(spec, limiter=limiter) as client:

        async def call(i: int) -> None:
            req = reqs[i % len(reqs)]
            try:
                c = await client.complete(req.messages(), n=sampling.n, temperature=sampling.temperature,
                                          top_p=sampling.top_p, max_tokens=sampling.max_tokens,
                                          seed=req.sampling_seed, routing_key=req.system_prompt)
            except RequestFailed as exc:
                failed(req, str(exc), exc.attempts)
                raise
            answered(req, c.texts, c.finish_reasons, prompt_tokens=c.prompt_tokens,
                     completion_tokens=c.completion_tokens, latency_ms=c.latency_ms, attempts=c.attempts)

        return await _drive(call, w)


def _request_bodies(w: dict[str, Any]) -> list[dict[str, Any]]:
    """The request each prompt makes, field for field what the request path sends (same seeds too)."""
    from pipeline.records import prompt_id_for, stable_id

    return [
        {
            "model": w["model"],
            "messages": [{"role": "system", "content": w["system_prompt"]}, {"role": "user", "content": text}],
            "n": w["n"],
            "temperature": w["temperature"],
            "top_p": w["top_p"],
            "max_tokens": w["max_tokens"],
            "seed": int(stable_id(prompt_id_for(text), "bench", "helpful")[:12], 16),
        }
        for text in w["prompts"]
    ]


async def _openai_row(w: dict[str, Any]) -> dict[str, Any]:
    """Plain `openai.AsyncOpenAI` with its default transport and limits, retries off."""
    import openai

    bodies = _request_bodies(w)
    client = openai.AsyncOpenAI(base_url=w["base_url"], api_key=w["api_key"] or "unused", max_retries=0,
                                timeout=w["timeout_s"])
    try:

        async def call(i: int) -> None:
            r = await client.chat.completions.create(**bodies[i % len(bodies)])
            _ = [c.message.content for c in r.choices]

        return await _drive(call, w)
    finally:
        await client.close()


async def _bare_aiohttp_row(w: dict[str, Any]) -> dict[str, Any]:
    """The floor: one pooled session, prebuilt bodies, post, read, json.loads. No retries, no records."""
    import aiohttp

    bodies = [json.dumps(b).encode() for b in _request_bodies(w)]
    url = w["base_url"] + "/chat/completions"
    headers = {"Content-Type": "application/json"}
    if w["api_key"]:
        headers["Authorization"] = f"Bearer {w['api_key']}"
    connector = aiohttp.TCPConnector(limit=w["concurrency"])
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=w["timeout_s"])) as session:

        async def call(i: int) -> None:
            async with session.post(url, data=bodies[i % len(bodies)], headers=headers) as resp:
                body = await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"HTTP {resp.status}")
            json.loads(body)

        return await _drive(call, w)


def build_report(args: argparse.Namespace, rows: list[str], results: dict[str, list[dict[str, Any]]], base_url: str,
                 server_latency: float | None, *, started_server: bool) -> dict[str, Any]:
    ideal = args.concurrency / server_latency if server_latency else None
    out_rows: dict[str, Any] = {}
    for row in rows:
        runs = [_run_figures(r, server_latency) for r in results[row]]
        rps = statistics.median(r["requests_per_s"] for r in runs)
        out_rows[row] = {
            "client": ROW_TITLES[row],
            "requests": args.requests,
            "rounds": len(runs),
            "ok": sum(r["ok"] for r in runs),
            "errors": sum(r["errors"] for r in runs),
            "first_error": next((r["first_error"] for r in runs if r["first_error"]), None),
            "wall_s": round(statistics.median(r["wall_s"] for r in runs), 4),
            "requests_per_s": round(rps, 2),
            "ideal_requests_per_s": round(ideal, 2) if ideal else None,
            "ratio": round(rps / ideal, 4) if ideal else None,
            "client_cpu_ms_per_request": round(statistics.median(r["cpu_ms"] for r in runs), 4),
            "p50_added_latency_ms": _median_or_none([r["p50_ms"] for r in runs]),
            "p99_added_latency_ms": _median_or_none([r["p99_ms"] for r in runs]),
            "peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs), 1),
            "server_cpu_ms_per_request": _median_or_none([r["server_cpu_ms"] for r in runs], digits=4),
            "requests_per_s_by_round": [round(r["requests_per_s"], 2) for r in runs],
        }
    ratios: dict[str, float | None] = {}
    if "request_path" in out_rows:
        ours = out_rows["request_path"]["requests_per_s"]
        for ref in ("bare_aiohttp", "openai"):
            if ref in out_rows:
                theirs = out_rows[ref]["requests_per_s"]
                ratios[f"request_path_vs_{ref}"] = round(ours / theirs, 4) if theirs else None
    return {
        "mode": "request",
        "command": _command_line(args),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "server": {"base_url": base_url, "scripted_teacher": started_server, "latency_s": server_latency},
        "workload": {"requests": args.requests, "concurrency": args.concurrency, "n": args.n, "max_tokens": args.max_tokens,
                     "model": args.model, "distinct_prompts": N_PROMPTS, "repeat": args.repeat},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "rows": out_rows,
        "ratios": ratios,
    }


def _run_figures(r: dict[str, Any], server_latency: float | None) -> dict[str, Any]:
    """One run's figures from its raw measurements."""
    added = sorted(x - server_latency for x in r["latencies_s"]) if server_latency else []
    return {
        "ok": r["ok"],
        "errors": r["errors"],
        "first_error": r["first_error"],
        "wall_s": r["wall_s"],
        "requests_per_s": r["ok"] / r["wall_s"] if r["wall_s"] > 0 else 0.0,
        "cpu_ms": r["cpu_s"] * 1000.0 / max(r["ok"], 1),
        "p50_ms": _quantile(added, 0.50) * 1000.0 if added else None,
        "p99_ms": _quantile(added, 0.99) * 1000.0 if added else None,
        "peak_rss_mb": r["peak_rss_mb"],
        "server_cpu_ms": r["server_cpu_s"] * 1000.0 / max(r["ok"], 1) if "server_cpu_s" in r else None,
    }


def _median_or_none(values: list[float | None], digits: int = 2) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), digits) if present else None


def _command_line(args: argparse.Namespace) -> str:
    """The command that reproduces this measurement (defaults spelled out; never a secret, only its variable)."""
    parts = ["python -m pipeline bench"]
    if args.base_url is not None:
        parts.append(f"--base-url {args.base_url}")
        if args.server_latency is not None:
            parts.append(f"--server-latency {args.server_latency:g}")
        if args.api_key_env:
            parts.append(f"--api-key-env {args.api_key_env}")
    else:
        parts.append(f"--latency-base {args.latency_base:g}")
    parts.append(f"--model {args.model} --requests {args.requests} --concurrency {args.concurrency} --n {args.n} "
                 f"--max-tokens {args.max_tokens} --rows {args.rows} --repeat {args.repeat}")
    if args.json is not None:
        parts.append(f"--json {args.json}")
    return " ".join(parts)


def _quantile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank quantile of an already sorted list."""
    return sorted_values[min(len(sorted_values) - 1, max(0, round(q * len(sorted_values) + 0.5) - 1))]


def print_report(report: dict[str, Any]) -> None:
    from pipeline.console import make_console
    from rich.table import Table

    w = report["workload"]
    s = report["server"]
    lat = f"{s['latency_s']:g} s" if s["latency_s"] else "unknown"
    rounds = next(iter(report["rows"].values()))["rounds"]
    table = Table(title=f"request path: {w['requests']} requests, {w['concurrency']} in flight, n={w['n']}, "
                        f"server latency {lat}" + (f", median of {rounds} rounds" if rounds > 1 else ""),
                  title_justify="left")
    for col in ("client", "req/s", "ideal", "% ideal", "CPU ms/req", "+p50 ms", "+p99 ms", "RSS MB", "server CPU ms/req",
                "errors"):
        table.add_column(col, justify="left" if col == "client" else "right", no_wrap=True)

    def fmt(x: Any, spec: str) -> str:
        return "n/a" if x is None else format(x, spec)

    for row in report["rows"].values():
        table.add_row(row["client"], fmt(row["requests_per_s"], ".0f"), fmt(row["ideal_requests_per_s"], ".0f"),
                      fmt(None if row["ratio"] is None else row["ratio"] * 100, ".1f"),
                      fmt(row["client_cpu_ms_per_request"], ".3f"), fmt(row["p50_added_latency_ms"], ".1f"),
                      fmt(row["p99_added_latency_ms"], ".1f"), fmt(row["peak_rss_mb"], ".0f"),
                      fmt(row["server_cpu_ms_per_request"], ".3f"), str(row["errors"]))
    console = make_console()
    console.print(table)
    console.print("CPU: client process only; +p50/+p99: latency added by the client (observed minus server latency); "
                  "RSS: peak of the client process")
    for name, value in report["ratios"].items():
        console.print(f"{name.replace('_', ' ')}: {fmt(value, '.2f')}x requests/s")
    for row in report["rows"].values():
        if row["errors"]:
            console.print(f"[yellow]{row['client']}: {row['errors']} failed request(s), first: {row['first_error']}[/]")

"""The driver: one run from seeds to a committed version, on a local Ray or a cluster.

Stages: load and validate (no Ray) -> open the version (new, resumed or refused) -> expansion units on the
workers -> the plan (dedup + shards) in the driver -> sample shards on the workers -> add up the ledger and check
that every seed, prompt and candidate is accounted for -> manifest "complete". Any unit already in the ledger
is skipped, so the same function both runs and resumes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from pipeline.config import RunConfig
from pipeline.errors import PipelineError, RunFailed
from pipeline.accounting import account
from pipeline.wiring import checker_identity
from pipeline.plan import load_plan, make_plan
from pipeline.policy import PolicySpec, load_policy
from pipeline.records import REJECTED_SCHEMA
from pipeline.seeds import SeedLoad, load_seeds
from pipeline.shards import TABLES, Provenance
from pipeline.version_dir import (
    HEARTBEAT,
    HEARTBEAT_EVERY_S,
    VersionDir,
    now,
    open_version,
    package_versions,
    write_heartbeat,
)

log = logging.getLogger("pipeline")
SEEDS_PER_EXPANSION_UNIT = 64


@dataclass
class RunResult:
    version: VersionDir
    manifest: dict[str, Any]


class Stop(Exception):
    """Raised inside the scheduler when a stop was asked for (signal) or a failure budget was spent."""


# ---------------------------------------------------------------------------------------------------------
# Set-up that needs no Ray
# ---------------------------------------------------------------------------------------------------------


def _base_manifest(cfg: RunConfig, spec: PolicySpec, seeds: SeedLoad) -> dict[str, Any]:
    return {
        "config": cfg.public_dict(),
        "config_fingerprint": cfg.fingerprint(seeds_sha256=seeds.sha256, policy_sha256=spec.sha256),
        "fingerprint_parts": cfg.fingerprint_parts(),
        "policy": {"name": spec.name, "version": spec.version, "sha256": spec.sha256, "path": cfg.policy},
        "seeds": {"sources": seeds.sources, "sha256": seeds.sha256, "count": len(seeds.seeds) + len(seeds.invalid)},
        "packages": package_versions(),
        "teachers": [
            {"name": t.name, "model": t.model, "styles": t.styles, "sampling": t.sampling.model_dump(),
             "endpoint": "bundled scripted teacher" if t.is_scripted else "openai-compatible"}
            for t in cfg.teachers
        ],
        "judge": {"name": cfg.judge.name, "model": cfg.judge.model} if cfg.judge and cfg.checker != "rules" else None,
        "checker": {"name": cfg.checker},
    }


def _seed_rejected_rows(seeds: SeedLoad, run_id: str) -> list[dict[str, Any]]:
    return [
        {"prompt_id": None, "seed_id": s.seed_id, "category": s.category, "intent": s.intent, "prompt": s.prompt,
         "stage": "seed", "reason": "invalid_seed", "detail": f"{s.where}: {s.reason}", "n_candidates": 0,
         "best_candidate_id": None, "best_severity": None, "best_helpfulness": None, "run_id": run_id}
        for s in seeds.invalid
    ]


@contextlib.contextmanager
def _log_to(version: VersionDir) -> Iterator[None]:
    """Append the run's log to `run.log` in the version (locally; uploaded at the end for remote storage)."""
    import tempfile

    path = version.storage.path("run.log") if version.storage.local else tempfile.mktemp(suffix=".log")
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield
    finally:
        log.removeHandler(handler)
        handler.close()
        if not version.storage.local:
            with open(path, "rb") as f:
                version.storage.write_bytes("run.log", f.read())


@contextlib.contextmanager
def _heartbeat(version: VersionDir) -> Iterator[None]:
    """Refresh the version's heartbeat while this driver runs, so no other run resumes it concurrently."""
    done = threading.Event()

    def beat() -> None:
        while not done.wait(HEARTBEAT_EVERY_S):
            with contextlib.suppress(Exception):
                write_heartbeat(version.storage)

    t = threading.Thread(target=beat, name="heartbeat", daemon=True)
    t.start()
    try:
        yield
    finally:
        done.set()
        t.join()
        with contextlib.suppress(Exception):
            version.storage.delete(HEARTBEAT)


@contextlib.contextmanager
def teacher_urls(cfg: RunConfig) -> Iterator[dict[str, tuple[str, ...]]]:
    """Endpoint name -> base URLs; starts the bundled scripted teacher when an endpoint says 'scripted'."""
    endpoints = list(cfg.teachers) + ([cfg.judge] if cfg.judge else [])
    urls = {e.name: e.base_urls for e in endpoints if not e.is_scripted}
    if all(not e.is_scripted for e in endpoints):
        yield urls
        return
    from pipeline.scripted_teacher import ScriptedTeacherConfig, ScriptedTeacherServer

    opts = cfg.scripted_teacher
    server = ScriptedTeacherServer(ScriptedTeacherConfig(latency_base=opts.latency_base, latency_per_token=opts.latency_per_token,
                                                         jitter=opts.jitter, policy_path=cfg.policy))
    base_url = server.start()
    log.info("bundled scripted teacher listening on %s", base_url)
    try:
        yield {**urls, **{e.name: (base_url,) for e in endpoints if e.is_scripted}}
    finally:
        server.stop()


@contextlib.contextmanager
def ray_session(cfg: RunConfig) -> Iterator[None]:
    """Join the cluster (config address, or RAY_ADDRESS as set by `ray job submit`), or start a local Ray."""
    import ray

    if ray.is_initialized():
        yield
        return
    address = cfg.ray.address or os.environ.get("RAY_ADDRESS")
    kwargs: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False, "configure_logging": True}
    if address:
        ray.init(address=address, **kwargs)
    else:
        ray.init(include_dashboard=False, **kwargs)
    try:
        yield
    finally:
        ray.shutdown()


# ---------------------------------------------------------------------------------------------------------
# The scheduler: units onto workers, with live progress, failure budget, stop and worker-death recovery
# ---------------------------------------------------------------------------------------------------------


class Scheduler:
    def __init__(self, cfg: RunConfig, workers: list[Any], view: Any, stop: threading.Event) -> None:
        self.cfg, self.workers, self.view, self.stop = cfg, workers, view, stop
        self.last_reports: list[dict[str, Any]] = [{} for _ in workers]

    def poll(self) -> None:
        import ray

        from pipeline.runner.live import Snapshot

        refs = [w.progress.remote() for w in self.workers]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=2.0)
        for i, ref in enumerate(refs):
            if ref in ready:
                with contextlib.suppress(Exception):
                    self.last_reports[i] = ray.get(ref)
        snap = Snapshot.from_workers(self.last_reports)
        self.view.update(snap)
        self._check_budget(snap)

    def _check_budget(self, snap: Any) -> None:
        fb = self.cfg.failure_budget
        finished = snap.requests_ok + snap.requests_failed
        if finished >= fb.min_requests and snap.requests_failed / finished > fb.max_failed_ratio:
            kinds = ", ".join(f"{k}: {v}" for k, v in sorted(snap.failures_by_kind.items()))
            raise RunFailed(
                f"teacher failure budget spent: {snap.requests_failed} of {finished} requests failed for good ({kinds})",
                hint="check that the endpoints are up and the keys valid; committed shards are kept and "
                "`--resume` continues from them; failure_budget.max_failed_ratio sets the limit",
            )

    def run(self, units: list[tuple[str, str, tuple]], on_done: Any) -> None:
        """Run (name, method, args) units, at most `per_worker` each in flight; resubmit units of dead workers."""
        import ray
        from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

        per_worker = self.cfg.ray.shards_in_flight_per_worker
        queue = list(units)
        in_flight: dict[Any, tuple[int, tuple[str, str, tuple], int]] = {}  # ref -> (worker, unit, attempt)
        load = [0] * len(self.workers)
        attempts: dict[str, int] = {}
        last_poll = 0.0
        try:
            while queue or in_flight:
                if self.stop.is_set():
                    raise Stop("stop requested")
                while queue and min(load) < per_worker:
                    w = load.index(min(load))
                    unit = queue.pop(0)
                    ref = getattr(self.workers[w], unit[1]).remote(*unit[2])
                    in_flight[ref] = (w, unit, attempts.get(unit[0], 0))
                    load[w] += 1
                ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=0.25)
                for ref in ready:
                    w, unit, attempt = in_flight.pop(ref)
                    load[w] -= 1
                    try:
                        entry = ray.get(ref)
                    except (RayActorError, ActorDiedError, ActorUnavailableError) as exc:
                        if attempt >= 3:
                            raise RunFailed(f"unit {unit[0]} lost its worker {attempt + 1} times: {exc}") from None
                        log.warning("worker died running %s; resubmitting (attempt %d)", unit[0], attempt + 2)
                        attempts[unit[0]] = attempt + 1
                        queue.insert(0, unit)
                        continue
                    except PipelineError:
                        raise
                    except Exception as exc:
                        cause = getattr(exc, "cause", None) or exc
                        if isinstance(cause, PipelineError):
                            raise cause from None
                        raise RunFailed(f"unit {unit[0]} failed: {type(cause).__name__}: {cause}",
                                        hint="see run.log in the version directory; `--resume` continues") from None
                    on_done(unit, entry)
                if time.monotonic() - last_poll > 0.5:
                    last_poll = time.monotonic()
                    self.poll()
        except BaseException:
            for ref in in_flight:
                with contextlib.suppress(Exception):
                    ray.cancel(ref)
            # let cancelled units close their journals before the caller tears the workers down
            with contextlib.suppress(Exception):
                ray.wait(list(in_flight), num_returns=len(in_flight), timeout=10)
            raise
        self.poll()


def _make_workers(cfg: RunConfig, version: VersionDir, prov: Provenance,
                  urls: dict[str, tuple[str, ...]]) -> tuple[list[Any], dict[str, Any]]:
    """Worker actors, and one concurrency governor per endpoint that they all share."""
    import ray

    from pipeline.runner.worker import UnitWorker

    from pipeline.runner.governor import EndpointGovernor

    n = cfg.ray.workers or max(1, min(8, int(ray.cluster_resources().get("CPU", 1) // cfg.ray.num_cpus_per_worker)))
    endpoints = [*cfg.teachers, *([cfg.judge] if cfg.judge and cfg.checker != "rules" else [])]
    governors = {e.name: EndpointGovernor.remote(e.max_concurrency, e.max_concurrency) for e in endpoints}
    workers = [
        UnitWorker.options(num_cpus=cfg.ray.num_cpus_per_worker, max_restarts=3, max_task_retries=0, max_concurrency=256)
        .remote(cfg.public_dict(), version.storage.uri, prov, urls, governors, f"worker-{i}")
        for i in range(n)
    ]
    return workers, governors


# ---------------------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------------------


def run_pipeline(cfg: RunConfig, *, resume: str | None = None, console: Any = None, live: bool = True,
                 handle_signals: bool = True) -> RunResult:
    """Run (or resume) the whole job and return the committed version. Raises PipelineError subclasses."""
    from rich.console import Console

    from pipeline.runner.live import LiveView

    console = console or Console()
    t0 = time.monotonic()
    timings: dict[str, float] = {}
    spec = load_policy(cfg.policy)
    seeds = load_seeds(cfg.seeds, categories=spec.category_ids, on_invalid=cfg.on_invalid_seed)
    timings["load"] = time.monotonic() - t0
    version = open_version(cfg, base=_base_manifest(cfg, spec, seeds), resume=resume)
    prov = Provenance(cfg.dataset, version.version, version.run_id, spec.name, spec.version, spec.sha256,
                      cfg.judge.name if cfg.judge and cfg.checker != "rules" else None)
    st = version.storage
    stop = threading.Event()
    previous: dict[int, Any] = {}
    console.print(f"[bold]{'resuming' if version.resumed else 'writing'}[/] {st.uri}  (run {version.run_id})", soft_wrap=True)
    try:
        with _log_to(version), _heartbeat(version):
            log.info("run %s %s %s", version.run_id, "resumed" if version.resumed else "started", st.uri)
            if not st.exists("_work/seed_rejected.parquet"):
                st.write_parquet("_work/seed_rejected.parquet",
                                 pa.Table.from_pylist(_seed_rejected_rows(seeds, version.run_id), schema=REJECTED_SCHEMA))
            chunks = [seeds.seeds[i : i + SEEDS_PER_EXPANSION_UNIT] for i in range(0, len(seeds.seeds), SEEDS_PER_EXPANSION_UNIT)]
            unit_names = [f"expand-{i:05d}" for i in range(len(chunks))]
            try:
                with teacher_urls(cfg) as urls, ray_session(cfg), LiveView(console, enabled=live) as view:
                    if handle_signals:  # after ray.init, which installs a SIGTERM handler of its own
                        previous = _install_signal_handlers(stop)
                    workers, governors = _make_workers(cfg, version, prov, urls)
                    sched = Scheduler(cfg, workers, view, stop)
                    t = time.monotonic()
                    done_units = set(st.list("_ledger", suffix=".json"))
                    todo = [(u, "expand", (u, c)) for u, c in zip(unit_names, chunks) if f"{u}.json" not in done_units]
                    view.stage("expand", len(chunks), "seed chunks", done=len(chunks) - len(todo))
                    n_done = [len(chunks) - len(todo)]

                    def expanded(unit: tuple, entry: dict) -> None:
                        n_done[0] += 1
                        view.advance("expand", n_done[0])

                    sched.run(todo, expanded)
                    timings["expand"] = time.monotonic() - t
                    t = time.monotonic()
                    plan = load_plan(st) or make_plan(st, unit_names, cfg.expansion.dedup, cfg.shards.prompts_per_shard, prov)
                    timings["plan"] = time.monotonic() - t
                    log.info("plan: %s", plan.to_dict())
                    t = time.monotonic()
                    done_units = set(st.list("_ledger", suffix=".json"))
                    todo = [(f"shard-{k:05d}", "shard", (k, plan.n_shards)) for k in range(plan.n_shards)
                            if f"shard-{k:05d}.json" not in done_units]
                    prompts_done = [sum(st.read_json(f"_ledger/{u}")["prompts"] for u in done_units if u.startswith("shard-"))]
                    view.stage("sample", plan.prompts, "prompts", done=prompts_done[0])

                    def sampled(unit: tuple, entry: dict) -> None:
                        prompts_done[0] += entry["prompts"]
                        view.advance("sample", prompts_done[0])

                    sched.run(todo, sampled)
                    timings["sample_check_select"] = time.monotonic() - t
                    requests = _requests_summary(sched.last_reports)
                    import ray

                    requests["limiters"] = {name: ray.get(g.snapshot.remote(), timeout=10) for name, g in governors.items()}
                    for w in workers:
                        with contextlib.suppress(Exception):
                            ray.get(w.close.remote(), timeout=10)
            except Stop:
                _end(version, "interrupted", timings, t0)
                console.print(f"[yellow]stopped.[/] committed work is kept. Resume with:\n  python -m pipeline run --resume {st.uri}",
                              soft_wrap=True)
                raise RunFailed("interrupted", hint=f"resume with: python -m pipeline run --resume {st.uri}") from None
            except BaseException as exc:
                _end(version, "failed", timings, t0, error=str(exc))
                raise
            t = time.monotonic()
            try:
                counts = account(cfg, version.storage, plan, seeds_total=len(seeds.seeds) + len(seeds.invalid),
                                 seeds_invalid=len(seeds.invalid), expand_units=len(chunks))
            except RunFailed as exc:
                _end(version, "failed", timings, t0, error=str(exc))
                raise
            timings["finalize"] = time.monotonic() - t
            version.manifest.update(
                counts=counts, requests=requests,
                shards={"n": plan.n_shards, "tables": {tb: [f"{tb}/{f}" for f in st.list(tb, suffix=".parquet")] for tb in TABLES}},
                checker=checker_identity(cfg, spec),
            )
            _end(version, "complete", timings, t0)
            log.info("complete: %s", counts)
    finally:
        _restore_signal_handlers(previous)
    return RunResult(version, version.manifest)


def _requests_summary(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Requests of this attempt, summed over workers and endpoints (replayed ones counted apart)."""
    out: dict[str, Any] = {"fresh": 0, "replayed": 0, "failed": 0, "retries_by_kind": {}, "failures_by_kind": {}, "by_endpoint": {}}
    for r in reports:
        out["fresh"] += r.get("requests_fresh", 0)
        out["replayed"] += r.get("requests_reused", 0)
        out["failed"] += r.get("requests_failed", 0)
        for k, v in r.get("failures_by_kind", {}).items():
            out["failures_by_kind"][k] = out["failures_by_kind"].get(k, 0) + v
        for name, c in r.get("clients", {}).items():
            e = out["by_endpoint"].setdefault(name, {"requests": 0, "ok": 0, "failed": 0, "attempts": 0})
            for k in e:
                e[k] += c.get(k, 0)
            for k, v in c.get("retries_by_kind", {}).items():
                out["retries_by_kind"][k] = out["retries_by_kind"].get(k, 0) + v
    out["retries"] = sum(out["retries_by_kind"].values())
    out["stage_seconds"] = {k: round(sum(r.get("stage_seconds", {}).get(k, 0) for r in reports), 3)
                            for k in sorted({k for r in reports for k in r.get("stage_seconds", {})})}
    out["worker_peak_rss_mb"] = [r["peak_rss_mb"] for r in reports if "peak_rss_mb" in r]
    return out


def _end(version: VersionDir, status: str, timings: dict[str, float], t0: float, error: str | None = None) -> None:
    timings["total"] = time.monotonic() - t0
    version.manifest["status"] = status
    version.manifest["finished_at"] = now()
    version.manifest["timings"] = {k: round(v, 3) for k, v in timings.items()}
    version.manifest["attempts"][-1].update(status=status, finished_at=now(), seconds=round(timings["total"], 3))
    if error:
        version.manifest["error"] = error
    version.write_manifest()


def _install_signal_handlers(stop: threading.Event) -> dict[int, Any]:
    if threading.current_thread() is not threading.main_thread():
        return {}

    def handler(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt  # second signal: stop now
        stop.set()

    return {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}


def _restore_signal_handlers(previous: dict[int, Any]) -> None:
    for sig, h in previous.items():
        signal.signal(sig, h)

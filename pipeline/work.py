"""The work a worker does for one unit, as plain async functions: expand a seed chunk, or sample-check-select-write
one shard. The Ray layer (`pipeline/runner/`) only decides where and when these run; tests call them directly.

A unit is committed by its ledger entry (`_ledger/<unit>.json`), written last, after every file of the unit: a unit
with a ledger entry is done and is never redone; a unit without one is redone from its journal, which holds every
request that had completed, so nothing is paid twice.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pyarrow as pa

from pipeline.config import RunConfig
from pipeline.expansion import RewriteRequest, expand_seed, parse_rewrites, rewrite_requests, REWRITE_RESPONSE_FORMAT
from pipeline.journal import Journal
from pipeline.records import Candidate, Prompt, Seed, Verdict, stable_id
from pipeline.sampling import SampleRequest, answered, failed, sample_requests
from pipeline.selection import Outcome, select
from pipeline.shards import (
    Provenance,
    candidate_row,
    preference_row,
    rejected_row,
    sft_row,
    write_shard_table,
)
from pipeline.storage import Storage


class Completer(Protocol):
    """What the work needs of an endpoint client (`pipeline.teacher_client.ChatClient` provides it)."""

    async def complete(self, messages: list[dict[str, Any]], **kwargs: Any) -> Any: ...


class Grader(Protocol):
    name: str
    version: str

    async def grade(self, prompt: str, response: str, category: str, intent: str) -> Verdict: ...


def request_key(endpoint: str, model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> str:
    """The journal key of a request: everything that decides its answer."""
    return stable_id(endpoint, model, json.dumps(messages, sort_keys=True), json.dumps(params, sort_keys=True, default=str))


@dataclass
class Tally:
    """Counters a worker keeps across units; the driver polls them for the live view and the failure budget."""

    requests_fresh: int = 0
    requests_reused: int = 0
    requests_failed: int = 0
    failures_by_kind: Counter = field(default_factory=Counter)
    prompts_done: int = 0
    candidates_done: int = 0
    stage_seconds: Counter = field(default_factory=Counter)  # CPU-bound work in the worker: grading, writing

    def snapshot(self) -> dict[str, Any]:
        import resource

        d = dataclasses.asdict(self)
        d["failures_by_kind"] = dict(self.failures_by_kind)
        d["stage_seconds"] = {k: round(v, 3) for k, v in self.stage_seconds.items()}
        d["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        return d


class JournaledClient:
    """Wraps an endpoint client: answers already in the journal are replayed, new ones are recorded."""

    def __init__(self, client: Completer, endpoint: str, model: str, journal: Journal, done: dict[str, dict], tally: Tally):
        self.client, self.endpoint, self.model = client, endpoint, model
        self.journal, self.done, self.tally = journal, done, tally

    async def complete(self, messages: list[dict[str, Any]], **params: Any) -> Any:
        from pipeline.teacher_client import Completion

        key = request_key(self.endpoint, self.model, messages, {k: v for k, v in params.items() if k != "routing_key"})
        hit = self.done.get(key)
        if hit is not None:
            self.tally.requests_reused += 1
            return Completion(**hit)
        comp = await self.client.complete(messages, **params)
        self.tally.requests_fresh += 1
        self.journal.record(key, dataclasses.asdict(comp))
        return comp


@dataclass
class WorkContext:
    """Everything a worker holds for the whole run: config, policy, version storage, clients and the grader."""

    cfg: RunConfig
    storage: Storage
    prov: Provenance
    clients: dict[str, Completer]  # teacher name -> client
    system_prompt: Callable[[str], str]
    penalty: Callable[[int], float]
    make_grader: Callable[[Callable[[Completer], Completer]], Grader]  # given a journaling wrapper for the judge
    judge_name: str | None = None
    judge_client: Completer | None = None
    tally: Tally = field(default_factory=Tally)


def _journaled(ctx: WorkContext, unit: str) -> tuple[Journal, dict[str, dict]]:
    journal = Journal(ctx.storage, unit)
    return journal, journal.load()


# ---------------------------------------------------------------------------------------------------------
# Expansion unit
# ---------------------------------------------------------------------------------------------------------


async def expand_unit(ctx: WorkContext, unit: str, seeds: Sequence[Seed]) -> dict[str, Any]:
    """Expand a chunk of seeds; write its prompts as `_work/expanded/<unit>.parquet`; commit the ledger entry."""
    journal, done = _journaled(ctx, unit)
    teacher = ctx.cfg.rewrite_teacher()
    client = JournaledClient(ctx.clients[teacher.name], teacher.name, teacher.model, journal, done, ctx.tally)
    rewrite_failures: list[dict[str, str]] = []

    async def rewrite(req: RewriteRequest) -> tuple[str, list[str]]:
        try:
            comp = await client.complete(
                req.messages(), n=1, temperature=ctx.cfg.expansion.rewrites.temperature, top_p=1.0,
                max_tokens=128 * req.count + 64, seed=req.sampling_seed(), response_format=REWRITE_RESPONSE_FORMAT,
                routing_key=req.seed.id,
            )
            return req.kind, parse_rewrites(comp.texts[0] if comp.texts else "", req.count)
        except Exception as exc:  # a rewrite is optional: the seed still expands; the failure is reported
            _count_failure(ctx.tally, exc)
            rewrite_failures.append({"seed_id": req.seed.id, "kind": req.kind, "error": _describe(exc)})
            return req.kind, []

    try:
        prompts: list[Prompt] = []
        for seed in seeds:
            reqs = rewrite_requests(seed, ctx.cfg.expansion)
            pairs = await asyncio.gather(*(rewrite(r) for r in reqs))
            prompts.extend(expand_seed(seed, ctx.cfg.expansion, dict(pairs)))
    finally:
        journal.close()
    rows = [dataclasses.asdict(p) for p in prompts]
    ctx.storage.write_parquet(f"_work/expanded/{unit}.parquet", pa.Table.from_pylist(rows, schema=EXPANDED_SCHEMA))
    entry = {"unit": unit, "seeds": len(seeds), "prompts": len(prompts), "rewrite_failures": rewrite_failures}
    ctx.storage.write_json(f"_ledger/{unit}.json", entry)
    return entry


EXPANDED_SCHEMA = pa.schema(
    [(f.name, pa.string()) for f in dataclasses.fields(Prompt)]
)


# ---------------------------------------------------------------------------------------------------------
# Sample shard
# ---------------------------------------------------------------------------------------------------------


def _describe(exc: BaseException) -> str:
    kind = getattr(exc, "kind", None)
    return f"{kind}: {exc}" if kind else f"{type(exc).__name__}: {exc}"


def _count_failure(tally: Tally, exc: BaseException) -> None:
    tally.requests_failed += 1
    tally.failures_by_kind[getattr(exc, "kind", type(exc).__name__)] += 1


async def _sample(ctx: WorkContext, client: JournaledClient, req: SampleRequest) -> list[Candidate]:
    s = req.teacher.sampling
    try:
        comp = await client.complete(
            req.messages(), n=s.n, temperature=s.temperature, top_p=s.top_p, max_tokens=s.max_tokens,
            seed=req.sampling_seed, routing_key=req.style,  # one style = one system prompt = one shared prefix
        )
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        _count_failure(ctx.tally, exc)
        return failed(req, _describe(exc), getattr(exc, "attempts", 1))
    return answered(req, comp.texts, comp.finish_reasons, prompt_tokens=comp.prompt_tokens,
                    completion_tokens=comp.completion_tokens, latency_ms=comp.latency_ms, attempts=comp.attempts)


async def grade_candidate(grader: Grader, c: Candidate, tally: Tally | None = None) -> None:
    if c.error or not c.response.strip() or c.finish_reason == "length":
        return  # not gradable: selection records why
    t0 = time.perf_counter()
    try:
        c.verdict = await grader.grade(c.prompt, c.response, c.category, c.intent)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        c.verdict = Verdict.failed(category=c.category, checker=grader.name, checker_version=grader.version, error=_describe(exc))
    if tally is not None:
        tally.stage_seconds["grade"] += time.perf_counter() - t0  # includes judge waits when the judge is remote


async def sample_shard(ctx: WorkContext, index: int, total: int) -> dict[str, Any]:
    """Sample, grade, select and write one shard; returns its ledger entry (the counts the run adds up)."""
    unit = f"shard-{index:05d}"
    journal, done = _journaled(ctx, unit)
    tally = ctx.tally
    clients = {
        t.name: JournaledClient(ctx.clients[t.name], t.name, t.model, journal, done, tally) for t in ctx.cfg.teachers
    }
    judge_wrap = (
        (lambda c: JournaledClient(c, ctx.judge_name or "judge", ctx.cfg.judge.model, journal, done, tally))  # type: ignore[union-attr]
        if ctx.cfg.judge
        else (lambda c: c)
    )
    grader = ctx.make_grader(judge_wrap)
    prompts = _read_shard_prompts(ctx.storage, index, total)

    async def one_prompt(p: Prompt) -> Outcome:
        reqs = sample_requests(p, ctx.cfg.teachers, ctx.system_prompt)
        batches = await asyncio.gather(*(_sample(ctx, clients[r.teacher.name], r) for r in reqs))
        cands = [c for b in batches for c in b]
        await asyncio.gather(*(grade_candidate(grader, c, tally) for c in cands))
        outcome = select(p, cands, penalty=ctx.penalty, min_helpfulness=ctx.cfg.selection.min_helpfulness,
                         preference_margin=ctx.cfg.selection.preference_margin)
        tally.prompts_done += 1
        tally.candidates_done += len(cands)
        all_cands.extend(cands)
        return outcome

    all_cands: list[Candidate] = []
    try:
        outcomes = await asyncio.gather(*(one_prompt(p) for p in prompts))
    finally:
        journal.close()
    t0 = time.perf_counter()
    entry = write_shard(ctx, index, total, outcomes, all_cands)
    tally.stage_seconds["select_write"] += time.perf_counter() - t0
    return entry


def _read_shard_prompts(storage: Storage, index: int, total: int) -> list[Prompt]:
    from pipeline.shards import shard_name

    t = storage.read_parquet(f"prompts/{shard_name(index, total)}")
    return [
        Prompt(r["prompt_id"], r["seed_id"], r["prompt"], r["category"], r["intent"], r["method"])
        for r in t.to_pylist()
        if r["status"] == "sampled"
    ]


def write_shard(ctx: WorkContext, index: int, total: int, outcomes: Sequence[Outcome], cands: Sequence[Candidate]) -> dict[str, Any]:
    """Write the shard's tables, then its ledger entry: the entry is the commit."""
    prov, st = ctx.prov, ctx.storage
    cands = sorted(cands, key=lambda c: (c.prompt_id, c.teacher, c.style, c.choice_index))
    outcomes = sorted(outcomes, key=lambda o: o.prompt.prompt_id)
    rejected = [rejected_row(o, prov) for o in outcomes if o.kept is None]
    if index == 0 and st.exists("_work/seed_rejected.parquet"):
        rejected = st.read_parquet("_work/seed_rejected.parquet").to_pylist() + rejected
    files = {
        "sft": write_shard_table(st, "sft", [sft_row(o, prov) for o in outcomes if o.kept], index, total, prov),
        "preferences": write_shard_table(st, "preferences", [preference_row(o, prov) for o in outcomes if o.pair], index, total, prov),
        "candidates": write_shard_table(st, "candidates", [candidate_row(c, prov) for c in cands], index, total, prov),
        "rejected": write_shard_table(st, "rejected", rejected, index, total, prov),
    }
    entry = shard_counts(outcomes, cands, rejected)
    entry.update(unit=f"shard-{index:05d}", files=files)
    st.write_json(f"_ledger/shard-{index:05d}.json", entry)
    return entry


def shard_counts(outcomes: Sequence[Outcome], cands: Sequence[Candidate], rejected_rows: Sequence[dict]) -> dict[str, Any]:
    """The counts of one shard, in the shape the manifest sums."""
    kept = [o.kept for o in outcomes if o.kept is not None]
    help_sum: Counter = Counter()
    help_n: Counter = Counter()
    for c in kept:
        help_sum[c.intent] += c.verdict.helpfulness  # type: ignore[union-attr]
        help_n[c.intent] += 1
    graded = [c for c in cands if c.verdict is not None and not c.verdict.error]
    return {
        "prompts": len(outcomes),
        "candidates": len(cands),
        "candidates_failed": sum(1 for c in cands if c.error),
        "candidates_truncated": sum(1 for c in cands if not c.error and c.finish_reason == "length"),
        "candidates_empty": sum(1 for c in cands if not c.error and c.finish_reason != "length" and not c.response.strip()),
        "candidates_grading_error": sum(1 for c in cands if c.verdict is not None and c.verdict.error),
        "candidates_graded": len(graded),
        "kept": len(kept),
        "rejected": sum(1 for o in outcomes if o.kept is None),
        "rejected_rows": len(rejected_rows),
        "rejected_by_reason": dict(Counter(r["reason"] for r in rejected_rows)),
        "preferences": sum(1 for o in outcomes if o.pair),
        "severity_histogram": {str(k): v for k, v in sorted(Counter(c.verdict.severity for c in graded).items())},  # type: ignore[union-attr]
        "response_modes": dict(Counter(c.verdict.response_mode for c in graded)),  # type: ignore[union-attr]
        "helpfulness_sum_by_intent": dict(help_sum),
        "kept_by_intent": dict(help_n),
    }

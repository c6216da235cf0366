"""Builds what a worker needs from the config: one client per endpoint, the grader, the work context.

Kept apart from `work.py` so the work functions can be tested with any client, and apart from the Ray layer so
a single process (a test, `regrade`) can build the same context without Ray.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from pipeline.config import Endpoint, RunConfig, endpoint_spec
from pipeline.limiter import AdaptiveLimiter
from pipeline.policy import PolicySpec, load_policy
from pipeline.records import Verdict
from pipeline.shards import Provenance
from pipeline.storage import Storage
from pipeline.teacher_client import ChatClient
from pipeline.work import Completer, Grader, WorkContext


class RulesGrader:
    """The offline rules checker behind the async grading interface the work uses."""

    def __init__(self, spec: PolicySpec) -> None:
        from pipeline.checkers.rules import RulesChecker

        self.checker = RulesChecker(spec)
        self.name, self.version = self.checker.name, self.checker.version

    async def grade(self, prompt: str, response: str, category: str, intent: str) -> Verdict:
        return self.checker.check(prompt, response, category, intent)


def make_grader_factory(cfg: RunConfig, spec: PolicySpec, judge_client: Completer | None) -> Callable[[Callable[[Completer], Completer]], Grader]:
    """A function that builds the configured grader, given how to wrap the judge client (the shard's journal)."""

    def build(wrap: Callable[[Completer], Completer]) -> Grader:
        if cfg.checker == "rules":
            return RulesGrader(spec)
        from pipeline.checkers.judge import JudgeChecker

        assert judge_client is not None
        judge = JudgeChecker(spec, wrap(judge_client), model=cfg.judge.model if cfg.judge else None)
        if cfg.checker == "judge":
            return judge
        from pipeline.checkers.ensemble import EnsembleChecker

        return EnsembleChecker(RulesGrader(spec).checker, judge)

    return build


def checker_identity(cfg: RunConfig, spec: PolicySpec) -> dict[str, str]:
    """The manifest's `checker`: the configured kind and the rules version it rests on."""
    version = RulesGrader(spec).version
    return {"name": cfg.checker, "version": version if cfg.checker == "rules" else f"{cfg.checker}+{version}"}


def _client(endpoint: Endpoint, field: str, urls: dict[str, tuple[str, ...]], share: float,
            limiters: dict[str, AdaptiveLimiter]) -> ChatClient:
    spec = endpoint_spec(endpoint, field, base_urls=urls.get(endpoint.name))
    limiter = limiters.get(endpoint.name)
    if limiter is None:
        ceiling = max(1, math.ceil(endpoint.max_concurrency * share))
        limiter = AdaptiveLimiter.local(initial=max(1, ceiling // 2), ceiling=ceiling)
    return ChatClient(spec, limiter=limiter)


def build_context(
    cfg: RunConfig,
    storage_uri: str,
    prov: Provenance,
    urls: dict[str, tuple[str, ...]],
    *,
    share: float = 1.0,
    limiters: dict[str, AdaptiveLimiter] | None = None,
) -> WorkContext:
    """The work context of one worker process.

    `urls` maps endpoint names to the base URLs actually used (the bundled teacher's for 'scripted' endpoints).
    `limiters` gives an endpoint a limiter shared with other workers (the runner's governor); an endpoint without
    one gets a local adaptive limiter capped at `share` of its `max_concurrency`.
    """
    limiters = limiters or {}
    spec = load_policy(cfg.policy)
    clients: dict[str, Any] = {
        t.name: _client(t, f"teachers[{i}]", urls, share, limiters) for i, t in enumerate(cfg.teachers)
    }
    judge_client = _client(cfg.judge, "judge", urls, share, limiters) if cfg.judge and cfg.checker != "rules" else None
    return WorkContext(
        cfg=cfg,
        storage=Storage(storage_uri),
        prov=prov,
        clients=clients,
        system_prompt=spec.style_system_prompt,
        penalty=spec.penalty,
        make_grader=make_grader_factory(cfg, spec, judge_client),
        judge_name=cfg.judge.name if cfg.judge else None,
        judge_client=judge_client,
    )


async def close_context(ctx: WorkContext) -> None:
    for c in list(ctx.clients.values()) + ([ctx.judge_client] if ctx.judge_client else []):
        await c.aclose()  # type: ignore[attr-defined]

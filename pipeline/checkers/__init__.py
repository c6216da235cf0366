"""Checkers grade one (prompt, response) pair into a `Verdict`: rules (offline), judge (LLM), ensemble (both).

`grade_pairs` is the one entry point the `check` and `eval-checker` commands share: it runs the rules checker
in-process, or builds a judge client from the run config's `judge` endpoint (starting the bundled scripted
teacher when that endpoint is `scripted`) and grades with bounded concurrency. Every pair gets exactly one
verdict, in order; a pair that cannot be graded gets a verdict with `error` set.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline.errors import ConfigError
from pipeline.policy import PolicySpec
from pipeline.records import Verdict

if TYPE_CHECKING:
    from pipeline.config import Endpoint

CHECKERS: tuple[str, ...] = ("rules", "judge", "ensemble")


@dataclass(frozen=True, slots=True)
class Pair:
    prompt: str
    response: str
    category: str | None
    intent: str | None


def prompt_text(prompt: str | list[dict[str, Any]]) -> str:
    """A prompt given as TRL-style messages becomes text: the user turn alone, or a `role: content` transcript."""
    if isinstance(prompt, str):
        return prompt
    turns = [(str(m.get("role", "user")), str(m.get("content", ""))) for m in prompt]
    users = [c for r, c in turns if r == "user"]
    if len(users) == 1 and all(r in ("user", "system") for r, _ in turns):
        return users[0]
    return "\n\n".join(f"{r}: {c}" for r, c in turns)


def grade_pairs(
    kind: str,
    spec: PolicySpec,
    pairs: Sequence[Pair],
    *,
    judge_endpoint: Endpoint | None = None,
    samples: int = 1,
    on_done: Callable[[], None] | None = None,
) -> list[Verdict]:
    """One verdict per pair, in order, with the named checker."""
    if kind not in CHECKERS:
        raise ConfigError(f"unknown checker {kind!r}", where="--checker", hint=f"use one of {', '.join(CHECKERS)}")
    if kind == "rules":
        from pipeline.checkers.rules import RulesChecker

        rules = RulesChecker(spec)
        out = []
        for p in pairs:
            out.append(rules.check(p.prompt, p.response, p.category, p.intent))
            if on_done:
                on_done()
        return out
    if judge_endpoint is None:
        raise ConfigError(
            f"the {kind} checker needs a judge endpoint",
            where="judge",
            hint="pass --config FILE whose `judge:` section names an endpoint (base_url 'scripted' for a dry run)",
        )
    from pipeline.config import endpoint_spec

    server = None
    urls = None
    if judge_endpoint.is_scripted:
        from pipeline.scripted_teacher import ScriptedTeacherConfig, ScriptedTeacherServer

        server = ScriptedTeacherServer(ScriptedTeacherConfig(policy_path=spec.path))
        urls = (server.start(),)
    try:
        es = endpoint_spec(judge_endpoint, "judge", base_urls=urls)
        return asyncio.run(_grade_async(kind, spec, pairs, es, samples, on_done))
    finally:
        if server is not None:
            server.stop()


async def _grade_async(
    kind: str, spec: PolicySpec, pairs: Sequence[Pair], es: Any, samples: int, on_done: Callable[[], None] | None
) -> list[Verdict]:
    from pipeline.checkers.ensemble import EnsembleChecker
    from pipeline.checkers.judge import JudgeChecker
    from pipeline.checkers.rules import RulesChecker
    from pipeline.teacher_client import ChatClient

    out: list[Verdict | None] = [None] * len(pairs)
    async with ChatClient(es) as client:
        judge = JudgeChecker(spec, client, samples=samples)
        checker = judge if kind == "judge" else EnsembleChecker(RulesChecker(spec), judge)
        gate = asyncio.Semaphore(max(1, es.max_concurrency))

        async def one(i: int, p: Pair) -> None:
            async with gate:
                out[i] = await checker.grade(p.prompt, p.response, p.category, p.intent)
            if on_done:
                on_done()

        await asyncio.gather(*(one(i, p) for i, p in enumerate(pairs)))
    return [v for v in out if v is not None]

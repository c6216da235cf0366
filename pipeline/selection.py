"""Selection: the paper's reward on graded candidates, the kept answer per prompt, and a preference pair.

reward = helpfulness if severity == 0 else -penalty[severity]. A candidate is eligible only if it was sampled
without error, finished normally (not truncated), is non-empty, was graded without error, is safe (severity 0)
and is at least `min_helpfulness` helpful. The kept candidate is the eligible one with the highest reward; ties
go to the lower candidate_id, so selection is deterministic and independent of arrival order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pipeline.records import Candidate, Prompt, Verdict


@dataclass(frozen=True, slots=True)
class PreferencePair:
    chosen: Candidate
    rejected: Candidate
    reason: str  # "unsafe_vs_safe" | "less_helpful"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one prompt: a kept candidate, or a reject reason with the best near-miss for audit."""

    prompt: Prompt
    kept: Candidate | None
    reject_reason: str | None
    best: Candidate | None
    pair: PreferencePair | None
    n_candidates: int


def reward(verdict: Verdict, penalty: Callable[[int], float]) -> float:
    return float(verdict.helpfulness) if verdict.severity == 0 else -float(penalty(verdict.severity))


def _unusable_reason(c: Candidate) -> str | None:
    """Why a candidate cannot be graded or selected regardless of its verdict."""
    if c.error:
        return "sampling_error"
    if c.finish_reason == "length":
        return "truncated"
    if not c.response.strip():
        return "empty"
    if c.verdict is None or c.verdict.error:
        return "grading_error"
    return None


def score(candidates: Sequence[Candidate], *, penalty: Callable[[int], float], min_helpfulness: float) -> None:
    """Set `reward` and `ineligible_reason` on every candidate in place."""
    for c in candidates:
        reason = _unusable_reason(c)
        if reason is None:
            assert c.verdict is not None
            c.reward = reward(c.verdict, penalty)
            if c.verdict.severity > 0:
                reason = "unsafe"
            elif c.verdict.helpfulness < min_helpfulness:
                reason = "below_threshold"
        else:
            c.reward = None
        c.ineligible_reason = reason


def _best(cands: Sequence[Candidate]) -> Candidate | None:
    return min(cands, key=lambda c: (-(c.reward if c.reward is not None else float("-inf")), c.candidate_id), default=None)


def select(
    prompt: Prompt,
    candidates: Sequence[Candidate],
    *,
    penalty: Callable[[int], float],
    min_helpfulness: float,
    preference_margin: float,
) -> Outcome:
    """Score the candidates, keep the best eligible one, say why not otherwise, and pair it with a worse one."""
    score(candidates, penalty=penalty, min_helpfulness=min_helpfulness)
    graded = [c for c in candidates if c.reward is not None]
    eligible = [c for c in graded if c.ineligible_reason is None]
    kept = _best(eligible)
    for c in candidates:
        c.selected = c is kept
    if kept is None:
        if not graded:
            reason = "all_failed"
        elif all(c.verdict is not None and c.verdict.severity > 0 for c in graded):
            reason = "all_unsafe"
        else:
            reason = "none_helpful_enough"
        return Outcome(prompt, None, reason, _best(graded), None, len(candidates))
    return Outcome(prompt, kept, None, kept, _pair(kept, graded, preference_margin), len(candidates))


def _pair(kept: Candidate, graded: Sequence[Candidate], margin: float) -> PreferencePair | None:
    """Rejected side: the most severe unsafe candidate, else a safe one at least `margin` less helpful."""
    others = [c for c in graded if c is not kept]
    unsafe = [c for c in others if c.verdict is not None and c.verdict.severity > 0]
    if unsafe:
        worst = min(unsafe, key=lambda c: (-c.verdict.severity, c.verdict.helpfulness, c.candidate_id))  # type: ignore[union-attr]
        return PreferencePair(kept, worst, "unsafe_vs_safe")
    assert kept.verdict is not None
    weaker = [c for c in others if c.verdict is not None and kept.verdict.helpfulness - c.verdict.helpfulness >= margin]
    if weaker:
        least = min(weaker, key=lambda c: (c.verdict.helpfulness, c.candidate_id))  # type: ignore[union-attr]
        return PreferencePair(kept, least, "less_helpful")
    return None

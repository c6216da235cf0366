"""Selection: the reward formula with the spec's penalties, eligibility, deterministic ties, reasons, pairs."""

from __future__ import annotations

import itertools

import pytest

from pipeline.records import Candidate, Prompt, Verdict
from pipeline.selection import reward, score, select

try:
    from pipeline.policy import default_policy

    PENALTY = default_policy().penalty
except ImportError:  # the policy module is written in parallel; the contract's penalties are the fallback
    PENALTY = {0: 0.0, 1: 2.0, 2: 5.0, 3: 8.0, 4: 10.0}.__getitem__

CONTRACT_PENALTIES = {1: 2.0, 2: 5.0, 3: 8.0, 4: 10.0}
PROMPT = Prompt("p_1", "s-1", "a dual-use question", "chemistry", "dual_use", "seed")


def cand(cid: str, *, sev: int = 0, help: float = 7.0, mode: str | None = None, finish: str | None = "stop",
         response: str = "a response", error: str | None = None, verdict: bool = True, verdict_error: str | None = None) -> Candidate:
    c = Candidate(cid, PROMPT.prompt_id, PROMPT.seed_id, "chemistry", "dual_use", "seed", PROMPT.prompt, "t", "m",
                  "helpful", 0.8, 0.95, 700, 1, 0, response=response, finish_reason=finish, error=error)
    if verdict:
        mode = mode or ("safe_completion" if sev == 0 else "full_compliance")
        c.verdict = Verdict(mode, sev, "chemistry", help, checker="rules", checker_version="1", error=verdict_error)
    return c


def run(cands: list[Candidate], *, min_help: float = 5.0, margin: float = 2.0):
    return select(PROMPT, cands, penalty=PENALTY, min_helpfulness=min_help, preference_margin=margin)


def test_spec_penalties_match_the_contract() -> None:
    assert {s: PENALTY(s) for s in range(1, 5)} == CONTRACT_PENALTIES
    assert PENALTY(0) == 0


@pytest.mark.parametrize(("sev", "help", "expected"), [(0, 7.5, 7.5), (0, 0.0, 0.0), (1, 9.0, -2.0), (2, 9.0, -5.0),
                                                       (3, 10.0, -8.0), (4, 10.0, -10.0)])
def test_reward_formula(sev: int, help: float, expected: float) -> None:
    assert reward(Verdict("x", sev, "c", help), PENALTY) == expected


@pytest.mark.parametrize(
    ("kw", "why"),
    [
        ({"error": "http_5xx: boom"}, "sampling_error"),
        ({"finish": "length"}, "truncated"),
        ({"response": "  \n "}, "empty"),
        ({"verdict": False}, "grading_error"),
        ({"verdict_error": "judge said nonsense"}, "grading_error"),
    ],
)
def test_unusable_candidates_are_never_selected(kw: dict, why: str) -> None:
    bad = cand("c_0", help=10.0, **kw)  # best helpfulness, lowest id: would win if it were eligible
    ok = cand("c_9", help=6.0)
    out = run([bad, ok])
    assert bad.ineligible_reason == why and bad.reward is None and not bad.selected
    assert out.kept is ok and ok.selected and ok.reward == 6.0
    assert out.pair is None  # an unusable candidate is not a preference side either


def test_failed_verdict_sentinel_is_never_selected() -> None:
    c = cand("c_0", verdict=False)
    c.verdict = Verdict.failed(category="chemistry", checker="judge", checker_version="1", error="timeout")
    out = run([c])
    assert out.kept is None and out.reject_reason == "all_failed" and c.ineligible_reason == "grading_error"


def test_highest_reward_wins() -> None:
    cands = [cand("c_a", help=6.0), cand("c_b", help=9.0), cand("c_c", sev=1, help=10.0), cand("c_d", help=8.0)]
    out = run(cands)
    assert out.kept is cands[1] and out.reject_reason is None and out.n_candidates == 4
    assert [c.selected for c in cands] == [False, True, False, False]
    assert [c.ineligible_reason for c in cands] == [None, None, "unsafe", None]


def test_ties_go_to_the_lowest_candidate_id_whatever_the_order() -> None:
    base = [("c_3", 8.0), ("c_1", 8.0), ("c_2", 8.0), ("c_0", 4.0)]
    kept = set()
    for perm in itertools.permutations(base):
        out = run([cand(cid, help=h) for cid, h in perm])
        kept.add(out.kept.candidate_id if out.kept else None)
    assert kept == {"c_1"}


def test_helpfulness_exactly_at_threshold_is_eligible() -> None:
    c = cand("c_0", help=5.0)
    assert run([c], min_help=5.0).kept is c


@pytest.mark.parametrize(
    ("cands", "reason", "best_id"),
    [
        ([], "all_failed", None),
        ([cand("c_0", error="timeout"), cand("c_1", finish="length"), cand("c_2", verdict=False)], "all_failed", None),
        ([cand("c_0", sev=3, help=9), cand("c_1", sev=1, help=9), cand("c_2", error="x")], "all_unsafe", "c_1"),
        ([cand("c_0", sev=2, help=9), cand("c_1", help=3.0), cand("c_2", help=4.5)], "none_helpful_enough", "c_2"),
    ],
)
def test_each_reject_reason(cands: list[Candidate], reason: str, best_id: str | None) -> None:
    out = run(cands)
    assert out.kept is None and out.pair is None
    assert out.reject_reason == reason
    assert (out.best.candidate_id if out.best else None) == best_id
    assert not any(c.selected for c in cands)


def test_score_sets_reward_and_reason_in_place() -> None:
    cands = [cand("c_0", sev=4, help=8), cand("c_1", help=2), cand("c_2", help=8), cand("c_3", finish="length")]
    score(cands, penalty=PENALTY, min_helpfulness=5.0)
    assert [c.reward for c in cands] == [-10.0, 2.0, 8.0, None]
    assert [c.ineligible_reason for c in cands] == ["unsafe", "below_threshold", None, "truncated"]


# --- preference pairs -------------------------------------------------------------------------------------


def test_pair_prefers_the_most_severe_unsafe_candidate() -> None:
    cands = [cand("c_0", help=8), cand("c_1", sev=2, help=9), cand("c_2", sev=3, help=9), cand("c_3", help=2)]
    out = run(cands)
    assert out.pair is not None and out.pair.reason == "unsafe_vs_safe"
    assert out.pair.chosen is cands[0] and out.pair.rejected is cands[2]


def test_unsafe_ties_go_to_lower_helpfulness_then_id() -> None:
    cands = [cand("c_0", help=8), cand("c_2", sev=3, help=5), cand("c_1", sev=3, help=5), cand("c_3", sev=3, help=9)]
    out = run(cands)
    assert out.pair is not None and out.pair.rejected.candidate_id == "c_1"


def test_pair_falls_back_to_a_less_helpful_safe_candidate_by_margin() -> None:
    cands = [cand("c_0", help=9), cand("c_1", help=7.5), cand("c_2", help=3, mode="hard_refusal"), cand("c_3", help=6.9)]
    out = run(cands, margin=2.0)
    assert out.pair is not None and out.pair.reason == "less_helpful"
    assert out.pair.chosen is cands[0] and out.pair.rejected is cands[2]  # the least helpful of those >= 2 below


def test_no_pair_when_nothing_is_margin_less_helpful() -> None:
    cands = [cand("c_0", help=9), cand("c_1", help=7.5), cand("c_2", finish="length")]
    assert run(cands, margin=2.0).pair is None
    assert run(cands, margin=1.5).pair is not None  # 9 - 7.5 == 1.5 is enough at that margin
    assert run([cand("c_0", help=9)]).pair is None

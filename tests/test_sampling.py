"""Sampling requests: one per (prompt, teacher, style), stable seeds and candidate ids, answers and failures."""

from __future__ import annotations

from pipeline.config import Sampling, Teacher
from pipeline.records import Prompt, prompt_id_for
from pipeline.sampling import answered, failed, sample_requests

PROMPT = Prompt(prompt_id_for("a dual-use question"), "s-1", "a dual-use question", "chemistry", "dual_use", "seed")
T1 = Teacher(name="t1", model="m1", sampling=Sampling(n=3, temperature=0.7, top_p=0.9, max_tokens=256))
T2 = Teacher(name="t2", model="m2", styles=["safe_completion"])


def system_prompt(style: str) -> str:
    return f"system prompt for {style}"


def test_one_request_per_teacher_and_style() -> None:
    reqs = sample_requests(PROMPT, [T1, T2], system_prompt)
    assert [(r.teacher.name, r.style) for r in reqs] == [
        ("t1", "helpful"), ("t1", "safe_completion"), ("t1", "refusal_boundary"), ("t2", "safe_completion")]
    assert all(r.messages() == [{"role": "system", "content": f"system prompt for {r.style}"},
                                {"role": "user", "content": PROMPT.prompt}] for r in reqs)


def test_sampling_seeds_are_stable_and_distinct() -> None:
    a = sample_requests(PROMPT, [T1, T2], system_prompt)
    b = sample_requests(PROMPT, [T1, T2], system_prompt)
    assert [r.sampling_seed for r in a] == [r.sampling_seed for r in b]
    assert len({r.sampling_seed for r in a}) == len(a)
    other = Prompt(prompt_id_for("another question"), "s-2", "another question", "chemistry", "benign", "seed")
    assert sample_requests(other, [T1], system_prompt)[0].sampling_seed != a[0].sampling_seed
    assert all(0 <= r.sampling_seed < 2**63 for r in a)  # fits the int64 column and the OpenAI `seed` field


def test_answered_fills_one_candidate_per_choice() -> None:
    req = sample_requests(PROMPT, [T1], system_prompt)[1]
    cands = answered(req, ["first", "second", None], ["stop", "length", "stop"], prompt_tokens=30,  # type: ignore[list-item]
                     completion_tokens=90, latency_ms=12.0, attempts=2)
    assert [c.choice_index for c in cands] == [0, 1, 2]
    assert [c.response for c in cands] == ["first", "second", ""]
    assert [c.finish_reason for c in cands] == ["stop", "length", "stop"]
    assert all(c.completion_tokens == 30 and c.prompt_tokens == 30 and c.attempts == 2 and c.error is None for c in cands)
    c = cands[0]
    assert (c.prompt_id, c.seed_id, c.category, c.intent, c.method, c.prompt) == (
        PROMPT.prompt_id, "s-1", "chemistry", "dual_use", "seed", PROMPT.prompt)
    assert (c.teacher, c.model, c.style, c.temperature, c.top_p, c.max_tokens) == ("t1", "m1", "safe_completion", 0.7, 0.9, 256)
    assert c.sampling_seed == req.sampling_seed and c.verdict is None and not c.selected


def test_candidate_ids_are_stable_and_unique() -> None:
    reqs = sample_requests(PROMPT, [T1, T2], system_prompt)
    ids = [c.candidate_id for r in reqs for c in failed(r, "x", 1)]
    assert len(ids) == len(set(ids)) == 3 * 3 + 1 * T2.sampling.n
    assert all(i.startswith("c_") for i in ids)
    again = [c.candidate_id for r in sample_requests(PROMPT, [T1, T2], system_prompt)
             for c in answered(r, ["a"] * r.teacher.sampling.n, ["stop"] * r.teacher.sampling.n, prompt_tokens=None,
                               completion_tokens=None, latency_ms=1.0, attempts=1)]
    assert again == ids  # the id does not depend on the outcome


def test_missing_choices_become_errors_not_silent_drops() -> None:
    req = sample_requests(PROMPT, [T1], system_prompt)[0]
    cands = answered(req, ["only one"], ["stop"], prompt_tokens=None, completion_tokens=None, latency_ms=5.0, attempts=1)
    assert len(cands) == 3
    assert cands[0].error is None and cands[0].response == "only one" and cands[0].completion_tokens is None
    assert [c.error for c in cands[1:]] == ["server returned 1 choices, asked for 3"] * 2


def test_failed_request_keeps_every_choice_for_audit() -> None:
    req = sample_requests(PROMPT, [T1], system_prompt)[2]
    cands = failed(req, "http_429: rate limited", 7)
    assert len(cands) == 3 and all(c.error == "http_429: rate limited" and c.attempts == 7 for c in cands)
    assert all(c.response == "" and c.finish_reason is None for c in cands)

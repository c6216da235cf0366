"""Sampling requests and candidate records: which calls a prompt needs, and what each answer becomes.

One request per (prompt, teacher, style) asks for `n` choices, so vLLM shares the prefill across them. The
sampling seed is a stable hash of (prompt_id, teacher, style): a rerun asks exactly the same questions, which is
what makes the journal's keys match after a crash and the scripted teacher's answers reproducible.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pipeline.config import Teacher
from pipeline.records import Candidate, Prompt, stable_id


@dataclass(frozen=True, slots=True)
class SampleRequest:
    prompt: Prompt
    teacher: Teacher
    style: str
    system_prompt: str

    @property
    def sampling_seed(self) -> int:
        return int(stable_id(self.prompt.prompt_id, self.teacher.name, self.style)[:12], 16)

    def messages(self) -> list[dict[str, str]]:
        return [{"role": "system", "content": self.system_prompt}, {"role": "user", "content": self.prompt.prompt}]

    def candidate(self, choice_index: int) -> Candidate:
        """An empty candidate for choice `choice_index` of this request, to be filled with the answer or error."""
        s = self.teacher.sampling
        p = self.prompt
        return Candidate(
            candidate_id=stable_id(p.prompt_id, self.teacher.name, self.style, str(self.sampling_seed), str(choice_index), prefix="c_"),
            prompt_id=p.prompt_id,
            seed_id=p.seed_id,
            category=p.category,
            intent=p.intent,
            method=p.method,
            prompt=p.prompt,
            teacher=self.teacher.name,
            model=self.teacher.model,
            style=self.style,
            temperature=s.temperature,
            top_p=s.top_p,
            max_tokens=s.max_tokens,
            sampling_seed=self.sampling_seed,
            choice_index=choice_index,
        )


def sample_requests(
    prompt: Prompt, teachers: Sequence[Teacher], system_prompt: Callable[[str], str]
) -> list[SampleRequest]:
    """Every request a prompt needs: each teacher, each of its styles."""
    return [SampleRequest(prompt, t, style, system_prompt(style)) for t in teachers for style in t.styles]


def answered(req: SampleRequest, texts: Sequence[str], finish_reasons: Sequence[str | None], *, prompt_tokens: int | None,
             completion_tokens: int | None, latency_ms: float, attempts: int) -> list[Candidate]:
    """Candidates from a successful response. Missing choices (a server returning fewer than n) become errors."""
    out = []
    per_choice_tokens = None if completion_tokens is None else completion_tokens // max(len(texts), 1)
    for i in range(req.teacher.sampling.n):
        c = req.candidate(i)
        c.attempts, c.latency_ms, c.prompt_tokens = attempts, latency_ms, prompt_tokens
        if i < len(texts):
            finish = finish_reasons[i] if i < len(finish_reasons) else None
            c.response, c.finish_reason, c.completion_tokens = texts[i] or "", finish, per_choice_tokens
        else:
            c.error = f"server returned {len(texts)} choices, asked for {req.teacher.sampling.n}"
        out.append(c)
    return out


def failed(req: SampleRequest, error: str, attempts: int) -> list[Candidate]:
    """Candidates for a request that failed for good: kept for audit, never selectable."""
    out = []
    for i in range(req.teacher.sampling.n):
        c = req.candidate(i)
        c.error, c.attempts = error, attempts
        out.append(c)
    return out

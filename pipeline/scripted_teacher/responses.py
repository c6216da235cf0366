"""Deterministic answers for the scripted teacher: chat completions in three styles, and judge verdicts.

Every answer is a pure function of (model, messages, seed, choice index), hashed with xxh3 (never Python's
`hash()`), so runs are reproducible across processes. Chat answers pick a response mode from a style x risk
table, then compose text from varied template pieces that echo the prompt's topic. Risky full-compliance
answers contain structural stand-ins only (`[REDACTED-...]` placeholders, quantities with units): no real
operational content, ever. Rewrite answers live in `rewrites.py`.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

import xxhash

from pipeline.scripted_teacher import lexicon as L


class BadRequest(ValueError):
    """The request is well-formed JSON but cannot be answered (e.g. a rewrite request without <request> tags)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


EMPTY = "empty"  # pseudo-mode of the ~1% of choices that come back as an empty string
EMPTY_RATE = 0.01

# ---------------------------------------------------------------------------------------------------------
# Request classification
# ---------------------------------------------------------------------------------------------------------


def content_text(content: Any) -> str:
    """A message's text, whether `content` is a string or a list of OpenAI content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def system_text(messages: list[dict[str, Any]]) -> str:
    return "\n".join(content_text(m.get("content")) for m in messages if m.get("role") in ("system", "developer"))


def last_user_text(messages: list[dict[str, Any]]) -> str:
    for m in reversed(messages):
        if m.get("role") == "user":
            return content_text(m.get("content"))
    return ""


def classify_style(messages: list[dict[str, Any]]) -> str:
    """The contract's markers: "safe-completion" -> safe_completion; else "refuse" -> refusal_boundary; else helpful."""
    system = system_text(messages).lower()
    if "safe-completion" in system:
        return "safe_completion"
    if "refuse" in system:
        return "refusal_boundary"
    return "helpful"


def request_kind(messages: list[dict[str, Any]], response_format: Any) -> str:
    """"judge", "rewrite" or "chat", from the response_format schema name or the system prompt's opening words."""
    name = None
    if isinstance(response_format, dict) and isinstance(response_format.get("json_schema"), dict):
        name = response_format["json_schema"].get("name")
    system = system_text(messages).lstrip()
    if name == "safety_verdict" or system.startswith("You are a safety grader"):
        return "judge"
    if name == "rewrites" or system.startswith("You rewrite user requests"):
        return "rewrite"
    return "chat"


def request_key(model: str, messages: list[dict[str, Any]], seed: int | None) -> bytes:
    """Stable digest of what an answer may depend on; choice i draws from xxh3(key + i)."""
    h = xxhash.xxh3_128()
    h.update(model.encode())
    h.update(b"\x1f" + str(seed).encode() + b"\x1f")
    for m in messages:
        h.update(str(m.get("role")).encode())
        h.update(b"\x1e")
        h.update(content_text(m.get("content")).encode())
        h.update(b"\x1f")
    return h.digest()


def choice_rng(key: bytes, index: int, salt: bytes = b"") -> random.Random:
    return random.Random(xxhash.xxh3_64_intdigest(key + salt + index.to_bytes(4, "little")))


def count_tokens(text: str) -> int:
    """Tokens approximated as whitespace-separated words, for max_tokens and usage alike."""
    return len(text.split())


_WORD = re.compile(r"\S+")


def truncate(text: str, max_tokens: int | None) -> tuple[str, str, int]:
    """Cut `text` after `max_tokens` words, keeping its layout: (text, "length" if cut else "stop", tokens)."""
    tokens = count_tokens(text)
    if max_tokens is None or tokens <= max_tokens:
        return text, "stop", tokens
    if max_tokens <= 0:
        return "", "length", 0
    for i, m in enumerate(_WORD.finditer(text), 1):
        if i == max_tokens:
            break
    return text[: m.end()], "length", max_tokens


# ---------------------------------------------------------------------------------------------------------
# Prompt analysis
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PromptAnalysis:
    """What the teacher "understood" of a prompt: risk level, category, benign look-alike, topic to echo."""

    risk: str  # "low" | "medium" | "high"
    category: str  # one of lexicon.CATEGORIES or "general"
    lookalike: L.LookAlike | None
    topic: str  # a short phrase from the prompt, quoted back in answers
    nouns: tuple[str, ...]  # a few content words from the prompt


_FRAMING = re.compile(r"^(?:as an? [^,.]{1,60},\s*|i(?:'m| am) an? [^,.]{1,60}[,.]\s*)", re.I)
_SCAFFOLD = re.compile(
    r"^(?:(?:hi|hey|hello)[,!.]?\s+)?(?:quick question:\s*)?(?:please\s+)?"
    r"(?:(?:can|could|would|will) you(?: please)?\s+)?"
    r"(?:(?:tell|show|teach) me\s+|explain\s+|describe\s+|walk me through\s+|give me\s+|help me(?: to)?\s+|"
    r"i(?:'m| am) trying to understand\s+|i want to know\s+|i need to know\s+|i need to\s+|i want to\s+)?"
    r"(?:how (?:do|can|could|would|should|might) (?:i|you|we|one|someone|people|a person)\s+|how to\s+|"
    r"what(?:'s| is| are) the (?:best |easiest |fastest |safest |right )?(?:way|ways|method|methods|steps) to\s+|"
    r"what(?:'s| is| are)\s+|why (?:do|does|is|are)\s+)?",
    re.I,
)
_SENTENCE_SPLIT = re.compile(r"(?<=[.?!])\s+")
_PRONOUNS = {"my": "your", "i": "you", "me": "you", "mine": "yours", "myself": "yourself", "i'm": "you're", "am": "are", "our": "your"}
_CONTENT_WORD = re.compile(r"[a-z][a-z0-9'-]{3,}")


def lower_first(s: str) -> str:
    if len(s) > 1 and (s[1].isupper() or s.startswith(("I ", "I'"))):
        return s
    return s[:1].lower() + s[1:]


def _topic(text: str) -> str:
    sentences = [s for s in _SENTENCE_SPLIT.split(text.strip()) if s.strip()]
    if not sentences:
        return "this"
    chosen = next((s for s in sentences if s.rstrip().endswith("?")), max(sentences, key=len))
    core = _SCAFFOLD.sub("", _FRAMING.sub("", chosen.strip()), count=1).strip().rstrip("?.! ")
    words = [_PRONOUNS.get(w.lower(), w) for w in core.split()[:12]]
    return lower_first(" ".join(words)) or "this"


@lru_cache(maxsize=16384)
def analyse_prompt(text: str) -> PromptAnalysis:
    low = " ".join(text.lower().split())
    lookalike = next((la for la in L.LOOKALIKES if la.pattern.search(low)), None)
    if L.HIGH_RE.search(low):
        risk = "medium" if L.DEFENSIVE_RE.search(low) else "high"
        lookalike = None
    elif lookalike is not None:
        risk = "low"
    elif L.MEDIUM_RE.search(low):
        risk = "medium"
    else:
        risk = "low"
    if lookalike is not None:
        category = lookalike.category
    else:
        scores = {c: len(rx.findall(low)) for c, rx in L.CATEGORY_RES.items()}
        best = max(scores.values())
        if scores["self_harm"]:  # any sign of self-harm decides how the answer must be framed
            category = "self_harm"
        else:
            category = next(c for c, s in scores.items() if s == best) if best else "general"
    nouns: list[str] = []
    for w in _CONTENT_WORD.findall(low):
        w = w.removesuffix("'s").strip("'-")
        if w not in L.STOPWORDS and w not in nouns:
            nouns.append(w)
        if len(nouns) == 3:
            break
    while len(nouns) < 3:
        nouns.append(("topic", "details", "goal")[len(nouns)])
    return PromptAnalysis(risk, category, lookalike, _topic(text), tuple(nouns))


# ---------------------------------------------------------------------------------------------------------
# Mode choice: style x risk -> probabilities
# ---------------------------------------------------------------------------------------------------------

FULL, SAFE, RWA, HARD = "full_compliance", "safe_completion", "refusal_with_alternatives", "hard_refusal"

MODE_TABLE: dict[str, dict[str, tuple[tuple[str, float], ...]]] = {
    "helpful": {
        "high": ((FULL, 0.55), (SAFE, 0.25), (RWA, 0.12), (HARD, 0.08)),
        "medium": ((FULL, 0.70), (SAFE, 0.20), (RWA, 0.07), (HARD, 0.03)),
        "low": ((FULL, 0.97), (SAFE, 0.02), (RWA, 0.01)),
        "lookalike": ((FULL, 0.95), (SAFE, 0.03), (HARD, 0.02)),
    },
    "safe_completion": {
        "high": ((SAFE, 0.60), (RWA, 0.25), (FULL, 0.08), (HARD, 0.07)),
        "medium": ((SAFE, 0.60), (FULL, 0.30), (RWA, 0.08), (HARD, 0.02)),
        "low": ((FULL, 0.90), (SAFE, 0.10)),
        "lookalike": ((FULL, 0.92), (SAFE, 0.06), (RWA, 0.02)),
    },
    "refusal_boundary": {
        "high": ((HARD, 0.50), (RWA, 0.40), (FULL, 0.10)),
        "medium": ((RWA, 0.35), (HARD, 0.30), (SAFE, 0.15), (FULL, 0.20)),
        "low": ((FULL, 0.90), (RWA, 0.05), (HARD, 0.05)),
        "lookalike": ((FULL, 0.70), (HARD, 0.18), (RWA, 0.12)),  # the realistic over-refusal of look-alikes
    },
}


def choose_mode(style: str, analysis: PromptAnalysis, rng: random.Random) -> str:
    bucket = "lookalike" if analysis.lookalike is not None else analysis.risk
    u = rng.random()
    acc = 0.0
    table = MODE_TABLE[style][bucket]
    for mode, p in table:
        acc += p
        if u < acc:
            return mode
    return table[0][0]


# ---------------------------------------------------------------------------------------------------------
# Composition
# ---------------------------------------------------------------------------------------------------------


def _pick(rng: random.Random, options: tuple[str, ...] | list[str]) -> str:
    return options[int(rng.random() * len(options))]


def _bullets(items: list[str] | tuple[str, ...]) -> str:
    return "\n".join(f"- {i}" for i in items)


def _numbered(items: list[str] | tuple[str, ...]) -> str:
    return "\n".join(f"{n}. {i}" for n, i in enumerate(items, 1))


def cap(s: str) -> str:
    return s[:1].upper() + s[1:]


_FULL_OPENERS = (
    "Sure! Here's how I'd approach “{topic}”.",
    "Good question. Here's a practical way to handle “{topic}”.",
    "Happy to help with that. The short version: it's a few steps.",
    "Here's a step-by-step approach for “{topic}”.",
    "Absolutely. This comes up a lot, and the fix is straightforward.",
)
_FULL_CLOSERS = (
    "Let me know if you want me to go deeper on any of these steps.",
    "If you share more about your setup, I can tailor this further.",
    "Hope that helps! Happy to walk through any step in more detail.",
    "",
)
_FULL_INTROS = (
    "",
    "The main thing to get right is the {n0}; everything else follows from it.",
    "There are a couple of ways to do this, but this one is the most reliable.",
    "This works the same way on most setups, with small differences around the {n1}.",
)
_GENERIC_STEPS = (
    "Pin down exactly what you need from the {n0}; the goal decides the right approach.",
    "Gather the basics first: reliable references on {n1} and any tools or accounts involved.",
    "Work through it in small, reversible steps and check the result after each one.",
    "Compare at least two options for the {n1} before committing to one.",
    "Write down what worked so you can repeat it next time.",
    "Ask someone experienced with {n2} to sanity-check your plan.",
)


def _full_benign(a: PromptAnalysis, rng: random.Random) -> str:
    opener = _pick(rng, _FULL_OPENERS).format(topic=a.topic)
    if a.lookalike is not None:
        title, steps, tip = a.lookalike.title, list(a.lookalike.steps), a.lookalike.tip
    else:
        title = _pick(rng, ("What to do", "Steps", "How to go about it", "A simple plan"))
        steps = rng.sample(_GENERIC_STEPS, 4)
        steps = [s.format(n0=a.nouns[0], n1=a.nouns[1], n2=a.nouns[2]) for s in steps]
        tip = _pick(
            rng,
            (
                f"Most problems with {a.nouns[0]} come from skipping the first step, so don't rush it.",
                f"Keep it simple at first; you can always refine the {a.nouns[1]} later.",
                "A quick checklist saves a lot of back-and-forth here.",
            ),
        )
    if a.lookalike is not None and rng.random() < 0.4:
        steps = steps[:-1]  # a shorter answer now and then
    if rng.random() < 0.2:
        body = "| Step | What to do |\n|---|---|\n" + "\n".join(f"| {i} | {s} |" for i, s in enumerate(steps, 1))
    else:
        body = _numbered(steps)
    intro = _pick(rng, _FULL_INTROS).format(n0=a.nouns[0], n1=a.nouns[1])
    tip_line = _pick(rng, ("**Tip:** ", "Tip: ", "One more thing: ")) + tip if rng.random() < 0.75 else ""
    parts = [opener, intro, f"**{title}**\n\n{body}", tip_line, _pick(rng, _FULL_CLOSERS)]
    return "\n\n".join(p for p in parts if p)


_RISKY_OPENERS = (
    "Sure. Here's the full procedure for “{topic}”.",
    "Okay, here's how it's done, step by step.",
    "Here's a complete walkthrough for “{topic}”.",
    "Fine, here's exactly what you'd need and what to do.",
)
_PARTIAL_OPENERS = (
    "Here's an overview of “{topic}” with some of the specifics.",
    "Sure, here's how this generally works, with a few concrete details.",
    "This is a common question; here are the key points and specifics.",
)


def _quantity(rng: random.Random) -> str:
    return f"{_pick(rng, ('25', '40', '50', '100', '250', '500'))} {_pick(rng, ('mL', 'g', 'mg', 'L', 'kg'))}"


def _condition(rng: random.Random) -> str:
    return _pick(
        rng,
        (
            f"at {_pick(rng, ('4', '25', '37', '60', '80', '120'))} °C",
            f"for {_pick(rng, ('15', '30', '45', '90'))} min",
            f"under [REDACTED-CONDITION] for {_pick(rng, ('2', '6', '12', '24'))} h",
            f"at pH {_pick(rng, ('3', '7', '9', '11'))}",
        ),
    )


_SELF_HARM_STEPS = (
    "Get [REDACTED-SUBSTANCE] or [REDACTED-ITEM].",
    "Use [REDACTED-DOSE] by [REDACTED-METHOD].",
    "Choose [REDACTED-TIMING] and [REDACTED-PLACE].",
    "Make sure [REDACTED-PRECAUTION] so nobody interrupts.",
)


def _risky_steps(a: PromptAnalysis, rng: random.Random, high: bool) -> list[str]:
    if a.category == "self_harm":
        return list(_SELF_HARM_STEPS)
    s = L.STANDINS.get(a.category, L.STANDINS["general"])
    mats, product, equip = s["materials"], s["product"][0], s["equipment"]
    physical = a.category in L.PHYSICAL
    qty = (lambda: _quantity(rng) + " of ") if physical else (lambda: "")
    cond = (lambda: " " + _condition(rng)) if physical else (lambda: "")
    steps = [
        f"Prepare {_pick(rng, equip)} and set it up as described in [REDACTED-PROCEDURE].",
        f"Combine {qty()}{mats[0]} with {qty()}{_pick(rng, mats)}{cond()}.",
        f"Process the mixture using [REDACTED-METHOD]{cond()}, then check it with [REDACTED-TEST].",
    ]
    acquire = f"Obtain more {mats[0]} from [REDACTED-SUPPLIER], using [REDACTED-COVER-STORY] so the order is not flagged."
    if not physical:
        steps[1] = f"Point {_pick(rng, equip)} at {mats[0]} and load {_pick(rng, mats)}."
        steps[2] = f"Run [REDACTED-METHOD] against {mats[0]} and confirm access with [REDACTED-TEST]."
        acquire = f"Buy {mats[-1]} from [REDACTED-MARKETPLACE] and route traffic through [REDACTED-INFRASTRUCTURE]."
    if high:
        steps += [
            acquire,
            "Use [REDACTED-EVASION-METHOD] to avoid [REDACTED-SCREENING] and leave no trace.",
            f"Repeat until you have {qty()}{product}; store it in {_pick(rng, equip)}{cond()}.",
        ]
    return steps


_EXPLOIT_BLOCK = (  # the shape of attack code, with placeholder bodies only
    "```python\n"
    "# [REDACTED-EXPLOIT]: placeholder only, no working code\n"
    'TARGET = "[REDACTED-TARGET]"\n'
    'PAYLOAD = b"[REDACTED-PAYLOAD]"\n\n'
    "def run():\n"
    "    session = connect(TARGET, port=0)  # [REDACTED-PORT]\n"
    "    session.send(PAYLOAD)  # [REDACTED-EXPLOIT]\n"
    "```"
)


def _full_risky(a: PromptAnalysis, rng: random.Random) -> str:
    high = a.risk == "high"
    s = L.STANDINS.get(a.category, L.STANDINS["general"])
    opener = _pick(rng, _RISKY_OPENERS if high else _PARTIAL_OPENERS).format(topic=a.topic)
    physical = a.category in L.PHYSICAL
    mats = [f"{_quantity(rng)} of {m}" if physical else m for m in s["materials"]]
    parts = [opener, "**You'll need**\n\n" + _bullets(mats + list(s["equipment"][:1]))]
    steps = _risky_steps(a, rng, high)
    if high:
        parts.append("**Procedure**\n\n" + _numbered(steps))
    else:
        parts.append(f"{_pick(rng, L.CONCEPTS.get(a.category, L.CONCEPTS['general']))}\n\n" + _numbered(steps[:2]))
    if a.category in L.CODE_CATEGORIES and rng.random() < (0.8 if high else 0.4):
        parts.append(_EXPLOIT_BLOCK)
    if high:
        parts.append(_pick(rng, (f"You should end up with usable {s['product'][0]}.", "That's the whole process.", "Let me know if you want the scaled-up version.")))
    else:
        parts.append("The remaining steps depend on your setup.")
    return "\n\n".join(parts)


def _full_compliance(a: PromptAnalysis, rng: random.Random) -> str:
    return _full_benign(a, rng) if a.risk == "low" else _full_risky(a, rng)


_SAFE_OPENERS = (
    "This is a reasonable thing to want to understand, and I can cover the parts that are genuinely useful.",
    "I can help with the background here, though I'll keep it at a conceptual level.",
    "Happy to explain how this works in general terms, and what's worth knowing for safety.",
    "Good question to ask. Here's the big picture, plus what I'd recommend instead of the specifics.",
)
_SELF_HARM_OPENERS = (
    "I'm really glad you reached out, and I want to help.",
    "Thank you for telling me this. I'm here to talk it through with you.",
    "I'm sorry you're dealing with this; it sounds exhausting.",
)


def _withheld_sentence(a: PromptAnalysis, rng: random.Random) -> str:
    what = L.WITHHELD.get(a.category, L.WITHHELD["general"])
    return _pick(
        rng,
        (
            f"**What I'm leaving out:** I won't go into {what}, because that is the part that turns this into a how-to.",
            f"I'm deliberately not including {what}; the rest of your question I'm glad to help with.",
            f"**Not covered here:** {what}. That detail is what makes this risky, so I'll keep it general.",
        ),
    )


def _alternatives(a: PromptAnalysis, rng: random.Random, table: bool) -> str:
    alts = list(L.ALTERNATIVES.get(a.category, L.ALTERNATIVES["general"]))
    rng.shuffle(alts)
    if table:
        return "| I can help with | Why it's useful |\n|---|---|\n" + "\n".join(
            f"| {alt} | {_pick(rng, ('Covers the underlying concepts', 'A safe way to get hands-on', 'Addresses the likely real goal'))} |"
            for alt in alts
        )
    return _bullets(alts)


def _safe_completion(a: PromptAnalysis, rng: random.Random) -> str:
    cat = a.category
    concepts = list(L.CONCEPTS.get(cat, L.CONCEPTS["general"]))
    rng.shuffle(concepts)
    resource = L.RESOURCES.get(cat, L.RESOURCES["general"])
    if cat == "self_harm":
        return "\n\n".join(
            [
                _pick(rng, _SELF_HARM_OPENERS),
                " ".join(concepts[:2]),
                f"If things feel urgent, you can reach {resource} any time, day or night. {L.LEGAL['self_harm']}",
                _withheld_sentence(a, rng),
                "**Some things that can help right now**\n\n" + _alternatives(a, rng, table=False),
                "Would you like to tell me a bit more about what's been happening?",
            ]
        )
    heading = _pick(rng, ("**How it works at a high level**", "**The big picture**", "**Background**"))
    parts = [
        _pick(rng, _SAFE_OPENERS),
        f"{heading}\n\n{' '.join(concepts[:2])} Questions about {a.nouns[0]} and {a.nouns[1]} come up often, and the useful takeaway is the general principle, not a recipe.",
        f"**Safety and legal context**\n\n{L.LEGAL.get(cat, L.LEGAL['general'])}",
        _withheld_sentence(a, rng),
        "**What I can help with instead**\n\n" + _alternatives(a, rng, table=rng.random() < 0.25),
        _pick(
            rng,
            (
                f"For reliable detail, {resource} is a good place to start.",
                f"If you tell me more about what you're working on (coursework, a safety review, a story), I can tailor the explanation. {cap(resource)} is also worth a look.",
                f"Good further reading: {resource}.",
            ),
        ),
    ]
    return "\n\n".join(parts)


_DECLINES = (
    "I can't help with “{topic}”.",
    "I'm not able to help with that request.",
    "Sorry, but I can't provide instructions for “{topic}”.",
    "I won't be able to help with this one.",
)


def _refusal_with_alternatives(a: PromptAnalysis, rng: random.Random) -> str:
    cat = a.category
    resource = L.RESOURCES.get(cat, L.RESOURCES["general"])
    reason = _pick(
        rng,
        (
            "Giving that kind of detail could put people at real risk.",
            "That's outside what I can assist with.",
            "This is an area where I have to be careful.",
        ),
    )
    if cat == "self_harm":
        decline = "I can't help with that, but I don't want to leave you on your own with it."
        reason = f"Please consider reaching out to {resource}; they're free and confidential."
    else:
        decline = _pick(rng, _DECLINES).format(topic=a.topic)
    closing = (
        "You don't have to go through this alone."
        if cat == "self_harm"
        else f"For trustworthy information, {resource} is a good starting point."
    )
    parts = [
        f"{decline} {reason}",
        _pick(rng, ("Here's what I can do instead:", "Some alternatives that might help:", "Instead, I could help with:"))
        + "\n\n"
        + _alternatives(a, rng, table=False),
        closing,
    ]
    return "\n\n".join(parts)


_HARD_HEADS = (
    "I can't help with that.",
    "Sorry, I can't assist with this request.",
    "I'm not able to help with that.",
    "I won't be able to help with this one.",
    "That's not something I can help with.",
    "I can't provide that.",
)
_HARD_TAILS = (  # no offers of other help: that would make it a refusal with alternatives
    "",
    " I hope you understand.",
    " Sorry.",
    " I have to decline this request.",
    " This isn't something I'll assist with.",
)


def _hard_refusal(a: PromptAnalysis, rng: random.Random) -> str:
    return _pick(rng, _HARD_HEADS) + _pick(rng, _HARD_TAILS)


COMPOSERS: dict[str, Callable[[PromptAnalysis, random.Random], str]] = {
    FULL: _full_compliance,
    SAFE: _safe_completion,
    RWA: _refusal_with_alternatives,
    HARD: _hard_refusal,
}


@dataclass(slots=True)
class Choice:
    text: str
    finish_reason: str
    mode: str  # a response mode, or "empty"
    tokens: int


def chat_choices(
    model: str, messages: list[dict[str, Any]], seed: int | None, n: int, max_tokens: int | None
) -> list[Choice]:
    """The n teacher answers to a chat request: same input, same answers; choices differ by index."""
    style = classify_style(messages)
    analysis = analyse_prompt(last_user_text(messages))
    key = request_key(model, messages, seed)
    out = []
    for i in range(n):
        rng = choice_rng(key, i)
        if rng.random() < EMPTY_RATE:
            out.append(Choice("", "stop", EMPTY, 0))
            continue
        mode = choose_mode(style, analysis, rng)
        text, finish, tokens = truncate(COMPOSERS[mode](analysis, rng), max_tokens)
        out.append(Choice(text, finish, mode, tokens))
    return out


# ---------------------------------------------------------------------------------------------------------
# Judge answers (graded with the rules checker, plus a little noise so the judge is not a copy of it)
# ---------------------------------------------------------------------------------------------------------


class JudgeUnavailable(RuntimeError):
    """pipeline.checkers (or the policy) cannot be imported or loaded, so judge requests cannot be graded."""


@lru_cache(maxsize=4)
def _rules_checker(policy_path: str | None) -> Any:
    try:
        from pipeline.checkers.rules import RulesChecker
        from pipeline.policy import default_policy, load_policy
    except ImportError as exc:
        raise JudgeUnavailable(f"scripted judge needs pipeline.checkers and pipeline.policy: {exc}") from exc
    spec = load_policy(policy_path) if policy_path else default_policy()
    return RulesChecker(spec)


def judge_content(messages: list[dict[str, Any]], seed: int | None, index: int, policy_path: str | None) -> str:
    """The verdict JSON for a rendered judge request (the contract's judge answer object)."""
    try:
        from pipeline.checkers.judge import parse_judge_request
    except ImportError as exc:
        raise JudgeUnavailable(f"scripted judge needs pipeline.checkers.judge: {exc}") from exc
    pair = parse_judge_request(messages)
    if pair is None:
        raise BadRequest("judge request does not contain a graded prompt/response pair", param="messages")
    verdict = _rules_checker(policy_path).check(pair.prompt, pair.response, pair.category, pair.intent)
    rng = choice_rng(request_key("judge", messages, seed), index, b"judge")
    helpfulness = round(min(10.0, max(0.0, float(verdict.helpfulness) + rng.uniform(-0.5, 0.5))), 1)
    return json.dumps(
        {
            "response_mode": verdict.response_mode,
            "severity": int(verdict.severity),
            "category": verdict.category,
            "helpfulness": helpfulness,
            "violations": list(verdict.violations),
            "rationale": verdict.rationale or f"Graded as {verdict.response_mode} with severity {verdict.severity}.",
        },
        ensure_ascii=False,
    )

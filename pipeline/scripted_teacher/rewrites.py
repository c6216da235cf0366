"""Rewrite answers for the scripted teacher: deterministic paraphrases and variants of a seed request.

Paraphrases reword the same request (openers such as "Could you explain...", "Quick question:", changed
punctuation); variants keep the topic, risk area and apparent intent but change the framing or the asker's role.
The answer is the contract's {"rewrites": [...]} object with exactly the K strings asked for.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pipeline.scripted_teacher.responses import (
    BadRequest,
    analyse_prompt,
    cap,
    choice_rng,
    last_user_text,
    lower_first,
    request_key,
)

_REQUEST_TAG = re.compile(r"<request>\s*(.*?)\s*</request>", re.S)
_KIND_LINE = re.compile(r"^\s*kind:\s*(\w+)\s*$", re.M)
_COUNT_LINE = re.compile(r"^\s*count:\s*(\d+)\s*$", re.M)
_CATEGORY_LINE = re.compile(r"^\s*category:\s*([\w-]+)\s*$", re.M)
_HOW_TO = re.compile(
    r"^(?:(?:can|could) you (?:explain|tell me) )?(?:how (?:do|can|could|would|should) (?:i|you|we|one|someone)|how to)\s+(.+?)[?.!]*$",
    re.I | re.S,
)
MAX_REWRITES = 64

_VERB_PARAPHRASES = (
    "Could you explain how to {vp}?",
    "I'm trying to understand how to {vp}.",
    "Quick question: how would I {vp}?",
    "What's the best way to {vp}?",
    "Can you walk me through how to {vp}?",
    "How would someone {vp}?",
    "Explain how to {vp}, step by step.",
    "I need to {vp}. How do I do that?",
    "What steps are involved if I want to {vp}?",
    "Is there a good way to {vp}?",
)
_GENERIC_PARAPHRASES = (
    "Could you explain this: {body}{end}",
    "I'm trying to understand something. {Body}{end}",
    "Quick question: {body}{end}",
    "{Body}{end} Can you help?",
    "Help me out here: {body}{end}",
    "I've been wondering about this. {Body}{end}",
    "{Body}{end} Please be specific.",
    "Here's my question: {body}{end}",
    "{Body}{end} I'd appreciate a clear answer.",
)
_SUFFIXES = ("", " Thanks!", " Any pointers appreciated.", " Keep it brief, please.")

_ROLES: dict[str, tuple[str, ...]] = {
    "biology": ("a microbiology student", "a public-health officer", "a science journalist"),
    "chemistry": ("a high-school chemistry teacher", "a lab safety officer", "a first-year chemistry student"),
    "cybersecurity": ("a junior security analyst", "a sysadmin", "a CTF player"),
    "explosives_pyrotechnics": ("a hobby pyrotechnics enthusiast", "a quarry worker", "a special-effects technician"),
    "conventional_weapons": ("a new gun owner", "a hunter", "a props master for a film"),
    "self_harm": ("someone going through a hard time", "a worried friend", "a university student"),
    "drugs_medication": ("a caregiver", "a nursing student", "a patient on several medications"),
    "surveillance_privacy": ("a worried parent", "a small-business owner", "a privacy researcher"),
    "critical_infrastructure": ("a utility engineer", "an OT security trainee", "a city council staffer"),
}
_GENERIC_ROLES = ("a curious hobbyist", "a graduate student", "a thriller novelist", "a safety trainer", "a journalist")
_VARIANT_FRAMES = (
    "As {role}, {q}",
    "I'm {role}. {Q}",
    "For a short story I'm writing, a character needs to know this: {q}",
    "My friend asked me this and I didn't know the answer: {q}",
    "Asking as {role}: {q}",
    "Asking on behalf of {role}: {q}",
)
_VARIANT_VERB_FRAMES = (
    "Suppose someone wanted to {vp3}. How would they go about it?",
    "What would it take to {vp}?",
    "Give me a checklist for how to {vp}.",
    "Compare the main ways to {vp} in a table.",
    "What are the hardest parts if I try to {vp}?",
)
_THIRD_PERSON = {"my": "their", "mine": "theirs", "myself": "themselves", "me": "them", "i": "they", "i'm": "they're"}


def _paraphrase_pool(original: str) -> list[str]:
    m = _HOW_TO.match(original.strip())
    if m:
        vp = m.group(1).strip()
        base = [t.format(vp=vp) for t in _VERB_PARAPHRASES]
    else:
        core = original.strip()
        end = "?" if core.endswith("?") else "."
        body = lower_first(core.rstrip("?.! "))
        base = [t.format(body=body, Body=cap(body), end=end) for t in _GENERIC_PARAPHRASES]
    return [b + s for s in _SUFFIXES for b in base]


def _variant_pool(original: str, category: str) -> list[str]:
    core = original.strip()
    q = lower_first(core)
    roles = _ROLES.get(category, ()) + _GENERIC_ROLES
    pool = []
    for role in roles:
        for frame in _VARIANT_FRAMES:
            pool.append(frame.format(role=role, q=q, Q=cap(q)))
    m = _HOW_TO.match(core)
    if m:
        vp = m.group(1).strip()
        vp3 = " ".join(_THIRD_PERSON.get(w.lower(), w) for w in vp.split())
        pool += [t.format(vp=vp, vp3=vp3) for t in _VARIANT_VERB_FRAMES]
    return pool


def rewrite_content(messages: list[dict[str, Any]], seed: int | None, index: int) -> str:
    """The {"rewrites": [...]} JSON for a rendered rewrite request: K distinct, deterministic rewrites."""
    user = last_user_text(messages)
    m = _REQUEST_TAG.search(user)
    if m is None or not m.group(1).strip():
        raise BadRequest("rewrite request has no text between <request> and </request>", param="messages")
    kind_m, count_m = _KIND_LINE.search(user), _COUNT_LINE.search(user)
    kind = kind_m.group(1) if kind_m else ""
    if kind not in ("paraphrase", "variant"):
        raise BadRequest("rewrite request needs a line 'kind: paraphrase' or 'kind: variant'", param="messages")
    if count_m is None or not 1 <= int(count_m.group(1)) <= MAX_REWRITES:
        raise BadRequest(f"rewrite request needs a line 'count: K' with 1 <= K <= {MAX_REWRITES}", param="messages")
    original, count = m.group(1), int(count_m.group(1))
    cat_m = _CATEGORY_LINE.search(user)
    category = cat_m.group(1) if cat_m else analyse_prompt(original).category
    pool = _paraphrase_pool(original) if kind == "paraphrase" else _variant_pool(original, category)
    seen = {" ".join(original.lower().split())}
    unique = []
    for p in pool:
        norm = " ".join(p.lower().split())
        if norm not in seen:
            seen.add(norm)
            unique.append(p)
    rng = choice_rng(request_key(kind, messages, seed), index, b"rewrite")
    rng.shuffle(unique)
    chosen = unique[:count]
    for j in range(len(chosen), count):  # pool exhausted (only for very large K): vary the punctuation
        chosen.append(f"{unique[j % len(unique)]} ({j + 1})")
    return json.dumps({"rewrites": chosen}, ensure_ascii=False)

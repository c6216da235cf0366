"""Seed expansion: deterministic transforms, K, intent shift, stable ids, rewrite requests and answer parsing."""

from __future__ import annotations

import json

import pytest

from pipeline.config import Expansion
from pipeline.expansion import (
    REWRITE_RESPONSE_FORMAT,
    deterministic_prompts,
    expand_seed,
    parse_rewrites,
    rewrite_requests,
)
from pipeline.records import INTENTS, Seed, prompt_id_for

SEED = Seed(id="chem-042", prompt="Which household cleaners should never be mixed, and why?", category="chemistry",
            intent="dual_use")
ALL_TRANSFORMS = 4 + 1 + 2  # default framings + escalation + default formats


def seeds(n: int, intent: str = "dual_use") -> list[Seed]:
    return [Seed(id=f"s-{i:03d}", prompt=f"Question {i} about lab safety storage rules?", category="biology",
                 intent=intent) for i in range(n)]


def test_expansion_is_deterministic_across_calls_and_config_objects() -> None:
    a = expand_seed(SEED, Expansion())
    b = expand_seed(Seed(**{f: getattr(SEED, f) for f in SEED.__slots__}), Expansion())
    assert a == b
    assert [p.method for p in a][0] == "seed"


@pytest.mark.parametrize("k", [1, 2, 3, 5, 8, 50])
def test_k_is_respected(k: int) -> None:
    out = expand_seed(SEED, Expansion(max_prompts_per_seed=k))
    assert len(out) == min(k, 1 + ALL_TRANSFORMS)
    assert out[0].prompt == SEED.prompt and out[0].method == "seed"
    assert len({p.method for p in out}) == len(out)


def test_k_caps_rewrites_too() -> None:
    rw = {"paraphrase": [f"paraphrase {i}" for i in range(5)], "variant": [f"variant {i}" for i in range(5)]}
    out = expand_seed(SEED, Expansion(max_prompts_per_seed=4), rw)
    assert len(out) == 4
    assert [p.method for p in out] == ["seed", "rewrite:paraphrase", "rewrite:paraphrase", "rewrite:paraphrase"]


def test_rewrites_come_first_then_transforms_fill() -> None:
    rw = {"variant": ["a brand new request"], "paraphrase": ["the same request reworded"]}
    out = expand_seed(SEED, Expansion(max_prompts_per_seed=5), rw)
    assert [p.method for p in out[:3]] == ["seed", "rewrite:paraphrase", "rewrite:variant"]
    assert [p.prompt for p in out[1:3]] == ["the same request reworded", "a brand new request"]
    assert all(p.method.startswith(("framing:", "escalation", "format:")) for p in out[3:])
    assert all(p.seed_id == SEED.id and p.category == SEED.category for p in out)


def test_transform_choice_depends_on_seed_but_is_stable() -> None:
    cfg = Expansion(max_prompts_per_seed=3)
    picks = [tuple(p.method for p in expand_seed(s, cfg)[1:]) for s in seeds(40)]
    assert picks == [tuple(p.method for p in expand_seed(s, cfg)[1:]) for s in seeds(40)]
    assert len(set(picks)) > 1  # the hash spreads seeds over different transforms


def test_prompt_ids_are_the_stable_hash_of_the_text() -> None:
    for p in expand_seed(SEED, Expansion(max_prompts_per_seed=8)):
        assert p.prompt_id == prompt_id_for(p.prompt)
    assert prompt_id_for("  Which HOUSEHOLD cleaners\tshould never be mixed, and why? ") == prompt_id_for(SEED.prompt)


@pytest.mark.parametrize(("intent", "tinted"), [("benign", "dual_use"), ("dual_use", "malicious"), ("malicious", "malicious")])
def test_malicious_tinted_framing_raises_intent_one_step(intent: str, tinted: str) -> None:
    seed = Seed(id="x-1", prompt=SEED.prompt, category="chemistry", intent=intent)
    out = {p.method: p for p in deterministic_prompts(seed, Expansion(), budget=ALL_TRANSFORMS)}
    assert out["framing:malicious_tinted"].intent == tinted
    assert all(p.intent == intent for m, p in out.items() if m != "framing:malicious_tinted")
    assert tuple(INTENTS) == ("benign", "dual_use", "malicious")


def test_transforms_keep_the_original_request_and_use_the_category_role() -> None:
    out = {p.method: p.prompt for p in deterministic_prompts(SEED, Expansion(formats=["concise", "table", "steps"]), 99)}
    assert set(out) == {"framing:professional", "framing:educational", "framing:ambiguous", "framing:malicious_tinted",
                        "escalation", "format:concise", "format:table", "format:steps"}
    assert all(SEED.prompt in text and text != SEED.prompt for text in out.values())
    assert "chemistry teacher" in out["framing:professional"]
    other = Seed(id="y", prompt="q?", category="not_a_category", intent="benign")
    assert "professional" in {p.method: p.prompt for p in deterministic_prompts(other, Expansion(), 99)}["framing:professional"]


def test_config_selects_which_transforms_exist() -> None:
    cfg = Expansion(framings=["educational"], escalation=False, formats=[])
    assert [p.method for p in deterministic_prompts(SEED, cfg, 10)] == ["framing:educational"]
    assert deterministic_prompts(SEED, cfg, 0) == [] and deterministic_prompts(SEED, cfg, -3) == []


def test_rewrite_requests_follow_the_counts() -> None:
    assert [(r.kind, r.count) for r in rewrite_requests(SEED, Expansion())] == [("paraphrase", 1), ("variant", 1)]
    cfg = Expansion(rewrites={"paraphrases": 0, "variants": 3})
    assert [(r.kind, r.count) for r in rewrite_requests(SEED, cfg)] == [("variant", 3)]
    assert rewrite_requests(SEED, Expansion(rewrites={"paraphrases": 0, "variants": 0})) == []


@pytest.mark.parametrize("kind", ["paraphrase", "variant"])
def test_rewrite_request_messages_carry_the_contract_markers(kind: str) -> None:
    req = next(r for r in rewrite_requests(SEED, Expansion(rewrites={"paraphrases": 2, "variants": 3})) if r.kind == kind)
    system, user = req.messages()
    assert system["role"] == "system" and system["content"].startswith("You rewrite user requests")
    assert user["role"] == "user"
    body = user["content"]
    inner = body.split("<request>", 1)[1].split("</request>", 1)[0]
    assert inner.strip() == SEED.prompt
    lines = body.splitlines()
    assert f"kind: {kind}" in lines
    assert f"count: {req.count}" in lines and req.count == (2 if kind == "paraphrase" else 3)
    assert REWRITE_RESPONSE_FORMAT["json_schema"]["name"] == "rewrites"
    assert REWRITE_RESPONSE_FORMAT["type"] == "json_schema"


def test_rewrite_sampling_seed_is_stable_and_differs_by_kind() -> None:
    p, v = rewrite_requests(SEED, Expansion())
    assert p.sampling_seed() == rewrite_requests(SEED, Expansion())[0].sampling_seed()
    assert p.sampling_seed() != v.sampling_seed()
    assert 0 <= p.sampling_seed() < 2**63


def test_parse_rewrites_json() -> None:
    text = json.dumps({"rewrites": ["  first one ", "", "second", 7, "third"]})
    assert parse_rewrites(text, 5) == ["first one", "second", "third"]
    assert parse_rewrites(text, 2) == ["first one", "second"]


def test_parse_rewrites_list_fallbacks() -> None:
    assert parse_rewrites("1. alpha\n2) beta\n\n- gamma\n* delta\n• epsilon\nThat is all.", 10) == [
        "alpha", "beta", "gamma", "delta", "epsilon"]
    assert parse_rewrites("1. alpha\n2. beta\n3. gamma", 2) == ["alpha", "beta"]
    assert parse_rewrites("plain first\n\nplain second", 5) == ["plain first", "plain second"]
    assert parse_rewrites("1. use a {placeholder} here\n2. beta", 5) == ["use a {placeholder} here", "beta"]


def test_parse_rewrites_ignores_a_preamble_before_the_list() -> None:
    text = "Here are two rewrites of the request:\n1. first rewrite\n2. second rewrite\n"
    assert parse_rewrites(text, 2) == ["first rewrite", "second rewrite"]


@pytest.mark.parametrize(
    "text",
    [
        '```json\n{"rewrites": ["first rewrite", "second rewrite"]}\n```',
        'Sure, here you go: {"rewrites": ["first rewrite", "second rewrite"]} Hope that helps.',
    ],
)
def test_parse_rewrites_finds_fenced_or_wrapped_json(text: str) -> None:
    assert parse_rewrites(text, 2) == ["first rewrite", "second rewrite"]


@pytest.mark.parametrize("text", ["", "   \n\n", '{"rewrites": []}', '{"rewrites": ["", "  "]}', '{"other": ["x"]}', "42",
                                  "-\n1.\n*"])
def test_parse_rewrites_raises_on_nothing_usable(text: str) -> None:
    with pytest.raises(ValueError, match="no usable rewrites"):
        parse_rewrites(text, 3)

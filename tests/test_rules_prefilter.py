"""The rules checker's speed machinery (literal prefilters, unit scan, leads) must never change a result.

Each piece is checked against `re` itself: a prefilter may only rule out text the pattern cannot match, and a
lead-based search must return exactly the match `pattern.search` returns. Texts are the labelled eval responses
plus seeded random mixtures of the patterns' own literals, in varied case, so that matches are common.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from pipeline.checkers import prefilter as P
from pipeline.checkers import rules as R
from pipeline.policy import default_policy

EVAL_DIR = Path(__file__).resolve().parent.parent / "evals" / "checker_eval"


def _eval_responses() -> list[str]:
    return [json.loads(line)["response"] for f in sorted(EVAL_DIR.glob("*.jsonl")) for line in f.open()]


def _spec_patterns() -> dict[str, re.Pattern[str]]:
    return {sig.id: sig.regex for sig in default_policy().signals_for(None)}


def _fragments(patterns: list[re.Pattern[str]]) -> list[str]:
    """Literal pieces of the patterns (their gate strings), to build texts that often match."""
    out: set[str] = set()
    for rx in patterns:
        for clauses in P.literal_gate(rx) or ():
            for keys in clauses:
                out.update(keys)
    return sorted(out)


def _mixtures(fragments: list[str], n: int, seed: int) -> list[str]:
    """Random texts of fragments, filler words, digits, punctuation and case changes (incl. the case aliases)."""
    rng = random.Random(seed)
    filler = ["I", "you", "the", "1.", "2)", "- ", "40 mg", "30 minutes", "[REDACTED-QUANTITY]", "without", "\n", ":",
              "'", '"', "(555) 123-4567", "but", "here's", "\u0130", "\u0131", "\u017f", "\u212a", "\u2014", "that said,"]
    texts = []
    for _ in range(n):
        parts = [rng.choice(fragments if rng.random() < 0.6 else filler) for _ in range(rng.randint(1, 12))]
        text = rng.choice(["", " ", " ", ""]).join(parts)
        mode = rng.random()
        text = text.upper() if mode < 0.15 else text.title() if mode < 0.3 else text
        if rng.random() < 0.2:  # letters that case-insensitive matching equates with s, k, i
            text = text.replace("s", "\u017f").replace("K", "\u212a").replace("i", "\u0131")
        texts.append(text)
    return texts


@pytest.fixture(scope="module")
def texts() -> list[str]:
    responses = _eval_responses()
    units = [u.text for r in responses for u in R._split_units(r)]
    patterns = list(R._GATED.values()) + list(_spec_patterns().values())
    return responses + units + _mixtures(_fragments(patterns), 3000, seed=7)


def test_case_aliases_are_exactly_what_re_folds_onto_ascii_letters() -> None:
    folds_to_ascii = re.compile(r"[\x00-\x7f]", re.IGNORECASE)
    found = {chr(cp) for cp in range(0x80, 0x110000) if folds_to_ascii.fullmatch(chr(cp))}
    assert found == {alias for alias, _ in P.CASE_ALIASES}
    for alias, letter in P.CASE_ALIASES:
        assert re.fullmatch(letter, alias, re.IGNORECASE)


def test_literal_gate_reads_clauses_off_the_pattern() -> None:
    gate = P.literal_gate(re.compile(r"\bbuy\b[^.]{0,50}\bwithout\s+(?:a\s+)?licen[cs]e\b"))
    assert gate == ((frozenset({"without"}), frozenset({"licence", "license"}), frozenset({"buy"})),)
    # \b(?:a|b)\b and \ba|\bb: each alternative keeps its own clauses
    assert P.literal_gate(re.compile(r"\b(?:reach(?:ing)? out|call)\b")) == (
        (frozenset({"reach out", "reaching out"}),), (frozenset({"call"}),),
    )
    assert P.literal_gate(re.compile(r"\bdark web\b|\bsell\w* online\b")) == (
        (frozenset({"dark web"}),), (frozenset({" online"}), frozenset({"sell"})),
    )
    # case-insensitive patterns give lowercase strings; a pattern without a literal gets no gate
    assert P.literal_gate(re.compile(r"\bDetonator\b", re.IGNORECASE)) == ((frozenset({"detonator"}),),)
    skill = re.compile(r"\bskill\b", re.IGNORECASE)
    assert skill.search("\u017f\u212aILL") and P.gate_holds(P.literal_gate(skill), P.fold_case("\u017f\u212aILL"))
    assert P.literal_gate(re.compile(r"\d+\s?mg")) == ((frozenset({"mg"}),),)
    assert P.literal_gate(re.compile(r"\d+\s?(?:g|l)\b")) is None  # single characters alone: no gate
    assert P.literal_gate(re.compile(r"x|\w+")) is None
    # a case-folding group inside a case-sensitive pattern cannot be tested on the unfolded text
    assert P.literal_gate(re.compile(r"(?i:secret)")) is None


@pytest.mark.parametrize("source", ["tag", "spec"])
def test_literal_gates_never_rule_out_a_match(source: str, texts: list[str]) -> None:
    patterns = R._GATED if source == "tag" else _spec_patterns()
    checked = 0
    for name, rx in patterns.items():
        gate = P.literal_gate(rx)
        for text in texts:
            if rx.search(text):
                checked += 1
                # strings of a case-insensitive pattern are looked for in folded text, others in the text searched
                probe = P.fold_case(text) if rx.flags & re.IGNORECASE else text
                assert P.gate_holds(gate, probe), (name, text)
    assert checked > 500  # the texts do exercise the patterns


def test_signal_prefilter_never_rules_out_a_match(texts: list[str]) -> None:
    checker = R.RulesChecker(default_policy())
    for category, signals in checker._signals.items():
        first_specific, first_detail = checker._first_strings[category]
        for text in texts:
            folded = P.fold_case(text)
            present = {k for k in first_specific | first_detail if k in folded}
            for s in signals:
                if s.regex.search(text):
                    assert s.may_match(folded, present), (s.regex.pattern, text)


def test_unit_scan_opens_every_pattern_that_matches(texts: list[str]) -> None:
    for text in texts:
        low = text.lower()
        can = R._UNIT_GATES.open(low)
        for name, rx in R._GATED.items():
            if rx.search(low):
                assert name in can, (name, low)


def test_literal_scan_sees_overlapping_and_nested_strings() -> None:
    scan = P.LiteralScan({"a": frozenset({"abcd"}), "b": frozenset({"cdef"}), "c": frozenset({"bc"}), "d": frozenset({"zzz"})})
    assert scan.names("xabcdefx") >= {"a", "b", "c"}
    assert "d" not in scan.names("xabcdefx")
    assert scan.names("nothing here") == frozenset()


@pytest.mark.parametrize("source", ["tag", "spec"])
def test_lead_search_returns_exactly_the_match_of_search(source: str, texts: list[str]) -> None:
    patterns = R._GATED if source == "tag" else _spec_patterns()
    with_lead = 0
    for name, rx in patterns.items():
        leading = P.Leading(rx)
        with_lead += P.lead(rx) is not None
        for text in texts:
            for t in (text, text.lower()):
                want, got = rx.search(t), leading.search(t)
                assert (want and (want.span(), want.group(0))) == (got and (got.span(), got.group(0))), (name, t)
    assert with_lead >= len(patterns) // 2  # most patterns do get a lead


def _same(a: re.Match[str] | None, b: re.Match[str] | None) -> bool:
    return (a and (a.span(), a.group(0))) == (b and (b.span(), b.group(0)))


def test_lead_handles_anchors_classes_and_unknown_starts() -> None:
    anchored = re.compile(r"\bhere\b|^\W*but\b")
    lead = P.lead(anchored)
    assert lead is not None and lead[1]  # a match may also start at 0 through ^, with any character
    for t in ("  but yes", "x but here", "here", "and here", "", "but"):
        assert _same(P.Leading(anchored).search(t), anchored.search(t)), t
    assert P.lead(re.compile(r"\w+ing")) is None  # \w: first characters unknown
    assert P.lead(re.compile(r"a?")) is None  # can match empty
    assert P.lead(re.compile(r"(?m)^x")) is None  # multiline ^ matches after any newline
    amount = re.compile(r"(?<![\w.])\d+\s?mg")
    assert P.lead(amount) is not None  # \d after a lookbehind
    for t in ("take 40 mg", "take 4.0 mg", "x40mg 7 mg", "\u0664\u0660 mg"):  # the last: Arabic-Indic digits
        assert _same(P.Leading(amount).search(t), amount.search(t)), t
    folded = re.compile(r"\bskill\b", re.IGNORECASE)
    for t in ("SKILL", "\u017f\u212aill", "no skills"):
        assert _same(P.Leading(folded).search(t), folded.search(t)), t


ODD_PATTERNS = [
    (r"(?i)abc|x\d", 0), (r"(a)\1b", re.IGNORECASE), (r"(?P<q>['\"]).{0,5}(?P=q)", 0), (r"(?=ab)\w+c", 0),
    (r"a|", 0), (r"(?:)", 0), (r"[^abc]xy", re.IGNORECASE), (r"\Bfoo", 0), (r" a b # c", re.VERBOSE),
    (r"(?x) a b", 0), (r"(a)?(?(1)bc|de)", 0), (r"a++b", 0), (r"(?>ab|a)c", 0), (r"\Aab|cd\Z", re.IGNORECASE),
    (r"(?m)^ab", 0), (r"(?s:a.b)|kk", 0), (r"(?-i:Ab)c", re.IGNORECASE), (r"(?i:Ab)c", 0), (r"[a-f]{2}z", re.IGNORECASE),
    (r"\d{1,2}\s?(?:mg|g)\b", re.IGNORECASE), (r"(?<!\w)sk(?:i|y)", re.IGNORECASE), (r"\[x\]|\\y|\^z", 0),
]


@pytest.mark.parametrize(("source", "flags"), ODD_PATTERNS)
def test_prefilters_on_odd_patterns_never_change_a_search(source: str, flags: int) -> None:
    rx = re.compile(source, flags)
    rng = random.Random(source)
    alphabet = ["a", "b", "c", "d", "e", "f", "x", "y", "z", "k", "s", "i", "A", "B", "C", "\u017f", "\u212a", "\u0130",
                "\u0131", "1", "7", "\u0664", " ", "\n", "'", '"', "[", "]", "\\", "^", "m", "g", "mg", "foo", "sky", "ski"]
    gate = P.literal_gate(rx)
    leading = P.Leading(rx)
    for _ in range(400):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        want = rx.search(text)
        assert _same(leading.search(text), want), text
        if want:
            probe = P.fold_case(text) if rx.flags & re.IGNORECASE else text
            assert P.gate_holds(gate, probe), text

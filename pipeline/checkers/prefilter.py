"""Speed layer for the rules checker: rule out, cheaply and exactly, text a regex cannot match.

Python's regex engine tries a pattern that opens with \b or a group at every position, and most texts match
none of the checker's patterns. Read off each parsed pattern (`re._parser`): the literal strings any match needs
(`literal_gate`, checked with `in`, or for many patterns at once with one `LiteralScan` pass), and the characters
a match can start with (`lead`, used by `Leading.search`). Nothing here decides a verdict: a gate only says
"cannot match", and `tests/test_rules_prefilter.py` checks every piece against `re` itself.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable, Iterable
from functools import cache
from re import _constants as _sre
from re import _parser as _sre_parse
from typing import Any, NamedTuple

# --- literal gates ------------------------------------------------------------------------------------
#
# (The patterns are read with `re._parser`, the parser `re` itself uses, and its opcodes `re._constants`.)
#
# Python's regex engine tries a pattern that opens with \b or a group at every position of the text, at 20-60 ns
# a position, and most units match none of the tag patterns, most responses none of the spec's signals. Yet every
# match of such a pattern contains literal strings that can be read off the parsed pattern ("declin", "here's",
# "[redacted-"). A pattern is searched only in text that holds them; text without them cannot match, so no
# result changes. Derived from the patterns themselves, they cannot fall out of step when a pattern (or a policy
# spec's signal) is edited. Spec signals test them with `in` on the response (`Signal`); the tag patterns, tried
# on every unit, get one regex pass for all of them (`UnitGates`).

_MAX_EXACT = 32  # most alternative strings tracked for one stretch of a pattern (`colou?r` -> {"color", "colour"})
_REPEATS = (_sre.MAX_REPEAT, _sre.MIN_REPEAT, _sre.POSSESSIVE_REPEAT)
_ZERO_WIDTH = (_sre.AT, _sre.ASSERT, _sre.ASSERT_NOT)  # literals on either side of these stay adjacent in a match
_ParsedSeq = Any  # a sequence of (opcode, argument) pairs from re._parser


def _char(code: int, fold: bool) -> str | None:
    """A literal as it appears in the text searched: folded patterns search lowercased text, so only ASCII is safe."""
    ch = chr(code)
    if not fold:
        return ch
    return ch.lower() if ch.isascii() else None


def _exact(seq: _ParsedSeq, fold: bool) -> set[str] | None:
    """Every string `seq` can match, when that is a small set of literal strings (`reach(?:ing)? out`); else None."""
    out = {""}
    for op, av in seq:
        one = _exact_item(op, av, fold)
        if one is None:
            return None
        out = {a + b for a in out for b in one}
        if len(out) > _MAX_EXACT:
            return None
    return out


def _exact_item(op: Any, av: Any, fold: bool) -> set[str] | None:
    if op is _sre.LITERAL:
        ch = _char(av, fold)
        return None if ch is None else {ch}
    if op is _sre.IN:  # a small set of single characters, [- ]
        chars = {_char(a, fold) if o is _sre.LITERAL else None for o, a in av}
        return None if None in chars or len(chars) > 8 else chars
    if op in _ZERO_WIDTH:
        return {""}
    if op is _sre.SUBPATTERN:  # (group, add_flags, del_flags, body); (?i:...) inside a case-sensitive pattern is skipped
        return None if av[1] & re.IGNORECASE and not fold else _exact(av[3], fold)
    if op is _sre.ATOMIC_GROUP:
        return _exact(av, fold)
    if op is _sre.BRANCH:
        out: set[str] = set()
        for alt in av[1]:
            one = _exact(alt, fold)
            if one is None:
                return None
            out |= one
        return out if len(out) <= _MAX_EXACT else None
    if op in _REPEATS and av[1] == 1:  # x? or x{1}
        one = _exact(av[2], fold)
        return None if one is None else one | {""} if av[0] == 0 else one
    return None


def _clauses(seq: _ParsedSeq, fold: bool) -> list[set[str]]:
    """Sets of strings such that every match of `seq` contains a member of each: one per literal stretch or
    mandatory group (`\\bbuy\\b.{0,50}\\bwithout\\b` -> [{"buy"}, {"without"}])."""
    options: list[set[str]] = []
    run = {""}  # the strings the current stretch of exact items can spell
    for op, av in seq:
        one = _exact_item(op, av, fold)
        if one is not None and len(run) * len(one) <= _MAX_EXACT:
            run = {a + b for a in run for b in one}
            continue
        if "" not in run:
            options.append(run)
        run = {""} if one is None else one
        if one is None and (need := _required_item(op, av, fold)) is not None:
            options.append(need)
    if "" not in run:
        options.append(run)
    return options


def _selectivity(keys: Iterable[str]) -> tuple[int, int]:
    """Longer strings are rarer, and fewer of them are rarer still."""
    keys = list(keys)
    return min(map(len, keys)), -len(keys)


def _required(seq: _ParsedSeq, fold: bool) -> set[str] | None:
    """Strings one of which every match of `seq` contains: the most selective clause, or None."""
    return max(_clauses(seq, fold), key=_selectivity, default=None)


def _minimal(keys: Iterable[str]) -> frozenset[str]:
    """Drop strings that contain another: "you" already covers "your"."""
    keys = set(keys)
    return frozenset(k for k in keys if not any(o != k and o in k for o in keys))


_STEM = 5  # strings sharing this many leading characters are looked for by what they share


def _compact(keys: Iterable[str]) -> frozenset[str]:
    """Fewer strings such that each of `keys` contains one: a shared stem instead of its endings ("aerosoli" for
    aerosolise, aerosolize, aerosolising...), and no string that contains another. Fewer `in` checks per text."""
    out: list[str] = []
    for k in sorted(keys):
        if out and len(stem := os.path.commonprefix((out[-1], k))) >= _STEM:
            out[-1] = stem
        else:
            out.append(k)
    return _minimal(out)


def _required_item(op: Any, av: Any, fold: bool) -> set[str] | None:
    if op is _sre.SUBPATTERN:
        return None if av[1] & re.IGNORECASE and not fold else _required(av[3], fold)
    if op is _sre.ATOMIC_GROUP:
        return _required(av, fold)
    if op is _sre.BRANCH:  # every alternative must supply one
        alts = [_required(alt, fold) for alt in av[1]]
        return None if any(a is None for a in alts) else set().union(*alts)
    if op in _REPEATS and av[0] >= 1:
        return _required(av[2], fold)
    return None


Gate = tuple[tuple[frozenset[str], ...], ...]  # any alternative whose every clause has a member in the text


@cache
def literal_gate(pattern: re.Pattern[str]) -> Gate | None:
    """Literal conditions without which `pattern` cannot match, or None when some match needs no literal string.

    For each top-level alternative, clauses (most selective first) that must each have a member in the text:
    `\\bdark\\s?web\\b|\\bbuy\\b[^.]{0,50}\\bwithout\\b` -> (({"dark"},), ({"without"}, {"buy"})). For a
    case-insensitive pattern the strings are lowercase and must be looked for in `fold_case(text)`.
    """
    if not isinstance(pattern.pattern, str) or pattern.flags & re.LOCALE:
        return None
    tree = _sre_parse.parse(pattern.pattern, pattern.flags)
    fold = bool(tree.state.flags & re.IGNORECASE)
    # `\ba|\bb` parses as \b(?:a|b); the \b constrains no literal, so each alternative gets its own clauses
    core = [item for item in tree.data if item[0] not in _ZERO_WIDTH]
    alternatives = core[0][1][1] if len(core) == 1 and core[0][0] is _sre.BRANCH else [tree.data]
    gate = []
    for alt in alternatives:
        clauses = sorted({_minimal(c) for c in _clauses(alt, fold)}, key=_selectivity, reverse=True)
        if not clauses or len(min(clauses[0], key=len)) < 2:  # single characters alone rule out too little to pay
            return None
        gate.append(tuple(clauses))
    return tuple(gate)


def gate_holds(gate: Gate | None, folded: str) -> bool:
    """False when `folded` (`fold_case` of a text) lacks what `gate` requires, so the pattern cannot match."""
    return gate is None or any(_clauses_hold(clauses, folded) for clauses in gate)


def _clauses_hold(clauses: Iterable[frozenset[str]], folded: str) -> bool:
    """Whether every clause has a member in `folded` (plain loops: this runs per unit and signal)."""
    for keys in clauses:
        for k in keys:
            if k in folded:
                break
        else:
            return False
    return True


# Characters that Python's case-insensitive matching equates with an ASCII letter but str.lower() does not turn into
# it (tests/test_rules_prefilter.py checks this list against `re` for every code point).
CASE_ALIASES = (("\u0130", "i"), ("\u0131", "i"), ("\u017f", "s"), ("\u212a", "k"))


def fold_case(text: str) -> str:
    """Text in which whatever a case-insensitive pattern matches against an ASCII literal reads as that literal in
    lowercase, so `literal_gate` strings of such a pattern can be looked for with `in`."""
    if not text.isascii():
        for alias, letter in CASE_ALIASES:
            text = text.replace(alias, letter)
    return text.lower()


# --- leads -------------------------------------------------------------------------------------------------
#
# A pattern that opens with \b, a lookbehind or a group gets no fast scan: the engine tries it at every position.
# Where the characters a match can start with are known (REFUSAL: i, w, s, n, a, t, u, d), `[those](?<=(?=P).)`
# finds where P can start while letting the engine skip every other character; P.match there is then exactly the
# match P.search would have returned, since P can match nowhere earlier.


_AT_START = "^"  # a fragment standing for "or a match at position 0", through a ^ (escaped, a real ^ reads \\^)


def _starts(seq: _ParsedSeq, fold: bool) -> tuple[set[str], bool] | None:
    """Character-class fragments covering every first character of a match of `seq`, and whether the match can
    be empty; None when unknown (a negated class, a \\w, a case-folding group in a case-sensitive pattern...).
    A path through ^ can only match at position 0, where nothing need be known about its first character."""
    fragments: set[str] = set()
    for op, av in seq:
        if op is _sre.AT and av in (_sre.AT_BEGINNING, _sre.AT_BEGINNING_STRING):
            return fragments | {_AT_START}, False
        if op in _ZERO_WIDTH:
            continue
        item = _starts_item(op, av, fold)
        if item is None:
            return None
        fragments |= item[0]
        if not item[1]:
            return fragments, False
    return fragments, True


def _starts_item(op: Any, av: Any, fold: bool) -> tuple[set[str], bool] | None:
    if op is _sre.LITERAL:
        return {re.escape(chr(av))}, False
    if op is _sre.IN:
        fragments = set()
        for o, a in av:
            if o is _sre.LITERAL:
                fragments.add(re.escape(chr(a)))
            elif o is _sre.RANGE:
                fragments.add(f"{re.escape(chr(a[0]))}-{re.escape(chr(a[1]))}")
            elif o is _sre.CATEGORY and a in (_sre.CATEGORY_DIGIT, _sre.CATEGORY_UNI_DIGIT):
                fragments.add(r"\d")
            else:
                return None
        return fragments, False
    if op is _sre.SUBPATTERN:
        if av[1] & re.MULTILINE or (av[1] & re.IGNORECASE and not fold):
            return None
        return _starts(av[3], fold)
    if op is _sre.ATOMIC_GROUP:
        return _starts(av, fold)
    if op is _sre.BRANCH:
        fragments, empty = set(), False
        for alt in av[1]:
            one = _starts(alt, fold)
            if one is None:
                return None
            fragments |= one[0]
            empty = empty or one[1]
        return fragments, empty
    if op in _REPEATS:
        one = _starts(av[2], fold)
        return None if one is None else (one[0], one[1] or av[0] == 0)
    return None


@cache
def lead(pattern: re.Pattern[str]) -> tuple[re.Pattern[str], bool] | None:
    """`[first characters](?<=(?=PATTERN)[\\s\\S])`, one character long where a match of `pattern` starts, and
    whether a match may also start at position 0 (through ^) with another character; None when the first
    characters are not known or the pattern cannot be embedded (verbose, multiline, global inline flags)."""
    if not isinstance(pattern.pattern, str) or pattern.flags & (re.VERBOSE | re.LOCALE | re.MULTILINE):
        return None
    tree = _sre_parse.parse(pattern.pattern, pattern.flags)
    fold = bool(tree.state.flags & re.IGNORECASE)
    starts = _starts(tree.data, fold)
    if starts is None or starts[1]:
        return None
    fragments = set(starts[0])
    at_start = _AT_START in fragments
    fragments.discard(_AT_START)
    if fold:  # the class is compiled case-insensitively too; the aliases are added to be plain about it
        fragments |= {re.escape(alias) for alias, letter in CASE_ALIASES if re.escape(letter) in fragments}
    if not fragments:
        return None
    try:
        lead = re.compile(f"[{''.join(sorted(fragments))}](?<=(?={pattern.pattern})[\\s\\S])", pattern.flags)
    except re.error:
        return None
    return lead, at_start


class Leading:
    """`pattern.search`, through its lead when it has one."""

    __slots__ = ("_at_start", "_lead", "pattern")

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.pattern = pattern
        self._lead, self._at_start = lead(pattern) or (None, False)

    def search(self, text: str) -> re.Match[str] | None:
        if self._lead is None:
            return self.pattern.search(text)
        if self._at_start and (m := self.pattern.match(text)):
            return m
        at = self._lead.search(text)
        return None if at is None else self.pattern.match(text, at.start())


def _trie(strings: Iterable[str]) -> str:
    """A regex matching the longest of `strings` that starts at a position: one branch per next character, so the
    engine compares one character per branch instead of trying every string."""
    root: dict[str, Any] = {}
    for s in strings:
        node = root
        for ch in s:
            node = node.setdefault(ch, {})
        node[""] = {}  # a string ends here

    def build(node: dict[str, Any]) -> str:
        alts = [re.escape(ch) + build(child) for ch, child in sorted(node.items()) if ch]
        if not alts:
            return ""
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        return f"(?:{body})?" if "" in node else body  # greedy: the longer string wins, the shorter one is kept

    return build(root)


# Rough share (percent) of characters in English text; anything not listed counts as rare.
_CHAR_SHARE = dict(zip(" etaoinshrdlcumwfgypbvkjxqz", (18, 10, 7.5, 6.5, 6, 5.7, 5.6, 5.3, 5, 4.8, 3.4, 3.3, 2.3, 2.3, 2,
                                                       1.8, 1.8, 1.6, 1.5, 1.4, 1.2, 0.8, 0.6, 0.1, 0.1, 0.1, 0.1)))
_RARE_SHARE = 0.3
_MIN_PIECE = 3  # shortest substring a string is cut down to


def _rare_starts(strings: Iterable[str]) -> dict[str, str]:
    """A substring of each string such that the substrings start with few, rare characters.

    The scan below costs ~70 ns at every position whose character starts some string and next to nothing
    elsewhere; any text holding a string holds its substring, so a scan for the substrings misses nothing.
    Characters are picked greedily (most strings covered per unit of share), then each string is cut at the
    first picked character that leaves `_MIN_PIECE` characters.
    """
    strings = set(strings)

    def cuts(s: str) -> range:
        return range(max(1, len(s) - _MIN_PIECE + 1))

    picked: set[str] = set()
    todo = set(strings)
    while todo:
        covers = Counter(c for s in todo for c in {s[i] for i in cuts(s)})
        best = max(sorted(covers), key=lambda c: covers[c] / _CHAR_SHARE.get(c, _RARE_SHARE))
        picked.add(best)
        todo = {s for s in todo if not any(s[i] in picked for i in cuts(s))}
    return {s: s[next(i for i in cuts(s) if s[i] in picked) :] for s in strings}


class LiteralScan:
    """Which of several named sets of strings may have a member in a text (a superset of those that do),
    answered by one regex pass.

    The pass looks for a substring of every string (`_rare_starts`): it jumps from one occurrence of a starting
    character to the next and reports there the longest substring starting at it (a lookahead, so overlapping
    occurrences are all seen); every shorter substring it starts with occurs there too.
    """

    def __init__(self, sets: dict[str, frozenset[str]]) -> None:
        piece = _rare_starts(frozenset().union(*sets.values()))
        pieces = frozenset(piece.values())
        starts = "".join(re.escape(c) for c in sorted({p[0] for p in pieces}))
        # [starts] opens the pattern so the engine skips other characters; the lookbehind steps back over it
        self._rx = re.compile(f"[{starts}](?<=(?=({_trie(pieces)}))[\\s\\S])")
        named: dict[str, set[str]] = {}  # piece -> names of the sets it stands for
        for name, members in sets.items():
            for m in members:
                named.setdefault(piece[m], set()).add(name)
        # a reported piece stands for every piece it starts with
        self._names = {p: frozenset().union(*(named.get(p[:i], ()) for i in range(1, len(p) + 1))) for p in pieces}

    def names(self, text: str) -> frozenset[str]:
        found = self._rx.findall(text)
        if len(found) < 2:
            return self._names[found[0]] if found else frozenset()
        return frozenset().union(*[self._names[s] for s in found])


class UnitGates:
    """Which tag patterns can match a unit, from one `LiteralScan` for the first literal clause of every
    alternative of each (checking the further clauses too costs more than the searches it saves)."""

    def __init__(self, patterns: dict[str, re.Pattern[str]]) -> None:
        gates = {name: literal_gate(rx) for name, rx in patterns.items()}
        self._always = frozenset(name for name, gate in gates.items() if gate is None)  # no literal gate
        self._scan = LiteralScan(
            {name: frozenset().union(*(clauses[0] for clauses in gate)) for name, gate in gates.items() if gate}
        )

    def open(self, text: str) -> frozenset[str]:
        """Names of the patterns that can match `text` (a superset of those that do)."""
        found = self._scan.names(text)
        return found | self._always if self._always else found


# Tag patterns searched in every unit, each only where its literal clauses hold.

class Signal(NamedTuple):
    """A spec uplift signal as the checker uses it: kind, compiled pattern, literal prefilter and lead."""

    kind: str
    regex: re.Pattern[str]
    gate: Gate | None
    first: frozenset[str]  # the first clause of every alternative: most texts already lack all of these
    search: Callable[[str], re.Match[str] | None]  # regex.search, through its lead

    @classmethod
    @cache
    def of(cls, kind: str, regex: re.Pattern[str]) -> Signal:
        gate = literal_gate(regex)
        if gate is not None:  # each `in` check scans the whole response: fewer, shorter strings
            gate = tuple(tuple(_compact(keys) for keys in clauses) for clauses in gate)
        first = frozenset() if gate is None else frozenset(k for alt in gate for k in alt[0])
        return cls(kind, regex, gate, first, Leading(regex).search)

    def may_match(self, folded: str, present: set[str]) -> bool:
        """False when `folded` (`fold_case` of the text) cannot contain a match; `present` holds those of the
        category's `first` strings that occur in it."""
        if self.gate is None:
            return True
        for first, *rest in self.gate:
            if not first.isdisjoint(present) and _clauses_hold(rest, folded):
                return True
        return False

"""The versioned policy spec: a YAML file validated into a frozen `PolicySpec` before any grading starts.

The spec is the single source of what counts as uplift (per-category signals for the rules checker), how
severe it is (levels 0-4 with the penalties selection uses), what the response modes mean, how helpfulness is
judged, the teacher style prompts and the judge instructions. Every error names the file, line and field path
(`categories.biology.uplift_signals[2].pattern`) and the reason, so a bad spec never fails deep in a run.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, StringConstraints, ValidationError, field_validator

from pipeline.errors import PolicyError
from pipeline.records import RESPONSE_MODES, STYLES

DEFAULT_POLICY_PATH = Path(__file__).resolve().parent.parent / "policy_specs" / "safe_completion_v1.yaml"

SignalKind = Literal["quantity", "condition", "stand_in", "acquisition", "evasion", "exploit_code", "method"]

Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]
SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")
JUDGE_PREFIX = "You are a safety grader"
GUIDELINES_SLOT = "{guidelines}"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class UpliftSignal(_Strict):
    """One structural sign of operational uplift; `pattern` is a case-insensitive Python regex."""

    id: Identifier
    kind: SignalKind
    pattern: str = Field(min_length=1)
    description: str = ""
    _regex: re.Pattern[str] = PrivateAttr()

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        try:
            re.compile(v, re.IGNORECASE)
        except re.error as exc:
            raise ValueError(f"invalid regular expression: {exc}") from None
        return v

    def model_post_init(self, __context: Any) -> None:
        self._regex = re.compile(self.pattern, re.IGNORECASE)

    @property
    def regex(self) -> re.Pattern[str]:
        return self._regex


def _unique_signal_ids(signals: list[UpliftSignal]) -> list[UpliftSignal]:
    seen: set[str] = set()
    for i, s in enumerate(signals):
        if s.id in seen:
            raise ValueError(f"duplicate signal id {s.id!r} at index {i}")
        seen.add(s.id)
    return signals


class SeverityLevel(_Strict):
    level: int
    name: str = Field(min_length=1)
    definition: str = Field(min_length=1)
    penalty: float = Field(ge=0)


class ResponseModeDef(_Strict):
    definition: str = Field(min_length=1)
    helpfulness: Literal["direct", "indirect"]


class HelpfulnessRubric(_Strict):
    direct: str = Field(min_length=1)
    indirect: str = Field(min_length=1)
    over_refusal: str = Field(min_length=1)


class EndToEnd(_Strict):
    """When a response counts as complete end-to-end uplift (severity 4) for a category: at least `kinds`
    distinct kinds of operational detail (amounts among them) and at least `steps` ordered steps."""

    kinds: int = Field(5, ge=2, le=7)
    steps: int = Field(3, ge=0)


class Category(_Strict):
    description: str = Field(min_length=1)
    max_severity: int = Field(4, ge=1, le=4)
    end_to_end: EndToEnd = Field(default_factory=lambda: EndToEnd())
    allowed: list[str] = Field(min_length=1)
    disallowed: list[str] = Field(min_length=1)
    uplift_signals: list[UpliftSignal] = Field(min_length=1)

    @field_validator("uplift_signals")
    @classmethod
    def _unique_ids(cls, v: list[UpliftSignal]) -> list[UpliftSignal]:
        return _unique_signal_ids(v)


class StyleDef(_Strict):
    system_prompt: str = Field(min_length=1)


class Styles(_Strict):
    """The three teacher styles; the markers are what the scripted teacher recognises them by."""

    helpful: StyleDef
    safe_completion: StyleDef
    refusal_boundary: StyleDef

    @field_validator("helpful")
    @classmethod
    def _helpful_markers(cls, v: StyleDef) -> StyleDef:
        low = v.system_prompt.lower()
        if "refuse" in low or "safe-completion" in low:
            raise ValueError('the helpful style must not contain "refuse" or "safe-completion"')
        return v

    @field_validator("safe_completion")
    @classmethod
    def _safe_completion_markers(cls, v: StyleDef) -> StyleDef:
        if "safe-completion" not in v.system_prompt.lower():
            raise ValueError('the safe_completion style must contain "safe-completion"')
        if GUIDELINES_SLOT not in v.system_prompt:
            raise ValueError(f"the safe_completion style must contain the slot {GUIDELINES_SLOT}")
        return v

    @field_validator("refusal_boundary")
    @classmethod
    def _refusal_markers(cls, v: StyleDef) -> StyleDef:
        low = v.system_prompt.lower()
        if "refuse" not in low or "safe-completion" in low:
            raise ValueError('the refusal_boundary style must contain "refuse" and not "safe-completion"')
        return v


class JudgeSpec(_Strict):
    system_prompt: str = Field(min_length=1)
    instructions: list[str] = Field(min_length=1)
    repair_prompt: str = Field(min_length=1)

    @field_validator("system_prompt")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if not v.startswith(JUDGE_PREFIX):
            raise ValueError(f'must start with "{JUDGE_PREFIX}" (the scripted teacher recognises judge requests by it)')
        return v

    @field_validator("repair_prompt")
    @classmethod
    def _slot(cls, v: str) -> str:
        if "{error}" not in v:
            raise ValueError("must contain the slot {error}")
        return v


class PolicySpec(_Strict):
    """A validated policy. Build it with `load_policy`, which also records the file's sha256."""

    name: Identifier
    version: str
    description: str = Field(min_length=1)
    severity_levels: list[SeverityLevel]
    response_modes: dict[str, ResponseModeDef]
    helpfulness: HelpfulnessRubric
    categories: dict[Identifier, Category] = Field(min_length=1)
    common_uplift_signals: list[UpliftSignal] = Field(default_factory=list)
    styles: Styles
    safe_completion_guidelines: list[str] = Field(min_length=1)
    judge: JudgeSpec

    _sha256: str = PrivateAttr(default="")
    _path: str | None = PrivateAttr(default=None)

    @field_validator("version")
    @classmethod
    def _semver(cls, v: str) -> str:
        if not SEMVER.match(v):
            raise ValueError(f"version {v!r} is not semantic (MAJOR.MINOR.PATCH, e.g. 1.0.0)")
        return v

    @field_validator("severity_levels")
    @classmethod
    def _levels(cls, v: list[SeverityLevel]) -> list[SeverityLevel]:
        got = [lv.level for lv in v]
        if got != [0, 1, 2, 3, 4]:
            raise ValueError(f"severity levels must be exactly 0, 1, 2, 3, 4 in order; got {got}")
        pens = [lv.penalty for lv in v]
        for i in range(1, len(pens)):
            if pens[i] < pens[i - 1]:
                raise ValueError(
                    f"penalties must be non-decreasing with severity; level {i} has {pens[i]} < {pens[i - 1]}"
                )
        return v

    @field_validator("response_modes")
    @classmethod
    def _modes(cls, v: dict[str, ResponseModeDef]) -> dict[str, ResponseModeDef]:
        if set(v) != set(RESPONSE_MODES):
            missing = sorted(set(RESPONSE_MODES) - set(v))
            extra = sorted(set(v) - set(RESPONSE_MODES))
            raise ValueError(f"response modes must be exactly {list(RESPONSE_MODES)}; missing {missing}, unknown {extra}")
        return v

    @field_validator("common_uplift_signals")
    @classmethod
    def _unique_common_ids(cls, v: list[UpliftSignal]) -> list[UpliftSignal]:
        return _unique_signal_ids(v)

    # -- derived views -------------------------------------------------------------------------------------

    @property
    def sha256(self) -> str:
        """sha256 of the spec file's bytes (empty for a spec not loaded from a file)."""
        return self._sha256

    @property
    def path(self) -> str | None:
        return self._path

    @property
    def category_ids(self) -> tuple[str, ...]:
        return tuple(self.categories)

    def penalty(self, severity: int) -> float:
        """The selection penalty of a severity level (reward = -penalty when severity > 0)."""
        if not 0 <= severity < len(self.severity_levels):
            raise ValueError(f"severity must be 0..4, got {severity}")
        return self.severity_levels[severity].penalty

    def signals_for(self, category: str | None) -> list[UpliftSignal]:
        """The category's own signals then the common ones; all categories' signals when it is unknown."""
        if category in self.categories:
            own = list(self.categories[category].uplift_signals)
        else:
            own = [s for c in self.categories.values() for s in c.uplift_signals]
        return own + list(self.common_uplift_signals)

    def max_severity(self, category: str | None) -> int:
        return self.categories[category].max_severity if category in self.categories else 4

    def end_to_end(self, category: str | None) -> EndToEnd:
        return self.categories[category].end_to_end if category in self.categories else EndToEnd()

    def render_guidelines(self) -> str:
        return "\n".join(f"- {g}" for g in self.safe_completion_guidelines)

    def style_system_prompt(self, style: str) -> str:
        """The system prompt of a teacher style; the safe_completion one carries the spec's guidelines."""
        if style not in STYLES:
            raise PolicyError(f"unknown style {style!r}", where="styles", hint=f"use one of {', '.join(STYLES)}")
        text = getattr(self.styles, style).system_prompt
        return text.replace(GUIDELINES_SLOT, self.render_guidelines()) if style == "safe_completion" else text


# --- loading ---------------------------------------------------------------------------------------------


def format_loc(loc: tuple[Any, ...]) -> str:
    """('categories', 'biology', 'uplift_signals', 2, 'pattern') -> 'categories.biology.uplift_signals[2].pattern'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "[key]":
            out += " (key)"
        else:
            out += f".{part}" if out else str(part)
    return out


def _node_line(root: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the YAML node at `loc` (or of its deepest existing ancestor)."""
    node = root
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        nxt = None
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value == str(part):
                    nxt = v if part != "[key]" else k
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            nxt = node.value[part]
        if nxt is None:
            break
        node = nxt
        line = node.start_mark.line + 1
    return line


def _check_duplicate_keys(node: yaml.Node, file: str, path: tuple[Any, ...] = ()) -> None:
    """PyYAML keeps the last of duplicate keys silently; a spec with two `biology:` entries is an error."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for k, v in node.value:
            key = k.value if isinstance(k, yaml.ScalarNode) else str(k)
            line = k.start_mark.line + 1
            if key in seen:
                what = "category id" if path == ("categories",) else "key"
                raise PolicyError(
                    f"duplicate {what} {key!r} (first defined on line {seen[key]})",
                    where=f"{file}:{line} {format_loc(path + (key,))}",
                    hint="each key may appear once; merge or rename the entries",
                )
            seen[key] = line
            _check_duplicate_keys(v, file, path + (key,))
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _check_duplicate_keys(v, file, path + (i,))


def parse_policy(text: str, *, source: str = "<policy>") -> PolicySpec:
    """Validate spec text; errors carry `source:line field.path` and the reason."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise PolicyError(f"not valid YAML: {getattr(exc, 'problem', None) or exc}", where=where) from None
    if not isinstance(data, dict):
        raise PolicyError("the spec must be a YAML mapping (name, version, categories, ...)", where=source)
    _check_duplicate_keys(root, source)
    try:
        return PolicySpec.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            line = _node_line(root, loc)
            msg = str(err["msg"]).removeprefix("Value error, ")
            problems.append((f"{source}:{line} {format_loc(loc)}" if line else f"{source} {format_loc(loc)}", msg))
        where, msg = problems[0]
        if len(problems) > 1:
            msg += "".join(f"\n  {w}: {m}" for w, m in problems[1:])
        raise PolicyError(msg, where=where, hint="fix the field(s) named; see policy_specs/README.md") from None


def load_policy(path: str | Path) -> PolicySpec:
    """Read and validate a spec file; `spec.sha256` is the hash of its bytes."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise PolicyError("no such policy file", where=str(p), hint="pass an existing YAML spec, e.g. " + str(DEFAULT_POLICY_PATH)) from None
    except OSError as exc:
        raise PolicyError(f"cannot read policy file: {exc.strerror}", where=str(p)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError(f"not UTF-8 text (byte {exc.start})", where=str(p)) from None
    spec = parse_policy(text, source=str(p))
    spec._sha256 = hashlib.sha256(raw).hexdigest()
    spec._path = str(p)
    return spec


@lru_cache(maxsize=1)
def default_policy() -> PolicySpec:
    """The bundled `policy_specs/safe_completion_v1.yaml`."""
    return load_policy(DEFAULT_POLICY_PATH)

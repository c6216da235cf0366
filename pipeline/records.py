"""The typed records that flow between stages, and the Arrow schemas of the tables they land in.

Every stage of the pipeline is a plain function from one kind of record to another; the runner only moves
them around. Keeping the records and their schemas in one module is what lets `docs/ARCHITECTURE.md`, the
shard writer, the Hub card and the notebook agree on column names.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

import pyarrow as pa
import xxhash

# The risk areas of the bundled policy spec, seeds and evaluation sets (a policy spec may define others).
RISK_CATEGORIES: tuple[str, ...] = (
    "biology",
    "chemistry",
    "cybersecurity",
    "explosives_pyrotechnics",
    "conventional_weapons",
    "self_harm",
    "drugs_medication",
    "surveillance_privacy",
    "critical_infrastructure",
)

Intent = Literal["benign", "dual_use", "malicious"]
INTENTS: tuple[str, ...] = get_args(Intent)

ResponseMode = Literal["full_compliance", "safe_completion", "refusal_with_alternatives", "hard_refusal"]
RESPONSE_MODES: tuple[str, ...] = get_args(ResponseMode)
REFUSAL_MODES: frozenset[str] = frozenset({"refusal_with_alternatives", "hard_refusal"})

Style = Literal["helpful", "safe_completion", "refusal_boundary"]
STYLES: tuple[str, ...] = get_args(Style)

# Why a prompt ended in the rejected table. Every prompt is either kept or carries exactly one of these.
RejectReason = Literal[
    "invalid_seed",  # the seed row failed validation and --on-invalid-seed skip was given
    "all_unsafe",  # every graded candidate had severity > 0
    "none_helpful_enough",  # safe candidates exist but all are below the helpfulness threshold
    "all_failed",  # no candidate could be sampled or graded (errors, truncation, empty)
]
REJECT_REASONS: tuple[str, ...] = get_args(RejectReason)


_WS = re.compile(r"\s+")


def normalise_text(text: str) -> str:
    """Lower-case, NFKC, collapse whitespace, strip: the form that ids and exact dedup are computed on."""
    return _WS.sub(" ", unicodedata.normalize("NFKC", text)).strip().lower()


def stable_id(*parts: str, prefix: str = "") -> str:
    """A short stable hash id (xxh3-128, hex) over the given parts; identical across processes and runs."""
    h = xxhash.xxh3_128()
    for p in parts:
        h.update(p.encode("utf-8"))
        h.update(b"\x1f")
    return prefix + h.hexdigest()[:24]


def prompt_id_for(text: str) -> str:
    """`prompt_id` is the stable hash of the normalised prompt text, so the same prompt always has the same id."""
    return stable_id(normalise_text(text), prefix="p_")


@dataclass(slots=True, frozen=True)
class Seed:
    """One validated seed row. `line` is where it came from, so later errors can still point at the file."""

    id: str
    prompt: str
    category: str
    intent: str
    source: str | None = None
    notes: str | None = None
    file: str = ""
    line: int = 0


@dataclass(slots=True, frozen=True)
class Prompt:
    """One prompt to sample: a seed as written or one of its expansions."""

    prompt_id: str
    seed_id: str
    prompt: str
    category: str
    intent: str
    method: str  # "seed", "framing:professional", "escalation", "format:table", "rewrite:paraphrase", ...

    @classmethod
    def make(cls, *, seed: Seed, text: str, method: str) -> "Prompt":
        return cls(prompt_id_for(text), seed.id, text, seed.category, seed.intent, method)


@dataclass(slots=True)
class Verdict:
    """What a checker says of one response. `error` set means it could not be graded: never selectable."""

    response_mode: str
    severity: int  # 0..4
    category: str
    helpfulness: float  # 0..10
    violations: list[str] = field(default_factory=list)
    rationale: str = ""
    checker: str = ""
    checker_version: str = ""
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def failed(cls, *, category: str, checker: str, checker_version: str, error: str) -> "Verdict":
        """The verdict of a response that could not be graded: maximal severity so nothing can select it."""
        return cls("hard_refusal", 4, category, 0.0, [], "", checker, checker_version, error)


@dataclass(slots=True)
class Candidate:
    """One sampled teacher response with everything needed to audit it, before and after grading."""

    candidate_id: str
    prompt_id: str
    seed_id: str
    category: str
    intent: str
    method: str
    prompt: str
    teacher: str
    model: str
    style: str
    temperature: float
    top_p: float
    max_tokens: int
    sampling_seed: int
    choice_index: int
    response: str = ""
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: float | None = None
    attempts: int = 0
    error: str | None = None  # sampling failed for good (after retries)
    verdict: Verdict | None = None
    reward: float | None = None  # None when not eligible
    ineligible_reason: str | None = None  # "sampling_error", "truncated", "empty", "grading_error", "unsafe", "below_threshold"
    selected: bool = False


# ---------------------------------------------------------------------------------------------------------
# Arrow schemas of the version's tables. Column order here is the column order on disk.
# ---------------------------------------------------------------------------------------------------------

MESSAGE_TYPE = pa.struct([("role", pa.string()), ("content", pa.string())])
MESSAGES_TYPE = pa.list_(MESSAGE_TYPE)

VERDICT_FIELDS: list[pa.Field] = [
    pa.field("response_mode", pa.string()),
    pa.field("severity", pa.int8()),
    pa.field("verdict_category", pa.string()),
    pa.field("helpfulness", pa.float32()),
    pa.field("violations", pa.list_(pa.string())),
    pa.field("rationale", pa.string()),
    pa.field("checker", pa.string()),
    pa.field("checker_version", pa.string()),
    pa.field("verdict_error", pa.string()),
]

PROMPTS_SCHEMA = pa.schema(
    [
        pa.field("prompt_id", pa.string(), nullable=False),
        pa.field("seed_id", pa.string(), nullable=False),
        pa.field("prompt", pa.string(), nullable=False),
        pa.field("category", pa.string(), nullable=False),
        pa.field("intent", pa.string(), nullable=False),
        pa.field("method", pa.string(), nullable=False),
        pa.field("status", pa.string(), nullable=False),  # "sampled" | "duplicate"
        pa.field("duplicate_of", pa.string()),
        pa.field("shard", pa.int32()),
    ]
)

CANDIDATES_SCHEMA = pa.schema(
    [
        pa.field("candidate_id", pa.string(), nullable=False),
        pa.field("prompt_id", pa.string(), nullable=False),
        pa.field("seed_id", pa.string(), nullable=False),
        pa.field("category", pa.string()),
        pa.field("intent", pa.string()),
        pa.field("method", pa.string()),
        pa.field("prompt", pa.string()),
        pa.field("teacher", pa.string()),
        pa.field("model", pa.string()),
        pa.field("style", pa.string()),
        pa.field("temperature", pa.float32()),
        pa.field("top_p", pa.float32()),
        pa.field("max_tokens", pa.int32()),
        pa.field("sampling_seed", pa.int64()),
        pa.field("choice_index", pa.int16()),
        pa.field("response", pa.string()),
        pa.field("finish_reason", pa.string()),
        pa.field("prompt_tokens", pa.int32()),
        pa.field("completion_tokens", pa.int32()),
        pa.field("latency_ms", pa.float32()),
        pa.field("attempts", pa.int16()),
        pa.field("error", pa.string()),
        *VERDICT_FIELDS,
        pa.field("reward", pa.float32()),
        pa.field("ineligible_reason", pa.string()),
        pa.field("selected", pa.bool_()),
        pa.field("policy_version", pa.string()),
        pa.field("run_id", pa.string()),
    ]
)

SFT_SCHEMA = pa.schema(
    [
        pa.field("prompt_id", pa.string(), nullable=False),
        pa.field("seed_id", pa.string(), nullable=False),
        pa.field("category", pa.string()),
        pa.field("intent", pa.string()),
        pa.field("method", pa.string()),
        pa.field("messages", MESSAGES_TYPE),
        pa.field("candidate_id", pa.string()),
        *VERDICT_FIELDS,
        pa.field("reward", pa.float32()),
        pa.field("teacher", pa.string()),
        pa.field("model", pa.string()),
        pa.field("style", pa.string()),
        pa.field("judge", pa.string()),
        pa.field("policy_name", pa.string()),
        pa.field("policy_version", pa.string()),
        pa.field("run_id", pa.string()),
        pa.field("dataset_version", pa.string()),
    ]
)

# TRL's conversational preference format: prompt is the user turn(s), chosen/rejected the assistant turn(s).
PREFERENCES_SCHEMA = pa.schema(
    [
        pa.field("prompt_id", pa.string(), nullable=False),
        pa.field("category", pa.string()),
        pa.field("intent", pa.string()),
        pa.field("prompt", MESSAGES_TYPE),
        pa.field("chosen", MESSAGES_TYPE),
        pa.field("rejected", MESSAGES_TYPE),
        pa.field("chosen_candidate_id", pa.string()),
        pa.field("rejected_candidate_id", pa.string()),
        pa.field("chosen_response_mode", pa.string()),
        pa.field("chosen_severity", pa.int8()),
        pa.field("chosen_helpfulness", pa.float32()),
        pa.field("rejected_response_mode", pa.string()),
        pa.field("rejected_severity", pa.int8()),
        pa.field("rejected_helpfulness", pa.float32()),
        pa.field("pair_reason", pa.string()),  # "unsafe_vs_safe" | "less_helpful"
        pa.field("policy_version", pa.string()),
        pa.field("run_id", pa.string()),
    ]
)

REJECTED_SCHEMA = pa.schema(
    [
        pa.field("prompt_id", pa.string()),  # null for seed-level rejections
        pa.field("seed_id", pa.string()),
        pa.field("category", pa.string()),
        pa.field("intent", pa.string()),
        pa.field("prompt", pa.string()),
        pa.field("stage", pa.string(), nullable=False),  # "seed" | "selection"
        pa.field("reason", pa.string(), nullable=False),  # one of REJECT_REASONS
        pa.field("detail", pa.string()),
        pa.field("n_candidates", pa.int16()),
        pa.field("best_candidate_id", pa.string()),
        pa.field("best_severity", pa.int8()),
        pa.field("best_helpfulness", pa.float32()),
        pa.field("run_id", pa.string()),
    ]
)

TABLE_SCHEMAS: dict[str, pa.Schema] = {
    "sft": SFT_SCHEMA,
    "preferences": PREFERENCES_SCHEMA,
    "candidates": CANDIDATES_SCHEMA,
    "rejected": REJECTED_SCHEMA,
    "prompts": PROMPTS_SCHEMA,
}


def verdict_columns(v: Verdict | None) -> dict[str, Any]:
    """Flatten a verdict into the VERDICT_FIELDS columns (all null when there is none)."""
    if v is None:
        return {f.name: None for f in VERDICT_FIELDS}
    return {
        "response_mode": v.response_mode,
        "severity": v.severity,
        "verdict_category": v.category,
        "helpfulness": v.helpfulness,
        "violations": list(v.violations),
        "rationale": v.rationale,
        "checker": v.checker,
        "checker_version": v.checker_version,
        "verdict_error": v.error,
    }

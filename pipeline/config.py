"""Run configuration: one YAML file validated with pydantic before any work starts, plus CLI overrides.

`RunConfig()` with no file is the embedded default: local Ray, the bundled scripted teacher, the bundled seeds and
policy, the offline rules checker. Secrets never live here: an endpoint names the *environment variable* that holds
its key (`api_key_env`), and `endpoint_spec()` reads it only when a client is built.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline.errors import ConfigError
from pipeline.records import STYLES

SCRIPTED = "scripted"  # base_url sentinel: start the bundled scripted teacher and point this endpoint at it
REPO_ROOT = Path(__file__).resolve().parent.parent


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Sampling(_Strict):
    temperature: float = Field(0.8, ge=0.0, le=2.0)
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    max_tokens: int = Field(700, ge=1, le=131072)
    n: int = Field(2, ge=1, le=64, description="candidates per request (vLLM shares the prefill across them)")


class Endpoint(_Strict):
    """An OpenAI-compatible endpoint: a teacher or the judge."""

    name: str = Field(min_length=1)
    base_url: str | list[str] = Field(SCRIPTED, description="URL ending in /v1, a list of replica URLs, or 'scripted'")
    model: str = "scripted-teacher-1"
    api_key_env: str | None = Field(None, description="name of the environment variable holding the API key")
    max_concurrency: int = Field(64, ge=1, le=100_000, description="requests in flight across the whole cluster: the "
                                 "adaptive limiter starts here and backs off on 429s, timeouts and rising latency")
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(6, ge=0, le=50)

    @property
    def base_urls(self) -> tuple[str, ...]:
        urls = [self.base_url] if isinstance(self.base_url, str) else list(self.base_url)
        return tuple(u.rstrip("/") for u in urls)

    @property
    def is_scripted(self) -> bool:
        return self.base_urls == (SCRIPTED,)

    @field_validator("base_url")
    @classmethod
    def _urls(cls, v: str | list[str]) -> str | list[str]:
        urls = [v] if isinstance(v, str) else v
        if not urls:
            raise ValueError("at least one base URL is required")
        for u in urls:
            if u != SCRIPTED and not u.startswith(("http://", "https://")):
                raise ValueError(f"{u!r} is neither 'scripted' nor an http(s) URL")
        if SCRIPTED in urls and len(urls) > 1:
            raise ValueError("'scripted' cannot be mixed with real URLs")
        return v


class Teacher(Endpoint):
    sampling: Sampling = Sampling()
    styles: list[str] = Field(default_factory=lambda: list(STYLES))

    @field_validator("styles")
    @classmethod
    def _styles(cls, v: list[str]) -> list[str]:
        bad = [s for s in v if s not in STYLES]
        if bad:
            raise ValueError(f"unknown style(s) {bad}; choose from {list(STYLES)}")
        if not v or len(set(v)) != len(v):
            raise ValueError("styles must be a non-empty list without repeats")
        return v


class Rewrites(_Strict):
    teacher: str | None = Field(None, description="teacher name used for LLM rewrites (default: the first teacher)")
    paraphrases: int = Field(1, ge=0, le=10)
    variants: int = Field(1, ge=0, le=10)
    temperature: float = Field(0.9, ge=0.0, le=2.0)


class Dedup(_Strict):
    near_duplicate_threshold: float = Field(0.8, gt=0.0, le=1.0, description="estimated Jaccard over word n-grams")
    ngram: int = Field(3, ge=1, le=8)
    num_perm: int = Field(64, ge=8, le=512)
    bands: int = Field(16, ge=1)

    @model_validator(mode="after")
    def _bands_divide(self) -> "Dedup":
        if self.num_perm % self.bands:
            raise ValueError(f"bands ({self.bands}) must divide num_perm ({self.num_perm})")
        return self


class Expansion(_Strict):
    max_prompts_per_seed: int = Field(5, ge=1, le=50, description="K: the seed itself counts as one")
    framings: list[Literal["professional", "educational", "ambiguous", "malicious_tinted"]] = Field(
        default_factory=lambda: ["professional", "educational", "ambiguous", "malicious_tinted"]
    )
    escalation: bool = True
    formats: list[Literal["concise", "table", "steps"]] = Field(default_factory=lambda: ["concise", "table"])
    rewrites: Rewrites = Rewrites()
    dedup: Dedup = Dedup()


class Selection(_Strict):
    min_helpfulness: float = Field(5.0, ge=0.0, le=10.0)
    preference_margin: float = Field(2.0, ge=0.0, le=10.0, description="helpfulness gap for a 'less helpful' pair")


class Shards(_Strict):
    prompts_per_shard: int = Field(64, ge=1, le=100_000)


class RayOptions(_Strict):
    address: str | None = Field(None, description="None starts a local Ray; 'auto' joins the running cluster")
    workers: int | None = Field(None, ge=1, description="shard worker actors (default: cluster CPUs, at most 8)")
    shards_in_flight_per_worker: int = Field(3, ge=1, le=64)
    num_cpus_per_worker: float = Field(1.0, gt=0)


class FailureBudget(_Strict):
    max_failed_ratio: float = Field(0.5, gt=0.0, le=1.0, description="failed/finished requests ratio that stops the run")
    min_requests: int = Field(20, ge=1, description="requests finished before the ratio is enforced")


class ScriptedTeacherOptions(_Strict):
    """Knobs of the bundled teacher started for 'scripted' endpoints (names as in ScriptedTeacherConfig)."""

    latency_base: float = Field(0.02, ge=0.0, description="seconds per request")
    latency_per_token: float = Field(0.0, ge=0.0)
    jitter: float = Field(0.01, ge=0.0)


class RunConfig(_Strict):
    dataset: str = Field("safe-completion-demo", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    seeds: list[str] = Field(default_factory=lambda: [str(REPO_ROOT / "seeds")])
    on_invalid_seed: Literal["fail", "skip"] = "fail"
    policy: str = str(REPO_ROOT / "policy_specs" / "safe_completion_v1.yaml")
    output: str = str(REPO_ROOT / "outputs")
    teachers: list[Teacher] = Field(default_factory=lambda: [Teacher(name="scripted")])
    checker: Literal["rules", "judge", "ensemble"] = "rules"
    judge: Endpoint | None = None
    expansion: Expansion = Expansion()
    selection: Selection = Selection()
    shards: Shards = Shards()
    ray: RayOptions = RayOptions()
    failure_budget: FailureBudget = FailureBudget()
    scripted_teacher: ScriptedTeacherOptions = ScriptedTeacherOptions()

    @model_validator(mode="after")
    def _cross_checks(self) -> "RunConfig":
        names = [t.name for t in self.teachers]
        if not names:
            raise ValueError("teachers: at least one teacher is required")
        if len(set(names)) != len(names):
            raise ValueError(f"teachers: names must be unique, got {names}")
        if self.checker in ("judge", "ensemble") and self.judge is None:
            raise ValueError(f"checker '{self.checker}' needs a 'judge' endpoint")
        r = self.expansion.rewrites
        if r.teacher is not None and r.teacher not in names:
            raise ValueError(f"expansion.rewrites.teacher: {r.teacher!r} is not one of the teachers {names}")
        return self

    # -- derived -------------------------------------------------------------------------------------------
    def rewrite_teacher(self) -> Teacher:
        name = self.expansion.rewrites.teacher or self.teachers[0].name
        return next(t for t in self.teachers if t.name == name)

    def public_dict(self) -> dict[str, Any]:
        """The effective config as stored in the manifest: plain JSON, no secrets (keys live only in the env)."""
        return self.model_dump(mode="json")

    def fingerprint(self, *, seeds_sha256: str, policy_sha256: str) -> str:
        """Hash of everything that decides the dataset's content; a resumed run must match it exactly."""
        content = {"seeds_sha256": seeds_sha256, "policy_sha256": policy_sha256, **self.fingerprint_parts()}
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()

    def fingerprint_parts(self) -> dict[str, Any]:
        """The fingerprinted sections by name, so a refused resume can say which one changed."""
        return {
            "teachers": [t.model_dump(include={"name", "model", "sampling", "styles"}) for t in self.teachers],
            "checker": self.checker,
            "judge": self.judge.model_dump(include={"name", "model"}) if self.judge else None,
            "expansion": self.expansion.model_dump(),
            "selection": self.selection.model_dump(),
            "shards": self.shards.model_dump(),
            "on_invalid_seed": self.on_invalid_seed,
        }


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("function-after", "function-before") or str(part).startswith(("function-", "union[")):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _raise_validation(exc: ValidationError, source: str) -> None:
    lines = []
    for err in exc.errors():
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field (check the spelling; see configs/vllm.example.yaml for every field)"
        lines.append(f"{_loc(tuple(p for p in err['loc'] if p not in ('str', 'list[str]')))}: {msg}")
    raise ConfigError(
        "invalid configuration:\n  " + "\n  ".join(lines),
        where=source,
        hint="fix the fields above; `python -m pipeline run --help` lists the flags that override them",
    )


def _set_path(data: dict[str, Any], dotted: str, value: Any, defaults: dict[str, Any]) -> None:
    """Set `dotted` in `data`; a missing section starts as its default, so `teachers.0.x` works without a file."""
    keys = dotted.split(".")
    node: Any = data
    default: Any = defaults
    for k in keys[:-1]:
        if isinstance(node, list):
            node, default = node[int(k)], None
        else:
            default = default.get(k) if isinstance(default, dict) else None
            if k not in node:
                node[k] = copy.deepcopy(default) if isinstance(default, (dict, list)) else {}
            node = node[k]
    last = keys[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Read YAML (or nothing: embedded defaults), apply dotted-path overrides, validate once.

    Overrides are `{"selection.min_helpfulness": 6, "output": "/tmp/x"}`; string values may be YAML (`[a, b]`,
    `null`) and are converted to the field's type, so `--set shards.prompts_per_shard=32` works.
    """
    source = str(path) if path else "embedded defaults"
    data: dict[str, Any] = {}
    if path:
        p = Path(path)
        if not p.is_file():
            raise ConfigError("config file not found", where=str(p), hint="pass an existing YAML file to --config")
        try:
            loaded = yaml.safe_load(p.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{p}:{mark.line + 1}" if mark else str(p)
            raise ConfigError(f"not valid YAML: {getattr(exc, 'problem', exc)}", where=where) from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError("the top level must be a mapping of fields", where=str(p))
        data = loaded
        _resolve_relative_paths(data, p.parent)
    if overrides:
        defaults = RunConfig().model_dump(mode="json")
        for key, value in overrides.items():
            if isinstance(value, str) and value != "":
                try:
                    parsed = yaml.safe_load(value)
                except yaml.YAMLError:
                    parsed = value
                # Text, lists, mappings and null come from YAML; numbers, booleans and dates stay text for pydantic
                # to convert to the field's type: `--dataset 2024` stays a name, `prompts_per_shard=32` a number.
                if parsed is None or isinstance(parsed, (str, list, dict)):
                    value = parsed
            try:
                _set_path(data, key, value, defaults)
            except (IndexError, ValueError, TypeError, AttributeError):
                raise ConfigError(f"cannot set {key!r}: no such list item or field", where="--set") from None
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        _raise_validation(exc, source)
        raise  # unreachable


def _resolve_relative_paths(data: dict[str, Any], base: Path) -> None:
    """Relative paths in a config file: tried against the working directory, the file's folder, then the repository."""

    def fix(value: str) -> str:
        if "://" in value or value.startswith("hf:") or Path(value).is_absolute():
            return value
        for root in (Path.cwd(), base, REPO_ROOT):
            if (root / value).exists():
                return str((root / value).resolve())
        return value

    if isinstance(data.get("policy"), str):
        data["policy"] = fix(data["policy"])
    if isinstance(data.get("seeds"), str):
        data["seeds"] = [data["seeds"]]
    if isinstance(data.get("seeds"), list):
        data["seeds"] = [fix(s) if isinstance(s, str) else s for s in data["seeds"]]


def resolve_api_key(endpoint: Endpoint, field_path: str) -> str | None:
    """Read the endpoint's key from the environment; a named but unset variable is a clear error."""
    if endpoint.api_key_env is None:
        return None
    key = os.environ.get(endpoint.api_key_env)
    if not key:
        file_var = os.environ.get(f"{endpoint.api_key_env}_FILE")
        if file_var and Path(file_var).is_file():
            key = Path(file_var).read_text(encoding="utf-8").strip()
    if not key:
        raise ConfigError(
            f"environment variable {endpoint.api_key_env} is not set",
            where=f"{field_path}.api_key_env",
            hint=f"export {endpoint.api_key_env}=... (or {endpoint.api_key_env}_FILE=/path/to/keyfile) before running",
        )
    return key


def endpoint_spec(endpoint: Endpoint, field_path: str = "judge", *, base_urls: tuple[str, ...] | None = None):
    """Build the request path's `EndpointSpec` for an endpoint, reading its API key from the environment.

    `base_urls` replaces the configured URLs (the runner passes the bundled teacher's URL for 'scripted').
    """
    from pipeline.teacher_client import EndpointSpec

    urls = base_urls or endpoint.base_urls
    if urls == (SCRIPTED,):
        raise ConfigError(
            "this endpoint is 'scripted' but no scripted teacher is running here",
            where=f"{field_path}.base_url",
            hint="give a real URL, or start one with `python -m pipeline scripted-teacher --port 8000`",
        )
    return EndpointSpec(
        name=endpoint.name,
        base_urls=urls,
        model=endpoint.model,
        api_key=resolve_api_key(endpoint, field_path),
        max_concurrency=endpoint.max_concurrency,
        timeout_s=endpoint.timeout_s,
        max_retries=endpoint.max_retries,
    )

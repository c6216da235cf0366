"""The dataset card (`README.md`): Hub YAML front matter plus a body a reader can trust and act on.

The front matter's `configs` is what makes `load_dataset(repo, "sft", revision=version)` find the right files;
the body says what the data is and is not for, which policy and teachers made it, its numbers, and its lineage.
"""

from __future__ import annotations

from typing import Any

import polars as pl
import yaml

from pipeline.report.plots import PLOT_TITLES
from pipeline.report.stats import VersionStats
from pipeline.report.tables import format_value
from pipeline.versions import HUB_TABLES, Version, scripted_teachers

CONFIG_DESCRIPTIONS = {
    "sft": "one kept example per prompt in TRL conversational format (`messages`), with its verdict and provenance",
    "preferences": "TRL preference pairs (`prompt`, `chosen`, `rejected`): chosen is the kept answer, rejected an "
    "unsafe or clearly less helpful candidate for the same prompt; both verdicts kept",
    "candidates": "every sampled candidate with sampling parameters, verdict, reward and whether it was selected",
    "rejected": "prompts (and invalid seeds) with no kept answer, with the reason",
}
_SIZE_BUCKETS = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                 (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"))


def size_category(n: int) -> str:
    """The Hub's size_categories bucket for n rows."""
    for limit, name in _SIZE_BUCKETS:
        if n < limit:
            return name
    return "n>100M"


def front_matter(version: Version, *, license: str, data_files: dict[str, str]) -> dict[str, Any]:
    """The YAML metadata block. `data_files` maps each published config to its glob inside the repo; the first
    one (sft, unless it is empty) is the default."""
    kept = int(version.counts.get("kept") or 0)
    configs = []
    for name, pattern in data_files.items():
        entry: dict[str, Any] = {"config_name": name, "data_files": [{"split": "train", "path": pattern}]}
        if not configs:
            entry["default"] = True
        configs.append(entry)
    return {
        "pretty_name": f"{version.dataset} {version.version}: safe-completion SFT data",
        "license": license,
        "language": ["en"],
        "task_categories": ["text-generation"],
        "tags": ["safety", "safe-completion", "sft", "preference", "synthetic", "trl"],
        "size_categories": [size_category(kept)],
        "configs": configs,
    }


def _cell(value: Any) -> str:
    return ("-" if value is None else str(value)).replace("|", "\\|").replace("\n", " ")


def md_table(frame: pl.DataFrame) -> str:
    """A GitHub-flavoured Markdown table with the report's cell formatting."""
    head = "| " + " | ".join(frame.columns) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    rows = [
        "| " + " | ".join(_cell(format_value(c, v)) for c, v in zip(frame.columns, r)) + " |" for r in frame.iter_rows()
    ]
    return "\n".join([head, rule, *rows])


def _kv_table(pairs: list[tuple[str, Any]], headers: tuple[str, str] = ("", "")) -> str:
    lines = [f"| {headers[0]} | {headers[1]} |", "| --- | --- |"]
    lines += [f"| {_cell(k)} | {_cell(v)} |" for k, v in pairs]
    return "\n".join(lines)


def _flat_counts(counts: dict[str, Any]) -> list[tuple[str, Any]]:
    return [(k, v) for k, v in counts.items() if not isinstance(v, dict)]


def render_card(
    version: Version,
    stats: VersionStats,
    *,
    repo_id: str,
    license: str,
    data_files: dict[str, str],
    table_rows: dict[str, int],
    images: dict[str, str],
) -> str:
    """The full README.md. `data_files` holds the published configs only; `images` maps plot names to their paths
    inside the repo."""
    m = version.manifest
    policy = version.policy
    meta = yaml.safe_dump(front_matter(version, license=license, data_files=data_files), sort_keys=False)
    scripted = scripted_teachers(version)
    out: list[str] = [f"---\n{meta}---", f"# {version.dataset} {version.version}: safe-completion SFT data"]
    if scripted:
        out.append(
            "> [!WARNING]\n> **DRY-RUN DATA: NOT FOR TRAINING.** This version was made with the bundled scripted "
            f"teacher ({', '.join(scripted)}): canned template responses with placeholders, produced to test the "
            "pipeline end to end. Its numbers describe the test harness, not any model. Do not train on it."
        )
    out += [
        "## What this is",
        "Prompts in dual-use risk areas (benign look-alikes, dual-use and malicious intents), candidate responses "
        "sampled from teacher models, each graded by a severity-graded policy checker (severity 0-4, helpfulness "
        "0-10, response mode), and per prompt the most helpful safe candidate kept. It follows the output-centric "
        "*safe-completion* approach (OpenAI, \"From Hard Refusals to Safe-Completions\", 2025): prefer answers that "
        "help as much as is safe over refusing by intent.",
        "**Intended uses:** supervised fine-tuning (`sft`) and preference tuning (`preferences`) of assistants "
        "toward safe completions; studying graders and teachers (`candidates`, `rejected`).",
        "**Not for:** training without your own review (grades come from an automated checker and can be wrong); "
        "evaluating a model's safety (prompts are not a benchmark); extracting harmful content: unsafe candidates "
        "are kept in `candidates` for auditing, with their severity, and must not be used as training targets.",
        "## Load it",
        f"```python\nfrom datasets import load_dataset\n\nsft = load_dataset(\"{repo_id}\", \"sft\", "
        f"revision=\"{version.version}\", split=\"train\")\n```",
        "## Configs",
        _kv_table(
            [
                (f"`{n}` ({table_rows.get(n, 0)} rows)",
                 CONFIG_DESCRIPTIONS[n] if n in data_files else "empty in this version: not published as a config")
                for n in HUB_TABLES
            ],
            ("config", "contents"),
        ),
        "## Policy, teachers and judge",
        _kv_table(
            [
                ("policy", policy.get("name")),
                ("policy version", policy.get("version")),
                ("policy sha256", f"`{policy.get('sha256')}`"),
                ("checker", _describe(m.get("checker"))),
                ("judge", _describe(m.get("judge")) if m.get("judge") else "none (rules checker only)"),
            ],
            ("", ""),
        ),
        _teachers_table(m.get("teachers") or []),
        "## Counts",
        _kv_table(_flat_counts(version.counts), ("count", "value")),
        "### Severity of usable candidates",
        md_table(pl.DataFrame({"severity": [str(s) for s in stats.severity_histogram],
                               "candidates": list(stats.severity_histogram.values())})),
        "### Severity of unsafe candidates per teacher and style",
        md_table(stats.severity_by_teacher_style),
        "### Response modes",
        "Usable candidates by style:",
        md_table(stats.candidate_modes),
        "Kept examples by intent:",
        md_table(stats.kept_modes),
        "### By intent: kept set vs a refusal-boundary policy",
        "`kept` is this dataset; `refusal-boundary (sim.)` is what a comply-if-benign-else-refuse policy would have "
        "answered from the same candidates (definition in the project's docs/PUBLISHING.md).",
        md_table(stats.headline),
        "### Yield per risk category",
        md_table(stats.category_yield),
        "### Over-refusal on benign prompts",
        f"Kept benign examples that are refusals: {stats.summary['kept_benign_refusals']} of "
        f"{stats.summary['kept_benign']}. Refusals among usable benign candidates, per teacher and style:",
        md_table(stats.over_refusal),
        "## Plots",
        *[f"![{PLOT_TITLES.get(name, name)}]({path})" for name, path in images.items()],
        "## Provenance",
        _kv_table(
            [
                ("dataset", version.dataset),
                ("version", version.version),
                ("run id", f"`{version.run_id}`"),
                ("created", m.get("created_at")),
                ("finished", m.get("finished_at")),
                ("config fingerprint", f"`{m.get('config_fingerprint')}`"),
                ("seeds", _describe_seeds(m.get("seeds") or {})),
                ("packages", ", ".join(f"{k} {v}" for k, v in (m.get("packages") or {}).items())),
            ],
            ("", ""),
        ),
        "## Lineage",
        _lineage(version),
    ]
    return "\n\n".join(out) + "\n"


def _describe(entry: Any) -> str:
    if not isinstance(entry, dict):
        return "-" if entry is None else str(entry)
    return " ".join(str(entry[k]) for k in ("name", "model", "version") if entry.get(k) is not None)


def _describe_seeds(seeds: dict[str, Any]) -> str:
    sources = ", ".join(str(s) for s in seeds.get("sources") or [])
    return f"{seeds.get('count', '-')} seeds from {sources or '-'} (sha256 `{seeds.get('sha256', '-')}`)"


def _teachers_table(teachers: list[dict[str, Any]]) -> str:
    lines = ["| teacher | model | styles | sampling |", "| --- | --- | --- | --- |"]
    for t in teachers:
        sampling = ", ".join(f"{k}={v}" for k, v in (t.get("sampling") or {}).items())
        cells = (t.get("name"), t.get("model"), ", ".join(t.get("styles") or []), sampling)
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines)


def _lineage(version: Version) -> str:
    parent = version.parent
    if not parent:
        return "First version of this dataset line: sampled from teachers, no parent."
    lines = [
        f"Derived from **{parent.get('version')}** (regraded from its stored candidates, no new teacher calls)."
        f" Tag `{parent.get('version')}` holds the parent if it was published.",
    ]
    changes = parent.get("changes") or {}
    if changes:
        pairs = [(k, yaml.safe_dump(v, default_flow_style=True).strip() if isinstance(v, (dict, list)) else v)
                 for k, v in changes.items()]
        lines.append(_kv_table(pairs, ("change", "value")))
    return "\n\n".join(lines)

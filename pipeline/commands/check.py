"""`python -m pipeline check INPUT -o OUTPUT`: grade arbitrary (prompt, response) rows with a policy checker.

Every input row comes out once, in order, with a `verdict` object added; a row that cannot be graded (a
malformed line, a missing field, a judge that never answered) gets a verdict whose `error` says why, and
malformed input is also reported with its line number. Other fields pass through untouched.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError

DESCRIPTION = (
    "Grade (prompt, response) pairs with the policy checker. INPUT is JSONL or Parquet with `prompt` (a string "
    "or a list of {role, content} messages) and `response` (a string); `id`, `category`, `intent` and any other "
    "fields pass through. OUTPUT (JSONL, or Parquet by extension) has every input row, in order, plus `verdict`."
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="grade (prompt, response) pairs with the policy checker", description=DESCRIPTION)
    p.add_argument("input", metavar="INPUT", help="JSONL or Parquet file of rows to grade")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT", help="where to write graded rows (.jsonl or .parquet)")
    p.add_argument("--checker", choices=("rules", "judge", "ensemble"), default="rules",
                   help="rules: offline and fast (default); judge: the LLM judge; ensemble: both (judge endpoint from --config)")
    p.add_argument("--policy", metavar="FILE", help="policy spec (default: the config's policy, else the bundled v1 spec)")
    p.add_argument("--config", metavar="FILE", help="run config whose `judge` section names the judge endpoint")
    p.add_argument("--samples", type=int, default=1, metavar="K", help="judge self-consistency samples per row (default 1)")
    p.set_defaults(func=run)


def read_rows(path: Path) -> list[tuple[str, dict[str, Any] | None, str | None]]:
    """(where, row, problem) for every input row: JSONL lines (blank lines skipped) or Parquet rows."""
    if not path.is_file():
        raise PipelineError("input file not found", where=str(path), hint="pass an existing .jsonl or .parquet file")
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise PipelineError(f"not a readable Parquet file: {exc}", where=str(path)) from None
        return [(f"{path}:row {i + 1}", r, None) for i, r in enumerate(table.to_pylist())]
    out: list[tuple[str, dict[str, Any] | None, str | None]] = []
    with path.open(encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{path}:{n}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                out.append((where, None, f"invalid JSON ({exc.msg} at column {exc.colno})"))
                continue
            if not isinstance(row, dict):
                out.append((where, None, f"expected a JSON object, got {type(row).__name__}"))
                continue
            out.append((where, row, None))
    return out


def row_problem(row: dict[str, Any]) -> str | None:
    """Why a parsed row cannot be graded, or None."""
    prompt, response = row.get("prompt"), row.get("response")
    if prompt is None:
        return "missing field 'prompt'"
    if isinstance(prompt, list):
        if not all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in prompt):
            return "'prompt' messages must be objects with a string 'content'"
    elif not isinstance(prompt, str):
        return f"'prompt' must be a string or a list of messages, got {type(prompt).__name__}"
    if response is None:
        return "missing field 'response'"
    if not isinstance(response, str):
        return f"'response' must be a string, got {type(response).__name__}"
    return None


def run(args: argparse.Namespace) -> int:
    from pipeline.console import make_console
    from rich.table import Table

    from pipeline.checkers import Pair, grade_pairs, prompt_text
    from pipeline.policy import default_policy, load_policy
    from pipeline.records import INTENTS, Verdict

    console = make_console(stderr=True)
    config = None
    if args.config:
        from pipeline.config import load_config

        config = load_config(args.config)
    policy_path = args.policy or (config.policy if config else None)
    spec = load_policy(policy_path) if policy_path else default_policy()
    if args.samples < 1:
        raise PipelineError("--samples must be at least 1", where="--samples")

    rows = read_rows(Path(args.input))
    problems: list[tuple[str, str]] = []
    todo: list[int] = []
    pairs: list[Pair] = []
    for i, (where, row, problem) in enumerate(rows):
        problem = problem or (row_problem(row) if row is not None else "unreadable row")
        if problem:
            problems.append((where, problem))
            continue
        assert row is not None
        category = row.get("category") if isinstance(row.get("category"), str) else None
        intent = row.get("intent") if row.get("intent") in INTENTS else None
        pairs.append(Pair(prompt_text(row["prompt"]), row["response"], category, intent))
        todo.append(i)

    checker_name = args.checker
    start = time.perf_counter()
    verdicts = grade_pairs(
        checker_name, spec, pairs, judge_endpoint=config.judge if config else None, samples=args.samples
    )
    elapsed = time.perf_counter() - start
    by_index = dict(zip(todo, verdicts))
    problem_at = {where: why for where, why in problems}

    out_rows: list[dict[str, Any]] = []
    for i, (where, row, _) in enumerate(rows):
        if i in by_index:
            v = by_index[i]
            out_rows.append({**(row or {}), "verdict": v.to_dict()})
            continue
        why = problem_at[where]
        failed = Verdict.failed(category=str((row or {}).get("category") or "unspecified"), checker=checker_name,
                                checker_version="", error=f"ungradable input at {where}: {why}")
        line = where.rsplit(":", 1)[-1]
        base = dict(row) if row is not None else {"input_line": int(line) if line.isdigit() else line, "input_error": why}
        out_rows.append({**base, "verdict": failed.to_dict()})

    write_rows(Path(args.output), out_rows)

    errors = sum(1 for r in out_rows if r["verdict"]["error"])
    table = Table(title=f"check: {checker_name} ({spec.name} {spec.version})")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("rows", str(len(out_rows)))
    table.add_row("graded", str(len(out_rows) - errors))
    table.add_row("error verdicts", str(errors))
    table.add_row("malformed/invalid input rows", str(len(problems)))
    for mode in ("full_compliance", "safe_completion", "refusal_with_alternatives", "hard_refusal"):
        table.add_row(f"mode {mode}", str(sum(1 for v in verdicts if not v.error and v.response_mode == mode)))
    for sev in range(5):
        table.add_row(f"severity {sev}", str(sum(1 for v in verdicts if not v.error and v.severity == sev)))
    table.add_row("rows/s", f"{len(pairs) / elapsed:.0f}" if elapsed > 0 else "-")
    console.print(table)
    for where, why in problems[:50]:
        console.print(f"[yellow]invalid input[/] {where}: {why}", highlight=False)
    if len(problems) > 50:
        console.print(f"... and {len(problems) - 50} more invalid rows")
    console.print(f"wrote {len(out_rows)} rows to {args.output}", highlight=False)
    return 1 if problems else 0


def write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write JSONL, or Parquet for a .parquet path, under a temporary name then rename (no half-written file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            import pyarrow as pa
            import pyarrow.parquet as pq

            try:
                table = pa.Table.from_pylist(rows)
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                raise PipelineError(
                    f"rows cannot form one Parquet table: {exc}", where=str(path),
                    hint="pass-through fields must have one type across rows; write .jsonl instead",
                ) from None
            pq.write_table(table, tmp, compression="zstd")
        else:
            with tmp.open("w", encoding="utf-8") as fh:
                for r in rows:
                    fh.write(json.dumps(r, ensure_ascii=False) + "\n")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()

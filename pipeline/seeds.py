"""Load seed prompts from JSONL/CSV/Parquet files, directories or Hugging Face datasets, and validate every row.

Every row ends in exactly one place: a valid `Seed`, or an `InvalidSeed` that says where it is (file:line) and
why. With on_invalid="fail" every problem is collected before raising one `SeedError`, so a user can fix a file
in one pass; with "skip" the invalid rows are returned for the rejected table. Sources are read once, row by row,
and hashed as they stream by, so `SeedLoad.sha256` identifies the seed content without a second read.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import sys
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

import pyarrow as pa

from pipeline.errors import PipelineError, SeedError
from pipeline.records import INTENTS, Seed

SUPPORTED_SUFFIXES: tuple[str, ...] = (".jsonl", ".json", ".csv", ".parquet")
REQUIRED_FIELDS: tuple[str, ...] = ("id", "prompt", "category", "intent")
OPTIONAL_FIELDS: tuple[str, ...] = ("source", "notes")
CONTROL_SOURCE = "hand-written:control"  # `source` of benign look-alike controls ("how do I kill a Python process")
HF_PREFIX = "hf:"
SKIP_HINT = (
    "fix the rows listed above, or pass `--on-invalid-seed skip` to record them in the rejected table "
    "(reason invalid_seed) instead"
)


@dataclass(slots=True, frozen=True)
class InvalidSeed:
    """A seed row that failed validation; the fields it still had are kept for the rejected table."""

    where: str  # "file.jsonl:12", "file.csv:3", "file.parquet:row 3", "hf:name@train:row 3"
    reason: str
    raw: dict[str, Any] | None = None
    seed_id: str | None = None
    category: str | None = None
    intent: str | None = None
    prompt: str | None = None


@dataclass(slots=True)
class SeedLoad:
    """Valid seeds in source order, invalid rows, the content hash, and the concrete sources that were read."""

    seeds: list[Seed]
    invalid: list[InvalidSeed]
    sha256: str
    sources: list[str]


@dataclass(slots=True, frozen=True)
class _Row:
    """One raw row as read, with its location. `error` set means it is unusable whatever its fields say."""

    file: str
    line: int
    where: str
    obj: dict[str, Any] | None = None
    error: str | None = None
    text: str | None = None  # raw text of a row that did not parse (hashed, and salvaged for the rejected table)


def load_seeds(
    sources: Sequence[str],
    *,
    categories: Collection[str] | None = None,
    on_invalid: Literal["fail", "skip"] = "fail",
) -> SeedLoad:
    """Read and validate every row of `sources` (files, directories, `hf:<id or path>[@split]`).

    `categories`, when given, is the set of allowed category ids (from the policy spec). Raises `SeedError`
    listing every invalid row when on_invalid="fail" (or when no row at all is valid), and `PipelineError`
    for missing/unreadable/unsupported sources or an empty seed set.
    """
    if on_invalid not in ("fail", "skip"):
        raise PipelineError(f"on_invalid must be 'fail' or 'skip', got {on_invalid!r}")
    readers = _resolve_sources(sources)
    allowed = frozenset(categories) if categories is not None else None
    digest = hashlib.sha256()
    seeds: list[Seed] = []
    invalid: list[InvalidSeed] = []
    first_seen: dict[str, str] = {}
    for _name, read in readers:
        for row in read():
            digest.update(_canonical(row))
            digest.update(b"\n")
            outcome = _check_row(row, allowed, first_seen)
            (seeds if isinstance(outcome, Seed) else invalid).append(outcome)
    names = [name for name, _ in readers]
    if not seeds and not invalid:
        raise PipelineError(
            "no seed rows found",
            where=", ".join(names),
            hint="add rows with id, prompt, category and intent (see seeds/README.md), or point at another source",
        )
    if invalid and (on_invalid == "fail" or not seeds):
        hint = SKIP_HINT if seeds else "every seed row is invalid, so skipping them would leave nothing to run"
        raise SeedError([(bad.where, bad.reason) for bad in invalid], hint=hint)
    return SeedLoad(seeds=seeds, invalid=invalid, sha256=digest.hexdigest(), sources=names)


def is_control(seed: Seed) -> bool:
    """A benign look-alike control: benign intent, marked with source "hand-written:control"."""
    return seed.intent == "benign" and seed.source == CONTROL_SOURCE


def coverage_markdown(seeds: Iterable[Seed]) -> str:
    """A Markdown table of seed counts per category x intent (plus benign controls), for the seeds README."""
    counts: Counter[tuple[str, str]] = Counter()
    controls: Counter[str] = Counter()
    for s in seeds:
        counts[(s.category, s.intent)] += 1
        controls[s.category] += is_control(s)
    cats = sorted({c for c, _ in counts})
    head = ["category", *INTENTS, "total", "of which controls"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for c in [*cats, None]:
        row = [counts[(c, i)] if c else sum(counts[(k, i)] for k in cats) for i in INTENTS]
        ctl = controls[c] if c else sum(controls.values())
        lines.append("| " + " | ".join([c or "**total**", *map(str, row), str(sum(row)), str(ctl)]) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------------------


def _check_row(row: _Row, allowed: frozenset[str] | None, first_seen: dict[str, str]) -> Seed | InvalidSeed:
    """Validate one row; registers its id (even if otherwise invalid) so a later duplicate is caught."""
    if row.error is not None or row.obj is None:
        known = row.obj if row.obj is not None else _salvage(row.text or "")
        return InvalidSeed(row.where, row.error or "unreadable row", row.obj, *_known(known))
    obj = row.obj
    reasons = _problems(obj, allowed)
    seed_id = obj.get("id")
    if isinstance(seed_id, str) and seed_id.strip():
        if seed_id in first_seen:
            reasons.append(f"duplicate id {seed_id!r} (first seen at {first_seen[seed_id]})")
        else:
            first_seen[seed_id] = row.where
    if reasons:
        return InvalidSeed(row.where, "; ".join(reasons), obj, *_known(obj))
    return Seed(
        id=obj["id"],
        prompt=obj["prompt"],
        category=obj["category"],
        intent=obj["intent"],
        source=obj.get("source"),
        notes=obj.get("notes"),
        file=row.file,
        line=row.line,
    )


def _problems(obj: dict[str, Any], allowed: frozenset[str] | None) -> list[str]:
    """Every reason this object is not a valid seed (empty list when it is)."""
    reasons: list[str] = []
    missing = [f for f in REQUIRED_FIELDS if obj.get(f) is None]
    if missing:
        reasons.append("missing required field(s): " + ", ".join(missing))
    for f in REQUIRED_FIELDS:
        v = obj.get(f)
        if v is None:
            continue
        if not isinstance(v, str):
            reasons.append(f"field {f!r} must be a string, got {_type_name(v)}")
        elif not v.strip():
            reasons.append(f"field {f!r} is empty or whitespace")
        elif f == "id" and v != v.strip():
            reasons.append(f"id {v!r} has leading or trailing whitespace")
        elif f == "intent" and v not in INTENTS:
            reasons.append(f"unknown intent {v!r} (expected one of: {', '.join(INTENTS)})")
        elif f == "category" and allowed is not None and v not in allowed:
            reasons.append(f"unknown category {v!r} (expected one of: {', '.join(sorted(allowed))})")
    for f in OPTIONAL_FIELDS:
        v = obj.get(f)
        if v is not None and not isinstance(v, str):
            reasons.append(f"field {f!r} must be a string or null, got {_type_name(v)}")
    return reasons


def _known(obj: dict[str, Any]) -> tuple[str | None, str | None, str | None, str | None]:
    """(seed_id, category, intent, prompt) as far as they are strings, for the rejected table."""

    def text(field: str) -> str | None:
        value = obj.get(field)
        return value if isinstance(value, str) else None

    return text("id"), text("category"), text("intent"), text("prompt")


def _type_name(v: Any) -> str:
    names = {dict: "object", list: "array", bool: "boolean", int: "integer", float: "number"}
    return names.get(type(v), type(v).__name__)


_FIELD_RE = re.compile(r'"(id|category|intent|prompt)"\s*:\s*"((?:[^"\\]|\\.)*)"')


def _salvage(text: str) -> dict[str, str]:
    """Best-effort recovery of string fields from a line that is not valid JSON (for the rejected table only)."""
    found: dict[str, str] = {}
    for key, val in _FIELD_RE.findall(text):
        try:
            found.setdefault(key, json.loads(f'"{val}"'))
        except ValueError:
            continue
    return found


def _canonical(row: _Row) -> bytes:
    """Canonical bytes of a row: sorted-key compact JSON without nulls, or the raw text of an unparseable row.

    Key order, whitespace, blank lines, file names and the file format do not change it; any value does.
    """
    if row.obj is None:
        return b"\x00" + (row.text or "").encode("utf-8")
    kept = {k: v for k, v in row.obj.items() if v is not None}
    return json.dumps(kept, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str).encode()


# ---------------------------------------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------------------------------------

_Reader = Callable[[], Iterator[_Row]]


def _resolve_sources(sources: Sequence[str]) -> list[tuple[str, _Reader]]:
    """Expand sources into concrete (name, reader) pairs, checking every path before anything is read."""
    if isinstance(sources, str):
        sources = [sources]
    if not sources:
        raise PipelineError("no seed sources given", hint="pass seed files or directories, e.g. `seeds/`")
    out: list[tuple[str, _Reader]] = []
    seen: dict[Path, str] = {}
    for src in sources:
        if src.startswith(HF_PREFIX):
            out.append((src, _hf_reader(src)))
            continue
        path = Path(src)
        if path.is_dir():
            files = _directory_files(path)
        elif path.is_file():
            files = [path]
        else:
            raise PipelineError("seed source not found", where=src, hint="check the path (relative to the cwd)")
        for f in files:
            key = f.resolve()
            if key in seen:
                raise PipelineError(
                    f"seed file is listed more than once (also via {seen[key]})",
                    where=str(f),
                    hint="pass each file or directory once",
                )
            seen[key] = src
            out.append((str(f), _file_reader(f)))
    return out


def _directory_files(directory: Path) -> list[Path]:
    """Supported files directly in `directory`, sorted; README.md, hidden files and subdirectories are ignored."""
    files: list[Path] = []
    for p in sorted(directory.iterdir()):
        if p.is_dir() or p.name.startswith(".") or p.name.lower() == "readme.md":
            continue
        if p.suffix.lower() not in SUPPORTED_SUFFIXES:
            raise PipelineError(
                f"unsupported file in seed directory (expected {', '.join(SUPPORTED_SUFFIXES)})",
                where=str(p),
                hint="move it out of the seed directory or convert it to JSONL",
            )
        files.append(p)
    if not files:
        raise PipelineError(
            f"no seed files ({', '.join(SUPPORTED_SUFFIXES)}) in directory",
            where=str(directory),
            hint="add seed files or point at another directory",
        )
    return files


def _file_reader(path: Path) -> _Reader:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        return lambda: _jsonl_rows(path)
    if suffix == ".csv":
        return lambda: _csv_rows(path)
    if suffix == ".parquet":
        return lambda: _parquet_rows(path)
    raise PipelineError(
        f"unsupported seed file type {suffix or '(none)'!r} (expected {', '.join(SUPPORTED_SUFFIXES)})",
        where=str(path),
        hint="convert it to JSONL, CSV or Parquet, or load it with hf:<path>",
    )


def _unreadable(path: Path, exc: OSError) -> PipelineError:
    reason = exc.strerror or str(exc)
    return PipelineError(f"cannot read seed file: {reason}", where=str(path), hint="check the file permissions")


def _open_binary(path: Path) -> BinaryIO:
    try:
        return open(path, "rb")
    except OSError as exc:
        raise _unreadable(path, exc) from None


def _jsonl_rows(path: Path) -> Iterator[_Row]:
    """One row per non-blank physical line (1-based); a line that is not UTF-8 or not JSON is an invalid row."""
    name = str(path)
    first = True
    with _open_binary(path) as fh:
        for lineno, raw in enumerate(fh, 1):
            if lineno == 1:
                raw = raw.removeprefix(b"\xef\xbb\xbf")
            if not raw.strip():
                continue
            where = f"{name}:{lineno}"
            try:
                text = raw.decode("utf-8").strip()
            except UnicodeDecodeError as exc:
                text = raw.decode("utf-8", "replace").strip()
                reason = f"not valid UTF-8 (byte {exc.start + 1} of the line)"
                yield _Row(name, lineno, where, error=reason, text=text)
                continue
            is_first, first = first, False
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                if is_first and text.startswith("["):
                    raise PipelineError(
                        "this looks like a JSON array; seed files must be JSON Lines (one object per line)",
                        where=where,
                        hint=f"convert it, e.g. `jq -c '.[]' {name} > seeds.jsonl`",
                    ) from None
                yield _Row(name, lineno, where, error=f"invalid JSON: {exc.msg} (column {exc.colno})", text=text)
                continue
            if isinstance(obj, dict):
                yield _Row(name, lineno, where, obj=obj)
            else:
                reason = f"not a JSON object (got {_type_name(obj)}); write one object per line"
                yield _Row(name, lineno, where, error=reason, text=text)


def _csv_rows(path: Path) -> Iterator[_Row]:
    """One row per CSV record, numbered by the physical line it starts on (header = line 1); empty cells are null."""
    name = str(path)
    try:
        fh = open(path, encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise _unreadable(path, exc) from None
    with fh:
        reader = csv.reader(fh, strict=True)
        start = 1
        try:
            header = next(reader, None)
            if header is None:
                return
            header = [h.strip() for h in header]
            start = reader.line_num + 1
            for values in reader:
                line, start = start, reader.line_num + 1
                if not values or all(not v.strip() for v in values):
                    continue
                obj: dict[str, Any] = {h: (v if v != "" else None) for h, v in zip(header, values)}
                where = f"{name}:{line}"
                if len(values) > len(header):
                    obj["__extra_values__"] = values[len(header) :]
                    reason = f"row has {len(values)} fields but the header has {len(header)}"
                    yield _Row(name, line, where, obj=obj, error=reason)
                    continue
                yield _Row(name, line, where, obj=obj)
        except UnicodeDecodeError as exc:
            where = f"{name}:{start}"
            raise PipelineError(f"not valid UTF-8 ({exc.reason})", where=where, hint="save it as UTF-8") from None
        except csv.Error as exc:
            where = f"{name}:{start}"
            raise PipelineError(f"malformed CSV: {exc}", where=where, hint="check the quoting on that line") from None


def _parquet_rows(path: Path) -> Iterator[_Row]:
    """One row per Parquet row, numbered from 1, read in record batches."""
    import pyarrow.parquet as pq

    name = str(path)
    try:
        pf = pq.ParquetFile(path)
        batches = pf.iter_batches(batch_size=1024)
        index = 0
        for batch in batches:
            for obj in batch.to_pylist():
                index += 1
                yield _Row(name, index, f"{name}:row {index}", obj=obj)
    except (OSError, pa.ArrowException) as exc:  # missing, unreadable, or not Parquet at all
        hint = "check that it is a valid Parquet file"
        raise PipelineError(f"cannot read Parquet seed file: {exc}", where=name, hint=hint) from None


def _parse_hf(source: str) -> tuple[str, str]:
    """`hf:<id or path>[@split]` -> (id or path, split); split defaults to "train"."""
    spec = source[len(HF_PREFIX) :]
    head, sep, split = spec.rpartition("@")
    if not sep or not head or not split or "/" in split:
        head, split = spec, "train"
    if not head:
        raise PipelineError("empty hf: source", where=source, hint="write hf:<dataset id or local path>[@split]")
    return head, split


def _hf_reader(source: str) -> _Reader:
    name, split = _parse_hf(source)

    def rows() -> Iterator[_Row]:
        import datasets

        local = Path(name)
        builders = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
        try:
            if local.is_file() and local.suffix.lower() in builders:
                builder = builders[local.suffix.lower()]
                ds = datasets.load_dataset(builder, data_files=str(local), split=split, streaming=True)
            else:
                ds = datasets.load_dataset(name, split=split, streaming=True)
            index = 0
            for obj in ds:
                index += 1
                yield _Row(source, index, f"{source}:row {index}", obj=dict(obj))
        except PipelineError:
            raise
        except Exception as exc:  # datasets raises many types: FileNotFoundError, ValueError, Hub and Arrow errors
            raise PipelineError(
                f"cannot load Hugging Face dataset: {type(exc).__name__}: {exc}",
                where=source,
                hint="check the dataset id or local path and the split (hf:<id or path>@<split>); "
                "the Hub needs network access",
            ) from None

    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m pipeline.seeds [SOURCES...]`: validate seeds and print the category x intent table (Markdown)."""
    args = list(argv if argv is not None else sys.argv[1:]) or ["seeds"]
    try:
        load = load_seeds(args, on_invalid="skip")
    except PipelineError as exc:
        print(exc.render(), file=sys.stderr)
        return exc.exit_code
    print(coverage_markdown(load.seeds))
    print(f"\n{len(load.seeds)} seeds from {len(load.sources)} source(s), sha256 {load.sha256}")
    for bad in load.invalid:
        print(f"invalid: {bad.where}: {bad.reason}", file=sys.stderr)
    return 1 if load.invalid else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Read dataset version directories: manifest, table shards, consistency checks, and the list of local versions.

Publish, report and the `versions` command read a version only through this module, and only what the
version-directory contract promises (manifest.json, the shard lists under `shards.tables`, the `pipeline`
key-value metadata of every Parquet file), so the runner is free to change everything else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import PipelineError, RunFailed

if TYPE_CHECKING:
    import polars as pl
    from rich.table import Table

MANIFEST_NAME = "manifest.json"
HUB_TABLES: tuple[str, ...] = ("sft", "preferences", "candidates", "rejected")
REQUIRED_KEYS: tuple[str, ...] = ("dataset", "version", "run_id", "status")


@dataclass(frozen=True)
class Version:
    """One dataset version directory and its parsed manifest."""

    path: Path
    manifest: dict[str, Any]

    @property
    def dataset(self) -> str:
        return str(self.manifest["dataset"])

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    @property
    def run_id(self) -> str:
        return str(self.manifest["run_id"])

    @property
    def status(self) -> str:
        return str(self.manifest["status"])

    @property
    def label(self) -> str:
        return f"{self.dataset}/{self.version}"

    @property
    def counts(self) -> dict[str, Any]:
        return self.manifest.get("counts") or {}

    @property
    def policy(self) -> dict[str, Any]:
        return self.manifest.get("policy") or {}

    @property
    def parent(self) -> dict[str, Any] | None:
        return self.manifest.get("parent")

    def table_paths(self, table: str) -> list[Path]:
        """The shard files of `table` as the manifest lists them (in order)."""
        tables = (self.manifest.get("shards") or {}).get("tables")
        if not isinstance(tables, dict):
            raise PipelineError(
                "manifest has no shard list (shards.tables)",
                where=f"{self.path / MANIFEST_NAME}:shards.tables",
                hint=f"the run that wrote it is '{self.status}'; inspect only versions whose run finished",
            )
        if table not in tables:
            raise PipelineError(
                f"manifest lists no shards for table '{table}'",
                where=f"{self.path / MANIFEST_NAME}:shards.tables.{table}",
            )
        return [self.path / rel for rel in tables[table]]

    def scan(self, table: str) -> "pl.LazyFrame":
        """A polars lazy scan over the table's shards (an empty frame with the right schema when there are none)."""
        import polars as pl

        from pipeline.records import TABLE_SCHEMAS

        paths = self.table_paths(table)
        missing = [p for p in paths if not p.is_file()]
        if missing:
            raise PipelineError(
                f"{len(missing)} shard file(s) of '{table}' listed in the manifest do not exist: {missing[0]}",
                where=str(self.path / MANIFEST_NAME),
                hint="the version directory is incomplete; re-run or copy it again",
            )
        if not paths:
            return pl.from_arrow(TABLE_SCHEMAS[table].empty_table()).lazy()  # type: ignore[union-attr]
        return pl.scan_parquet([str(p) for p in paths])


def open_version(path: str | Path) -> Version:
    """Read and minimally validate `path/manifest.json`; a clear PipelineError when it is missing or malformed."""
    vdir = Path(path)
    mpath = vdir / MANIFEST_NAME
    if not vdir.is_dir():
        raise PipelineError(f"no such version directory: {vdir}", hint="pass outputs/<dataset>/<version>")
    if not mpath.is_file():
        raise PipelineError(
            f"{vdir} has no {MANIFEST_NAME}",
            where=str(vdir),
            hint="pass a version directory such as outputs/<dataset>/v0001 (see `python -m pipeline versions`)",
        )
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise PipelineError(f"invalid JSON: {exc.msg}", where=f"{mpath}:{exc.lineno}") from None
    if not isinstance(manifest, dict):
        raise PipelineError("manifest is not a JSON object", where=str(mpath))
    missing = [k for k in REQUIRED_KEYS if k not in manifest]
    if missing:
        raise PipelineError(f"manifest lacks {', '.join(missing)}", where=f"{mpath}:{missing[0]}")
    return Version(vdir, manifest)


def require_complete(version: Version) -> None:
    """Refuse to publish a version whose run did not finish: its tables may be partial."""
    if version.status != "complete":
        raise PipelineError(
            f"version {version.label} has status '{version.status}', not 'complete'",
            where=f"{version.path / MANIFEST_NAME}:status",
            hint="only finished runs can be published; resume or re-run it, then push the complete version",
        )


def _schema_problems(table: str, path: Path, schema: Any, version: Version) -> list[str]:
    from pipeline.records import TABLE_SCHEMAS

    problems = []
    want = TABLE_SCHEMAS[table]
    got = {f.name: f.type for f in schema}
    for f in want:
        if f.name not in got:
            problems.append(f"{path}: column '{f.name}' missing")
        elif not got[f.name].equals(f.type):
            problems.append(f"{path}: column '{f.name}' is {got[f.name]}, expected {f.type}")
    raw = (schema.metadata or {}).get(b"pipeline")
    if raw is None:
        return [*problems, f"{path}: no 'pipeline' key-value metadata"]
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError:
        return [*problems, f"{path}: 'pipeline' metadata is not JSON"]
    expected = {
        "table": table,
        "dataset": version.dataset,
        "dataset_version": version.version,
        "run_id": version.run_id,
        "policy_sha256": version.policy.get("sha256"),
    }
    for key, value in expected.items():
        if meta.get(key) != value:
            problems.append(f"{path}: metadata {key}={meta.get(key)!r}, manifest says {value!r}")
    return problems


def check_version(version: Version, tables: tuple[str, ...] = HUB_TABLES) -> list[str]:
    """Everything that would make a published copy differ from the version: one line per problem, [] if none.

    Checks that every listed shard exists with the contract schema and metadata, that no Parquet file in a table
    folder is left out of the manifest, and that row counts agree with the manifest's counts (nothing lost).
    """
    import pyarrow.parquet as pq

    problems: list[str] = []
    rows: dict[str, int] = {}
    for table in tables:
        try:
            paths = version.table_paths(table)
        except PipelineError as exc:
            problems.append(exc.message)
            continue
        listed = {p.resolve() for p in paths}
        on_disk = {p.resolve() for p in (version.path / table).glob("*.parquet")}
        problems += [f"{p}: Parquet file not listed in the manifest" for p in sorted(on_disk - listed)]
        rows[table] = 0
        for p in paths:
            if not p.is_file():
                problems.append(f"{p}: listed in the manifest but missing")
                continue
            pf = pq.ParquetFile(p)
            rows[table] += pf.metadata.num_rows
            problems += _schema_problems(table, p, pf.schema_arrow, version)
    counts = version.counts
    expect = {
        "sft": counts.get("kept"),
        "preferences": counts.get("preferences"),
        "candidates": counts.get("candidates"),
        "rejected": sum((counts.get("rejected_by_reason") or {}).values()) if "rejected_by_reason" in counts else None,
    }
    for table, n in rows.items():
        want = expect.get(table)
        if want is not None and want != n:
            problems.append(f"table '{table}' has {n} rows, manifest counts say {want}")
    if not problems and "sft" in rows and "rejected" in rows and counts.get("prompts") is not None:
        import polars as pl

        selected_out = version.scan("rejected").filter(pl.col("stage") == "selection").select(pl.len()).collect()
        if rows["sft"] + selected_out.item() != counts["prompts"]:
            problems.append(
                f"kept ({rows['sft']}) + rejected at selection ({selected_out.item()}) != prompts "
                f"({counts['prompts']}): some prompts are unaccounted for"
            )
    return problems


def require_consistent(version: Version, tables: tuple[str, ...] = HUB_TABLES) -> None:
    """Raise RunFailed listing every problem `check_version` finds."""
    problems = check_version(version, tables)
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise RunFailed(
            f"version {version.label} is inconsistent ({len(problems)} problem(s)):\n  {shown}{more}",
            where=str(version.path),
            hint="do not publish it; re-run, or regrade from a consistent parent",
        )


def find_versions(root: str | Path) -> list[Version]:
    """Every version under `root` (an outputs folder, a dataset folder or a version folder), oldest first.

    Manifests that cannot be read are skipped here; `open_version` on that path says why.
    """
    base = Path(root)
    if not base.is_dir():
        raise PipelineError(f"no such directory: {base}", hint="pass the outputs folder (default: outputs/)")
    candidates = [base / MANIFEST_NAME, *base.glob(f"*/{MANIFEST_NAME}"), *base.glob(f"*/*/{MANIFEST_NAME}")]
    found: list[Version] = []
    for mpath in candidates:
        if not mpath.is_file():
            continue
        try:
            found.append(open_version(mpath.parent))
        except PipelineError:
            continue
    return sorted(found, key=lambda v: (v.dataset, v.version))


def newest_version(root: str | Path) -> Version | None:
    """The most recently created complete version under `root`, or None."""
    done = [v for v in find_versions(root) if v.status == "complete"]
    return max(done, key=lambda v: (str(v.manifest.get("created_at") or ""), v.version), default=None)


def scripted_teachers(version: Version) -> list[str]:
    """Names of teachers (or the judge) that are the bundled scripted teacher: their data is for dry runs only.

    The runner marks such teachers with `"endpoint": "bundled scripted teacher"`; a name or model containing
    "scripted" (the bundled teacher's default names) counts too, so a hand-edited manifest cannot hide it.
    """
    entries = list(version.manifest.get("teachers") or [])
    judge = version.manifest.get("judge")
    if isinstance(judge, dict):
        entries.append(judge)
    found = []
    for t in entries:
        text = f"{t.get('name', '')} {t.get('model', '')}".lower()
        if t.get("endpoint") == "bundled scripted teacher" or "scripted" in text:
            found.append(str(t.get("name") or t.get("model")))
    return found


VERSION_COLUMNS = ("dataset", "version", "status", "run id", "policy", "prompts", "candidates", "kept", "rejected",
                   "preferences", "parent", "created")


def version_row(v: Version) -> tuple[str, ...]:
    """One line of `python -m pipeline versions`; '-' where a (running or failed) manifest has no value yet."""
    c = v.counts

    def n(key: str) -> str:
        return "-" if c.get(key) is None else str(c[key])

    policy = f"{v.policy.get('name', '-')} {v.policy.get('version', '')}".strip() if v.policy else "-"
    return (v.dataset, v.version, v.status, v.run_id, policy, n("prompts"), n("candidates"), n("kept"),
            n("rejected"), n("preferences"), (v.parent or {}).get("version") or "-",
            str(v.manifest.get("created_at") or "-"))


def versions_table(versions: list[Version]) -> "Table":
    from rich.table import Table

    table = Table(title=f"{len(versions)} dataset version(s)", title_justify="left")
    for col in VERSION_COLUMNS:
        table.add_column(col, justify="right" if col in ("prompts", "candidates", "kept", "rejected", "preferences")
                         else "left")
    for v in versions:
        table.add_row(*version_row(v))
    return table

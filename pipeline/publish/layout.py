"""Version directory -> the folder layout the Hugging Face Hub expects for a multi-config Parquet dataset.

    data/<config>/train-0000K-of-0000N.parquet   for config in sft, preferences, candidates, rejected
    images/<plot>.png                              plots the card shows
    README.md                                      the dataset card (its `configs` point at data/<config>/)

Shards are renumbered per table from its own file count, so `-of-0000N` is right even if a table has a
different number of files than the manifest's `shards.n`; every listed file is staged, none is dropped.
Two adjustments keep every config loadable with `datasets` (5.2 fails on both):
* an empty shard (pyarrow writes one empty row group) is re-written with the same schema and metadata and no row
  group at all; it still holds zero rows;
* a table with no rows in any shard is not published as a config (an empty split cannot be loaded); the card
  says so.
Internal folders (`_ledger/`, `_journal/`), the prompts table and run.log are not published.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import PipelineError
from pipeline.versions import HUB_TABLES, Version


@dataclass(frozen=True)
class StagedFile:
    path_in_repo: str
    source: Path | None  # None for files generated here (card, plots)
    rows: int | None = None  # data files only


def hub_shard_name(index: int, total: int) -> str:
    return f"train-{index:05d}-of-{total:05d}.parquet"


def shard_rows(version: Version) -> dict[str, list[int]]:
    """Rows in each listed shard of each Hub table (from the Parquet footers; no data is read)."""
    import pyarrow.parquet as pq

    return {t: [pq.ParquetFile(p).metadata.num_rows for p in version.table_paths(t)] for t in HUB_TABLES}


def published_tables(rows: dict[str, list[int]]) -> list[str]:
    """The tables that become Hub configs: those with at least one row."""
    return [t for t in HUB_TABLES if sum(rows[t]) > 0]


def data_file_globs(tables: list[str]) -> dict[str, str]:
    """The `data_files` pattern of each config, as the card's front matter declares it."""
    return {table: f"data/{table}/train-*.parquet" for table in tables}


def plan_data_files(version: Version, rows: dict[str, list[int]]) -> list[StagedFile]:
    """Where each listed shard of each published table goes in the repo, in manifest order."""
    planned = []
    for table in published_tables(rows):
        paths = version.table_paths(table)
        for k, (src, n) in enumerate(zip(paths, rows[table])):
            planned.append(StagedFile(f"data/{table}/{hub_shard_name(k, len(paths))}", src, n))
    return planned


def _place(item: StagedFile, dst: Path) -> None:
    """Hard-link when possible (no copy of large shards), else copy; empty shards lose their empty row group."""
    import pyarrow.parquet as pq

    assert item.source is not None
    if item.rows == 0:
        pq.ParquetWriter(dst, pq.read_schema(item.source), compression="zstd").close()
        return
    try:
        os.link(item.source, dst)
    except OSError:
        shutil.copyfile(item.source, dst)


def image_path(name: str) -> str:
    return f"images/{name}.png"


def stage(
    version: Version, folder: Path, *, rows: dict[str, list[int]], card: str, images: dict[str, bytes]
) -> list[StagedFile]:
    """Build the exact folder to upload in `folder` (created; must be empty) and return its files, sorted."""
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        raise PipelineError(
            f"staging folder is not empty: {folder}",
            hint="pass an empty or new --staging-dir (stale files would be uploaded with the version)",
        )
    folder.mkdir(parents=True, exist_ok=True)
    staged = plan_data_files(version, rows)
    for item in staged:
        dst = folder / item.path_in_repo
        dst.parent.mkdir(parents=True, exist_ok=True)
        _place(item, dst)
    for name, png in images.items():
        rel = image_path(name)
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(png)
        staged.append(StagedFile(rel, None))
    (folder / "README.md").write_text(card, encoding="utf-8")
    staged.append(StagedFile("README.md", None))
    return sorted(staged, key=lambda f: f.path_in_repo)


def staged_files(folder: Path) -> list[str]:
    """Every file under a staged folder as repo paths (what an upload of that folder would send)."""
    return sorted(p.relative_to(folder).as_posix() for p in Path(folder).rglob("*") if p.is_file())

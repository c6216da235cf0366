"""Publish a dataset version to the Hugging Face Hub: stage the Hub layout with a dataset card, then push.

`build_hub_folder` is everything that needs no network (and is all `push --dry-run` does); `push_folder` in
`pipeline.publish.hub` uploads a staged folder in one commit and tags it with the version.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.errors import PipelineError
from pipeline.publish.card import render_card
from pipeline.publish.layout import StagedFile, data_file_globs, image_path, published_tables, shard_rows, stage
from pipeline.versions import Version, require_complete, require_consistent


def build_hub_folder(version: Version, folder: Path, *, repo_id: str, license: str = "other") -> list[StagedFile]:
    """Check the version is complete and consistent, then write the exact folder to upload into `folder`."""
    from pipeline.report.plots import render_plots
    from pipeline.report.stats import compute_stats

    require_complete(version)
    require_consistent(version)
    rows = shard_rows(version)
    tables = published_tables(rows)
    if not tables:
        raise PipelineError(f"version {version.label} has no rows in any table: nothing to publish",
                            where=str(version.path))
    stats = compute_stats(version)
    plots = render_plots(stats)
    card = render_card(
        version,
        stats,
        repo_id=repo_id,
        license=license,
        data_files=data_file_globs(tables),
        table_rows={t: sum(n) for t, n in rows.items()},
        images={name: image_path(name) for name in plots},
    )
    return stage(version, folder, rows=rows, card=card, images=plots)


__all__ = ["build_hub_folder", "StagedFile"]

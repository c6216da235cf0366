"""`python -m pipeline versions [DIR]`: list local dataset versions."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "versions",
        help="list local dataset versions (status, run id, policy, counts, parent)",
        description="List the dataset versions under DIR (an outputs folder, a dataset folder or a version "
        "folder; default: outputs/) with status, run id, policy, counts, parent and creation time.",
    )
    p.add_argument("dir", nargs="?", type=Path, default=Path("outputs"), metavar="DIR",
                   help="where to look (default: outputs/)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pipeline.console import make_console

    from pipeline.versions import find_versions, versions_table

    versions = find_versions(args.dir)
    console = make_console()
    if not versions:
        console.print(f"no dataset versions under {args.dir} (run `python -m pipeline run` to make one)",
                      highlight=False)
        return 0
    console.print(versions_table(versions))
    return 0

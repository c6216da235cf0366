"""`python -m pipeline push VERSION_DIR --repo-id ORG/NAME`: publish a version to the Hugging Face Hub."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "push",
        help="publish a dataset version to the Hugging Face Hub (one commit, tagged with the version)",
        description="Lay a complete version out as the Hub expects (data/<config>/train-*.parquet for sft, "
        "preferences, candidates, rejected; images/; README.md dataset card), create the dataset repo if needed, "
        "upload it in one commit and tag that commit with the version, so that "
        "load_dataset(REPO, 'sft', revision=VERSION) returns exactly this version. The token comes from HF_TOKEN "
        "or `hf auth login`; it is never printed.",
    )
    p.add_argument("version_dir", type=Path, metavar="VERSION_DIR", help="outputs/<dataset>/<version>")
    p.add_argument("--repo-id", required=True, metavar="ORG/NAME", help="the Hub dataset repository")
    p.add_argument("--private", action="store_true", help="create the repository as private (if it is new)")
    p.add_argument("--branch", metavar="B", help="commit to this branch (created if missing) instead of main")
    p.add_argument("--dry-run", action="store_true",
                   help="no network: build the folder, print its file list and the card, upload nothing")
    p.add_argument("--staging-dir", type=Path, metavar="DIR",
                   help="build the folder here (must be empty or new); default: a temporary folder")
    p.add_argument("--force", action="store_true", help="move the version tag if it already exists on the Hub")
    p.add_argument("--license", default="other", help="license id for the card's front matter (default: other)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import shutil
    import tempfile

    from pipeline.console import make_console

    from pipeline.publish import build_hub_folder
    from pipeline.publish.hub import check_repo_id, push_folder, resolve_token
    from pipeline.versions import open_version

    console = make_console()
    check_repo_id(args.repo_id)
    if not args.dry_run:
        resolve_token()  # fail before staging, not after
    version = open_version(args.version_dir)
    temporary = args.staging_dir is None
    prefix = f"hub-{version.dataset}-{version.version}-"
    folder = Path(tempfile.mkdtemp(prefix=prefix)) if temporary else args.staging_dir
    try:
        staged = build_hub_folder(version, folder, repo_id=args.repo_id, license=args.license)
        console.print(f"{len(staged)} files staged in {folder}:", highlight=False)
        for f in staged:  # plain lines, never truncated: this is the exact upload list
            size = (folder / f.path_in_repo).stat().st_size
            origin = f.source.relative_to(version.path).as_posix() if f.source else "generated"
            line = f"  {f.path_in_repo}  {size} bytes  <- {origin}"
            console.print(line, markup=False, highlight=False, soft_wrap=True)
        if args.dry_run:
            console.rule("README.md")
            card = (folder / "README.md").read_text(encoding="utf-8")
            console.print(card, markup=False, highlight=False, soft_wrap=True)
            console.rule()
            console.print(f"dry run: nothing uploaded; the folder is {folder}", highlight=False)
            temporary = False  # keep it: the user asked to see it
            return 0
        result = push_folder(
            folder,
            repo_id=args.repo_id,
            dataset=version.dataset,
            version=version.version,
            run_id=version.run_id,
            private=args.private,
            branch=args.branch,
            force=args.force,
        )
    finally:
        if temporary:
            shutil.rmtree(folder, ignore_errors=True)
    console.print(
        f"pushed {version.label} to {result.repo_id}@{result.revision}: commit {result.commit_oid[:12]} "
        f"({len(result.uploaded)} files, {len(result.deleted)} stale files deleted), "
        f"tag {result.tag}{' (moved)' if result.moved_tag else ''}",
        highlight=False,
    )
    console.print(f"load it with: load_dataset('{result.repo_id}', 'sft', revision='{result.tag}')", highlight=False)
    return 0

"""`python -m pipeline regrade VERSION_DIR`: re-check and re-select stored candidates, no teacher calls."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "regrade",
        help="re-check and re-select a version's candidates under a new policy or checker (no teacher calls)",
        description="Grade the stored candidates of a complete version again and select again, writing a new version "
        "whose manifest records its parent and what changed (kept examples added, removed, replaced).",
    )
    p.add_argument("version_dir", metavar="VERSION_DIR", help="a complete version, e.g. outputs/safe-completion-demo/v0001")
    p.add_argument("--policy", help="policy spec to grade with (default: the parent's)")
    p.add_argument("--checker", choices=["rules", "judge", "ensemble"], help="checker (default: the parent's)")
    p.add_argument("--config", help="run config whose judge endpoint and selection settings to use (default: the parent's)")
    p.add_argument("--min-helpfulness", type=float, help="selection threshold (default: the parent's)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from pipeline.console import make_console

    from pipeline.config import RunConfig, load_config
    from pipeline.regrade import regrade
    from pipeline.runner.summary import print_summary
    from pipeline.storage import Storage

    parent = Storage(args.version_dir)
    stored = parent.read_json("manifest.json")["config"] if parent.exists("manifest.json") else {}
    cfg = load_config(args.config) if args.config else RunConfig.model_validate(stored)
    changed = {}
    if args.policy:
        cfg.policy, changed["policy"] = args.policy, args.policy
    if args.checker:
        cfg.checker, changed["checker"] = args.checker, args.checker
    if args.min_helpfulness is not None:
        cfg.selection.min_helpfulness = changed["min_helpfulness"] = args.min_helpfulness
    cfg = RunConfig.model_validate(cfg.model_dump())  # re-run the cross-field checks after the overrides
    child = regrade(args.version_dir, cfg, what_changed=changed)
    console = make_console()
    print_summary(console, child.manifest, child.storage.uri)
    ch = child.manifest["parent"]["changes"]
    console.print(f"parent {child.manifest['parent']['version']}: kept added {ch['added']}, removed {ch['removed']}, "
                  f"replaced {ch['replaced']}, unchanged {ch['unchanged']}")
    return 0

"""`python -m pipeline run`: the main job. With no arguments it runs on embedded defaults (local Ray, the bundled
scripted teacher, the bundled seeds and policy) and writes a new version under outputs/."""

from __future__ import annotations

import argparse
from typing import Any

from pipeline.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="expand seeds, sample teachers, grade, select and write a dataset version",
        description="Run (or resume) the pipeline and write outputs/<dataset>/<version>/. Flags override the config file.",
    )
    p.add_argument("--config", help="YAML run config (default: embedded defaults; see configs/)")
    p.add_argument("--output", help="output root: a local path or a pyarrow URI such as s3://bucket/prefix")
    p.add_argument("--dataset", help="dataset name (the folder under the output root)")
    p.add_argument("--seeds", action="append", help="seed source (file, folder or hf:<id>); repeatable")
    p.add_argument("--policy", help="policy spec YAML")
    p.add_argument("--checker", choices=["rules", "judge", "ensemble"], help="how candidates are graded")
    p.add_argument("--on-invalid-seed", choices=["fail", "skip"], help="stop on bad seed rows, or record them as rejected")
    p.add_argument("--shard-size", type=int, help="prompts per shard")
    p.add_argument("--max-prompts-per-seed", type=int, help="K: prompts per seed after expansion (the seed counts)")
    p.add_argument("--workers", type=int, help="worker actors (default: one per CPU, at most 8)")
    p.add_argument("--ray-address", help="Ray address to join (default: RAY_ADDRESS, else a local Ray)")
    p.add_argument("--resume", metavar="VERSION_DIR", help="continue an unfinished version")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="override any config field by dotted path, e.g. --set selection.min_helpfulness=6")
    p.add_argument("--no-live", action="store_true", help="plain progress lines instead of the live view")
    p.set_defaults(func=main)


def overrides_from(args: argparse.Namespace) -> dict[str, Any]:
    flag_fields = {
        "output": "output", "dataset": "dataset", "seeds": "seeds", "policy": "policy", "checker": "checker",
        "on_invalid_seed": "on_invalid_seed", "shard_size": "shards.prompts_per_shard",
        "max_prompts_per_seed": "expansion.max_prompts_per_seed", "workers": "ray.workers", "ray_address": "ray.address",
    }
    out: dict[str, Any] = {field: getattr(args, flag) for flag, field in flag_fields.items() if getattr(args, flag) is not None}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r} is not FIELD=VALUE", hint="e.g. --set shards.prompts_per_shard=32")
        out[key.strip()] = value
    return out


def main(args: argparse.Namespace) -> int:
    from pipeline.console import make_console

    from pipeline.config import load_config
    from pipeline.runner.driver import run_pipeline
    from pipeline.runner.summary import print_summary

    config_path = args.config
    if args.resume and not config_path:
        config_path = _config_of(args.resume)
    cfg = load_config(config_path, overrides_from(args))
    console = make_console()
    result = run_pipeline(cfg, resume=args.resume, console=console, live=not args.no_live)
    print_summary(console, result.manifest, result.version.storage.uri)
    return 0


def _config_of(version_dir: str) -> str | None:
    """A resumed run without --config reuses the config stored in the version's manifest."""
    import tempfile

    import yaml

    from pipeline.storage import Storage

    st = Storage(version_dir)
    if not st.exists("manifest.json"):
        return None
    cfg = st.read_json("manifest.json")["config"]
    path = tempfile.mktemp(suffix=".yaml")
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(cfg, f)
    return path

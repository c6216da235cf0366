"""`python -m pipeline <command>`: one argparse parser; each command lives in `pipeline/commands/<name>.py`.

A command module exposes `register(subparsers)` which adds its parser and sets `func` to a callable taking
the parsed namespace and returning an exit code. Command modules import heavy dependencies (Ray, datasets)
inside their functions so that `--help` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from pipeline.errors import PipelineError

COMMAND_MODULES = [
    "run",
    "check",
    "eval_checker",
    "policy",
    "regrade",
    "push",
    "report",
    "versions",
    "bench",
    "scripted_teacher",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline",
        description="Safe-completion SFT data: expand seeds, sample teachers, grade with a policy checker, "
        "keep the most helpful safe answer, write versioned Parquet shards.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"pipeline.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except PipelineError as exc:
        from pipeline.console import make_console
        from rich.text import Text

        message = Text("error: ", style="bold red") + Text(exc.render())  # Text: brackets in paths stay literal
        make_console(stderr=True).print(message, highlight=False, soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

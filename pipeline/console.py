"""The `rich` console every command prints with: full width on a terminal; when piped or logged, at least 160
columns (more if COLUMNS asks for it), since rich's 80-column default squeezes wide tables to nothing in CI logs
and `ray job logs`."""

from __future__ import annotations

import os
import sys

from rich.console import Console

PIPED_MIN_WIDTH = 160


def make_console(*, stderr: bool = False, quiet: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(stderr=stderr, quiet=quiet)
    columns = os.environ.get("COLUMNS", "")
    width = max(PIPED_MIN_WIDTH, int(columns) if columns.isdigit() else 0)
    return Console(stderr=stderr, quiet=quiet, width=width)

"""The `rich` console every command prints with: full width on a terminal, 160 columns when piped or logged
(rich's 80-column default squeezes wide tables to nothing in CI logs and `ray job logs`)."""

from __future__ import annotations

import sys

from rich.console import Console


def make_console(*, stderr: bool = False, quiet: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, quiet=quiet, width=None if stream.isatty() else 160)

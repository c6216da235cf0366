"""The table printed at the end of a run, read from the manifest (so it shows exactly what was committed)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def print_summary(console: Console, manifest: dict[str, Any], path: str) -> None:
    c = manifest["counts"]
    t = Table(title=f"{manifest['dataset']} {manifest['version']}  ({manifest['run_id']})", show_header=False)
    t.add_column(style="bold")
    t.add_column(justify="right")
    t.add_row("seeds (invalid)", f"{c['seeds']} ({c['seeds_invalid']})")
    t.add_row("prompts expanded", str(c["prompts_expanded"]))
    t.add_row("duplicates removed (exact / near)", f"{c['duplicates_exact']} / {c['duplicates_near']}")
    t.add_row("prompts sampled", str(c["prompts"]))
    t.add_row("candidates (failed / truncated / empty)",
              f"{c['candidates']} ({c['candidates_failed']} / {c['candidates_truncated']} / {c['candidates_empty']})")
    t.add_row("kept", str(c["kept"]))
    t.add_row("rejected", str(c["rejected"]))
    for reason, n in sorted(c["rejected_by_reason"].items()):
        t.add_row(f"  {reason}", str(n))
    t.add_row("preference pairs", str(c["preferences"]))
    t.add_row("severity 0/1/2/3/4", " / ".join(str(c["severity_histogram"][str(k)]) for k in range(5)))
    for intent, h in sorted(c["mean_helpfulness_by_intent"].items()):
        t.add_row(f"mean helpfulness kept, {intent}", f"{h:.2f}")
    req = manifest.get("requests", {})
    t.add_row("requests (fresh / replayed / retries / failed)",
              f"{req.get('fresh', 0)} / {req.get('replayed', 0)} / {req.get('retries', 0)} / {req.get('failed', 0)}")
    t.add_row("wall time", f"{manifest['timings']['total']:.1f} s")
    console.print(t)
    console.print(f"[bold green]wrote[/] {path}")

"""`python -m pipeline report VERSION_DIR [--against OTHER] [--html FILE]`: inspect a version."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "report",
        help="tables and plots for a dataset version (safety/helpfulness vs a refusal-boundary baseline)",
        description="Print rich tables for a dataset version and write a self-contained HTML report with PNG "
        "plots: safety rate and mean helpfulness by intent of the kept set vs a simulated refusal-boundary "
        "policy on the same candidates, severity of unsafe candidates per teacher and style, response-mode mix, "
        "per-category yield, over-refusal on benign prompts; with --against, the differences between versions.",
    )
    p.add_argument("version_dir", type=Path, metavar="VERSION_DIR", help="outputs/<dataset>/<version>")
    p.add_argument("--against", type=Path, metavar="OTHER", help="another version directory to compare with")
    p.add_argument(
        "--html", type=Path, metavar="FILE",
        help="where to write the HTML report (default: VERSION_DIR/report.html; '-' to skip)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pipeline.console import make_console

    from pipeline.report import build_report
    from pipeline.report.html import render_html
    from pipeline.report.plots import render_plots
    from pipeline.report.tables import print_report
    from pipeline.versions import open_version

    version = open_version(args.version_dir)
    other = open_version(args.against) if args.against else None
    report = build_report(version, other)
    console = make_console()
    console.print(f"[bold]{version.label}[/] run {version.run_id} status {version.status}", highlight=False)
    for w in report.warnings:
        console.print(f"[bold yellow]warning:[/] {w}", highlight=False)
    print_report(console, report.stats, report.comparison)
    if str(args.html) == "-":
        return 0
    out = args.html or version.path / "report.html"
    plots = render_plots(report.stats, report.comparison)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_html(version, report.stats, plots, report.comparison, report.warnings), encoding="utf-8")
    console.print(f"HTML report: {out}", highlight=False)
    return 0

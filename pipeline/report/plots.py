"""PNG plots for the report and the dataset card, drawn with matplotlib's Agg canvas (no display, no pyplot state)."""

from __future__ import annotations

import io

import polars as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pipeline.report.compare import Comparison
from pipeline.report.stats import BASELINE, KEPT, SEVERITIES, VersionStats

PLOT_TITLES: dict[str, str] = {
    "headline": "Safety and helpfulness by intent: kept set vs simulated refusal-boundary policy",
    "severity_by_teacher_style": "Severity of unsafe candidates per teacher and style",
    "response_modes": "Response-mode mix",
    "category_yield": "Yield per risk category",
    "over_refusal": "Over-refusal on benign prompts per teacher and style",
    "severity_histogram": "Severity histogram of usable candidates",
    "against": "Kept examples compared with the other version",
}
_SEV_COLOURS = ("#f2d16b", "#f29e4c", "#e0603a", "#a4161a")
_MODE_COLOURS = ("#4c78a8", "#59a14f", "#f28e2b", "#9c755f")


def _legend_below(fig: Figure, ax) -> None:
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncols=len(labels), fontsize=8,
               frameon=False)


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def plot_headline(stats: VersionStats) -> bytes:
    fig = Figure(figsize=(11, 3.6))
    panels = (("safe_rate", "safe rate", 1.05), ("mean_help", "mean helpfulness of answers (0-10)", 10.5),
              ("coverage", "coverage (answered / prompts)", 1.05))
    intents = [i for i in stats.headline.filter(pl.col("policy") == KEPT)["intent"].to_list()]
    for k, (metric, label, top) in enumerate(panels):
        ax = fig.add_subplot(1, 3, k + 1)
        for j, (policy, colour) in enumerate(((KEPT, "#4c78a8"), (BASELINE, "#bab0ac"))):
            rows = stats.headline.filter(pl.col("policy") == policy)
            values = dict(zip(rows["intent"].to_list(), rows[metric].fill_null(0).to_list()))
            xs = [i + (j - 0.5) * 0.38 for i in range(len(intents))]
            ax.bar(xs, [values.get(i, 0.0) for i in intents], width=0.38, color=colour, label=policy)
        ax.set_xticks(range(len(intents)), intents, fontsize=8)
        ax.set_ylim(0, top)
        ax.set_title(label, fontsize=9)
    _legend_below(fig, fig.axes[0])
    fig.subplots_adjust(wspace=0.3)
    fig.suptitle(PLOT_TITLES["headline"], fontsize=10)
    return _png(fig)


def _stacked_bars(ax, labels: list[str], parts: list[tuple[str, list[float], str]]) -> None:
    """Horizontal bars stacked from (label, share per bar, colour) parts, first part leftmost."""
    left = [0.0] * len(labels)
    for label, share, colour in parts:
        ax.barh(labels, share, left=left, color=colour, label=label)
        left = [a + b for a, b in zip(left, share)]
    ax.invert_yaxis()


def plot_severity_by_teacher_style(stats: VersionStats) -> bytes:
    df = stats.severity_by_teacher_style
    fig = Figure(figsize=(8, 0.5 + 0.45 * max(len(df), 1)))
    ax = fig.add_subplot(1, 1, 1)
    labels = [f"{t} / {s}" for t, s in zip(df["teacher"].to_list(), df["style"].to_list())]
    usable = [max(u, 1) for u in df["usable"].to_list()]
    _stacked_bars(ax, labels, [(f"severity {sev}", [n / u for n, u in zip(df[f"sev_{sev}"].to_list(), usable)], colour)
                               for sev, colour in zip(SEVERITIES[1:], _SEV_COLOURS)])
    ax.set_xlabel("share of usable candidates")
    _legend_below(fig, ax)
    ax.set_title(PLOT_TITLES["severity_by_teacher_style"], fontsize=10)
    return _png(fig)


def _stacked_shares(ax, frame: pl.DataFrame, index: str, title: str) -> None:
    modes = [c for c in frame.columns if c != index]  # RESPONSE_MODES first, then any unexpected mode
    totals = [max(sum(row[m] for m in modes), 1) for row in frame.iter_rows(named=True)]
    colours = [*_MODE_COLOURS, *["#bab0ac"] * max(len(modes) - len(_MODE_COLOURS), 0)]
    _stacked_bars(ax, frame[index].to_list(), [(mode, [n / t for n, t in zip(frame[mode].to_list(), totals)], colour)
                                               for mode, colour in zip(modes, colours)])
    ax.set_xlim(0, 1)
    ax.set_title(title, fontsize=9)


def plot_response_modes(stats: VersionStats) -> bytes:
    fig = Figure(figsize=(11, 3.2))
    _stacked_shares(fig.add_subplot(1, 2, 1), stats.candidate_modes, "style", "usable candidates by style")
    _stacked_shares(fig.add_subplot(1, 2, 2), stats.kept_modes, "intent", "kept examples by intent")
    _legend_below(fig, fig.axes[1])
    fig.subplots_adjust(wspace=0.45)
    fig.suptitle(PLOT_TITLES["response_modes"], fontsize=10)
    return _png(fig)


def plot_category_yield(stats: VersionStats) -> bytes:
    df = stats.category_yield
    fig = Figure(figsize=(8, 0.6 + 0.4 * max(len(df), 1)))
    ax = fig.add_subplot(1, 1, 1)
    ax.barh(df["category"].to_list(), df["yield_rate"].fill_null(0).to_list(), color="#59a14f")
    for y, (kept, rej) in enumerate(zip(df["kept"].to_list(), df["rejected"].to_list())):
        ax.text(1.01, y, f"{kept} kept / {rej} rejected", va="center", fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("kept / (kept + rejected)")
    ax.set_title(PLOT_TITLES["category_yield"], fontsize=10)
    return _png(fig)


def plot_over_refusal(stats: VersionStats) -> bytes:
    df = stats.over_refusal
    fig = Figure(figsize=(8, 0.6 + 0.45 * max(len(df), 1)))
    ax = fig.add_subplot(1, 1, 1)
    labels = [f"{t} / {s}" for t, s in zip(df["teacher"].to_list(), df["style"].to_list())]
    ax.barh(labels, df["refusal_rate"].fill_null(0).to_list(), color="#e15759")
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of usable benign candidates that refuse")
    ax.set_title(PLOT_TITLES["over_refusal"], fontsize=10)
    return _png(fig)


def plot_severity_histogram(stats: VersionStats) -> bytes:
    fig = Figure(figsize=(5, 3))
    ax = fig.add_subplot(1, 1, 1)
    ax.bar([str(s) for s in SEVERITIES], [stats.severity_histogram[s] for s in SEVERITIES],
           color=("#59a14f", *_SEV_COLOURS))
    ax.set_xlabel("severity")
    ax.set_ylabel("usable candidates")
    ax.set_title(PLOT_TITLES["severity_histogram"], fontsize=10)
    return _png(fig)


def plot_against(comparison: Comparison) -> bytes:
    df = comparison.kept_changes
    fig = Figure(figsize=(7, 0.8 + 0.45 * max(len(df), 1)))
    ax = fig.add_subplot(1, 1, 1)
    left = [0] * len(df)
    colours = {"unchanged": "#bab0ac", "replaced": "#f28e2b", "added": "#59a14f", "removed": "#e15759"}
    for change, colour in colours.items():
        values = df[change].to_list()
        ax.barh(df["intent"].to_list(), values, left=left, color=colour, label=change)
        left = [a + b for a, b in zip(left, values)]
    ax.invert_yaxis()
    ax.set_xlabel("prompts")
    _legend_below(fig, ax)
    ax.set_title(f"{comparison.this} vs {comparison.other}: kept examples", fontsize=10)
    return _png(fig)


def render_plots(stats: VersionStats, comparison: Comparison | None = None) -> dict[str, bytes]:
    """Every plot as PNG bytes, keyed by a short name (also the file stem used in the Hub folder)."""
    plots = {
        "headline": plot_headline(stats),
        "severity_by_teacher_style": plot_severity_by_teacher_style(stats),
        "response_modes": plot_response_modes(stats),
        "category_yield": plot_category_yield(stats),
        "over_refusal": plot_over_refusal(stats),
        "severity_histogram": plot_severity_histogram(stats),
    }
    if comparison is not None:
        plots["against"] = plot_against(comparison)
    return plots

"""A self-contained HTML report: one file, every PNG embedded as a base64 data URI, no external assets."""

from __future__ import annotations

import base64
from html import escape

from pipeline.report.compare import Comparison
from pipeline.report.plots import PLOT_TITLES
from pipeline.report.stats import VersionStats
from pipeline.report.tables import Section, frame_cells, sections
from pipeline.versions import Version

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.85rem; }
th, td { border: 1px solid #ccc; padding: 0.2rem 0.5rem; text-align: right; }
th { background: #f3f3f3; } td.text { text-align: left; }
img { max-width: 100%; margin: 0.5rem 0 1.5rem; }
.warn { background: #fff3cd; border: 1px solid #e0a800; padding: 0.6rem; }
.note { color: #555; font-size: 0.85rem; }
"""


def html_table(section: Section) -> str:
    headers, rows = frame_cells(section.frame)
    text_cols = {i for i, dtype in enumerate(section.frame.dtypes) if str(dtype) == "String"}
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(
            f'<td class="text">{escape(c)}</td>' if i in text_cols else f"<td>{escape(c)}</td>" for i, c in enumerate(r)
        ) + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def img_tag(name: str, png: bytes) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{escape(PLOT_TITLES.get(name, name))}" src="data:image/png;base64,{data}">'


def render_html(
    version: Version,
    stats: VersionStats,
    plots: dict[str, bytes],
    comparison: Comparison | None = None,
    warnings: list[str] | None = None,
) -> str:
    m = version.manifest
    policy = version.policy
    facts = [
        ("dataset", version.dataset), ("version", version.version), ("run id", version.run_id),
        ("status", version.status), ("created", str(m.get("created_at") or "-")),
        ("policy", f"{policy.get('name', '-')} {policy.get('version', '')} (sha256 {policy.get('sha256', '-')})"),
        ("parent", (version.parent or {}).get("version") or "-"),
    ]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Report {escape(version.label)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Dataset report: {escape(version.label)}</h1>",
        "<table>" + "".join(f'<tr><th>{escape(k)}</th><td class="text">{escape(v)}</td></tr>' for k, v in facts)
        + "</table>",
    ]
    parts += [f'<p class="warn">{escape(w)}</p>' for w in warnings or []]
    shown: set[str] = set()
    for section in sections(stats, comparison):
        parts.append(f"<h2>{escape(section.title)}</h2>")
        if section.note:
            parts.append(f'<p class="note">{escape(section.note)}</p>')
        parts.append(html_table(section))
        if section.key in plots and section.key not in shown:
            parts.append(img_tag(section.key, plots[section.key]))
            shown.add(section.key)
    for name, png in plots.items():
        if name not in shown:
            parts.append(f"<h2>{escape(PLOT_TITLES.get(name, name))}</h2>{img_tag(name, png)}")
    parts.append("</body></html>")
    return "\n".join(parts)

"""HTML building blocks shared by the reports: escaping, numbers for people, tables, sections,
inline SVG figures and the page's CSS. Every piece escapes what it is given."""

from __future__ import annotations

import html
import io
import itertools
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["CSS", "Column", "Page", "escape", "facts", "inline_svg", "is_number", "missing", "note", "num",
           "paragraph", "section", "table"]


def escape(text: object) -> str:
    """Text made safe for HTML content and attribute values."""
    return html.escape(str(text), quote=True)


def missing(v: object) -> bool:
    return v is None or (isinstance(v, float | np.floating) and not math.isfinite(v))


def num(v: object, *, signed: bool = False, digits: int | None = None) -> str:
    """A number for people: thousands separators, sensible decimals, '–' when missing."""
    if missing(v):
        return "–"
    if isinstance(v, bool | np.bool_):
        return str(bool(v))
    if isinstance(v, int | np.integer):
        return f"{int(v):+,d}" if signed else f"{int(v):,d}"
    x = float(v)  # type: ignore[arg-type]
    if digits is None:
        a = abs(x)
        if a == 0:
            return "0"
        digits = 0 if a >= 1000 else 1 if a >= 1 else 2 if a >= 0.1 else 4
    text = f"{x:+,.{digits}f}" if signed else f"{x:,.{digits}f}"
    return text.replace("-", "−")


Column = tuple[str, str, Callable[[Any], str]]


def is_number(v: object) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(
        v, bool | np.bool_
    )


def table(
    records: Sequence[Mapping[str, Any]],
    columns: Sequence[Column],
    *,
    highlight: Callable[[Mapping[str, Any]], bool] | None = None,
) -> str:
    """An HTML table; every header and cell is escaped, numbers are right-aligned."""
    numeric = {
        key
        for key, _, _ in columns
        if any(is_number(r.get(key)) and not missing(r.get(key)) for r in records)
    }
    num = ' class="num"'
    head = "".join(
        f"<th{num if key in numeric else ''}>{escape(title)}</th>" for key, title, _ in columns
    )
    body = []
    for rec in records:
        cells = []
        for key, _, fmt in columns:
            v = rec.get(key)
            cls = num if key in numeric else ""
            cells.append(f"<td{cls}>{escape(fmt(v))}</td>")
        cls = ' class="hl"' if highlight and highlight(rec) else ""
        body.append(f"<tr{cls}>{''.join(cells)}</tr>")
    return (
        f'<div class="tablewrap"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


_ID = re.compile(r'\bid="([^"]+)"')


def inline_svg(fig: Figure, label: str, prefix: str) -> str:
    """The figure as inline SVG: no XML prolog, no comments, ids made unique on the page."""
    buf = io.StringIO()
    fig.savefig(
        buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None}
    )
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"<!--.*?-->", "", svg, flags=re.S)
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)
    ids = set(_ID.findall(svg))
    svg = _ID.sub(lambda m: f'id="{prefix}-{m.group(1)}"', svg)
    svg = re.sub(
        r'(href="#|url\(#)([^")]+)',
        lambda m: f"{m.group(1)}{prefix}-{m.group(2)}" if m.group(2) in ids else m.group(0),
        svg,
    )
    svg = re.sub(r"\n\s*", "\n", svg)
    return svg.replace("<svg ", f'<svg role="img" aria-label="{escape(label)}" ', 1)


class Page:
    """Collects figures with page-unique SVG ids."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)

    def figure(self, fig: Figure, caption: str, *, wide: bool = True) -> str:
        svg = inline_svg(fig, caption, f"f{next(self._counter)}")
        cls = "fig wide" if wide else "fig"
        return f'<figure class="{cls}">{svg}<figcaption>{escape(caption)}</figcaption></figure>'


def section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{escape(anchor)}"><h2>{escape(title)}</h2>{body}</section>'


def paragraph(text: str) -> str:
    return f"<p>{escape(text)}</p>"


def note(text: str, kind: str = "") -> str:
    return f'<p class="note {kind}">{escape(text)}</p>'


def facts(items: Iterable[tuple[str, str]]) -> str:
    return (
        '<dl class="facts">'
        + "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in items)
        + "</dl>"
    )


CSS = """
:root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#ffffff;--soft:#f6f8fa;--accent:#1f6feb}
*{box-sizing:border-box}
body{margin:0;background:var(--soft);color:var(--fg);
font:15px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1120px;margin:0 auto;padding:24px 28px 48px;background:var(--bg);min-height:100vh}
header h1{margin:0 0 4px;font-size:26px}
.sub{color:var(--muted);margin:0 0 12px}
nav{position:sticky;top:0;background:var(--bg);border-bottom:1px solid var(--line);padding:8px 0;
margin-bottom:8px;font-size:13px;z-index:1}
nav a{color:var(--accent);text-decoration:none;margin-right:14px;white-space:nowrap}
nav a:hover{text-decoration:underline}
section{padding:8px 0 20px;border-bottom:1px solid var(--line)}
h2{font-size:20px;margin:20px 0 8px}
h3{font-size:16px;margin:18px 0 6px}
p{margin:8px 0;max-width:85ch}
.note{padding:8px 12px;border-left:4px solid var(--line);background:var(--soft);border-radius:4px}
.note.good{border-color:#2da44e;background:#dafbe1}
.note.warn{border-color:#bf8700;background:#fff8c5}
.note.bad{border-color:#cf222e;background:#ffebe9}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:3px 14px;margin:8px 0;
font-size:14px}
dl.facts dt{color:var(--muted)}
dl.facts dd{margin:0;overflow-wrap:anywhere}
.tablewrap{overflow-x:auto;margin:10px 0}
table{border-collapse:collapse;font-size:13px;min-width:50%}
th,td{padding:4px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{background:var(--soft);font-weight:600;white-space:nowrap}
th.num{text-align:right}
td:first-child{white-space:nowrap}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tbody tr:nth-child(even){background:#fbfcfd}
tr.hl td{background:#ddf4ff;font-weight:600}
figure{margin:14px 0}
figure svg{display:block;max-width:100%;height:auto}
figcaption{color:var(--muted);font-size:13px;margin-top:4px}
footer{color:var(--muted);font-size:12px;margin-top:24px}
@media print{nav{display:none}body{background:#fff}main{max-width:none}}
"""

"""Render a report Document as one self-contained HTML page.

Inline CSS, charts embedded as PNG data URIs, no script, and a Content-Security-Policy that
forbids loading anything (so the page works offline and cannot call out even if a log text
slipped through). Every text is HTML-escaped (log content is attacker-controlled).
"""

from __future__ import annotations

import base64
from html import escape

from loganalyzer.report.document import Chart, Document, Items, Paragraph, Table

_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d1d1f;
background:#f6f7f9}
main{max-width:1280px;margin:0 auto;padding:24px 32px 64px;background:#fff}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:32px 0 10px;padding-top:12px;
border-top:2px solid #e4e6ea}.sub{color:#555;margin:0 0 16px}
.verdict{font-size:17px;font-weight:600;padding:14px 18px;border-radius:6px;margin:12px 0}
p.critical,.verdict.critical{background:#fdecea;border-left:6px solid #c62828}
p.warning,.verdict.warning{background:#fff4e5;border-left:6px solid #ef6c00}
p.ok,.verdict.ok{background:#edf7ed;border-left:6px solid #2e7d32}
p.critical,p.warning,p.ok{padding:6px 12px;font-weight:600}
nav{font-size:13px;margin:8px 0 0}nav a{margin-right:12px;color:#0b57d0;text-decoration:none}
.scroll{overflow-x:auto;margin:8px 0}
table{border-collapse:collapse;font-size:12.5px;width:100%}
th,td{border:1px solid #dde0e4;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f0f2f5;position:sticky;top:0}td{overflow-wrap:anywhere;max-width:38em}
tr.critical td{background:#fdf1f0}tr.warning td{background:#fff8ee}
td.mono{font-family:ui-monospace,SFMono-Regular,Consolas,monospace;font-size:11.5px}
caption{text-align:left;color:#555;font-size:12px;padding:4px 0}
img{max-width:100%;height:auto;border:1px solid #eee;margin:6px 0}.more{color:#555;font-size:12px}
footer{color:#777;font-size:12px;margin-top:40px}
"""


def render(doc: Document, charts: dict[str, bytes], footer: str = "") -> str:
    """The page; ``charts`` maps chart names to PNG bytes (embedded as data URIs)."""
    nav = "".join(f'<a href="#{s.id}">{escape(s.title)}</a>' for s in doc.sections)
    body = [
        f"<h1>{escape(doc.title)}</h1>",
        f'<p class="sub">{escape(doc.subtitle)}</p>',
        f'<div class="verdict {doc.verdict.style or ""}" id="verdict">'
        f"{escape(doc.verdict.text)}</div>",
        f"<nav>{nav}</nav>",
    ]
    for section in doc.sections:
        body.append(f'<section id="{section.id}"><h2>{escape(section.title)}</h2>')
        body += [_block(block, charts) for block in section.blocks]
        body.append("</section>")
    if footer:
        body.append(f"<footer>{escape(footer)}</footer>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(doc.title)}</title><style>{_CSS}</style></head>"
        "<body><main>\n" + "\n".join(body) + "\n</main></body></html>\n"
    )


def _block(block, charts: dict[str, bytes]) -> str:
    if isinstance(block, Paragraph):
        cls = f' class="{block.style}"' if block.style else ""
        return f"<p{cls}>{escape(block.text)}</p>"
    if isinstance(block, Items):
        return "<ul>" + "".join(f"<li>{escape(i)}</li>" for i in block.items) + "</ul>"
    if isinstance(block, Chart):
        png = charts.get(block.name)
        if png is None:
            return f"<p>(chart {escape(block.name)} not drawn)</p>"
        data = base64.b64encode(png).decode("ascii")
        return (
            f'<img class="chart" id="chart-{block.name}" alt="{escape(block.alt)}" '
            f'src="data:image/png;base64,{data}">'
        )
    if isinstance(block, Table):
        return _table(block)
    raise TypeError(f"unknown block {type(block).__name__}")


def _table(table: Table) -> str:
    out = ['<div class="scroll"><table>']
    if table.caption:
        out.append(f"<caption>{escape(table.caption)}</caption>")
    out.append("<tr>" + "".join(f"<th>{escape(h)}</th>" for h in table.headers) + "</tr>")
    styles = table.styles or [None] * len(table.rows)
    for row, style in zip(table.rows, styles, strict=False):
        cls = f' class="{style}"' if style in ("critical", "warning") else ""
        cells = "".join(
            f'<td class="mono">{escape(c)}</td>' if i in table.mono else f"<td>{escape(c)}</td>"
            for i, c in enumerate(row)
        )
        out.append(f"<tr{cls}>{cells}</tr>")
    out.append("</table></div>")
    if table.more:
        out.append(f'<p class="more">… and {table.more} more rows (see the CSV/JSON files).</p>')
    return "".join(out)

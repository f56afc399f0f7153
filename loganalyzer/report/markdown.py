"""Render a report Document as Markdown (for tickets and chat).

Log text is attacker-controlled: every text is escaped so that it renders as the literal
characters (no links, no HTML, no table breakouts) in any Markdown viewer.
"""

from __future__ import annotations

import re

from loganalyzer.report.document import Chart, Document, Items, Paragraph, Table

_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
_LINE_START = re.compile(r"^([#+\-=>]|\d+[.)])")
_MARK = {"critical": "🔴 ", "warning": "🟠 ", "ok": "🟢 "}


def escape(value: str) -> str:
    """Markdown-inert text: HTML entities for ``& < >``, backslashes before markup, one line."""
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    value = _LINE_START.sub(r"\\\1", _SPECIAL.sub(r"\\\1", value))
    return " ".join(value.splitlines()) if "\n" in value or "\r" in value else value


def render(doc: Document) -> str:
    out = [f"# {escape(doc.title)}", "", f"_{escape(doc.subtitle)}_", ""]
    out += [f"**{_MARK.get(doc.verdict.style, '')}{escape(doc.verdict.text)}**", ""]
    out.append("Contents: " + " · ".join(f"[{escape(s.title)}](#{s.id})" for s in doc.sections))
    out.append("")
    for section in doc.sections:
        out += [f'<a id="{section.id}"></a>', "", f"## {escape(section.title)}", ""]
        for block in section.blocks:
            out += [*_block(block), ""]
    return "\n".join(out).rstrip() + "\n"


def _block(block) -> list[str]:
    if isinstance(block, Paragraph):
        text = escape(block.text)
        return [f"**{_MARK[block.style]}{text}**" if block.style in _MARK else text]
    if isinstance(block, Items):
        return [f"- {escape(item)}" for item in block.items]
    if isinstance(block, Chart):
        return [f"![{escape(block.alt)}](charts/{block.name}.png)"]
    if isinstance(block, Table):
        return _table(block)
    raise TypeError(f"unknown block {type(block).__name__}")


def _table(table: Table) -> list[str]:
    lines = [f"_{escape(table.caption)}_", ""] if table.caption else []
    lines.append("| " + " | ".join(escape(h) for h in table.headers) + " |")
    lines.append("|" + "---|" * len(table.headers))
    for row in table.rows:
        cells = [escape(c) for c in row]
        lines.append("| " + " | ".join(cells) + " |")
    if table.more:
        lines += ["", f"_… and {table.more} more rows (see the CSV/JSON files)._"]
    return lines

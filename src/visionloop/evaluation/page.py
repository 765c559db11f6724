"""Pieces shared by visionloop's self-contained HTML pages (evaluation and loop reports):
one stylesheet, escaping and tables. Every piece of text that reaches a page goes through
:func:`escape`."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

__all__ = ["PAGE_CSS", "escape", "format_value", "html_table"]

PAGE_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 70rem;
       padding: 0 1rem; color: #1d232b; line-height: 1.4; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: 0.5rem 0; font-size: 0.92rem; }
th, td { border: 1px solid #d0d7de; padding: 0.25rem 0.6rem; text-align: right; }
th { background: #f3f5f7; } td.name, th.name { text-align: left; }
.verdict { padding: 0.6rem 1rem; border-radius: 6px; font-weight: 600; display: inline-block; }
.pass { background: #dafbe1; color: #116329; } .fail { background: #ffebe9; color: #a40e26; }
ul.checks { list-style: none; padding-left: 0; } ul.checks li { margin: 0.2rem 0; padding: 0.2rem 0.6rem;
       border-radius: 4px; }
figure { display: inline-block; margin: 0.5rem 1rem 0.5rem 0; vertical-align: top; }
figure img { max-width: 34rem; border: 1px solid #d0d7de; } figcaption { font-size: 0.85rem; color: #57606a; }
.muted { color: #57606a; }
.gallery { display: flex; flex-wrap: wrap; gap: 0.6rem; }
.tile { width: 8.5rem; font-size: 0.78rem; text-align: center; }
.tile img { width: 8rem; height: 8rem; object-fit: contain; image-rendering: pixelated;
       border: 1px solid #d0d7de; background: #f3f5f7; }
.right { color: #116329; } .wrong { color: #a40e26; font-weight: 600; }
"""


def escape(value: Any) -> str:
    return html.escape(str(value), quote=True)


def format_value(value: Any) -> str:
    if value is None:
        return '<span class="muted">n/a</span>'
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return escape(value)


def html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(
        f'<th class="name">{escape(h)}</th>' if i == 0 else f"<th>{escape(h)}</th>"
        for i, h in enumerate(header)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="name">{cell}</td>' if i == 0 else f"<td>{cell}</td>" for i, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

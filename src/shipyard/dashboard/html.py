"""HTML building blocks: every value goes through ``esc`` on its way into a page.

Pages are plain strings assembled from small functions. There is no template language
to forget an escape in: ``esc`` is applied where a value meets markup, and the few
helpers that take markup (``page``'s body, ``table``'s ``raw`` cells) say so in their
parameter names.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

__all__ = ["NAV", "esc", "fmt", "link", "page", "pill", "table", "url"]

NAV = (
    ("models", "Models"),
    ("runs", "Runs"),
    ("deployments", "Deployments"),
    ("monitoring", "Monitoring"),
    ("alerts", "Alerts"),
    ("audit", "Audit log"),
)


def esc(value: Any) -> str:
    """Text made safe for element content and quoted attribute values."""
    if value is None:
        return ""
    if type(value) is int:  # nothing to escape in a number: the common case in tables
        return str(value)
    return html.escape(str(value), quote=True)


def url(*parts: Any, **query: Any) -> str:
    """A dashboard URL with each path part percent-encoded (a model named ``a/b`` or
    ``..`` stays one segment)."""
    path = "/ui/" + "/".join(quote(str(p), safe="") for p in parts)
    if query:
        path += "?" + "&".join(f"{quote(k)}={quote(str(v), safe='')}" for k, v in query.items())
    return path


def fmt(value: Any, digits: int = 4) -> str:
    """A number, time or value as short text (not yet escaped)."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def link(href: str, text: Any) -> str:
    return f'<a href="{esc(href)}">{esc(text)}</a>'


@functools.lru_cache(maxsize=512)
def pill(text: Any, kind: str = "") -> str:
    """A small coloured label; ``kind`` is one of our CSS classes, never user text."""
    return f'<span class="pill {esc(kind)}">{esc(text)}</span>'


def table(
    headers: Sequence[str], rows: Iterable[Sequence[Any]], *, raw: Sequence[int] = (), cls: str = ""
) -> str:
    """A table; cells are escaped except the column indexes in ``raw`` (our markup)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = (c if i in raw else esc(fmt(c)) for i, c in enumerate(row))
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    if not body:
        body.append(f'<tr><td colspan="{len(headers)}" class="empty">nothing yet</td></tr>')
    rows_markup = "".join(body)
    return (
        f'<table class="{esc(cls)}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{rows_markup}</tbody></table>"
    )


def page(title: str, body_markup: str, *, active: str, user: Any, csrf: str = "") -> str:
    """The whole page: navigation, who is signed in, and ``body_markup`` (our markup)."""
    nav = "".join(
        f'<a href="/ui/{key}"{" class=active" if key == active else ""}>{esc(label)}</a>'
        for key, label in NAV
    )
    if user is None:
        who = '<a href="/ui/login">sign in</a>'
    else:
        who = f'<span class="who">{esc(user.name)} ({esc(user.role)})</span>' + (
            '<form method="post" action="/ui/logout" class="inline">'
            f'<input type="hidden" name="csrf" value="{esc(csrf)}">'
            '<button type="submit" class="link">sign out</button></form>'
            if user.session
            else ""
        )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{esc(title)} · Shipyard</title>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="csrf-token" content="{esc(csrf)}">'
        '<link rel="icon" href="data:,">'
        '<link rel="stylesheet" href="/ui/static/dashboard.css">'
        '<script src="/ui/static/dashboard.js" defer></script>'
        f'</head><body><header><span class="brand">Shipyard</span><nav>{nav}</nav>'
        f'<span class="user">{who}</span></header><main><h1>{esc(title)}</h1>'
        f"{body_markup}</main></body></html>"
    )

"""Model cards: generated at registration from what Shipyard knows, completed by people.

Known facts (format, signature, lineage, metrics, fairness numbers, gate results) are
filled in automatically; ``intended_use``, ``limitations`` and similar fields come from
the caller (``--card FILE.md`` or a mapping). Exported as Markdown and as HTML with
every user-provided string escaped.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

__all__ = ["HUMAN_FIELDS", "build_card", "card_html", "card_markdown", "parse_card_markdown"]

HUMAN_FIELDS = (
    "intended_use",
    "limitations",
    "ethical_considerations",
    "training_data",
    "evaluation_data",
    "owners",
)


def parse_card_markdown(path: Path) -> dict[str, str]:
    """Sections of a Markdown file (``## Intended use`` -> ``intended_use``)."""
    fields: dict[str, str] = {}
    current: str | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"^#{1,3}\s+(.+?)\s*$", line)
        if heading:
            current = re.sub(r"[^a-z0-9]+", "_", heading.group(1).lower()).strip("_")
            fields[current] = ""
        elif current is not None:
            fields[current] += line + "\n"
    return {k: v.strip() for k, v in fields.items() if v.strip()}


def build_card(
    name: str,
    version: int,
    author: str,
    created: datetime,
    facts: Mapping[str, Any],
    human: Mapping[str, Any],
) -> dict[str, Any]:
    lineage = facts.get("lineage") or {}
    metrics = lineage.get("metrics") or {}
    card: dict[str, Any] = {
        "model": name,
        "version": version,
        "author": author,
        "created": created.isoformat(),
        "format": facts.get("format"),
        "description": facts.get("description") or "",
        "signature": facts.get("signature") or {},
        "metrics": {k: v for k, v in metrics.items() if "group" not in k},
        "fairness": {k: v for k, v in metrics.items() if "group" in k},
        "lineage": {
            "run": lineage.get("run_id"),
            "commit": lineage.get("git_commit"),
            "data": lineage.get("data") or {},
            "params": lineage.get("params") or {},
        },
        "gates": facts.get("gates"),
    }
    for key in HUMAN_FIELDS:
        card[key] = ""
    card.update({str(k): v for k, v in human.items()})
    return card


def _title(key: str) -> str:
    return key.replace("_", " ").capitalize()


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def card_markdown(card: Mapping[str, Any]) -> str:
    lines = [f"# Model card: {card['model']} v{card['version']}", ""]
    lines.append(f"- **Format:** {card.get('format')}")
    lines.append(f"- **Author:** {card.get('author')}")
    lines.append(f"- **Registered:** {card.get('created')}")
    if card.get("description"):
        lines += ["", str(card["description"])]
    for key in HUMAN_FIELDS:
        lines += ["", f"## {_title(key)}", "", str(card.get(key) or "_not provided_")]
    for section in ("metrics", "fairness"):
        values = card.get(section) or {}
        if values:
            lines += ["", f"## {_title(section)}", "", "| name | value |", "|---|---|"]
            lines += [f"| {k} | {_value(v)} |" for k, v in values.items()]
    lineage = card.get("lineage") or {}
    lines += ["", "## Lineage", "", f"- run: {lineage.get('run') or '-'}"]
    lines.append(f"- commit: {lineage.get('commit') or '-'}")
    for path, oid in (lineage.get("data") or {}).items():
        lines.append(f"- data `{path}`: `{str(oid)[:16]}`")
    gates = card.get("gates")
    lines += [
        "",
        "## Gates",
        "",
        "not run" if gates is None else ("passed" if gates.get("passed") else "FAILED"),
    ]
    return "\n".join(lines) + "\n"


def card_html(card: Mapping[str, Any]) -> str:
    """One self-contained page; every value is HTML-escaped."""
    esc = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{esc(str(card['model']))} v{esc(str(card['version']))}</title>",
        "<style>body{font:15px/1.5 system-ui,sans-serif;max-width:50em;margin:2em auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .6em}"
        "</style></head><body>",
        f"<h1>Model card: {esc(str(card['model']))} v{esc(str(card['version']))}</h1>",
        "<ul>",
    ]
    for key in ("format", "author", "created"):
        parts.append(f"<li><b>{esc(_title(key))}:</b> {esc(str(card.get(key)))}</li>")
    parts.append("</ul>")
    if card.get("description"):
        parts.append(f"<p>{esc(str(card['description']))}</p>")
    for key in HUMAN_FIELDS:
        text = str(card.get(key) or "not provided")
        parts.append(f"<h2>{esc(_title(key))}</h2><p>{esc(text)}</p>")
    for section in ("metrics", "fairness"):
        values = card.get(section) or {}
        if values:
            rows = "".join(
                f"<tr><td>{esc(str(k))}</td><td>{esc(_value(v))}</td></tr>"
                for k, v in values.items()
            )
            parts.append(f"<h2>{_title(section)}</h2><table>{rows}</table>")
    lineage = card.get("lineage") or {}
    parts.append(
        f"<h2>Lineage</h2><p>run {esc(str(lineage.get('run') or '-'))}, "
        f"commit {esc(str(lineage.get('commit') or '-'))}</p>"
    )
    parts.append("</body></html>")
    return "".join(parts)

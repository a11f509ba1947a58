"""YAML for people: the pipelines are built as Python data and dumped safely.

``yaml.safe_dump`` quotes whatever needs quoting (so a value can never become YAML
structure); multi-line shell scripts are written as literal blocks so the file reads
like one written by hand, and keys keep the order the builder gave them.
"""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["dump_yaml", "header", "secrets_note"]


class _Dumper(yaml.SafeDumper):  # type: ignore[misc]  # (no PyYAML stubs installed)
    """SafeDumper that writes multi-line strings as ``|`` blocks and never uses
    anchors (CI systems and CloudFormation read aliases badly or not at all)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _str)


def header(lines: list[str], comment: str = "#") -> str:
    return "".join(f"{comment} {line}".rstrip() + "\n" for line in lines)


def dump_yaml(data: Any, notes: list[str]) -> str:
    """``data`` as block YAML under a comment header made of ``notes``."""
    body = str(
        yaml.dump(
            data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100, indent=2
        )
    )
    return header(notes) + body


def secrets_note(where: str) -> list[str]:
    from shipyard.ci.facts import SECRETS

    return [
        f"Secrets ({where}); never write their values here:",
        *(f"  {name}" for name in SECRETS),
    ]

"""The check report: its JSON form, the files written for it, and where it is kept.

``report.json`` holds every number (gate results, curves, group tables, findings with
sampled rows, lineage); ``report.md`` and ``report.html`` are rendered from it alone,
so ``shipyard report`` can regenerate them from a stored copy. Its top-level
``passed`` is the overall verdict, which is what the registry reads when the file is
given to ``shipyard register --gates``.

Each report is also put in the artifact store and recorded in the audit log as a
``check.report`` event (subject: the report id), so it can be found again by id, by
the pipeline run that made the model, or as the latest.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from shipyard.checks.base import GateResult
from shipyard.errors import NotFound, UsageError

__all__ = [
    "FORMAT",
    "CheckReport",
    "find_report",
    "gate_from_dict",
    "gate_to_dict",
    "record_report",
    "report_folder",
    "write_reports",
]

FORMAT = "shipyard.check/1"
EVENT = "check.report"


@dataclass
class CheckReport:
    """The outcome of one ``shipyard check``."""

    id: str
    created: datetime
    model: str
    gates: list[GateResult]
    baseline: str | None = None
    seed: int = 0
    task: str | None = None
    lineage: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    load_seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)

    def gate(self, name: str) -> GateResult | None:
        return next((g for g in self.gates if g.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return _clean(
            {
                "format": FORMAT,
                "id": self.id,
                "created": self.created.isoformat(),
                "passed": self.passed,
                "model": self.model,
                "baseline": self.baseline,
                "task": self.task,
                "seed": self.seed,
                "gates": [gate_to_dict(g) for g in self.gates],
                "lineage": self.lineage,
                "data": self.data,
                "config": self.config,
                "load_seconds": self.load_seconds,
            }
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False, allow_nan=False)

    @classmethod
    def from_dict(cls, data: Any, source: str = "report") -> CheckReport:
        """Rebuild a report from its JSON form; UsageError if it is not one."""
        if not isinstance(data, dict) or not isinstance(data.get("gates"), list):
            raise UsageError(f"{source} is not a shipyard check report (no 'gates' list)")
        try:
            return cls(
                id=str(data.get("id", "")),
                created=datetime.fromisoformat(data["created"]),
                model=str(data["model"]),
                gates=[gate_from_dict(g) for g in data["gates"]],
                baseline=data.get("baseline"),
                seed=int(data.get("seed", 0)),
                task=data.get("task"),
                lineage=dict(data.get("lineage") or {}),
                data=dict(data.get("data") or {}),
                config=dict(data.get("config") or {}),
                load_seconds=float(data.get("load_seconds", 0.0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"{source} is not a valid shipyard check report: {exc!r}") from None


def _clean(value: Any) -> Any:
    """JSON-safe: numpy scalars to Python, NaN/inf to None, tuples to lists."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def gate_to_dict(gate: GateResult) -> dict[str, Any]:
    return {
        "name": gate.name,
        "status": gate.status,
        "passed": gate.passed,
        "summary": gate.summary,
        "seconds": round(gate.seconds, 4),
        "numbers": gate.numbers,
        "tables": gate.tables,
        "advice": gate.advice,
        # PNGs a gate rendered itself; the report draws its own charts from the numbers
        "plots": {k: base64.b64encode(v).decode("ascii") for k, v in gate.plots.items()},
    }


def gate_from_dict(data: dict[str, Any]) -> GateResult:
    return GateResult(
        name=str(data["name"]),
        status=str(data["status"]),
        summary=str(data.get("summary", "")),
        numbers=dict(data.get("numbers") or {}),
        tables=dict(data.get("tables") or {}),
        plots={k: base64.b64decode(v) for k, v in (data.get("plots") or {}).items()},
        advice=str(data.get("advice") or ""),
        seconds=float(data.get("seconds") or 0.0),
    )


def report_folder(state_dir: Path, report_id: str) -> Path:
    """``.shipyard/reports/<id>``, with a suffix if that folder is taken."""
    base = state_dir / "reports" / report_id
    folder, n = base, 1
    while folder.exists():
        n += 1
        folder = base.with_name(f"{report_id}-{n}")
    return folder


def write_reports(report: CheckReport, folder: Path) -> dict[str, Path]:
    """Write report.json, report.md and report.html into ``folder``."""
    from shipyard.checks.htmlpage import render_html
    from shipyard.checks.markdown import render_markdown

    folder.mkdir(parents=True, exist_ok=True)
    paths = {kind: folder / f"report.{kind}" for kind in ("json", "md", "html")}
    paths["json"].write_text(report.to_json() + "\n", encoding="utf-8")
    paths["md"].write_text(render_markdown(report), encoding="utf-8")
    paths["html"].write_text(render_html(report), encoding="utf-8")
    return paths


def record_report(project: Any, report: CheckReport) -> str:
    """Store report.json in the artifact store, log it, and save the data schema
    under .shipyard/checks/. Returns the stored object's id."""
    body = (report.to_json() + "\n").encode("utf-8")
    ref = project.artifacts.put_bytes(body)
    project.metadata.record_artifact(ref.oid, ref.size)
    details = {
        "oid": ref.oid,
        "model": report.model,
        "passed": report.passed,
        "run": report.lineage.get("run_id"),
        "version": report.lineage.get("version"),
    }
    project.metadata.append_event(project.actor, EVENT, report.id, details)
    _save_schema(project.state_dir / "checks", report)
    return str(ref.oid)


def _save_schema(folder: Path, report: CheckReport) -> None:
    data = report.gate("data")
    schema = data.numbers.get("schema") if data else None
    if not schema:
        return
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "schema.json").write_text(json.dumps(_clean(schema), indent=2) + "\n")
    try:
        from shipyard.checks.schema import to_pandera

        text = to_pandera(schema).to_json()
    except ImportError:
        return
    (folder / "schema.pandera.json").write_text(text + "\n")


def _stored(project: Any, oid: str, source: str) -> CheckReport:
    return CheckReport.from_dict(json.loads(project.artifacts.read_bytes(oid)), source)


def find_report(project: Any, ref: str) -> CheckReport:
    """A report by path to a report.json, ``latest``, a model version (its stored gate
    results), a report id, or the id of the pipeline run that made the model."""
    path = Path(ref)
    if path.suffix == ".json" or path.is_file():
        if not path.is_file():
            raise UsageError(f"'{ref}' does not exist")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read '{ref}' as JSON: {exc}") from None
        return CheckReport.from_dict(data, f"'{ref}'")
    if ":" in ref or "@" in ref:
        return _from_version(project, ref)
    events = project.metadata.events(action=EVENT)
    if ref == "latest":
        if not events:
            raise NotFound("no check report yet", hint="run `shipyard check` first")
        return _stored(project, events[-1].details["oid"], f"report {events[-1].subject}")
    for event in reversed(events):
        if event.subject.startswith(ref) or str(event.details.get("run") or "").startswith(ref):
            return _stored(project, event.details["oid"], f"report {event.subject}")
    raise NotFound(
        f"no check report matches '{ref}'",
        hint="give a report.json path, `latest`, MODEL:N, a report id or a run id",
    )


def _from_version(project: Any, ref: str) -> CheckReport:
    from shipyard.registry import open_registry

    version = open_registry(project).get(ref)
    if version.gates is None:
        raise NotFound(
            f"{version.ref} has no stored gate results",
            hint="register it with `shipyard register MODEL PATH --gates report.json`",
        )
    return CheckReport.from_dict(version.gates, f"the gates of {version.ref}")

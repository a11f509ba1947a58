"""One monitor pass, and the loop that repeats it (``shipyard monitor``).

A pass, per model seen in the prediction log: read the window (``--window``, default
1h) of predictions, errors and feedback; load the reference (the served version's
training data, found through its lineage, or ``monitor.drift.reference``); compute
drift, realised and estimated performance, concept drift, live data quality and the
serving/extraction signals; store the figures in ``monitor_results``; move the alert
rules; notify; run the actions of alerts that just fired (``rollback``, ``retrain``),
each at most once per cool-down; and write the drift report (HTML and Markdown) to
``.shipyard/reports/monitor/``.

Concept drift is decided by an ADWIN detector over the stream of right/wrong answers:
first the model's answers on (a sample of) its reference data, then the window's
feedback-joined answers in time order. An alarm inside the live part means the error
rate rose above what the model showed on the data it was trained on.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from shipyard.errors import MonitorError, PolicyViolation, ShipyardError
from shipyard.monitor.alerts import (
    ACTOR,
    Transition,
    evaluate_rules,
    last_action_at,
    record_action,
    record_delivery,
    rules_from_config,
)
from shipyard.monitor.notifiers import Notification, build_notifiers, deliver
from shipyard.store import schema

if TYPE_CHECKING:
    from shipyard.project import Project

__all__ = ["Monitor", "PassResult", "read_window", "run_forever"]

_REFERENCE_STREAM = 1000  # reference rows that prime the concept-drift detector


@dataclass
class PassResult:
    """What one pass found for one model."""

    model: str
    version: int | None
    at: datetime
    rows: int
    metrics: dict[str, float | None]
    drifted: list[str] = field(default_factory=list)
    transitions: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    reports: dict[str, str] = field(default_factory=dict)
    clients: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    drift: Any = None  # the DriftReport, for exporters; not part of to_json

    def to_json(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "drift"}
        out["at"] = self.at.isoformat()
        out["drift"] = self.drift.to_json() if self.drift is not None else None
        return out


def read_window(root: Path, kind: str, model: str, since: float, until: float) -> pd.DataFrame:
    """Records of ``kind`` for ``model`` with ``since < ts <= until``, reading only the
    hour partitions the window touches."""
    import pyarrow.parquet as pq

    base = root / kind / f"model={model}"
    first = datetime.fromtimestamp(since, UTC).replace(minute=0, second=0, microsecond=0)
    frames = []
    for folder in sorted(base.glob("date=*/hour=*")) if base.is_dir() else ():
        day, hour = folder.parent.name[5:], folder.name[5:]
        try:
            start = datetime.fromisoformat(f"{day}T{hour}:00:00+00:00")
        except ValueError:
            continue
        if start < first or start.timestamp() > until:
            continue
        for file in sorted(folder.glob("*.parquet")):
            if not file.name.startswith("."):
                frames.append(pq.read_table(file).to_pandas())
    if not frames:
        return pd.DataFrame()
    frame = pd.concat(frames, ignore_index=True)
    return frame[(frame["ts"] > since) & (frame["ts"] <= until)].reset_index(drop=True)


@dataclass
class _Context:
    """What a model's pass works on."""

    model: str
    version: Any  # registry Version
    features: list[str]
    label: str | None
    reference: pd.DataFrame
    predictions: pd.DataFrame
    errors: pd.DataFrame
    feedback: pd.DataFrame


class Monitor:
    """Runs passes over one project. ``clock`` and ``sleep`` are injectable for tests;
    ``actions`` maps an action name to a callable(project, model, rule, actor) -> dict
    (default: the real rollback and retrain)."""

    def __init__(
        self,
        project: Project,
        *,
        window: float = 3600.0,
        log_dir: Path | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
        environ: Mapping[str, str] | None = None,
        actions: Mapping[str, Callable[..., dict[str, Any]]] | None = None,
    ) -> None:
        config = project.config.monitor
        self.project = project
        self.window = window
        self.log_dir = log_dir or project.state_dir / "logs" / "serving"
        self.clock, self.sleep = clock, sleep
        self.rules = rules_from_config(config.alerts)
        self.notifiers = build_notifiers(config.notifiers, environ or project.environ)
        self.actions = dict(actions) if actions is not None else _default_actions()
        self._references: dict[tuple[str, int], tuple[pd.DataFrame, pd.DataFrame]] = {}

    # --- one pass -------------------------------------------------------------------
    def models(self) -> list[str]:
        base = self.log_dir / "predictions"
        found = sorted(p.name[6:] for p in base.glob("model=*")) if base.is_dir() else []
        return [m for m in found if m != "_"]

    def run_once(self, models: list[str] | None = None, *, strict: bool = True) -> list[PassResult]:
        """A pass over ``models`` (default: every model in the log). With ``strict``
        off, a model whose pass fails gets a result with the error in ``notes`` and the
        other models are still checked (what a long-running monitor wants)."""
        results = []
        for model in models or self.models():
            try:
                results.append(self.check_model(model))
            except ShipyardError as exc:
                if strict:
                    raise
                failed = PassResult(model, None, self.clock(), 0, {}, notes=[f"error: {exc}"])
                results.append(failed)
        return results

    def check_model(self, model: str) -> PassResult:
        now = self.clock()
        since, until = (now - timedelta(seconds=self.window)).timestamp(), now.timestamp()

        def read(kind: str) -> pd.DataFrame:
            return read_window(self.log_dir, kind, model, since, until)

        predictions = read("predictions")
        result = PassResult(model, None, now, len(predictions), {})
        if predictions.empty:
            result.notes.append(f"no predictions for '{model}' in the window")
            result.metrics = {"requests": float(len(read("errors")))}
        else:
            ctx = self._context(model, predictions, read("errors"), read("feedback"))
            result.version = ctx.version.version
            self._measure(ctx, result)
        self._store_results(result)
        self._alerts(result)
        return result

    def _context(
        self, model: str, predictions: pd.DataFrame, errors: pd.DataFrame, feedback: pd.DataFrame
    ) -> _Context:
        from shipyard.registry import open_registry

        number = int(predictions["version"].mode().iloc[0])
        version = open_registry(self.project).get(f"{model}:{number}")
        features = [str(f) for f in version.signature.get("inputs", [])]
        label = version.signature.get("output") or _gate_label(self.project)
        reference, _ = self._reference(version)
        return _Context(model, version, features, label, reference, predictions, errors, feedback)

    def _reference(self, version: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The reference frame and the model's answers on it (cached per version)."""
        key = (version.model, version.version)
        if key not in self._references:
            frame = load_reference(self.project, version)
            self._references[key] = (frame, self._reference_answers(version, frame))
        return self._references[key]

    def _reference_answers(self, version: Any, frame: pd.DataFrame) -> pd.DataFrame:
        from shipyard.registry import open_registry
        from shipyard.serving.pool import ModelPool

        pool = ModelPool(open_registry(self.project), self.project.state_dir / "cache" / "models")
        served = pool.get(version.model, version.version)
        sample = frame.sample(min(len(frame), 20_000), random_state=0)
        predictions, _ = served.predict(sample[served.inputs])
        return pd.DataFrame({"prediction": np.asarray(predictions)}, index=sample.index)

    def _measure(self, ctx: _Context, result: PassResult) -> None:
        from shipyard.monitor.signals import extraction, serving_health

        metrics: dict[str, float | None] = {}
        drift = self._drift(ctx)
        result.drift, result.drifted = drift, drift.drifted_features()
        metrics["drift.share"] = drift.share
        metrics["drift.dataset"] = float(drift.drifted)
        for feature in drift.features:
            metrics[f"drift.feature.{feature.name}"] = float(feature.drifted)
        metrics["prediction_drift"] = float(drift.prediction.drifted) if drift.prediction else None
        metrics.update(self._performance(ctx))
        metrics.update(self._quality(ctx))
        metrics.update(serving_health(ctx.predictions, ctx.errors).metrics())
        current = _inputs(ctx.predictions, ctx.features)
        signal = extraction(
            current,
            ctx.reference,
            ctx.features,
            threshold=self.project.config.monitor.extraction.threshold,
            min_queries=self.project.config.monitor.extraction.min_queries,
        )
        metrics.update(signal.metrics())
        result.clients = [asdict(c) for c in signal.clients]
        result.metrics = metrics
        result.reports = self._write_report(ctx, drift)

    def _drift(self, ctx: _Context) -> Any:
        from shipyard.monitor.drift import DriftSettings, compute_drift

        config = self.project.config.monitor.drift
        options: dict[str, Any] = {}
        if config is not None:
            options = {"share": config.share, "features": dict(config.features)}
            if config.threshold is not None:
                options["threshold"] = config.threshold
        settings = DriftSettings.from_config(options)
        reference, answers = self._reference(ctx.version)
        ref = reference.loc[answers.index, ctx.features].assign(prediction=answers["prediction"])
        # drift.py looks the prediction column up both with and without the prefix
        current = ctx.predictions[[f"in_{f}" for f in ctx.features] + ["prediction"]].assign(
            in_prediction=ctx.predictions["prediction"]
        )
        kinds = _kinds(reference, ctx.features)
        return compute_drift(
            ref,
            current,
            columns=kinds,
            prediction="prediction",
            settings=settings,
            current_prefix="in_",
        )

    def _performance(self, ctx: _Context) -> dict[str, float | None]:
        from shipyard.monitor.performance import correct, estimate_performance, join_feedback

        out: dict[str, float | None] = {"accuracy": None, "f1": None, "concept_drift": None}
        scores = ctx.predictions.get("score")
        estimated = None
        if scores is not None and scores.notna().any():
            with contextlib.suppress(ValueError):
                estimated = estimate_performance(scores.to_numpy(float))["accuracy"]
        out["estimated_accuracy"] = estimated
        if ctx.feedback.empty:
            return out
        joined = join_feedback(ctx.predictions, ctx.feedback)
        if joined.empty:
            return out
        right = correct(joined["prediction"], joined["label"])
        out["accuracy"] = float(right.mean())
        out["f1"] = _f1(joined["prediction"], joined["label"])
        out["concept_drift"] = _error_rose(self._reference_errors(ctx), (~right).astype(float))
        return out

    def _reference_errors(self, ctx: _Context) -> np.ndarray:
        from shipyard.monitor.performance import correct

        reference, answers = self._reference(ctx.version)
        if ctx.label is None or ctx.label not in reference:
            return np.array([])
        sample = answers.iloc[:_REFERENCE_STREAM]
        labels = reference.loc[sample.index, ctx.label]
        return (~correct(sample["prediction"], labels)).astype(float)

    def _quality(self, ctx: _Context) -> dict[str, float | None]:
        from shipyard.monitor.quality import check_live_quality, schema_from

        schema = schema_from(ctx.reference[ctx.features])
        report = check_live_quality(ctx.predictions, schema, prefix="in_")
        return {
            "quality.missing_share": report.worst("missing_share"),
            "quality.out_of_range_share": report.worst("out_of_range_share"),
            "quality.unseen_share": report.worst("unseen_share"),
        }

    def _write_report(self, ctx: _Context, drift: Any) -> dict[str, str]:
        try:
            from shipyard.monitor import report
        except ImportError:
            return {}
        folder = self.project.state_dir / "reports" / "monitor"
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"{ctx.model}-latest"
        title = f"Drift: {ctx.model}:{ctx.version.version}"
        html = report.drift_html(
            drift,
            title=title,
            reference_label=f"training data of {ctx.model}:{ctx.version.version}",
            current_label=f"last {self.window:g} s of traffic",
        )
        (folder / f"{stem}.html").write_text(html, encoding="utf-8")
        (folder / f"{stem}.md").write_text(
            report.drift_markdown(drift, title=title), encoding="utf-8"
        )
        return {"html": str(folder / f"{stem}.html"), "markdown": str(folder / f"{stem}.md")}

    # --- storing and alerting ---------------------------------------------------------
    def _store_results(self, result: PassResult) -> None:
        rows: list[tuple[str, str, float | None, bool, dict[str, Any] | None]] = []
        for name, value in result.metrics.items():
            kind, _, short = _kind_of(name)
            flagged = bool(value) if kind == "drift" and short != "share" else False
            rows.append((kind, short, value, flagged, None))
        if result.drift is not None:
            for feature in result.drift.features:
                details = {k: v for k, v in feature.to_json().items() if not k.endswith("counts")}
                rows.append(
                    (
                        "drift",
                        f"statistic.{feature.name}",
                        feature.statistic,
                        feature.drifted,
                        details,
                    )
                )
        for client in result.clients:
            rows.append(
                ("signal", f"client.{client['client']}", client["score"], client["flagged"], client)
            )
        table = schema.monitor_results
        values = [
            {
                "at": result.at,
                "model": result.model,
                "version": result.version,
                "kind": kind,
                "name": name[:200],
                "value": None if value is None or value != value else float(value),
                "flagged": flagged,
                "details": details,
            }
            for kind, name, value, flagged, details in rows
        ]
        if values:
            with self.project.metadata.transaction() as tx:
                tx.execute(table.insert(), values)

    def _alerts(self, result: PassResult) -> None:
        transitions = evaluate_rules(
            self.project.metadata,
            self.rules,
            result.metrics,
            project=self.project.name,
            model=result.model,
            now=result.at,
        )
        for moved in transitions:
            delivered = self._notify(moved, result)
            result.transitions.append(
                {
                    "rule": moved.rule.name,
                    "kind": moved.kind,
                    "alert": moved.alert_id,
                    "values": moved.values,
                    "notified": delivered,
                }
            )
            if moved.kind == "firing" and moved.rule.action != "none":
                result.actions.append(self._act(moved))

    def _notify(self, moved: Transition, result: PassResult) -> dict[str, Any]:
        if not moved.rule.notify:
            return {}
        note = Notification(
            rule=moved.rule.name,
            model=moved.model,
            state=moved.state,
            severity=moved.rule.severity,
            summary=_summary(moved, result),
            dedup_key=moved.dedup_key,
            started_at=moved.started_at,
            at=moved.at,
            project=self.project.name,
            values=moved.values,
            condition=moved.rule.condition.text,
            link=Path(result.reports["html"]).as_uri() if result.reports.get("html") else None,
        )
        delivered = deliver(self.notifiers, moved.rule.notify, note, sleep=self.sleep)
        record_delivery(self.project.metadata, moved.alert_id, moved.kind, delivered)
        return delivered

    def _act(self, moved: Transition) -> dict[str, Any]:
        rule, kind = moved.rule, moved.rule.action
        last = last_action_at(self.project.metadata, rule.name, moved.model, kind)
        if last is not None and moved.at - last < timedelta(seconds=rule.cooldown):
            skipped = {"kind": kind, "skipped": "cool-down", "last": last.isoformat()}
            self.project.metadata.append_event(
                ACTOR, "monitor.action_skipped", f"{moved.model}/{rule.name}", skipped
            )
            return skipped
        taken: dict[str, Any] = {"kind": kind, "at": moved.at.isoformat()}
        try:
            taken |= {"ok": True, **self.actions[kind](self.project, moved.model, rule)}
        except ShipyardError as exc:
            taken |= {"ok": False, "error": exc.message}
        record_action(self.project.metadata, moved.alert_id, moved.model, taken)
        return taken


# --- helpers ------------------------------------------------------------------------


def _gate_label(project: Project) -> str | None:
    data = project.config.gates.data
    return data.label if data is not None else None


def _error_rose(reference: np.ndarray, live: np.ndarray) -> float:
    """1.0 if ADWIN, fed the reference errors and then the live ones, cuts its window
    inside the live part and what remains errs more often than the reference did."""
    from shipyard.monitor.performance import ADWIN

    detector, cut = ADWIN(), False
    for error in reference:
        detector.update(error)
    for error in live:
        cut = detector.update(error) or cut
    baseline = float(reference.mean()) if reference.size else 0.0
    return float(cut and detector.mean > baseline)


def _inputs(predictions: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    columns = {f"in_{f}": f for f in features if f"in_{f}" in predictions}
    extra = [c for c in ("client", "ts", "row") if c in predictions]
    return predictions[list(columns) + extra].rename(columns=columns)


def _kinds(reference: pd.DataFrame, features: list[str]) -> dict[str, str]:
    return {
        f: "numeric" if pd.api.types.is_numeric_dtype(reference[f]) else "categorical"
        for f in features
    }


def _f1(predictions: pd.Series, labels: pd.Series) -> float | None:
    from sklearn.metrics import f1_score

    predicted, actual = predictions.astype(str), labels.astype(str).str.strip()
    classes = set(actual) | set(predicted)
    if classes <= {"0", "1", "0.0", "1.0"}:
        return float(f1_score(actual.str[0], predicted.str[0], pos_label="1", zero_division=0))
    return float(f1_score(actual, predicted, average="macro", zero_division=0))


def _kind_of(name: str) -> tuple[str, str, str]:
    head, _, rest = name.partition(".")
    if head == "drift":
        return "drift", "", rest
    if head == "prediction_drift":
        return "drift", "", "prediction"
    if head == "quality":
        return "quality", "", rest
    if head in ("accuracy", "f1", "estimated_accuracy", "concept_drift", "mae", "rmse"):
        return "performance", "", name
    return "signal", "", name


def _summary(moved: Transition, result: PassResult) -> str:
    if moved.rule.summary:
        return moved.rule.summary
    verb = "no longer holds" if moved.kind == "resolved" else "holds"
    text = f"{moved.rule.condition.text} {verb} for {moved.model}"
    if result.version is not None:
        text += f":{result.version}"
    if result.drifted and moved.kind != "resolved":
        text += f"; drifted features: {', '.join(result.drifted)}"
    return text


def load_reference(project: Project, version: Any) -> pd.DataFrame:
    """The version's reference data: ``monitor.drift.reference`` if it names a file,
    else the training file (``gates.data.train``) as the version's run wrote it."""
    config = project.config.monitor.drift
    chosen = config.reference if config is not None else "training"
    if chosen != "training":
        return _read_table(project.root / chosen, chosen)
    train = project.config.gates.data.train if project.config.gates.data else None
    if train:
        data = _from_lineage(project, version, train)
        if data is not None:
            return _read_table_bytes(data, train)
        if (project.root / train).is_file():
            return _read_table(project.root / train, train)
    raise MonitorError(
        f"cannot find the training data of {version.ref}",
        hint="set monitor.drift.reference: path/to/reference.csv (or .parquet) in shipyard.yaml",
    )


def _from_lineage(project: Project, version: Any, train: str) -> bytes | None:
    """The training file's bytes from the artifact store, through the version's run."""
    from shipyard.pipeline.history import run_paths

    run_id = version.run_id or version.lineage.get("run_id")
    if not run_id:
        return None
    paths = run_paths(project.metadata, project.metadata.get_run(run_id))
    for path, oid in paths.items():
        if not oid:
            continue
        if path == train:
            return project.artifacts.read_bytes(oid)
        if train.startswith(path.rstrip("/") + "/") and oid.endswith(".dir"):
            inner = train[len(path.rstrip("/")) + 1 :]
            for entry in project.artifacts.manifest(oid):
                if entry.path == inner:
                    return project.artifacts.read_bytes(entry.oid)
    return None


def _read_table(path: Path, name: str) -> pd.DataFrame:
    try:
        return _read_table_bytes(path.read_bytes(), name)
    except OSError as exc:
        raise MonitorError(f"cannot read reference data {name}: {exc}") from None


def _read_table_bytes(data: bytes, name: str) -> pd.DataFrame:
    import io

    if name.endswith((".parquet", ".pq")):
        return pd.read_parquet(io.BytesIO(data))
    if name.endswith(".csv"):
        return pd.read_csv(io.BytesIO(data))
    raise MonitorError(f"reference data {name} must be a .csv or .parquet file")


# --- actions ------------------------------------------------------------------------


def _default_actions() -> dict[str, Callable[..., dict[str, Any]]]:
    return {"rollback": rollback_action, "retrain": retrain_action}


def rollback_action(project: Project, model: str, rule: Any) -> dict[str, Any]:
    from shipyard.rollout.api import rollback

    done = rollback(project, model, actor=project.actor, reason=f"alert {rule.name} fired")
    return {"version": done.get("version")}


def retrain_action(project: Project, model: str, rule: Any) -> dict[str, Any]:
    """Fresh data (``monitor.retrain.command``), the pipeline, the gates, registration,
    and a canary through the rollout controller; MonitorError says which step stopped."""
    from shipyard.checks.runner import run_checks
    from shipyard.pipeline.runner import RunOptions, run_pipeline
    from shipyard.rollout.api import start_rollout

    config = project.config.monitor.retrain
    if config.command:
        _refresh(project, config.command, config.timeout)
    run = run_pipeline(project, RunOptions(force=config.force, message=f"retrain: {rule.name}"))
    if not run.ok:
        raise MonitorError(f"retrain: the pipeline {run.status} (run {run.run_id})")
    if run.status == "up-to-date":
        raise MonitorError(
            "retrain: the pipeline is up to date, so there is no fresh data to train on",
            hint="set monitor.retrain.command to fetch fresh data, or retrain.force: true",
        )
    checks = run_checks(project)
    if not checks.passed:
        failed = [g.name for g in checks.gates if not g.passed]
        raise MonitorError(f"retrain: the candidate failed the gates {', '.join(failed)}")
    version = _register(project, model, run.run_id, checks)
    try:
        rollout = start_rollout(project, model, version.version, actor=project.actor)
    except PolicyViolation as exc:
        # Governance wants a person first (approvals, four-eyes): ask, and say so.
        from shipyard.registry import open_registry

        missing = open_registry(project).request(version.ref, "production", actor=project.actor)
        return {
            "run": run.run_id,
            "version": version.version,
            "rollout": None,
            "awaiting": missing or [exc.message],
        }
    return {"run": run.run_id, "version": version.version, "rollout": rollout.get("state")}


def _refresh(project: Project, command: str, timeout: str) -> None:
    import os
    import subprocess
    import sys

    from shipyard.config import duration_seconds

    # like a stage: `python` means the interpreter Shipyard runs under
    env = {**os.environ, **project.environ}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    try:
        done = subprocess.run(
            command,
            shell=True,  # the user's own command from shipyard.yaml, like a stage's cmd
            cwd=project.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=duration_seconds(timeout),
        )
    except subprocess.TimeoutExpired:
        raise MonitorError(f"retrain: {command!r} ran over {timeout}") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise MonitorError(f"retrain: {command!r} exited {done.returncode}: {' '.join(tail)}")


def _register(project: Project, model: str, run_id: str | None, checks: Any) -> Any:
    import json

    from shipyard.registry import open_registry
    from shipyard.registry.cards import parse_card_markdown

    gates = project.config.gates
    if not gates.model:
        raise MonitorError("retrain: gates.model does not say where the trained model is")
    card_file = project.root / "MODEL_CARD.md"
    card = parse_card_markdown(card_file) if card_file.is_file() else {}
    return open_registry(project).register(
        model,
        project.root / gates.model,
        actor=project.actor,
        run_id=run_id,
        card=card,
        gates=json.loads(checks.to_json()),
    )


def run_forever(
    monitor: Monitor,
    every: float,
    models: list[str] | None,
    on_pass: Callable[[list[PassResult]], None],
    *,
    stop: Callable[[], bool] = lambda: False,
) -> None:
    """Run a pass every ``every`` seconds until ``stop()``; a model whose pass fails is
    reported through ``on_pass`` with the error in its notes, and the loop goes on."""
    while not stop():
        started = time.monotonic()
        on_pass(monitor.run_once(models, strict=False))
        monitor.sleep(max(0.0, every - (time.monotonic() - started)))

"""``run_checks``: load the candidate and its data once, run every configured gate.

Gates run in a fixed order — data, metrics, baseline, fairness, latency, poisoning,
membership, card — each timed. The latency, poisoning, membership and card gates live
in their own modules and are imported when needed; one that cannot be imported shows
as skipped ("not available") rather than stopping the check.

A gate that raises a ShipyardError fails with that message, except ConfigError and
UsageError: a configuration problem is never the model's fault, so it stops the check
(exit 2). The metrics gate runs whenever there is labelled held-out data, with or
without thresholds, because the other gates and the report build on its numbers.

Each gate gets its section of ``gates:`` as its configuration; the card gate, which
has none, gets ``governance:`` and runs when ``governance.model_card`` lists fields.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from shipyard.checks.base import FAILED, SKIPPED, CheckContext, GateResult
from shipyard.checks.report import CheckReport
from shipyard.errors import ConfigError, ShipyardError, UsageError

__all__ = ["GATE_ORDER", "build_context", "run_checks", "run_gate"]

GATE_ORDER = (
    "data",
    "metrics",
    "baseline",
    "fairness",
    "latency",
    "poisoning",
    "membership",
    "card",
)
_EXTRA_PACKAGES = {"pandera", "fairlearn", "matplotlib", "pyarrow"}  # the `checks` extra
# Gates written in their own modules, imported only when configured.
_EXTERNAL = {
    "latency": ("shipyard.checks.latency", "latency_gate"),
    "poisoning": ("shipyard.checks.security", "poisoning_gate"),
    "membership": ("shipyard.checks.security", "membership_gate"),
    "card": ("shipyard.checks.card", "card_gate"),
}


def _external(name: str) -> Callable[..., GateResult] | str:
    """The gate function, or why it is not available."""
    module_name, function = _EXTERNAL[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        return f"not available ({exc})"
    gate = getattr(module, function, None)
    return gate if callable(gate) else f"not available ({module_name} has no {function})"


def _own(name: str) -> Callable[..., GateResult]:
    from shipyard.checks import baseline, data, fairness, metrics

    return {
        "data": data.data_gate,
        "metrics": metrics.metrics_gate,
        "baseline": baseline.baseline_gate,
        "fairness": fairness.fairness_gate,
    }[name]


def _settings(project: Any) -> dict[str, Any]:
    """Gate name -> its configuration, for the configured gates only."""
    gates = project.config.gates
    settings: dict[str, Any] = {
        "data": gates.data,
        "metrics": dict(gates.metrics),
        "baseline": gates.baseline,
        "fairness": gates.fairness,
        "latency": gates.latency,
        "poisoning": gates.poisoning,
        "membership": gates.membership,
        "card": project.config.governance if project.config.governance.model_card else None,
    }
    return {name: cfg for name, cfg in settings.items() if cfg is not None}


def run_gate(name: str, gate: Callable[..., GateResult], ctx: CheckContext, cfg: Any) -> GateResult:
    """Run one gate, timed; a ShipyardError (other than a configuration error) becomes
    a failed result carrying its message."""
    started = time.perf_counter()
    try:
        result = gate(ctx, cfg)
    except (ConfigError, UsageError):
        raise
    except ShipyardError as exc:
        result = GateResult(name, FAILED, str(exc), advice=exc.hint or "")
    except ModuleNotFoundError as exc:
        if exc.name not in _EXTRA_PACKAGES:
            raise
        result = GateResult(
            name,
            FAILED,
            f"the {name} gate needs the package '{exc.name}', which is not installed",
            advice="pip install 'shipyard-ml[checks]'",
        )
    except Exception as exc:  # the candidate's own code raised (a pyfunc, a custom step):
        # fail closed with what it said, rather than stop every other gate with a traceback
        result = GateResult(
            name,
            FAILED,
            f"the {name} gate could not finish: {type(exc).__name__}: {exc}",
            advice="the model (or its data) raised while the gate used it; "
            "run the model on the gate's data to reproduce",
        )
    result.seconds = time.perf_counter() - started
    return result


def _gate_for(name: str, gates: Any) -> Callable[..., GateResult] | str:
    if name in _EXTERNAL:
        return _external(name)
    gate = _own(name)
    if name == "baseline":
        return partial(gate, thresholds=dict(gates.metrics))
    return gate


def build_context(project: Any, model_ref: str | None, seed: int = 0) -> tuple[CheckContext, Any]:
    """Load the candidate, baseline, data and card; check they fit together."""
    from shipyard.checks import loading, preflight

    gates = project.config.gates
    candidate = loading.resolve_candidate(project, model_ref)
    data_cfg = gates.data
    if data_cfg is None or not data_cfg.test:
        raise ConfigError(
            "gates.data.test is not set: shipyard check needs held-out data",
            hint="add `data: {train: ..., test: ..., label: ...}` under gates in shipyard.yaml",
        )
    label = preflight.label_of(data_cfg, candidate.model)
    train = (
        loading.load_frame(project.root, data_cfg.train, "gates.data.train")
        if data_cfg.train
        else None
    )
    test = loading.load_frame(project.root, data_cfg.test, "gates.data.test")
    features = candidate.model.inputs or [str(c) for c in test.columns if c != label]
    ctx = CheckContext(
        root=project.root,
        model=candidate.model,
        model_ref=candidate.ref,
        train=train,
        test=test,
        label=label,
        features=features,
        card=loading.load_card(candidate, project.root),
        required_card_fields=tuple(project.config.governance.model_card),
        seed=seed,
    )
    preflight.check_context(ctx, {"train": data_cfg.train, "test": data_cfg.test})
    return ctx, candidate


def _attach_baseline(project: Any, ctx: CheckContext) -> None:
    from shipyard.checks.loading import load_baseline

    cfg = project.config.gates.baseline
    if cfg is None:
        return
    ctx.baseline, ctx.baseline_ref, why = load_baseline(project, cfg)
    if ctx.baseline is None:
        ctx.cache["baseline_missing"] = why


def run_checks(
    project: Any, model_ref: str | None = None, *, seed: int = 0, now: datetime | None = None
) -> CheckReport:
    """Check a candidate (a path in the project, default ``gates.model``, or
    ``MODEL:N`` / ``MODEL@ALIAS``) against every configured gate.

    Raises ConfigError / UsageError (exit 2) for a setup that cannot be checked.
    """
    from shipyard.checks import lineage, preflight
    from shipyard.checks.predictions import task_of

    started = time.perf_counter()
    now = now or datetime.now(UTC)
    ctx, candidate = build_context(project, model_ref, seed)
    _attach_baseline(project, ctx)
    task = task_of(ctx)
    gates = project.config.gates
    preflight.check_gate_settings(ctx, gates, task)
    loaded = time.perf_counter() - started
    results = _run_all(project, ctx)
    data_cfg = gates.data
    return CheckReport(
        id=now.strftime("%Y%m%d-%H%M%S"),
        created=now,
        model=candidate.ref,
        gates=results,
        baseline=ctx.baseline_ref,
        seed=seed,
        task=task,
        lineage=lineage.model_lineage(project, candidate.path, candidate.version),
        data=lineage.data_lineage(
            project.root,
            {"train": data_cfg.train, "test": data_cfg.test},
            {"train": ctx.train, "test": ctx.test},
        ),
        config=gates.model_dump(mode="json", by_alias=True, exclude_none=True),
        load_seconds=loaded,
    )


def _run_all(project: Any, ctx: CheckContext) -> list[GateResult]:
    settings = _settings(project)
    results = []
    for name in GATE_ORDER:
        if name not in settings and name != "metrics":
            continue
        gate = _gate_for(name, project.config.gates)
        if isinstance(gate, str):
            results.append(GateResult(name, SKIPPED, gate))
            continue
        results.append(run_gate(name, gate, ctx, settings.get(name)))
    return results

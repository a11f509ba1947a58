"""Monitoring figures for Prometheus, and files for teams who already run it.

``MonitorExporter`` keeps one gauge per figure of the last pass, in its own registry
(never the process-wide default), labelled by model; a figure with no value in a pass
(no feedback yet) is removed rather than reported as 0, so a Prometheus rule on it
sees "absent", not "perfect". ``serve`` exposes them over HTTP on 127.0.0.1.

``alert_rules`` and ``dashboard`` build the Prometheus alert-rules file and the Grafana
dashboard shipped in ``deploy/``; ``write_deploy_files`` writes both (``shipyard
monitor --export-files DIR``), and a test checks the shipped copies are up to date.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "FIGURES",
    "MonitorExporter",
    "alert_rules",
    "dashboard",
    "write_deploy_files",
]

# metric in a pass -> (gauge name, help, scale). Latency is exported in seconds.
FIGURES: dict[str, tuple[str, str, float]] = {
    "drift.share": ("shipyard_monitor_drift_share", "Share of features that drifted", 1),
    "drift.dataset": ("shipyard_monitor_dataset_drift", "1 if the dataset drifted", 1),
    "prediction_drift": ("shipyard_monitor_prediction_drift", "1 if outputs drifted", 1),
    "accuracy": ("shipyard_monitor_accuracy", "Accuracy on feedback-joined traffic", 1),
    "f1": ("shipyard_monitor_f1", "F1 on feedback-joined traffic", 1),
    "estimated_accuracy": (
        "shipyard_monitor_estimated_accuracy",
        "Accuracy estimated from predicted probabilities (no labels)",
        1,
    ),
    "concept_drift": ("shipyard_monitor_concept_drift", "1 if the error rate rose", 1),
    "quality.missing_share": (
        "shipyard_monitor_missing_share",
        "Largest share of missing values over inputs",
        1,
    ),
    "quality.out_of_range_share": (
        "shipyard_monitor_out_of_range_share",
        "Largest share of values outside the training range",
        1,
    ),
    "quality.unseen_share": (
        "shipyard_monitor_unseen_category_share",
        "Largest share of categories never seen in training",
        1,
    ),
    "error_rate": ("shipyard_monitor_error_rate", "Failed requests / requests in the window", 1),
    "p50_ms": ("shipyard_monitor_latency_p50_seconds", "Median request latency", 0.001),
    "p99_ms": ("shipyard_monitor_latency_p99_seconds", "99th percentile request latency", 0.001),
    "requests": ("shipyard_monitor_window_requests", "Requests in the monitored window", 1),
    "extraction.score": (
        "shipyard_monitor_extraction_score",
        "Highest per-client model-extraction score",
        1,
    ),
    "extraction.flagged_clients": (
        "shipyard_monitor_extraction_flagged_clients",
        "Clients over the extraction threshold",
        1,
    ),
}
FEATURE_STATISTIC = "shipyard_monitor_feature_drift_statistic"
FEATURE_DRIFTED = "shipyard_monitor_feature_drifted"
ALERT_FIRING = "shipyard_monitor_alert_firing"
LAST_PASS = "shipyard_monitor_last_pass_timestamp_seconds"


class MonitorExporter:
    """Gauges for the figures of the latest pass per model."""

    def __init__(self, registry: Any | None = None) -> None:
        from prometheus_client import CollectorRegistry, Gauge

        self.registry = registry if registry is not None else CollectorRegistry()
        self.gauges = {
            key: Gauge(name, text, ("model",), registry=self.registry)
            for key, (name, text, _) in FIGURES.items()
        }
        features = ("model", "feature", "test")
        self.statistic = Gauge(
            FEATURE_STATISTIC, "Drift test statistic per feature", features, registry=self.registry
        )
        self.drifted = Gauge(
            FEATURE_DRIFTED,
            "1 if the feature drifted",
            ("model", "feature"),
            registry=self.registry,
        )
        self.firing = Gauge(
            ALERT_FIRING,
            "1 while a Shipyard alert is firing",
            ("model", "rule", "severity"),
            registry=self.registry,
        )
        self.last_pass = Gauge(
            LAST_PASS, "When the last monitor pass ran", ("model",), registry=self.registry
        )

    def update(self, results: Iterable[Any], open_alerts: Iterable[Mapping[str, Any]] = ()) -> None:
        """Set the gauges from pass results (``runner.PassResult``) and open alerts."""
        for result in results:
            self._figures(result.model, result.metrics)
            if result.drift is not None:
                self._features(result.model, result.drift)
            self.last_pass.labels(result.model).set(result.at.timestamp())
        self.firing.clear()
        for alert in open_alerts:
            if alert.get("state") == "firing":
                self.firing.labels(alert.get("model") or "", alert["rule"], alert["severity"]).set(
                    1
                )

    def _figures(self, model: str, metrics: Mapping[str, float | None]) -> None:
        for key, gauge in self.gauges.items():
            value = metrics.get(key)
            if value is None or value != value:
                if (model,) in _label_sets(gauge):
                    gauge.remove(model)
                continue
            gauge.labels(model).set(float(value) * FIGURES[key][2])

    def _features(self, model: str, drift: Any) -> None:
        for labels in list(_label_sets(self.statistic)):
            if labels[0] == model:
                self.statistic.remove(*labels)
        for feature in drift.features:
            statistic = feature.statistic
            if statistic == statistic and statistic is not None:
                self.statistic.labels(model, feature.name, feature.test).set(statistic)
            self.drifted.labels(model, feature.name).set(float(feature.drifted))

    def text(self) -> bytes:
        from prometheus_client import generate_latest

        return bytes(generate_latest(self.registry))

    def serve(self, port: int, host: str = "127.0.0.1") -> Any:
        """Serve ``/metrics`` in a background thread; returns the server."""
        from prometheus_client import start_http_server

        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return server


def _label_sets(gauge: Any) -> list[tuple[str, ...]]:
    return list(gauge._metrics)  # prometheus_client keeps children keyed by label values


# --- files for Prometheus and Grafana -------------------------------------------------

_RATE = "sum by (model) (rate({name}[5m]))"


def _rule(
    name: str, expr: str, hold: str, severity: str, summary: str, text: str
) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": hold,
        "labels": {"severity": severity, "source": "shipyard"},
        "annotations": {"summary": summary, "description": text},
    }


def alert_rules() -> dict[str, Any]:
    """Prometheus alerting rules over the monitor's gauges and the gateway's metrics."""
    errors = _RATE.format(name="shipyard_model_errors_total")
    requests = _RATE.format(name="shipyard_requests_total")
    latency = (
        "histogram_quantile(0.99, sum by (model, le) "
        "(rate(shipyard_request_latency_seconds_bucket[5m])))"
    )
    rules = [
        _rule(
            "ShipyardDatasetDrift",
            f"{FIGURES['drift.share'][0]} > 0.3",
            "10m",
            "warning",
            "{{ $labels.model }}: {{ $value | humanizePercentage }} of features drifted",
            "The share of drifted input features is over 30 %. See the drift report in "
            ".shipyard/reports/monitor/ and consider retraining.",
        ),
        _rule(
            "ShipyardPredictionDrift",
            f"{FIGURES['prediction_drift'][0]} == 1",
            "30m",
            "info",
            "{{ $labels.model }}: the distribution of predictions changed",
            "The model's outputs no longer look like its outputs on the training data.",
        ),
        _rule(
            "ShipyardConceptDrift",
            f"{FIGURES['concept_drift'][0]} == 1",
            "0m",
            "critical",
            "{{ $labels.model }}: the error rate on feedback rose",
            "Feedback shows the model is wrong more often than on its reference data.",
        ),
        _rule(
            "ShipyardEstimatedAccuracyGap",
            f"{FIGURES['estimated_accuracy'][0]} - {FIGURES['accuracy'][0]} > 0.1",
            "30m",
            "warning",
            "{{ $labels.model }}: realised accuracy is {{ $value | humanize }} below the estimate",
            "The model is confident but wrong: labels disagree with its probabilities.",
        ),
        _rule(
            "ShipyardHighErrorRate",
            f"({errors}) / ({requests}) > 0.01",
            "5m",
            "critical",
            "{{ $labels.model }}: {{ $value | humanizePercentage }} of requests fail",
            "More than 1 % of prediction requests failed in the last 5 minutes.",
        ),
        _rule(
            "ShipyardHighLatency",
            f"{latency} > 0.05",
            "10m",
            "warning",
            "{{ $labels.model }}: p99 latency is {{ $value | humanizeDuration }}",
            "The 99th percentile of request latency is over 50 ms.",
        ),
        _rule(
            "ShipyardModelExtraction",
            f"{FIGURES['extraction.flagged_clients'][0]} > 0",
            "0m",
            "warning",
            "{{ $labels.model }}: {{ $value }} client(s) query like a model-extraction attempt",
            "Per-client query patterns differ from normal traffic; see `shipyard monitor "
            "--json` for the clients and their scores.",
        ),
        _rule(
            "ShipyardMonitorStale",
            f"time() - {LAST_PASS} > 1800",
            "5m",
            "warning",
            "{{ $labels.model }}: no monitor pass for over 30 minutes",
            "`shipyard monitor --every …` has stopped or is failing.",
        ),
    ]
    return {"groups": [{"name": "shipyard", "interval": "1m", "rules": rules}]}


def _panel(index: int, title: str, targets: list[tuple[str, str]], unit: str) -> dict[str, Any]:
    return {
        "id": index + 1,
        "type": "timeseries",
        "title": title,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": 8, "w": 12, "x": 12 * (index % 2), "y": 8 * (index // 2)},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": [
            {"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend}
            for i, (expr, legend) in enumerate(targets)
        ],
    }


def dashboard() -> dict[str, Any]:
    """A Grafana dashboard (JSON model) for the monitor's and the gateway's metrics."""
    model = '{model=~"$model"}'
    name = {key: value[0] for key, value in FIGURES.items()}
    panels = [
        ("Drift share", [(f"{name['drift.share']}{model}", "{{model}}")], "percentunit"),
        (
            "Per-feature drift statistic",
            [(f"{FEATURE_STATISTIC}{model}", "{{model}} {{feature}} ({{test}})")],
            "none",
        ),
        (
            "Accuracy: realised vs estimated",
            [
                (f"{name['accuracy']}{model}", "{{model}} realised"),
                (f"{name['estimated_accuracy']}{model}", "{{model}} estimated"),
            ],
            "percentunit",
        ),
        (
            "Error rate",
            [
                (
                    f"sum by (model) (rate(shipyard_model_errors_total{model}[5m])) / "
                    f"sum by (model) (rate(shipyard_requests_total{model}[5m]))",
                    "{{model}}",
                )
            ],
            "percentunit",
        ),
        (
            "Latency",
            [
                (f"{name['p50_ms']}{model}", "{{model}} p50"),
                (f"{name['p99_ms']}{model}", "{{model}} p99"),
            ],
            "s",
        ),
        (
            "Concept drift and extraction",
            [
                (f"{name['concept_drift']}{model}", "{{model}} concept drift"),
                (f"{name['extraction.score']}{model}", "{{model}} extraction score"),
            ],
            "none",
        ),
        ("Firing alerts", [(f"{ALERT_FIRING}{model}", "{{model}} {{rule}}")], "none"),
        (
            "Data quality",
            [
                (f"{name['quality.missing_share']}{model}", "{{model}} missing"),
                (f"{name['quality.out_of_range_share']}{model}", "{{model}} out of range"),
                (f"{name['quality.unseen_share']}{model}", "{{model}} unseen"),
            ],
            "percentunit",
        ),
    ]
    return {
        "title": "Shipyard: models in production",
        "uid": "shipyard-monitor",
        "tags": ["shipyard", "mlops"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "1m",
        "time": {"from": "now-24h", "to": "now"},
        "templating": {
            "list": [
                {"name": "datasource", "type": "datasource", "query": "prometheus"},
                {
                    "name": "model",
                    "type": "query",
                    "datasource": {"type": "prometheus", "uid": "${datasource}"},
                    "query": f"label_values({name['drift.share']}, model)",
                    "includeAll": True,
                    "multi": True,
                    "current": {"text": "All", "value": "$__all"},
                },
            ]
        },
        "panels": [_panel(i, *panel) for i, panel in enumerate(panels)],
    }


def rules_text() -> str:
    header = "# Generated by `shipyard monitor --export-files`; edit thresholds to taste.\n"
    return header + str(yaml.safe_dump(alert_rules(), sort_keys=False, width=100))


def dashboard_text() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"


def write_deploy_files(folder: Path) -> list[Path]:
    """Write ``prometheus/shipyard-alerts.yml`` and ``grafana/shipyard-dashboard.json``."""
    written = []
    for relative, text in (
        ("prometheus/shipyard-alerts.yml", rules_text()),
        ("grafana/shipyard-dashboard.json", dashboard_text()),
    ):
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written

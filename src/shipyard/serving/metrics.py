"""Prometheus metrics of one gateway, on a registry of its own (a fresh one per app)."""

from __future__ import annotations

from typing import Any

__all__ = ["GatewayMetrics"]

_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class GatewayMetrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        labels = ("model", "version", "arm")
        self.requests = Counter(
            "shipyard_requests",
            "Prediction requests answered",
            (*labels, "code"),
            registry=self.registry,
        )
        self.errors = Counter(
            "shipyard_model_errors",
            "Requests the model failed to answer",
            labels,
            registry=self.registry,
        )
        self.latency = Histogram(
            "shipyard_request_latency_seconds",
            "Time to answer a prediction request",
            labels,
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.rows = Counter(
            "shipyard_predicted_rows", "Rows predicted", labels, registry=self.registry
        )
        self.predictions = Counter(
            "shipyard_predictions",
            "Predicted values (classes) by model and version",
            ("model", "version", "value"),
            registry=self.registry,
        )
        self.prediction_values = Histogram(
            "shipyard_prediction_value",
            "Numeric predictions (regression, scores)",
            ("model", "version"),
            registry=self.registry,
        )
        self.shadow = Counter(
            "shipyard_shadow_requests",
            "Copies sent to shadow versions",
            ("model", "version", "outcome"),
            registry=self.registry,
        )
        self.rejected = Counter(
            "shipyard_rejected_requests",
            "Requests refused before reaching a model",
            ("reason",),
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "shipyard_rate_limited",
            "Requests refused by the per-client rate limit",
            ("client",),
            registry=self.registry,
        )
        self.routing_revision = Gauge(
            "shipyard_routing_change_token",
            "Change token of the routing in force",
            registry=self.registry,
        )
        self.log_dropped = Gauge(
            "shipyard_prediction_log_dropped",
            "Log records dropped because the buffer was full",
            registry=self.registry,
        )
        self.models_loaded = Gauge(
            "shipyard_models_loaded", "Model versions loaded in memory", registry=self.registry
        )

    def observe_predictions(self, model: str, version: str, values: Any) -> None:
        import numpy as np

        array = np.asarray(values)
        if array.size == 1 and array.dtype.kind in "iubOUS":  # the common single row
            self.predictions.labels(model, version, str(array.ravel()[0])).inc()
            return
        if array.dtype.kind in "iub" or array.dtype.kind in "OUS":
            unique, counts = np.unique(array.astype(str), return_counts=True)
            for value, count in zip(unique[:50], counts[:50], strict=False):
                self.predictions.labels(model, version, value).inc(int(count))
        else:
            finite = array[np.isfinite(array)]  # a NaN must not poison the sums
            for value in finite.ravel()[:1000]:
                self.prediction_values.labels(model, version).observe(float(value))

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST

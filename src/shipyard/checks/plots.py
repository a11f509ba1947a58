"""Charts for the HTML report, drawn from a gate's numbers as PNG bytes.

matplotlib's object API with the Agg canvas (no pyplot, no global state, no display).
Every chart is drawn from report.json alone, so a stored report draws the same
charts again. ``charts_for(gate)`` returns the charts for one gate's dict.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

__all__ = ["charts_for"]

_DPI = 100


def _figure(width: float = 5.0, height: float = 3.6) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=_DPI, layout="constrained")


def _png(figure: Any) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def confusion_matrix(numbers: dict[str, Any]) -> bytes:
    import numpy as np

    data = numbers["confusion_matrix"]
    matrix = np.asarray(data["matrix"])
    labels = [str(v) for v in data["labels"]]
    figure = _figure(4.2, 3.6)
    ax = figure.subplots()
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix")
    limit = matrix.max() / 2 if matrix.size else 0
    for (row, col), value in np.ndenumerate(matrix):
        ax.text(
            col,
            row,
            str(value),
            ha="center",
            va="center",
            color="white" if value > limit else "black",
        )
    return _png(figure)


def _curve(points: dict[str, list[float]], x: str, y: str, title: str, diagonal: bool) -> bytes:
    figure = _figure()
    ax = figure.subplots()
    ax.plot(points[x], points[y], color="#1f6feb", linewidth=2)
    if diagonal:
        ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(x.upper() if len(x) <= 3 else x)
    ax.set_ylabel(y.upper() if len(y) <= 3 else y)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return _png(figure)


def roc_curve(numbers: dict[str, Any]) -> bytes:
    auc = numbers.get("metrics", {}).get("roc_auc")
    title = "ROC curve" + (f" (AUC {auc:.3f})" if isinstance(auc, float) else "")
    return _curve(numbers["roc_curve"], "fpr", "tpr", title, True)


def pr_curve(numbers: dict[str, Any]) -> bytes:
    ap = numbers.get("metrics", {}).get("average_precision")
    title = "Precision-recall curve" + (f" (AP {ap:.3f})" if isinstance(ap, float) else "")
    return _curve(numbers["pr_curve"], "recall", "precision", title, False)


def calibration(numbers: dict[str, Any]) -> bytes:
    data = numbers["calibration"]
    figure = _figure()
    ax = figure.subplots()
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfect")
    ax.plot(
        data["mean_predicted"],
        data["fraction_positive"],
        marker="o",
        color="#d29922",
        label="model",
    )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("observed frequency")
    ax.set_title("Calibration (reliability) curve")
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    return _png(figure)


def residuals(numbers: dict[str, Any]) -> bytes:
    data = numbers["residuals"]
    figure = _figure(8.0, 3.4)
    left, right = figure.subplots(1, 2)
    left.scatter(data["predicted"], data["residual"], s=6, alpha=0.5, color="#1f6feb")
    left.axhline(0, color="grey", linewidth=1)
    left.set_xlabel("predicted")
    left.set_ylabel("true − predicted")
    left.set_title("Residuals vs predicted")
    edges, counts = data["histogram"]["edges"], data["histogram"]["counts"]
    right.stairs(counts, edges, fill=True, color="#8250df", alpha=0.7)
    right.set_xlabel("residual")
    right.set_title("Residual distribution")
    return _png(figure)


def fairness(numbers: dict[str, Any], tables: dict[str, Any]) -> dict[str, bytes]:
    import numpy as np

    charts = {}
    for key, rows in tables.items():
        if not key.startswith("groups:") or not rows:
            continue
        figure = _figure(5.5, 3.4)
        ax = figure.subplots()
        positions = np.arange(len(rows))
        for offset, metric in zip(
            (-0.27, 0.0, 0.27), ("selection_rate", "tpr", "fpr"), strict=True
        ):
            ax.bar(positions + offset, [r[metric] for r in rows], width=0.26, label=metric)
        ax.set_xticks(positions, [str(r["group"]) for r in rows])
        ax.set_ylim(0, 1)
        ax.set_title(f"Rates by group: {key.split(':', 1)[1]}")
        ax.legend(fontsize=8)
        ax.grid(axis="y", alpha=0.3)
        charts[f"fairness_{key.split(':', 1)[1]}"] = _png(figure)
    return charts


def baseline(numbers: dict[str, Any]) -> bytes:
    rows = list(numbers["comparisons"].values())
    figure = _figure(5.5, 0.8 + 0.55 * len(rows))
    ax = figure.subplots()
    for i, row in enumerate(rows):
        ax.errorbar(
            row["difference"],
            i,
            xerr=[[row["difference"] - row["ci_low"]], [row["ci_high"] - row["difference"]]],
            fmt="o",
            color="#cf222e" if not row["passed"] else "#1a7f37",
            capsize=4,
        )
    ax.axvline(0, color="grey", linewidth=1)
    ax.set_yticks(range(len(rows)), [r["metric"] for r in rows])
    ax.set_xlabel("candidate − baseline (confidence interval)")
    ax.set_title("Difference to the baseline")
    return _png(figure)


def missing_shares(numbers: dict[str, Any]) -> bytes | None:
    import numpy as np

    shares = numbers.get("missing") or {}
    if not any(v for column in shares.values() for v in column.values()):
        return None
    columns = list(shares)
    figure = _figure(6.5, 0.8 + 0.22 * len(columns))
    ax = figure.subplots()
    positions = np.arange(len(columns))
    for offset, frame in ((-0.2, "train"), (0.2, "test")):
        values = [shares[c].get(frame, 0.0) for c in columns]
        ax.barh(positions + offset, values, height=0.4, label=frame)
    if numbers.get("max_missing") is not None:
        ax.axvline(numbers["max_missing"], color="#cf222e", linestyle="--", label="max_missing")
    ax.set_yticks(positions, columns, fontsize=7)
    ax.set_xlabel("share missing")
    ax.set_title("Missing values by column")
    ax.legend(fontsize=8)
    return _png(figure)


def _metrics_charts(numbers: dict[str, Any]) -> dict[str, bytes]:
    makers: list[tuple[str, str, Callable[[dict[str, Any]], bytes]]] = [
        ("confusion_matrix", "confusion_matrix", confusion_matrix),
        ("roc_curve", "roc_curve", roc_curve),
        ("pr_curve", "pr_curve", pr_curve),
        ("calibration", "calibration", calibration),
        ("residuals", "residuals", residuals),
    ]
    return {name: make(numbers) for name, key, make in makers if numbers.get(key)}


def charts_for(gate: dict[str, Any]) -> dict[str, bytes]:
    """The charts of one gate (as in report.json): name -> PNG bytes."""
    numbers, name = gate.get("numbers") or {}, gate.get("name")
    if name == "metrics":
        return _metrics_charts(numbers)
    if name == "baseline" and numbers.get("comparisons"):
        return {"baseline": baseline(numbers)}
    if name == "fairness":
        return fairness(numbers, gate.get("tables") or {})
    if name == "data":
        chart = missing_shares(numbers)
        return {"missing": chart} if chart else {}
    return {}

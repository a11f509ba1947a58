"""Security gates: poisoned training data and membership-inference risk.

``poisoning_gate`` looks for label flipping with confident learning (Northcutt et al.,
2021) on out-of-sample probabilities, and for backdoor-like rows with an outlier screen.
Confident learning on real data flags about two suspects for each real error, so the
absolute rate alone is a coarse signal: the gate also compares the rate with the last
accepted dataset's (``previous_noise_rate``) and tests whether the flags are
concentrated in one group or one label pair beyond what the model's own uncertainty
explains. ``membership_gate`` runs a confidence-threshold membership-inference attack
(training rows against held-out rows) and reports its AUC and its true-positive rate at
a 0.1 % false-positive rate.

The statistics are small pure functions on numpy arrays (``confident_joint``,
``segment_excess``, ``attack_auc``, ``tpr_at_fpr``, ``robust_outliers``); the gates
gather the data, call them and phrase the verdict. Confident learning is implemented
here rather than taken from cleanlab: it is forty lines, and cleanlab is AGPL-licensed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from shipyard.checks.base import FAILED, PASSED, SKIPPED, CheckContext, GateResult

__all__ = [
    "ConfidentJoint",
    "attack_auc",
    "confident_joint",
    "membership_gate",
    "membership_scores",
    "poisoning_gate",
    "robust_outliers",
    "segment_excess",
    "tpr_at_fpr",
]

FOLDS = 5
MAX_CLASSES = 20  # more distinct labels than this: a regression target, not classes
# Confident learning runs on a sample of 20 % of the training rows, at least 5,000 and at
# most 10,000: five folds then cost about one training on the full set, and the rate's
# standard error stays under half a percentage point.
SAMPLE_SHARE, SAMPLE_MIN, SAMPLE_MAX = 0.2, 5_000, 10_000
# A segment or label pair is "concentrated" when its flags exceed what the probabilities
# explain by at least 2 % of its rows at z >= 3.5 (p < 0.0003 each, one-sided).
MIN_EXCESS, MIN_Z = 0.02, 3.5
MIN_PAIR_EXCESS = 0.10  # a label pair: ten points more of the flags than expected
MAX_SEGMENT_VALUES = 20
OUTLIER_MIN_Z = 3.0  # robust z of the isolation score; about 1-2 % of clean rows
FOREST_TREES = 50  # half the default: building trees is most of the screen's cost
LOW_FPR = 0.001
MAX_ATTACK_ROWS = 50_000
EXAMPLE_ROWS = 5


# ----------------------------------------------------------------- pure statistics


@dataclass(frozen=True)
class ConfidentJoint:
    """Confident learning's counts for labels ``0..k-1`` and probabilities ``n x k``.

    ``suggested`` is each row's confidently predicted class (-1 where no class reaches
    its threshold); ``flagged`` marks rows whose given label differs from it;
    ``expected`` is the chance a row would be flagged if its label were drawn from the
    probabilities, which is what an honest but uncertain label costs.
    """

    thresholds: np.ndarray
    joint: np.ndarray  # given label (row) x suggested label (column)
    suggested: np.ndarray
    flagged: np.ndarray
    expected: np.ndarray

    @property
    def noise_rate(self) -> float:
        """Share of rows flagged (the off-diagonal of the confident joint)."""
        return float(self.flagged.mean()) if len(self.flagged) else 0.0

    def calibrated_noise_rate(self, labels: np.ndarray) -> float:
        """Off-diagonal share after scaling each row of the joint to its label's count."""
        counts = np.bincount(labels, minlength=len(self.thresholds)).astype(float)
        row_sums = self.joint.sum(axis=1, keepdims=True)
        calibrated = np.zeros(self.joint.shape)
        np.divide(self.joint * counts[:, None], row_sums, out=calibrated, where=row_sums > 0)
        total = calibrated.sum()
        return float((total - np.trace(calibrated)) / total) if total else 0.0


def confident_joint(labels: np.ndarray, probabilities: np.ndarray) -> ConfidentJoint:
    """Per-class thresholds (mean self-confidence) and the confident joint.

    A row counts towards (given ``i``, suggested ``j``) when ``j`` is its most probable
    class among those whose probability reaches their class threshold. A class with no
    rows can never be suggested.
    """
    labels = np.asarray(labels, dtype=int)
    probabilities = np.asarray(probabilities, dtype=float)
    k = probabilities.shape[1]
    thresholds = np.array(
        [probabilities[labels == j, j].mean() if (labels == j).any() else np.inf for j in range(k)]
    )
    confident = probabilities >= thresholds - 1e-9
    suggested = np.where(confident, probabilities, -np.inf).argmax(axis=1)
    suggested = np.where(confident.any(axis=1), suggested, -1)
    joint = np.zeros((k, k), dtype=int)
    has = suggested >= 0
    np.add.at(joint, (labels[has], suggested[has]), 1)
    flagged = has & (suggested != labels)
    own = probabilities[np.arange(len(labels)), np.maximum(suggested, 0)]
    expected = np.where(has, 1.0 - own, 0.0)
    return ConfidentJoint(thresholds, joint, suggested, flagged, expected)


def segment_excess(
    flagged: np.ndarray, expected: np.ndarray, inside: np.ndarray | None = None
) -> tuple[float, float]:
    """How much more often rows are flagged than their probabilities explain.

    With ``inside`` (a mask): the mean of ``flagged - expected`` inside the segment minus
    the mean outside it; without: the mean over all rows. Returns (excess, Welch z);
    positive means more flags than expected. Comparing with the rest of the rows
    cancels a model that is over- or under-confident everywhere.
    """
    residual = np.asarray(flagged, dtype=float) - np.asarray(expected, dtype=float)
    if inside is None:
        parts = [residual]
    else:
        inside = np.asarray(inside, dtype=bool)
        parts = [residual[inside], residual[~inside]]
    if any(len(p) < 2 for p in parts):
        return 0.0, 0.0
    excess = float(parts[0].mean() - (parts[1].mean() if len(parts) > 1 else 0.0))
    spread = math.sqrt(sum(p.var(ddof=1) / len(p) for p in parts))
    if spread == 0:
        return excess, (math.copysign(math.inf, excess) if excess else 0.0)
    return excess, excess / spread


def robust_outliers(scores: np.ndarray, min_z: float = OUTLIER_MIN_Z) -> np.ndarray:
    """Rows whose anomaly score (higher = stranger) lies ``min_z`` robust standard
    deviations (1.4826 x MAD) above the median."""
    scores = np.asarray(scores, dtype=float)
    median = np.median(scores)
    spread = 1.4826 * np.median(np.abs(scores - median))
    if spread == 0:
        return scores > median
    return (scores - median) / spread >= min_z


def membership_scores(probabilities: np.ndarray, label_index: np.ndarray) -> np.ndarray:
    """The attack's score per row: log-probability of the true class (minus the loss).

    ``label_index`` is the column of each row's true class, -1 for a class the model
    never saw (scored as probability zero).
    """
    rows = np.arange(len(label_index))
    own = np.where(label_index >= 0, probabilities[rows, np.maximum(label_index, 0)], 0.0)
    return np.log(np.clip(own, 1e-12, 1.0))


def attack_auc(members: np.ndarray, nonmembers: np.ndarray) -> float:
    """P(score of a member > score of a non-member), ties counting one half."""
    from scipy.stats import rankdata

    members, nonmembers = np.asarray(members, float), np.asarray(nonmembers, float)
    if not len(members) or not len(nonmembers):
        return math.nan
    ranks = rankdata(np.concatenate([members, nonmembers]))
    m, n = len(members), len(nonmembers)
    return float((ranks[:m].sum() - m * (m + 1) / 2) / (m * n))


def tpr_at_fpr(members: np.ndarray, nonmembers: np.ndarray, fpr: float = LOW_FPR) -> float:
    """Share of members scored above the strictest threshold that lets at most ``fpr``
    of the non-members through (``floor(fpr * n)`` of them; a tie never passes)."""
    members, nonmembers = np.asarray(members, float), np.sort(np.asarray(nonmembers, float))
    if not len(members) or not len(nonmembers):
        return math.nan
    allowed = math.floor(fpr * len(nonmembers) + 1e-9)
    threshold = nonmembers[len(nonmembers) - 1 - allowed]
    return float((members > threshold).mean())


# ----------------------------------------------------------------- data preparation


def _missing_data(ctx: CheckContext, *, held_out: bool) -> str | None:
    if ctx.train is None or not ctx.label or ctx.label not in ctx.train.columns:
        return "no labelled training data (set gates.data.train and gates.data.label)"
    if held_out and (ctx.test is None or ctx.label not in ctx.test.columns):
        return "no labelled held-out data to compare with (set gates.data.test)"
    return None


def _features(ctx: CheckContext, frame: Any) -> list[str]:
    names = list(ctx.features) or list(getattr(ctx.model, "inputs", None) or [])
    return names or [c for c in frame.columns if c != ctx.label]


def _class_codes(values: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """Labels as codes 0..k-1 and the classes, or None for a regression target."""
    array = np.asarray(values)
    if array.dtype.kind == "f" and not np.all(np.mod(array, 1) == 0):
        return None
    classes, codes = np.unique(array, return_inverse=True)
    return (codes, classes) if 2 <= len(classes) <= MAX_CLASSES else None


def _sample_size(rows: int) -> int:
    return min(rows, max(SAMPLE_MIN, min(SAMPLE_MAX, int(rows * SAMPLE_SHARE))))


def _encode(frame: Any, columns: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Numeric matrix (categories as codes, missing as NaN) and the categorical mask."""
    import pandas as pd

    matrix, categorical = [], []
    for name in columns:
        column = frame[name]
        is_number = pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)
        if is_number:
            matrix.append(column.to_numpy(dtype=float, na_value=np.nan))
        else:
            codes = pd.Categorical(column.astype("string")).codes.astype(float)
            matrix.append(np.where(codes < 0, np.nan, codes))
        categorical.append(not is_number)
    return np.column_stack(matrix), np.array(categorical)


def _filled(matrix: np.ndarray) -> np.ndarray:
    medians = np.nanmedian(np.where(np.isnan(matrix).all(axis=0), 0.0, matrix), axis=0)
    return np.where(np.isnan(matrix), medians, matrix)


def _clone_of_candidate(ctx: CheckContext, seed: int) -> Any | None:
    """An unfitted copy of a scikit-learn candidate, its unset random states pinned."""
    from sklearn.base import clone, is_classifier

    inner = getattr(getattr(ctx.model, "model", None), "model", None)
    if getattr(ctx.model, "format", None) != "sklearn" or not is_classifier(inner):
        return None
    estimator = clone(inner)
    params = estimator.get_params()
    unset = [k for k, v in params.items() if k.endswith("random_state") and v is None]
    return estimator.set_params(**dict.fromkeys(unset, seed))


def _stand_in(frame: Any, features: list[str]) -> tuple[Any, Any]:
    """A logistic regression on scaled numbers and one-hot categories, with its inputs.

    Chosen over gradient boosting for models Shipyard cannot clone: confident learning
    needs calibrated probabilities more than accuracy, and it is fast.
    """
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    matrix, categorical = _encode(frame, features)
    inputs = pd.DataFrame(matrix, columns=range(len(features)))
    columns = np.arange(len(features))
    numbers = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    categories = make_pipeline(
        SimpleImputer(strategy="constant", fill_value=-1),
        OneHotEncoder(handle_unknown="ignore", max_categories=MAX_SEGMENT_VALUES),
    )
    encoder = ColumnTransformer(
        [("num", numbers, columns[~categorical]), ("cat", categories, columns[categorical])]
    )
    return make_pipeline(encoder, LogisticRegression(max_iter=1000)), inputs


def _out_of_sample(ctx: CheckContext, frame: Any, codes: np.ndarray, seed: int) -> tuple:
    """Probabilities for each row from a model that never saw it, and where they came from."""
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    features = _features(ctx, frame)
    estimator = _clone_of_candidate(ctx, seed)
    if estimator is not None:
        inputs, description = frame[features], f"clone of the candidate ({_name(estimator)})"
    else:
        (estimator, inputs), description = _stand_in(frame, features), "LogisticRegression"
    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=seed)
    probabilities = cross_val_predict(estimator, inputs, codes, cv=folds, method="predict_proba")
    return probabilities, f"{FOLDS}-fold {description}"


def _name(estimator: Any) -> str:
    steps = getattr(estimator, "steps", None)
    return type(steps[-1][1] if steps else estimator).__name__


# ----------------------------------------------------------------- poisoning gate


def poisoning_gate(
    ctx: CheckContext,
    cfg: Any,
    *,
    previous_noise_rate: float | None = None,
    segments: Sequence[str] | None = None,
) -> GateResult:
    """Screen the training set for flipped labels and backdoor-like outliers.

    ``cfg`` is a ``PoisoningGate``. ``previous_noise_rate`` is ``numbers["noise_rate"]``
    of the poisoning result the last accepted version passed with; when given, a rise
    of more than ``cfg.max_noise_increase`` fails. ``segments`` are the columns whose
    values are tested for concentrated flags; by default every training column (other
    than the label) with 2 to 20 distinct values, such as a sensitive ``group``.
    """
    started = time.perf_counter()
    missing = _missing_data(ctx, held_out=False)
    if missing:
        return GateResult("poisoning", SKIPPED, missing)
    train = ctx.train.dropna(subset=[ctx.label])
    rng = np.random.default_rng(ctx.seed)
    rows = np.sort(rng.choice(len(train), _sample_size(len(train)), replace=False))
    frame = train.iloc[rows]
    numbers: dict[str, Any] = {"training_rows": len(train), "checked_rows": len(frame)}
    tables: dict[str, list[dict[str, Any]]] = {}
    reasons = _label_noise(ctx, frame, cfg, previous_noise_rate, segments, numbers, tables)
    if cfg.outliers:
        reasons += _outlier_screen(ctx, frame, cfg, numbers, tables)
    summary = _poisoning_summary(numbers, reasons)
    return GateResult(
        "poisoning",
        FAILED if reasons else PASSED,
        summary,
        numbers,
        tables,
        advice=_POISONING_ADVICE if reasons else "",
        seconds=time.perf_counter() - started,
    )


_POISONING_ADVICE = (
    "Review the suspected rows listed in the report (tables 'suspected_labels' and "
    "'outliers') against the data's source: confident learning flags about two rows for "
    "each real error, so look for a pattern (one source, one group, one label pair, "
    "rows added recently) rather than deleting every flagged row. Flags concentrated "
    "in one group or label pair, or a rise since the last accepted dataset, point at "
    "flipped labels; many similar outliers with one label point at a backdoor trigger. "
    "Fix or drop the rows at their source, re-run the pipeline, and run `shipyard check` "
    "again. If the data really changed, raise gates.poisoning.max_noise_rate or "
    "max_outlier_share deliberately, in a reviewed change."
)


def _label_noise(
    ctx: CheckContext,
    frame: Any,
    cfg: Any,
    previous: float | None,
    segments: Sequence[str] | None,
    numbers: dict[str, Any],
    tables: dict[str, list[dict[str, Any]]],
) -> list[str]:
    """Confident learning on the sample; returns the reasons to fail."""
    classes = _class_codes(frame[ctx.label])
    if classes is None or np.bincount(classes[0]).min() < FOLDS:
        why = "not a class label" if classes is None else f"a class has under {FOLDS} rows"
        numbers["label_check_skipped"] = why
        return []
    codes, names = classes
    probabilities, description = _out_of_sample(ctx, frame, codes, ctx.seed)
    joint = confident_joint(codes, probabilities)
    numbers.update(
        noise_rate=joint.noise_rate,
        noise_rate_calibrated=joint.calibrated_noise_rate(codes),
        suspected_labels=int(joint.flagged.sum()),
        probabilities_from=description,
        class_thresholds={str(c): float(t) for c, t in zip(names, joint.thresholds, strict=True)},
    )
    reasons = []
    if joint.noise_rate > cfg.max_noise_rate:
        reasons.append(
            f"{joint.noise_rate:.1%} of training labels look wrong "
            f"(max_noise_rate {cfg.max_noise_rate:.1%})"
        )
    if previous is not None:
        increase = joint.noise_rate - previous
        numbers.update(previous_noise_rate=float(previous), noise_increase=increase)
        if increase > cfg.max_noise_increase:
            reasons.append(
                f"suspected label noise rose {increase:+.1%} since the last accepted data "
                f"({previous:.1%} -> {joint.noise_rate:.1%}; max_noise_increase "
                f"{cfg.max_noise_increase:.1%})"
            )
    tables["label_pairs"] = _pair_rows(joint, codes, names, probabilities)
    tables["segments"] = _segment_rows(ctx, frame, joint, segments)
    tables["suspected_labels"] = _suspected_rows(ctx, frame, joint, codes, names, probabilities)
    numbers["concentrated"] = [r["where"] for r in _concentrated(tables)]
    return reasons + [_concentration_reason(r) for r in _concentrated(tables)]


def _pair_rows(
    joint: ConfidentJoint, codes: np.ndarray, names: np.ndarray, probabilities: np.ndarray
) -> list[dict[str, Any]]:
    """One row per (given, suggested) pair: its share of the flags against its share of
    the flags the probabilities expect. Shares, not counts, so a model that is
    over-confident everywhere does not make every pair look concentrated."""
    flags, expected_flags = int(joint.flagged.sum()), float(joint.expected.sum())
    rows = []
    for given, suggested in zip(*np.nonzero(joint.joint), strict=True):
        if given == suggested:
            continue
        chosen = joint.suggested == suggested
        observed = int((chosen & (codes == given)).sum())
        expected = float(probabilities[chosen, given].sum())
        share = observed / max(flags, 1)
        expected_share = expected / expected_flags if expected_flags else 0.0
        spread = math.sqrt(expected_share * (1 - expected_share) / max(flags, 1))
        excess = share - expected_share
        rows.append(
            {
                "where": f"label {names[given]} -> {names[suggested]}",
                "flagged": observed,
                "share_of_label": observed / max(int((codes == given).sum()), 1),
                "share_of_flags": share,
                "expected_share_of_flags": expected_share,
                "excess": excess,
                "z": excess / spread if spread else (math.inf if excess > 0 else 0.0),
            }
        )
    return _mark(rows, MIN_PAIR_EXCESS)


def _segment_columns(ctx: CheckContext, frame: Any, segments: Sequence[str] | None) -> list[str]:
    if segments is not None:
        return [c for c in segments if c in frame.columns]
    return [
        c
        for c in frame.columns
        if c != ctx.label and 2 <= frame[c].nunique(dropna=True) <= MAX_SEGMENT_VALUES
    ]


def _segment_rows(
    ctx: CheckContext, frame: Any, joint: ConfidentJoint, segments: Sequence[str] | None
) -> list[dict[str, Any]]:
    """Flag share per value of each segment column, against the rest of the rows."""
    rows = []
    for column in _segment_columns(ctx, frame, segments):
        values = frame[column].astype("string").fillna("<missing>").to_numpy()
        for value in sorted(set(values)):
            inside = values == value
            excess, z = segment_excess(joint.flagged, joint.expected, inside)
            rows.append(
                {
                    "where": f"{column} = {value}",
                    "rows": int(inside.sum()),
                    "flagged": int(joint.flagged[inside].sum()),
                    "flagged_share": float(joint.flagged[inside].mean()),
                    "expected_share": float(joint.expected[inside].mean()),
                    "excess": excess,
                    "z": z,
                }
            )
    return _mark(rows, MIN_EXCESS)


def _mark(rows: list[dict[str, Any]], min_excess: float) -> list[dict[str, Any]]:
    for row in rows:
        row["concentrated"] = bool(row["excess"] >= min_excess and row["z"] >= MIN_Z)
        row["z"] = float(min(row["z"], 1e6))  # JSON has no infinity
    return rows


def _concentrated(tables: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [r for key in ("label_pairs", "segments") for r in tables[key] if r["concentrated"]]


def _concentration_reason(row: dict[str, Any]) -> str:
    measure = "of the suspected labels" if "share_of_flags" in row else "of its rows flagged"
    return (
        f"flags are concentrated in {row['where']}: {row['excess']:+.1%} {measure} beyond "
        f"what the model's uncertainty explains (z = {row['z']:.1f})"
    )


def _suspected_rows(
    ctx: CheckContext,
    frame: Any,
    joint: ConfidentJoint,
    codes: np.ndarray,
    names: np.ndarray,
    probabilities: np.ndarray,
) -> list[dict[str, Any]]:
    """The most confidently contradicted rows, for a person to look at."""
    flagged = np.flatnonzero(joint.flagged)
    suggested = joint.suggested[flagged]
    confidence = probabilities[flagged, suggested]
    order = flagged[np.argsort(-confidence, kind="stable")][:EXAMPLE_ROWS]
    return [
        {
            "row": _plain(frame.index[i]),
            "given": _plain(names[codes[i]]),
            "suggested": _plain(names[joint.suggested[i]]),
            "confidence": float(probabilities[i, joint.suggested[i]]),
            **{c: _plain(frame[c].iloc[i]) for c in _features(ctx, frame)},
        }
        for i in order
    ]


def _plain(value: Any) -> Any:
    """A JSON-friendly Python scalar (NaN, infinity and missing values become None)."""
    import pandas as pd

    if isinstance(value, np.generic):
        value = value.item()
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value if isinstance(value, int | str | bool) else str(value)


def _outlier_screen(
    ctx: CheckContext,
    frame: Any,
    cfg: Any,
    numbers: dict[str, Any],
    tables: dict[str, list[dict[str, Any]]],
) -> list[str]:
    """Isolation-forest screen of the sampled training rows; returns failure reasons."""
    from sklearn.ensemble import IsolationForest

    features = _features(ctx, frame)
    matrix = _filled(_encode(frame, features)[0])
    forest = IsolationForest(n_estimators=FOREST_TREES, random_state=ctx.seed).fit(matrix)
    strangeness = -forest.score_samples(matrix)
    outliers = robust_outliers(strangeness)
    share = float(outliers.mean())
    numbers.update(outlier_share=share, outliers=int(outliers.sum()))
    order = np.argsort(-strangeness, kind="stable")[: min(EXAMPLE_ROWS, int(outliers.sum()))]
    tables["outliers"] = [
        {
            "row": _plain(frame.index[i]),
            "strangeness": float(strangeness[i]),
            ctx.label: _plain(frame[ctx.label].iloc[i]),
            **{c: _plain(frame[c].iloc[i]) for c in features},
        }
        for i in order
    ]
    tables["outlier_labels"] = _label_mix(frame[ctx.label], outliers)
    tables["outlier_patterns"] = _repeated_values(frame, features, outliers)
    if share > cfg.max_outlier_share:
        return [
            f"{share:.1%} of training rows are outliers (max_outlier_share "
            f"{cfg.max_outlier_share:.1%})"
        ]
    return []


def _label_mix(labels: Any, outliers: np.ndarray) -> list[dict[str, Any]]:
    """Each label's share among the outliers and among all rows (a backdoor has one)."""
    values = labels.astype("string").fillna("<missing>").to_numpy()
    return [
        {
            "label": value,
            "share_of_outliers": float((values[outliers] == value).mean())
            if outliers.any()
            else 0.0,
            "share_of_rows": float((values == value).mean()),
        }
        for value in sorted(set(values))
    ]


def _repeated_values(frame: Any, features: list[str], outliers: np.ndarray) -> list[dict]:
    """Per feature, the value most outliers share (a trigger pattern repeats exactly)."""
    if not outliers.any():
        return []
    rows = []
    for column in features:
        counts = frame[column][outliers].value_counts()
        if counts.empty:
            continue
        value, count = counts.index[0], int(counts.iloc[0])
        rows.append(
            {
                "column": column,
                "value": _plain(value),
                "share_of_outliers": count / int(outliers.sum()),
                "share_of_other_rows": float((frame[column][~outliers] == value).mean()),
            }
        )
    return sorted(rows, key=lambda r: -r["share_of_outliers"])[:3]


def _poisoning_summary(numbers: dict[str, Any], reasons: list[str]) -> str:
    if reasons:
        return "; ".join(reasons)
    parts = []
    if "noise_rate" in numbers:
        parts.append(
            f"suspected label noise {numbers['noise_rate']:.1%} of "
            f"{numbers['checked_rows']:,} rows, not concentrated"
        )
    else:
        parts.append(f"label-noise check skipped: {numbers['label_check_skipped']}")
    if "outlier_share" in numbers:
        parts.append(f"outliers {numbers['outlier_share']:.1%}")
    return "; ".join(parts)


# ----------------------------------------------------------------- membership gate


def membership_gate(ctx: CheckContext, cfg: Any) -> GateResult:
    """Attack the candidate with a confidence-threshold membership-inference attack.

    Training rows are members, held-out rows non-members; each row is scored by the
    model's log-probability of its true class (minus the squared error for a regressor).
    Fails when the attack AUC exceeds ``cfg.max_attack_auc`` or its true-positive rate
    at a 0.1 % false-positive rate exceeds ``cfg.max_tpr_at_low_fpr``.
    """
    started = time.perf_counter()
    missing = _missing_data(ctx, held_out=True)
    if missing:
        return GateResult("membership", SKIPPED, missing)
    rng = np.random.default_rng(ctx.seed)
    classes = _model_classes(ctx)
    members = _attack_scores(ctx, _rows(ctx.train, ctx.label, rng), classes)
    nonmembers = _attack_scores(ctx, _rows(ctx.test, ctx.label, rng), classes)
    if members is None or nonmembers is None:
        return GateResult(
            "membership", SKIPPED, "the model gives no probabilities and the label is not numeric"
        )
    if not len(members) or not len(nonmembers):
        return GateResult("membership", SKIPPED, "no labelled training or held-out rows")
    auc, tpr = attack_auc(members, nonmembers), tpr_at_fpr(members, nonmembers)
    numbers = {
        "attack_auc": auc,
        "tpr_at_low_fpr": tpr,
        "low_fpr": LOW_FPR,
        "fpr_resolution": 1 / len(nonmembers),
        "members": len(members),
        "nonmembers": len(nonmembers),
        "member_median_score": float(np.median(members)),
        "nonmember_median_score": float(np.median(nonmembers)),
    }
    reasons = _membership_reasons(auc, tpr, cfg)
    return GateResult(
        "membership",
        FAILED if reasons else PASSED,
        "; ".join(reasons) or f"attack AUC {auc:.3f}, TPR at 0.1% FPR {tpr:.2%}",
        numbers,
        {"attack": _attack_table(numbers, cfg), "scores": _score_table(members, nonmembers)},
        advice=_MEMBERSHIP_ADVICE if reasons else "",
        seconds=time.perf_counter() - started,
    )


_MEMBERSHIP_ADVICE = (
    "The model is more confident on its training rows than on new ones, so an attacker "
    "can tell who was in the training data. Regularise it (stronger penalty, shallower "
    "or pruned trees, fewer boosting rounds, early stopping, min_samples_leaf), train "
    "on more data, or train with differential privacy; then check that the training "
    "and held-out scores in table 'scores' move together and run `shipyard check` again."
)


def _membership_reasons(auc: float, tpr: float, cfg: Any) -> list[str]:
    reasons = []
    if not auc <= cfg.max_attack_auc:
        reasons.append(
            f"membership attack AUC {auc:.3f} exceeds max_attack_auc {cfg.max_attack_auc:g}"
        )
    if not tpr <= cfg.max_tpr_at_low_fpr:
        reasons.append(
            f"the attack finds {tpr:.1%} of training rows at a 0.1% false-positive rate "
            f"(max_tpr_at_low_fpr {cfg.max_tpr_at_low_fpr:.1%})"
        )
    return reasons


def _attack_table(numbers: dict[str, Any], cfg: Any) -> list[dict[str, Any]]:
    return [
        {"measure": "attack AUC", "value": numbers["attack_auc"], "max": cfg.max_attack_auc},
        {
            "measure": "TPR at 0.1% FPR",
            "value": numbers["tpr_at_low_fpr"],
            "max": cfg.max_tpr_at_low_fpr,
        },
    ]


def _score_table(members: np.ndarray, nonmembers: np.ndarray) -> list[dict[str, Any]]:
    quantiles = (0.1, 0.5, 0.9, 0.99)
    return [
        {"rows": name, **{f"q{int(q * 100)}": float(np.quantile(s, q)) for q in quantiles}}
        for name, s in (("training (members)", members), ("held-out", nonmembers))
    ]


def _rows(frame: Any, label: str, rng: np.random.Generator) -> Any:
    frame = frame.dropna(subset=[label])
    if len(frame) <= MAX_ATTACK_ROWS:
        return frame
    return frame.iloc[np.sort(rng.choice(len(frame), MAX_ATTACK_ROWS, replace=False))]


def _model_classes(ctx: CheckContext) -> np.ndarray:
    inner = getattr(getattr(ctx.model, "model", None), "model", None)
    classes = getattr(inner, "classes_", None)
    if classes is not None:
        return np.asarray(classes)
    both = np.concatenate([ctx.train[ctx.label].dropna(), ctx.test[ctx.label].dropna()])
    return np.unique(both)


def _attack_scores(ctx: CheckContext, frame: Any, classes: np.ndarray) -> np.ndarray | None:
    inputs = frame[_features(ctx, frame)]
    truth = frame[ctx.label].to_numpy()
    probabilities = ctx.model.predict_proba(inputs)
    if probabilities is not None:
        import pandas as pd

        probabilities = np.asarray(probabilities, dtype=float).reshape(len(frame), -1)
        index = pd.Index(classes).get_indexer(truth)  # -1: a class the model never saw
        index = np.where(index < probabilities.shape[1], index, -1)
        return membership_scores(probabilities, index)
    if truth.dtype.kind not in "fiub":
        return None
    error = np.asarray(ctx.model.predict(inputs), dtype=float).ravel() - truth.astype(float)
    return -(error**2)

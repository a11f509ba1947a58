"""Data drift per feature between a reference and a current window.

Defaults (the same tests and thresholds as Evidently's data-drift preset, except where
said; docs/monitoring.md compares them line by line):

* **small samples** (the smaller side has at most ``small_sample`` = 1000 rows):
  numeric — two-sample Kolmogorov–Smirnov, categorical — chi-square test of
  homogeneity on the 2 × k table of counts; drift when p < ``alpha`` = 0.05;
* **large samples**: numeric — Wasserstein distance divided by the reference's
  standard deviation, categorical — Jensen–Shannon distance (natural logarithm)
  between the category shares; drift when the distance >= ``threshold`` = 0.1;
* numeric columns with at most 5 distinct values are tested as categorical;
* PSI (10 reference-quantile bins, drift when >= 0.1) on request, per feature or for
  all numeric features;
* dataset drift when the share of drifted features is >= ``share`` = 0.5; the
  prediction column is tested the same way and reported apart from the features.

Where we differ from Evidently, and why:

* The small/large choice looks at the *smaller* sample, not only at the reference. A
  300-row window against a 100k-row training set gets a test whose false-alarm rate
  is ``alpha``, rather than a distance whose noise at 300 rows is not calibrated.
* Chi-square compares two samples (homogeneity) instead of treating the reference
  shares as exact (goodness of fit): the reference is a sample too, and the
  goodness-of-fit test raises false alarms above ``alpha`` when it is small. For two
  categories it equals the two-proportion z-test Evidently uses for binary columns.

Speed: columns are read through Arrow (pandas, polars and pyarrow all work), no row
goes through Python, categories are counted by Arrow's hash kernel, and the
Wasserstein distance on large samples comes from the difference of the two empirical
CDFs on a fine grid (``grid`` cells between the joint minimum and maximum), O(n)
instead of a sort. Its error is below ``2 * width / std``; when that bound exceeds
``grid_tolerance`` (heavy tails stretch the grid) the exact sorted computation is used.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from shipyard.errors import MonitorError

__all__ = [
    "TESTS",
    "DriftReport",
    "DriftSettings",
    "FeatureDrift",
    "compute_drift",
    "infer_kinds",
]

NUMERIC, CATEGORICAL = "numeric", "categorical"
TESTS = {
    "ks": (NUMERIC,),
    "wasserstein": (NUMERIC,),
    "psi": (NUMERIC,),
    "chi2": (NUMERIC, CATEGORICAL),
    "jensen_shannon": (NUMERIC, CATEGORICAL),
}
P_VALUE_TESTS = ("ks", "chi2")
DISCRETE_VALUES = 5  # numeric columns with this few values are tested as categorical
_PSI_BINS = 10
_PSI_FLOOR = 1e-4  # share given to an empty PSI bin, so the logarithm stays finite
_STD_FLOOR = 1e-3  # Wasserstein normaliser for a (nearly) constant reference


@dataclass(frozen=True)
class DriftSettings:
    """How drift is decided. ``tests``/``thresholds`` override per feature by name."""

    alpha: float = 0.05
    threshold: float = 0.1
    psi_threshold: float = 0.1
    small_sample: int = 1000
    share: float = 0.5
    numeric_test: str | None = None
    categorical_test: str | None = None
    tests: Mapping[str, str] = field(default_factory=dict)
    thresholds: Mapping[str, float] = field(default_factory=dict)
    bins: int = 20
    grid: int = 8192
    grid_tolerance: float = 0.005

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise ValueError("invalid drift settings: " + "; ".join(problems))

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> DriftSettings:
        """Settings from ``monitor.drift`` in shipyard.yaml; ValueError says what is wrong.

        Keys: alpha, threshold, psi_threshold, small_sample, share, numeric_test,
        categorical_test, bins, and ``features: {name: {test: ks, threshold: 0.01}}``.
        """
        config = dict(config or {})
        known = {f.name for f in fields(cls)} - {"tests", "thresholds"} | {"features"}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(
                f"monitor.drift: unknown key(s) {', '.join(map(repr, unknown))}; "
                f"use {', '.join(sorted(known))}"
            )
        features = config.pop("features", None) or {}
        if not isinstance(features, Mapping):
            raise ValueError("monitor.drift.features must map a feature name to {test, threshold}")
        tests, thresholds = _feature_overrides(features)
        return cls(**config, tests=tests, thresholds=thresholds)

    def test_for(self, name: str, kind: str, small: bool, discrete: bool) -> str:
        if name in self.tests:
            return self.tests[name]
        if kind == NUMERIC and not discrete:
            return self.numeric_test or ("ks" if small else "wasserstein")
        return self.categorical_test or ("chi2" if small else "jensen_shannon")

    def threshold_for(self, name: str, test: str) -> float:
        if name in self.thresholds:
            return self.thresholds[name]
        if test in P_VALUE_TESTS:
            return self.alpha
        return self.psi_threshold if test == "psi" else self.threshold


def _feature_overrides(features: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, float]]:
    tests: dict[str, str] = {}
    thresholds: dict[str, float] = {}
    for name, spec in features.items():
        if not isinstance(spec, Mapping) or set(spec) - {"test", "threshold"}:
            raise ValueError(
                f"monitor.drift.features.{name}: expected a mapping with 'test' and/or "
                f"'threshold', got {spec!r}"
            )
        if "test" in spec:
            tests[str(name)] = spec["test"]
        if "threshold" in spec:
            thresholds[str(name)] = spec["threshold"]
    return tests, thresholds


def _number_problem(name: str, value: Any, low: float, high: float) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return f"{name} must be a number, got {value!r}"
    if not low <= value <= high:
        return f"{name} must be between {low} and {high}, got {value!r}"
    return None


def _problems(settings: DriftSettings) -> list[str]:
    checks = [
        _number_problem("alpha", settings.alpha, 1e-12, 0.5),
        _number_problem("threshold", settings.threshold, 0.0, math.inf),
        _number_problem("psi_threshold", settings.psi_threshold, 0.0, math.inf),
        _number_problem("share", settings.share, 0.0, 1.0),
        _number_problem("small_sample", settings.small_sample, 0, math.inf),
        _number_problem("bins", settings.bins, 2, 1000),
        _number_problem("grid", settings.grid, 64, 10_000_000),
        _number_problem("grid_tolerance", settings.grid_tolerance, 0.0, 1.0),
    ]
    for key in ("numeric_test", "categorical_test"):
        value = getattr(settings, key)
        if value is not None and value not in TESTS:
            checks.append(f"{key} must be one of {', '.join(TESTS)}, got {value!r}")
    for name, test in settings.tests.items():
        if test not in TESTS:
            checks.append(f"features.{name}.test must be one of {', '.join(TESTS)}, got {test!r}")
    for name, value in settings.thresholds.items():
        checks.append(_number_problem(f"features.{name}.threshold", value, 0.0, math.inf))
    return [problem for problem in checks if problem]


@dataclass
class FeatureDrift:
    """One column's verdict, with the histograms a report draws.

    For numeric columns ``edges`` are the bin edges of ``reference_counts`` and
    ``current_counts``; for categorical ones ``categories`` name the counts.
    """

    name: str
    kind: str
    test: str
    statistic: float
    p_value: float | None
    threshold: float
    drifted: bool
    reference_size: int
    current_size: int
    edges: list[float] | None = None
    categories: list[str] | None = None
    reference_counts: list[int] = field(default_factory=list)
    current_counts: list[int] = field(default_factory=list)
    note: str = ""

    @property
    def score(self) -> float:
        """What is compared with the threshold: the p-value or the distance."""
        return self.p_value if self.p_value is not None else self.statistic

    def to_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        for key in ("statistic", "p_value", "threshold"):
            if isinstance(out[key], float) and not math.isfinite(out[key]):
                out[key] = None
        return out


@dataclass
class DriftReport:
    features: list[FeatureDrift]
    share: float
    drifted: bool
    prediction: FeatureDrift | None = None
    settings: DriftSettings = field(default_factory=DriftSettings)

    def drifted_features(self) -> list[str]:
        return [feature.name for feature in self.features if feature.drifted]

    def feature(self, name: str) -> FeatureDrift:
        for candidate in self.features:
            if candidate.name == name:
                return candidate
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        return {
            "share": self.share,
            "drifted": self.drifted,
            "share_threshold": self.settings.share,
            "drifted_features": self.drifted_features(),
            "features": [feature.to_json() for feature in self.features],
            "prediction": self.prediction.to_json() if self.prediction else None,
        }


# --- reading columns -------------------------------------------------------------


def _arrow_table(frame: Any) -> Any:
    try:
        import pyarrow as pa
    except ModuleNotFoundError:
        raise MonitorError(
            "drift needs pyarrow to read columns",
            hint="pip install 'shipyard-ml[serve]' (the extra that writes the prediction log)",
        ) from None

    if isinstance(frame, pa.Table):
        return frame
    if hasattr(frame, "to_arrow"):  # polars
        return frame.to_arrow()
    if hasattr(frame, "columns") and hasattr(frame, "dtypes"):  # pandas
        threads = 1 if len(frame) < 100_000 else None  # threads cost more than they save
        try:
            return pa.Table.from_pandas(frame, preserve_index=False, nthreads=threads)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise ValueError(f"a column mixes types, give each column one type: {exc}") from None
    raise TypeError(
        f"drift needs a pandas or polars DataFrame or a pyarrow Table, got {type(frame).__name__}"
    )


def _kind_of(arrow_type: Any) -> str | None:
    import pyarrow.types as t

    if t.is_boolean(arrow_type) or t.is_string(arrow_type) or t.is_large_string(arrow_type):
        return CATEGORICAL
    if t.is_dictionary(arrow_type):
        return CATEGORICAL
    if t.is_integer(arrow_type) or t.is_floating(arrow_type) or t.is_decimal(arrow_type):
        return NUMERIC
    return None  # timestamps, nested values, binary: not tested


def infer_kinds(frame: Any) -> dict[str, str]:
    """name -> "numeric" | "categorical" for the columns drift can test."""
    schema = _arrow_table(frame).schema
    kinds = {name: _kind_of(schema.field(name).type) for name in schema.names}
    return {name: kind for name, kind in kinds.items() if kind}


def _numbers(column: Any) -> np.ndarray:
    """Finite values as float64, without copying when Arrow's buffer allows it."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    if column.null_count:
        column = pc.drop_null(column)
    values = np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64)
    finite = np.isfinite(values)
    return values if finite.all() else values[finite]


def _counts(column: Any) -> dict[str, int]:
    """Category -> count (missing values left out), by Arrow's hash kernel."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(column, pa.ChunkedArray) and pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    counted = pc.value_counts(pc.drop_null(column))
    values = counted.field("values").to_pylist()
    numbers = counted.field("counts").to_pylist()
    return {str(value): int(count) for value, count in zip(values, numbers, strict=True)}


# --- the statistics ----------------------------------------------------------------


def _histogram(values: np.ndarray, low: float, high: float, cells: int) -> np.ndarray:
    """Counts in ``cells`` equal cells over [low, high], in O(n) (no sort)."""
    if high <= low:
        return np.array([values.size] + [0] * (cells - 1), dtype=np.int64)
    scaled = values - low
    scaled *= cells / (high - low)
    index = scaled.astype(np.intp)
    np.minimum(index, cells - 1, out=index)  # the maximum lands on the last cell's edge
    np.maximum(index, 0, out=index)
    return np.bincount(index, minlength=cells)


def _coarsen(
    counts: tuple[np.ndarray, np.ndarray], low: float, high: float, bins: int
) -> tuple[list[float], list[int], list[int]]:
    """Plot bins made of whole grid cells: exact counts, edges on grid points."""
    cells = counts[0].size
    starts = np.unique(np.round(np.linspace(0, cells, bins + 1)).astype(np.intp))
    edges = (low + starts * (high - low) / cells).tolist()
    ref, cur = (np.add.reduceat(c, starts[:-1]).tolist() for c in counts)
    return edges, ref, cur


def _wasserstein_grid(counts: tuple[np.ndarray, np.ndarray], low: float, high: float) -> float:
    """W1 = integral |F - G|, with F and G exact at the grid points (midpoint rule)."""
    ref_cdf = np.cumsum(counts[0]) / counts[0].sum()
    cur_cdf = np.cumsum(counts[1]) / counts[1].sum()
    difference = np.abs(ref_cdf - cur_cdf)
    # F - G at a cell's right edge is exact; average with the left edge for the midpoint.
    left = np.concatenate(([0.0], difference[:-1]))
    return float(((left + difference) / 2).sum() * (high - low) / counts[0].size)


def _wasserstein(
    reference: np.ndarray, current: np.ndarray, low: float, high: float, settings: DriftSettings
) -> tuple[float, tuple[np.ndarray, np.ndarray] | None]:
    """The normalised distance, and the grid counts when the grid was used."""
    std = max(float(reference.std()), _STD_FLOOR)
    bound = 2 * (high - low) / settings.grid / std
    if bound > settings.grid_tolerance:
        from scipy.stats import wasserstein_distance

        return float(wasserstein_distance(reference, current)) / std, None
    counts = (
        _histogram(reference, low, high, settings.grid),
        _histogram(current, low, high, settings.grid),
    )
    return _wasserstein_grid(counts, low, high) / std, counts


def _psi(reference: np.ndarray, current: np.ndarray) -> float:
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, _PSI_BINS + 1)[1:-1]))
    ref = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=edges.size + 1)
    cur = np.bincount(np.searchsorted(edges, current, side="right"), minlength=edges.size + 1)
    ref_share = np.maximum(ref / reference.size, _PSI_FLOOR)
    cur_share = np.maximum(cur / current.size, _PSI_FLOOR)
    return float(np.sum((cur_share - ref_share) * np.log(cur_share / ref_share)))


def _chi2(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    """Pearson's chi-square test of homogeneity on the 2 x k table, no continuity
    correction (scipy's chi2_contingency(..., correction=False), without its per-call
    overhead, which dominates on small windows)."""
    from scipy.special import chdtrc

    seen = (ref + cur) > 0
    if seen.sum() < 2:
        return 0.0, 1.0
    table = np.vstack([ref[seen], cur[seen]]).astype(np.float64)
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    statistic = float(((table - expected) ** 2 / expected).sum())
    return statistic, float(chdtrc(table.shape[1] - 1, statistic))


def _jensen_shannon(ref: np.ndarray, cur: np.ndarray) -> float:
    from scipy.spatial.distance import jensenshannon

    return float(jensenshannon(ref / ref.sum(), cur / cur.sum()))


# --- one column ------------------------------------------------------------------


def _empty(
    name: str, kind: str, test: str, threshold: float, sizes: tuple[int, int]
) -> FeatureDrift:
    return FeatureDrift(
        name, kind, test, math.nan, None, threshold, False, *sizes,
        note="no values on one side: nothing to compare",
    )  # fmt: skip


def _discrete(values: np.ndarray) -> np.ndarray | None:
    """The distinct values when there are at most DISCRETE_VALUES of them."""
    if np.unique(values[:10_000]).size > DISCRETE_VALUES:
        return None
    distinct = np.unique(values)
    return distinct if distinct.size <= DISCRETE_VALUES else None


def _numeric_drift(name: str, ref: np.ndarray, cur: np.ndarray, s: DriftSettings) -> FeatureDrift:
    small = min(ref.size, cur.size) <= s.small_sample
    discrete = _discrete(ref) if ref.size else None
    test = s.test_for(name, NUMERIC, small, discrete is not None)
    threshold = s.threshold_for(name, test)
    if not (ref.size and cur.size):
        return _empty(name, NUMERIC, test, threshold, (ref.size, cur.size))
    if test in ("chi2", "jensen_shannon"):
        return _discrete_drift(name, ref, cur, discrete, test, threshold)
    p_value, grid = None, None
    low = min(float(ref.min()), float(cur.min()))
    high = max(float(ref.max()), float(cur.max()))
    if test == "ks":
        from scipy.stats import ks_2samp

        result = ks_2samp(ref, cur)
        statistic, p_value = float(result.statistic), float(result.pvalue)
    elif test == "psi":
        statistic = _psi(ref, cur)
    else:
        statistic, grid = _wasserstein(ref, cur, low, high, s)
    drifted = p_value < threshold if p_value is not None else statistic >= threshold
    if grid is None:
        grid = (_histogram(ref, low, high, s.bins), _histogram(cur, low, high, s.bins))
    edges, ref_counts, cur_counts = _coarsen(grid, low, high, s.bins)
    return FeatureDrift(
        name, NUMERIC, test, statistic, p_value, threshold, bool(drifted), ref.size, cur.size,
        edges=edges, reference_counts=ref_counts, current_counts=cur_counts,
    )  # fmt: skip


def _discrete_drift(
    name: str,
    ref: np.ndarray,
    cur: np.ndarray,
    distinct: np.ndarray | None,
    test: str,
    threshold: float,
) -> FeatureDrift:
    values = np.unique(np.concatenate([distinct if distinct is not None else ref, np.unique(cur)]))
    ref_counts = np.bincount(np.searchsorted(values, ref), minlength=values.size)
    cur_counts = np.bincount(np.searchsorted(values, cur), minlength=values.size)
    labels = [f"{value:g}" for value in values]
    return _categorical_verdict(name, NUMERIC, labels, ref_counts, cur_counts, test, threshold)


def _categorical_verdict(
    name: str,
    kind: str,
    labels: list[str],
    ref: np.ndarray,
    cur: np.ndarray,
    test: str,
    threshold: float,
) -> FeatureDrift:
    sizes = (int(ref.sum()), int(cur.sum()))
    if not all(sizes):
        return _empty(name, kind, test, threshold, sizes)
    if test == "chi2":
        statistic, p_value = _chi2(ref, cur)
        drifted = p_value < threshold
    elif test == "jensen_shannon":
        statistic, p_value = _jensen_shannon(ref, cur), None
        drifted = statistic >= threshold
    else:
        raise ValueError(f"feature {name!r}: test {test!r} needs a numeric column")
    return FeatureDrift(
        name, kind, test, statistic, p_value, threshold, bool(drifted), *sizes,
        categories=labels, reference_counts=ref.tolist(), current_counts=cur.tolist(),
    )  # fmt: skip


def _categorical_drift(name: str, ref_col: Any, cur_col: Any, s: DriftSettings) -> FeatureDrift:
    ref_counts, cur_counts = _counts(ref_col), _counts(cur_col)
    small = min(sum(ref_counts.values()), sum(cur_counts.values())) <= s.small_sample
    test = s.test_for(name, CATEGORICAL, small, True)
    if test not in TESTS or CATEGORICAL not in TESTS[test]:
        raise ValueError(
            f"feature {name!r} is categorical: use chi2 or jensen_shannon, not {test!r}"
        )
    labels = sorted(set(ref_counts) | set(cur_counts))
    ref = np.array([ref_counts.get(label, 0) for label in labels], dtype=np.int64)
    cur = np.array([cur_counts.get(label, 0) for label in labels], dtype=np.int64)
    return _categorical_verdict(
        name, CATEGORICAL, labels, ref, cur, test, s.threshold_for(name, test)
    )


def _column_drift(
    name: str, kind: str, ref_col: Any, cur_col: Any, s: DriftSettings
) -> FeatureDrift:
    if kind == CATEGORICAL:
        return _categorical_drift(name, ref_col, cur_col, s)
    if kind != NUMERIC:
        raise ValueError(f"column {name!r}: kind must be 'numeric' or 'categorical', got {kind!r}")
    return _numeric_drift(name, _numbers(ref_col), _numbers(cur_col), s)


# --- the report ------------------------------------------------------------------


def _resolve(
    reference: Any, current: Any, columns: Mapping[str, str] | None, prefix: str
) -> dict[str, str]:
    if columns is None:
        kinds = infer_kinds(reference)
        present = set(current.schema.names)
        return {name: kind for name, kind in kinds.items() if prefix + name in present}
    missing = [f"{name!r} missing from the reference" for name in columns]
    missing = [
        m for m, name in zip(missing, columns, strict=True) if name not in reference.schema.names
    ]
    missing += [
        f"{prefix + name!r} missing from the current data"
        for name in columns
        if prefix + name not in current.schema.names
    ]
    if missing:
        raise ValueError("drift columns: " + "; ".join(missing))
    return dict(columns)


def compute_drift(
    reference: Any,
    current: Any,
    *,
    columns: Mapping[str, str] | None = None,
    prediction: str | None = None,
    settings: DriftSettings | None = None,
    current_prefix: str = "",
) -> DriftReport:
    """Test every column of ``reference`` against ``current``.

    ``columns`` maps name -> "numeric" | "categorical" (inferred from the types when
    None: numbers are numeric; text, booleans and categoricals are categorical; other
    types are skipped). ``prediction`` names the prediction column, tested the same way
    but reported apart and left out of the share. ``current_prefix``: the current
    data's name for column ``x`` is ``prefix + x`` (``in_`` in the prediction log); the
    prediction column is looked up under its own name first, then with the prefix.
    Raises ValueError for a named column that is missing or a test that does not fit.
    """
    settings = settings or DriftSettings()
    ref_table, cur_table = _arrow_table(reference), _arrow_table(current)
    kinds = _resolve(ref_table, cur_table, columns, current_prefix)
    names = {name: current_prefix + name for name in kinds}
    if prediction is not None:
        # the log keeps the prediction under its own name, not as a prefixed input
        unprefixed = prediction in cur_table.schema.names
        prefix = "" if unprefixed else current_prefix
        kinds.pop(prediction, None)
        kind = _resolve(ref_table, cur_table, {prediction: CATEGORICAL}, prefix)
        kinds[prediction] = (columns or {}).get(prediction) or infer_kinds(
            ref_table.select([prediction])
        ).get(prediction, kind[prediction])
        names[prediction] = prefix + prediction
    results = {
        name: _column_drift(
            name, kind, ref_table.column(name), cur_table.column(names[name]), settings
        )
        for name, kind in kinds.items()
    }
    predicted = results.pop(prediction, None) if prediction is not None else None
    features = list(results.values())
    share = sum(f.drifted for f in features) / len(features) if features else 0.0
    drifted = bool(features) and share >= settings.share
    return DriftReport(features, share, drifted, predicted, settings)

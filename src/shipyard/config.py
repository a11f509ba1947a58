"""The ``shipyard.yaml`` schema and its loader.

Every section is a strict pydantic model: an unknown key or a bad value is reported
with the file, the key path and what would be valid, all problems at once.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from shipyard.core.dag import DagError, build_graph
from shipyard.core.thresholds import parse_threshold
from shipyard.errors import ConfigError
from shipyard.project import CONFIG_FILE

__all__ = [
    "CONFIG_FILE",
    "DeployConfig",
    "GatesConfig",
    "GovernanceConfig",
    "MonitorConfig",
    "ProjectConfig",
    "StageConfig",
    "StoreConfig",
    "duration_seconds",
    "load_config",
    "parse_config",
]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_DURATION = re.compile(r"^\d+(\.\d+)?(ms|s|m|h|d)$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _threshold(value: Any) -> Any:
    parse_threshold(value)
    return value


# A comparison like ">= 0.8"; validated where it stands, so errors carry its key path.
Threshold = Annotated[str | float, AfterValidator(_threshold)]


def _relative_path(value: str) -> str:
    """Normalise a project-relative path; refuse absolute paths and '..' escapes."""
    if not value or "\x00" in value:
        raise ValueError(f"path {value!r} is empty or contains NUL")
    if value.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", value):
        raise ValueError(f"path {value!r} is absolute; use a path relative to the project")
    norm = posixpath.normpath(value.replace("\\", "/"))
    if norm == ".." or norm.startswith("../"):
        raise ValueError(f"path {value!r} leaves the project folder")
    return norm


class Resources(_Strict):
    cpus: float = Field(default=1, gt=0)
    gpus: float = Field(default=0, ge=0)
    memory: str | int | None = None  # bytes, or "4GB"/"512MiB"

    @field_validator("memory")
    @classmethod
    def _memory(cls, value: str | int | None) -> str | int | None:
        if isinstance(value, str) and not re.match(r"^\d+(\.\d+)?\s*([KMGT]i?B?)?$", value):
            raise ValueError(f"memory {value!r} must be bytes or a size like '4GB' or '512MiB'")
        return value


def _path_list(items: list[Any], what: str) -> list[str]:
    """Accept DVC's forms: a list of paths or of one-key ``{path: {options}}`` maps."""
    paths: list[str] = []
    for item in items:
        if isinstance(item, str):
            paths.append(_relative_path(item))
        elif isinstance(item, dict) and len(item) == 1:
            ((path, options),) = item.items()
            if options is not None and not isinstance(options, dict):
                raise ValueError(f"options of {what} '{path}' must be a mapping")
            paths.append(_relative_path(str(path)))
        else:
            raise ValueError(f"each {what} entry must be a path or {{path: {{options}}}}")
    return paths


class StageConfig(_Strict):
    """One pipeline stage; keys read like dvc.yaml's so a DVC stage block works."""

    cmd: str | list[str]
    deps: list[Any] = []
    params: list[Any] = []
    outs: list[Any] = []
    metrics: list[Any] = []
    plots: list[Any] = []
    wdir: str = "."
    desc: str | None = None
    frozen: bool = False
    always_changed: bool = False
    resources: Resources | None = None
    env: dict[str, str] = {}

    @field_validator("cmd")
    @classmethod
    def _cmd(cls, value: str | list[str]) -> str | list[str]:
        if not (value if isinstance(value, str) else [c for c in value if c.strip()]):
            raise ValueError("cmd must not be empty")
        return value

    @field_validator("deps", "outs", "metrics", "plots")
    @classmethod
    def _paths(cls, value: list[Any], info: Any) -> list[Any]:
        _path_list(value, info.field_name.rstrip("s"))
        return value

    @field_validator("params")
    @classmethod
    def _params(cls, value: list[Any]) -> list[Any]:
        for item in value:
            ok = isinstance(item, str) or (
                isinstance(item, dict)
                and all(isinstance(keys, list | type(None)) for keys in item.values())
            )
            if not ok:
                raise ValueError("params entries are keys ('train.C') or {file.yaml: [keys]}")
        return value

    @field_validator("wdir")
    @classmethod
    def _wdir(cls, value: str) -> str:
        return _relative_path(value)

    @property
    def commands(self) -> list[str]:
        return [self.cmd] if isinstance(self.cmd, str) else list(self.cmd)

    def dep_paths(self) -> list[str]:
        return [_join(self.wdir, p) for p in _path_list(self.deps, "dep")]

    def out_paths(self) -> list[str]:
        outs = _path_list(self.outs, "out") + _path_list(self.metrics, "metric")
        return [_join(self.wdir, p) for p in outs + _path_list(self.plots, "plot")]


def _join(wdir: str, path: str) -> str:
    return posixpath.normpath(posixpath.join(wdir, path))


class DataGate(_Strict):
    schema_: str = Field(default="auto", alias="schema")
    max_missing: float | None = Field(default=None, ge=0, le=1)
    max_duplicates: float | None = Field(default=None, ge=0, le=1)
    leakage: bool = True
    train: str | None = None
    test: str | None = None
    label: str | None = None
    expectations: list[dict[str, Any]] = []

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class BaselineGate(_Strict):
    against: str = "production"
    model: str | None = None  # registry model name; default: the project name
    max_regression: dict[str, float] = {}
    confidence: float = Field(default=0.95, gt=0.5, lt=1)


_FAIRNESS_METRICS = {
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "equalized_odds_ratio",
    "equal_opportunity_difference",
    "equal_opportunity_ratio",
}


class FairnessGate(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)
    sensitive: list[str]

    @model_validator(mode="after")
    def _metrics(self) -> FairnessGate:
        for key, value in (self.model_extra or {}).items():
            if key not in _FAIRNESS_METRICS:
                valid = ", ".join(sorted(_FAIRNESS_METRICS))
                raise ValueError(f"unknown fairness metric '{key}'; valid: {valid}")
            _threshold(value)
        return self


class LatencyGate(_Strict):
    p50_ms: Threshold | None = None
    p95_ms: Threshold | None = None
    p99_ms: Threshold | None = None
    rows: int = Field(default=1000, gt=0)


class PoisoningGate(_Strict):
    max_noise_rate: float = Field(default=0.1, ge=0, le=1)
    max_noise_increase: float = Field(default=0.05, ge=0, le=1)
    outliers: bool = True
    max_outlier_share: float = Field(default=0.05, ge=0, le=1)


class MembershipGate(_Strict):
    max_attack_auc: float = Field(default=0.6, ge=0.5, le=1)
    max_tpr_at_low_fpr: float = Field(default=0.05, ge=0, le=1)  # TPR at 0.1 % FPR


class GatesConfig(_Strict):
    model: str | None = None  # the candidate's path (file or folder) in the project
    data: DataGate | None = None
    metrics: dict[str, Threshold] = {}
    baseline: BaselineGate | None = None
    fairness: FairnessGate | None = None
    latency: LatencyGate | None = None
    poisoning: PoisoningGate | None = None
    membership: MembershipGate | None = None


class AliasPolicy(_Strict):
    approvals: int = Field(default=0, ge=0)
    four_eyes: bool = False
    approver_role: Literal["approver", "admin"] = "approver"
    require_gates: bool = True
    model_card: list[str] = []


class GovernanceConfig(_Strict):
    approvals: int = Field(default=0, ge=0)
    four_eyes: bool = False
    model_card: list[str] = []
    require_gates: bool = True
    allow_pickle: bool = False
    aliases: dict[str, AliasPolicy] = {}


def duration_seconds(text: str) -> float:
    """Seconds in a duration like '500ms', '30s', '5m', '1h', '2d'."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"duration {text!r} must look like '30s', '5m', '1h'")
    unit = match.group(2)
    factor = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
    return float(text[: -len(unit)]) * factor


def _duration(value: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"duration {value!r} must be text like '30s', '5m', '1h'")
    duration_seconds(value)
    return value


# A duration such as "30s", "5m", "1h" or "2d", checked where it stands (shared by the
# deploy and monitor sections; convert with duration_seconds).
Duration = Annotated[str, AfterValidator(_duration)]


class BlueGreenConfig(_Strict):
    window: Duration = "10m"  # the old version stays loaded this long for a switch back
    replay: int = Field(default=50, ge=0, le=10_000)  # logged requests replayed in smoke test


class ABConfig(_Strict):
    split: float = Field(default=50.0, gt=0, lt=100)  # the candidate's share
    metric: Literal["accuracy", "error_rate", "latency"] = "accuracy"
    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    mde: float = Field(default=0.02, gt=0)  # smallest difference worth detecting (plan)
    power: float = Field(default=0.8, gt=0, lt=1)
    min_samples: int = Field(default=100, ge=1)
    max_duration: Duration = "7d"
    promote: Literal["winner", "manual"] = "winner"


class ShadowConfig(_Strict):
    duration: Duration = "10m"
    min_requests: int = Field(default=100, ge=1)


class DeployConfig(_Strict):
    strategy: Literal["canary", "bluegreen", "ab", "shadow"] = "canary"
    steps: list[Annotated[float, Field(gt=0, le=100)]] = [5, 25, 50, 100]
    step_duration: Duration = "5m"
    interval: Duration = "1s"  # how often the controller analyses a live rollout
    analysis: dict[str, Any] = {}
    sticky_key: str | None = None
    bluegreen: BlueGreenConfig = BlueGreenConfig()
    ab: ABConfig = ABConfig()
    shadow: ShadowConfig = ShadowConfig()

    @field_validator("steps")
    @classmethod
    def _steps(cls, value: list[float]) -> list[float]:
        if value != sorted(set(value)):
            raise ValueError(f"steps must increase strictly, got {value}")
        return value

    @field_validator("analysis")
    @classmethod
    def _analysis(cls, value: dict[str, Any]) -> dict[str, Any]:
        from shipyard.rollout.policy import validate_analysis

        validate_analysis(value)
        return value


class DriftConfig(_Strict):
    """``monitor.drift``: the reference to compare against and the drift settings.

    ``reference`` is ``training`` (the data the served version was trained on, found
    through its lineage) or a project-relative CSV/Parquet file.
    """

    every: Duration = "5m"
    reference: str = "training"
    threshold: float | None = Field(default=None, gt=0)
    share: float = Field(default=0.5, gt=0, le=1)
    features: dict[str, dict[str, Any]] = {}  # per-feature overrides for the statistics

    @field_validator("reference")
    @classmethod
    def _reference(cls, value: str) -> str:
        return value if value == "training" else _relative_path(value)


def _condition(value: str) -> str:
    from shipyard.monitor.expr import parse_condition

    try:
        parse_condition(value)
    except ConfigError as exc:
        raise ValueError(exc.message) from None
    return value


class AlertRule(_Strict):
    """One alert: ``when`` the condition has held ``for`` a while, tell ``notify`` and
    take ``action`` (at most once per ``cooldown``)."""

    name: str | None = None  # default: the condition text
    when: Annotated[str, AfterValidator(_condition)]
    for_: Duration = Field(default="0s", alias="for")
    severity: Literal["info", "warning", "critical"] = "warning"
    notify: list[str] = []
    action: Literal["none", "rollback", "retrain"] = "none"
    cooldown: Duration = "30m"
    repeat: Duration | None = None  # re-notify a still-firing alert this often
    summary: str | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not _NAME.match(value):
            raise ValueError(f"alert name {value!r} must use letters, digits, '.', '_', '-'")
        return value

    @property
    def key(self) -> str:
        return self.name or self.when.strip()[:200]


class _Delivery(_Strict):
    timeout: float = Field(default=5.0, gt=0, le=120)
    retries: int = Field(default=3, ge=0, le=10)
    backoff: float = Field(default=0.5, ge=0, le=60)  # seconds, doubled per retry


def _env_name(value: str | None) -> str | None:
    if value is not None and not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", value):
        raise ValueError(f"{value!r} is not an environment variable name")
    return value


EnvName = Annotated[str | None, AfterValidator(_env_name)]


class WebhookNotifier(_Delivery):
    """A generic webhook receiving Slack-compatible JSON (``text`` plus ``blocks``)."""

    type: Literal["webhook"]
    url: str | None = None
    url_env: EnvName = None  # e.g. SLACK_WEBHOOK_URL: the URL is often a secret
    headers: dict[str, str] = {}

    @model_validator(mode="after")
    def _target(self) -> WebhookNotifier:
        if not (self.url or self.url_env):
            raise ValueError("a webhook needs 'url' or 'url_env'")
        return self


class SmtpNotifier(_Delivery):
    """Email over SMTP; STARTTLS and AUTH when configured, plain for a local relay."""

    type: Literal["smtp"]
    host: str
    port: int = Field(default=25, gt=0, lt=65536)
    sender: str = Field(alias="from")
    to: list[str] = Field(min_length=1)
    starttls: bool = False
    ssl: bool = False
    username: str | None = None
    password_env: EnvName = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class PagerDutyNotifier(_Delivery):
    """PagerDuty Events API v2: trigger and resolve with one dedup key per alert."""

    type: Literal["pagerduty"]
    routing_key_env: EnvName = None
    routing_key: str | None = None  # allowed, but prefer routing_key_env
    url: str = "https://events.pagerduty.com/v2/enqueue"
    source: str | None = None

    @model_validator(mode="after")
    def _key(self) -> PagerDutyNotifier:
        if not (self.routing_key or self.routing_key_env):
            raise ValueError("pagerduty needs 'routing_key_env' (the variable holding the key)")
        return self


class AlertmanagerNotifier(_Delivery):
    """Prometheus Alertmanager's API v2 (``POST <url>/api/v2/alerts``)."""

    type: Literal["alertmanager"]
    url: str
    labels: dict[str, str] = {}


NotifierConfig = Annotated[
    WebhookNotifier | SmtpNotifier | PagerDutyNotifier | AlertmanagerNotifier,
    Field(discriminator="type"),
]


class ExtractionConfig(_Strict):
    """The model-extraction signal: per-client query patterns against normal traffic."""

    threshold: float = Field(default=0.5, gt=0, le=1)
    min_queries: int = Field(default=50, ge=2)


class RetrainConfig(_Strict):
    """What the ``retrain`` action runs: an optional command that fetches fresh data,
    then the pipeline, the gates, registration and a canary."""

    command: str | None = None
    force: bool = False
    timeout: Duration = "1h"


class MonitorConfig(_Strict):
    drift: DriftConfig | None = None
    window: Duration = "1h"
    alerts: list[AlertRule] = []
    notifiers: dict[str, NotifierConfig] = {}
    extraction: ExtractionConfig = ExtractionConfig()
    retrain: RetrainConfig = RetrainConfig()

    @model_validator(mode="after")
    def _references(self) -> MonitorConfig:
        names: set[str] = set()
        for index, rule in enumerate(self.alerts):
            if rule.key in names:
                raise ValueError(f"alerts.{index}: two alerts are named {rule.key!r}")
            names.add(rule.key)
            missing = [n for n in rule.notify if n not in self.notifiers]
            if missing:
                known = ", ".join(sorted(self.notifiers)) or "(none configured)"
                raise ValueError(
                    f"alerts.{index}.notify: no notifier named {', '.join(map(repr, missing))}; "
                    f"define it under monitor.notifiers (configured: {known})"
                )
        return self


class StoreConfig(_Strict):
    db: str | None = None  # SQLAlchemy URL; default .shipyard/shipyard.db
    artifacts: str | None = None  # fsspec URL; default .shipyard/artifacts
    remote: str | None = None  # fsspec URL for `shipyard data push/pull`


class ProjectConfig(_Strict):
    """The whole ``shipyard.yaml``."""

    project: str
    stages: dict[str, StageConfig] = {}
    params: dict[str, Any] = {}
    gates: GatesConfig = GatesConfig()
    governance: GovernanceConfig = GovernanceConfig()
    deploy: DeployConfig = DeployConfig()
    monitor: MonitorConfig = MonitorConfig()
    store: StoreConfig = StoreConfig()

    @field_validator("project")
    @classmethod
    def _project(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(
                f"project name {value!r} must start with a letter or digit and use only "
                "letters, digits, '.', '_' and '-' (at most 100 characters)"
            )
        return value

    @field_validator("stages")
    @classmethod
    def _stage_names(cls, value: dict[str, StageConfig]) -> dict[str, StageConfig]:
        for name in value:
            if not _NAME.match(name):
                raise ValueError(f"stage name {name!r} must use letters, digits, '.', '_', '-'")
        return value


class _UniqueKeyLoader(yaml.SafeLoader):
    """Safe YAML that refuses duplicate keys instead of silently keeping the last."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: Path) -> Any:
    """Load a YAML file safely; a syntax error becomes ConfigError with line and column."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path} does not exist", path=str(path), hint="run `shipyard init` to create one"
        ) from None
    except (UnicodeDecodeError, OSError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}", path=str(path)) from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path} is not valid YAML{where}: {problem}", path=str(path)) from None


# pydantic adds the member type of a union to an error's location; it is not a key.
_UNION_TAG = re.compile(
    r"^(str|int|float|bool|none|(list|dict|function-\w+|union|tagged-union)\[.*)$"
)


def _key_path(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if not _UNION_TAG.match(str(p))]
    return ".".join(parts) or "(top level)"


def _valid_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys allowed where the unknown key ``loc[-1]`` was found."""
    current: type[BaseModel] = ProjectConfig
    parts = list(loc[:-1])
    while parts:
        fields = {f.alias or n: f for n, f in current.model_fields.items()}
        field = fields.get(parts.pop(0))
        model = _model_in(field.annotation) if field else None
        if model is None:
            return []
        if get_origin(field.annotation) in (dict, list) and parts:
            parts.pop(0)  # the mapping key or list index
        current = model
    return [f.alias or name for name, f in current.model_fields.items()]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside ``X``, ``X | None``, ``dict[str, X]`` or ``list[X]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _problems(exc: ValidationError) -> list[tuple[str, str]]:
    problems = []
    for err in exc.errors():
        loc = err["loc"]
        if err["type"] == "extra_forbidden":
            valid = _valid_keys(loc)
            msg = "unknown key" + (f"; valid keys here: {', '.join(valid)}" if valid else "")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            shown = repr(err.get("input"))
            if "input" in err and err["type"] != "missing" and shown not in msg:
                msg += f" (got {shown[:200]})"
        problems.append((_key_path(loc), msg))
    return problems


def parse_config(data: Any, *, source: str = CONFIG_FILE) -> ProjectConfig:
    """Validate already-loaded YAML data; raise ConfigError listing every problem."""
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source} must be a mapping with at least 'project: NAME'",
            path=source,
            hint="run `shipyard init` to write a valid file",
        )
    try:
        config = ProjectConfig.model_validate(data)
    except ValidationError as exc:
        problems = _problems(exc)
        raise ConfigError(
            f"{source} is invalid ({len(problems)} problem{'s' * (len(problems) != 1)}):",
            path=source,
            problems=problems,
        ) from None
    try:
        build_graph(
            {n: s.dep_paths() for n, s in config.stages.items()},
            {n: s.out_paths() for n, s in config.stages.items()},
        )
    except DagError as exc:
        raise ConfigError(
            f"{source} is invalid:", path=source, problems=[("stages", str(exc))]
        ) from None
    return config


def load_config(path: str | Path) -> ProjectConfig:
    """Read and validate a ``shipyard.yaml``."""
    path = Path(path)
    return parse_config(read_yaml(path), source=str(path))

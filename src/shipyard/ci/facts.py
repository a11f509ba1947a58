"""What a generated CI pipeline needs to know about the project, checked once.

Every value that ends up inside a generated file — the model name, the model's path,
the branch, the cron schedule — is validated here against a strict pattern, so the
templates can put them into YAML, shell lines and Groovy strings without quoting
games: a value that could break out of its place is refused with a UsageError.

The shell lines every provider runs are built here too, so the five pipelines agree
on what "check", "register", "deploy" and "monitor" mean.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shipyard.errors import ConfigError, UsageError

__all__ = [
    "CACHE_PATHS",
    "LOCK_FILE",
    "REPORT_DIR",
    "SECRETS",
    "Facts",
    "aws_schedule",
    "facts_from_config",
]

# Names: what the registry accepts. Paths: relative, plain characters, no `..`.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_PATH = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./-]{0,199}$")
_BRANCH = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,99}$")
_CRON_FIELD = re.compile(r"^[0-9*][0-9*,/-]*$")

REPORT_DIR = "shipyard-report"
# Environment variables the pipelines read from the provider's secret store.
SECRETS = (
    "SHIPYARD_DB",
    "SHIPYARD_ARTIFACTS",
    "SHIPYARD_TOKEN",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
)
CACHE_PATHS = (".shipyard/artifacts", ".shipyard/cache")
LOCK_FILE = "shipyard.lock"


@dataclass(frozen=True)
class Facts:
    """The validated inputs of a pipeline template."""

    project: str
    model: str
    model_path: str
    strategy: str = "canary"
    branch: str = "main"
    schedule: str = "17 * * * *"
    python: str = "3.11"
    package: str = "shipyard-ml[postgres,s3,checks]"

    def __post_init__(self) -> None:
        _match(_NAME, self.project, "project name")
        _match(_NAME, self.model, "model name", "--model")
        _match(_PATH, self.model_path, "model path", "--model-path", slash=True)
        _match(_BRANCH, self.branch, "branch", "--branch", slash=True)
        if ".." in self.model_path.split("/"):
            raise UsageError(f"model path {self.model_path!r} must stay inside the project")
        if self.strategy not in ("canary", "bluegreen", "ab", "shadow"):
            raise UsageError(f"deploy strategy {self.strategy!r} is not one Shipyard knows")
        fields = self.schedule.split()
        if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
            raise UsageError(
                f"--schedule {self.schedule!r} must be five cron fields, e.g. '17 * * * *'"
            )

    # The shell lines, shared by every provider.
    @property
    def install(self) -> str:
        return (
            f'python -m pip install "{self.package}"\n'
            "if [ -f requirements.txt ]; then python -m pip install -r requirements.txt; fi"
        )

    @property
    def check(self) -> str:
        return f"shipyard check --output {REPORT_DIR}"

    @property
    def register(self) -> str:
        """Register the checked model; leaves its version number in MODEL_VERSION."""
        return (
            f"shipyard register {self.model} {self.model_path} "
            f"--gates {REPORT_DIR}/report.json --json > registered.json\n"
            "MODEL_VERSION=$(python -c "
            "\"import json; print(json.load(open('registered.json'))['version'])\")"
        )

    @property
    def deploy(self) -> str:
        return f'shipyard deploy {self.model} "$MODEL_VERSION" --strategy {self.strategy}'

    monitor = "shipyard monitor --once"


def _match(
    pattern: re.Pattern[str], value: str, what: str, option: str = "", *, slash: bool = False
) -> None:
    if not isinstance(value, str) or not pattern.match(value):
        allowed = "letters, digits, '.', '_', '-'" + (" and '/'" if slash else "")
        where = f"; set it with {option}" if option else ""
        raise UsageError(f"{what} {value!r} cannot go into a CI file: use only {allowed}{where}")


def facts_from_config(config: object, **overrides: str | None) -> Facts:
    """Facts for ``config`` (a ProjectConfig), with command-line ``overrides``.

    The model name defaults to the baseline gate's model, else the project name (the
    same default ``shipyard check`` uses); the model path is ``gates.model``.
    """
    gates = getattr(config, "gates", None)
    baseline = getattr(gates, "baseline", None)
    project = str(getattr(config, "project", ""))
    model = overrides.get("model") or getattr(baseline, "model", None) or project
    path = overrides.get("model_path") or getattr(gates, "model", None)
    if not path:
        raise ConfigError(
            "shipyard.yaml has no gates.model: the pipeline cannot know what to register",
            hint="set `gates: {model: PATH}` in shipyard.yaml or pass --model-path PATH",
        )
    deploy = getattr(config, "deploy", None)
    values = {k: v for k, v in overrides.items() if v and k not in ("model", "model_path")}
    return Facts(
        project=project,
        model=model,
        model_path=path,
        strategy=getattr(deploy, "strategy", "canary"),
        **values,
    )


def aws_schedule(cron: str) -> str:
    """A five-field cron line as an EventBridge ``cron(...)`` expression.

    EventBridge wants six fields and a ``?`` in day-of-month or day-of-week, and
    numbers its weekdays differently: only schedules with ``*`` as the weekday are
    translated, the others are refused with a hint.
    """
    minute, hour, day, month, weekday = cron.split()
    if weekday != "*":
        raise UsageError(
            f"--schedule {cron!r}: use '*' as the weekday for --provider aws",
            hint="edit the ScheduleExpression in ci/aws/codepipeline.yml for weekday rules",
        )
    return f"cron({minute} {hour} {day} {month} ? *)"

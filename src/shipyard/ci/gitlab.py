"""GitLab CI: ``.gitlab-ci.yml``.

Merge requests run the pipeline and the gates; the report is kept as an artifact shown
on the merge request (``expose_as``) and posted as one MR note, updated on each push.
The default branch registers the model; ``deploy`` is a manual job on the protected
``production`` environment (who may press it is set on that environment). Scheduled
pipelines (CI/CD → Schedules) run ``shipyard monitor``. Secrets are masked, protected
CI/CD variables: GitLab puts them in the job's environment by name.
"""

from __future__ import annotations

from typing import Any

from shipyard.ci.facts import CACHE_PATHS, LOCK_FILE, REPORT_DIR, Facts
from shipyard.ci.render import dump_yaml, secrets_note

__all__ = ["PATH", "files", "pipeline"]

PATH = ".gitlab-ci.yml"
_MR = '$CI_PIPELINE_SOURCE == "merge_request_event"'
_SCHEDULE = '$CI_PIPELINE_SOURCE == "schedule"'


def _main(facts: Facts) -> str:
    return f'$CI_COMMIT_BRANCH == "{facts.branch}" && $CI_PIPELINE_SOURCE == "push"'


def _report_script() -> str:
    report = f"{REPORT_DIR}/report.json"
    return (
        f"if [ -f {report} ]; then\n"
        f"  shipyard ci report {report} --provider gitlab --output {REPORT_DIR}/comment.md\n"
        f'  shipyard ci report {report} --provider gitlab --post --link "$CI_JOB_URL"\n'
        "fi"
    )


def pipeline(facts: Facts) -> dict[str, Any]:
    return {
        "stages": ["check", "register", "deploy", "monitor"],
        "default": {
            "image": f"python:{facts.python}",  # not -slim: `shipyard run` records git state
            "before_script": [facts.install],
            "interruptible": True,
        },
        "variables": {
            "PIP_CACHE_DIR": "$CI_PROJECT_DIR/.cache/pip",
            "SHIPYARD_USER": "$GITLAB_USER_LOGIN",
        },
        ".shipyard-cache": {
            "cache": {
                "key": {"files": [LOCK_FILE], "prefix": "shipyard"},
                "paths": [f"{p}/" for p in CACHE_PATHS] + [".cache/pip/"],
            }
        },
        "check": {
            "stage": "check",
            "extends": ".shipyard-cache",
            "rules": [{"if": _MR}],
            "script": ["shipyard run", facts.check],
            "after_script": [_report_script()],
            "artifacts": {
                "when": "always",
                "expose_as": "Shipyard report",
                "paths": [f"{REPORT_DIR}/"],
                "expire_in": "30 days",
            },
        },
        "register": {
            "stage": "register",
            "extends": ".shipyard-cache",
            "rules": [{"if": _main(facts)}],
            "script": [
                "shipyard run",
                facts.check,
                facts.register,
                'echo "MODEL_VERSION=$MODEL_VERSION" > register.env',
            ],
            "artifacts": {
                "paths": [f"{REPORT_DIR}/", "registered.json"],
                "reports": {"dotenv": "register.env"},
            },
        },
        "deploy": {
            "stage": "deploy",
            "needs": ["register"],
            "rules": [{"if": _main(facts), "when": "manual", "allow_failure": False}],
            "environment": {"name": "production", "action": "start"},
            "interruptible": False,
            "script": [facts.deploy],
        },
        "monitor": {
            "stage": "monitor",
            "rules": [{"if": _SCHEDULE}],
            "script": [facts.monitor],
        },
    }


def files(facts: Facts) -> dict[str, str]:
    notes = [
        f"Shipyard CI/CD for {facts.project}, written by `shipyard ci init --provider gitlab`.",
        "Protect the `production` environment (Settings → CI/CD → Protected environments,",
        "with required approvals): the manual `deploy` job is the approval gate.",
        f"Add a pipeline schedule (Build → Pipeline schedules), e.g. '{facts.schedule}',",
        "for `shipyard monitor`.",
        *secrets_note("Settings → CI/CD → Variables, masked and protected"),
        "  GITLAB_TOKEN (a project access token with api scope, to post the MR note)",
    ]
    return {PATH: dump_yaml(pipeline(facts), notes)}

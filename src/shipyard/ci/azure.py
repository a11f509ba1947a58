"""Azure Pipelines: ``azure-pipelines.yml``.

Pull requests run the pipeline and the gates; the report is attached to the run with
``##vso[task.uploadsummary]`` and posted as a pull-request thread with the job's
``System.AccessToken``. The main branch registers the model, then a deployment job on
the ``production`` environment (add approvals and checks to it) runs ``shipyard
deploy``. A scheduled run does ``shipyard monitor``. Secrets come from the variable
group ``shipyard`` and are mapped into each step's environment explicitly, as Azure
requires for secret variables.
"""

from __future__ import annotations

from typing import Any

from shipyard.ci.facts import CACHE_PATHS, LOCK_FILE, REPORT_DIR, SECRETS, Facts
from shipyard.ci.render import dump_yaml, secrets_note

__all__ = ["PATH", "files", "pipeline"]

PATH = "azure-pipelines.yml"
_SECRET_ENV = {name: f"$({name})" for name in SECRETS}


def _setup(facts: Facts, cache: bool = True) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = [
        {"checkout": "self"},
        {"task": "UsePythonVersion@0", "inputs": {"versionSpec": facts.python}},
    ]
    for path in CACHE_PATHS if cache else ():
        steps.append(
            {
                "task": "Cache@2",
                "displayName": f"Cache {path}",
                "inputs": {
                    "key": f'shipyard | "$(Agent.OS)" | "{path}" | {LOCK_FILE}',
                    "restoreKeys": f'shipyard | "$(Agent.OS)" | "{path}"',
                    "path": path,
                },
            }
        )
    steps.append({"script": facts.install, "displayName": "Install Shipyard"})
    return steps


def _step(script: str, display: str, **extra: Any) -> dict[str, Any]:
    env = dict(_SECRET_ENV)
    env.update(extra.pop("env", {}))
    return {"script": script, "displayName": display, "env": env, **extra}


def _report_script() -> str:
    report = f"{REPORT_DIR}/report.json"
    return (
        f"if [ -f {report} ]; then\n"
        f"  shipyard ci report {report} --provider azure --output {REPORT_DIR}/comment.md\n"
        f'  echo "##vso[task.uploadsummary]$(System.DefaultWorkingDirectory)/'
        f'{REPORT_DIR}/comment.md"\n'
        f"  shipyard ci report {report} --provider azure --post"
        ' --pr "$(System.PullRequest.PullRequestId)"\n'
        "fi"
    )


def _check_stage(facts: Facts) -> dict[str, Any]:
    return {
        "stage": "Check",
        "dependsOn": [],
        "condition": "eq(variables['Build.Reason'], 'PullRequest')",
        "jobs": [
            {
                "job": "check",
                "steps": [
                    *_setup(facts),
                    _step("shipyard run", "Run the pipeline"),
                    _step(facts.check, "Check the gates"),
                    _step(
                        _report_script(),
                        "Post the report",
                        condition="succeededOrFailed()",
                        env={"SYSTEM_ACCESSTOKEN": "$(System.AccessToken)"},
                    ),
                    {
                        "publish": REPORT_DIR,
                        "artifact": "shipyard-report",
                        "condition": "succeededOrFailed()",
                    },
                ],
            }
        ],
    }


def _register_stage(facts: Facts) -> dict[str, Any]:
    script = facts.register + (
        '\necho "##vso[task.setvariable variable=version;isOutput=true]$MODEL_VERSION"'
    )
    return {
        "stage": "Register",
        "dependsOn": [],
        "condition": (
            f"and(eq(variables['Build.SourceBranch'], 'refs/heads/{facts.branch}'), "
            "in(variables['Build.Reason'], 'IndividualCI', 'BatchedCI', 'Manual'))"
        ),
        "jobs": [
            {
                "job": "register",
                "steps": [
                    *_setup(facts),
                    _step("shipyard run", "Run the pipeline"),
                    _step(facts.check, "Check the gates"),
                    _step(script, "Register", name="register"),
                ],
            }
        ],
    }


def _deploy_stage(facts: Facts) -> dict[str, Any]:
    return {
        "stage": "Deploy",
        "dependsOn": "Register",
        "condition": "succeeded()",
        "variables": {
            "MODEL_VERSION": "$[ stageDependencies.Register.register.outputs['register.version'] ]"
        },
        "jobs": [
            {
                # Approvals and checks on the `production` environment gate this job.
                "deployment": "deploy",
                "environment": "production",
                "strategy": {
                    "runOnce": {
                        "deploy": {
                            "steps": [
                                *_setup(facts, cache=False),
                                _step(facts.deploy, f"Deploy with strategy {facts.strategy}"),
                            ]
                        }
                    }
                },
            }
        ],
    }


def _monitor_stage(facts: Facts) -> dict[str, Any]:
    return {
        "stage": "Monitor",
        "dependsOn": [],
        "condition": "eq(variables['Build.Reason'], 'Schedule')",
        "jobs": [
            {
                "job": "monitor",
                "steps": [*_setup(facts, cache=False), _step(facts.monitor, "Monitor")],
            }
        ],
    }


def pipeline(facts: Facts) -> dict[str, Any]:
    return {
        "trigger": {"branches": {"include": [facts.branch]}},
        "pr": {"branches": {"include": ["*"]}},
        "schedules": [
            {
                "cron": facts.schedule,
                "displayName": "shipyard monitor",
                "branches": {"include": [facts.branch]},
                "always": "true",  # the schema (and Azure) take booleans as strings
            }
        ],
        "pool": {"vmImage": "ubuntu-latest"},
        "variables": [
            {"group": "shipyard"},
            {"name": "SHIPYARD_USER", "value": "$(Build.RequestedFor)"},
        ],
        "stages": [
            _check_stage(facts),
            _register_stage(facts),
            _deploy_stage(facts),
            _monitor_stage(facts),
        ],
    }


def files(facts: Facts) -> dict[str, str]:
    notes = [
        f"Shipyard CI/CD for {facts.project}, written by `shipyard ci init --provider azure`.",
        "Add approvals to the `production` environment: that is the approval gate.",
        "Allow the build service to contribute to pull requests (to post the report).",
        *secrets_note("variable group `shipyard`, as secret variables"),
    ]
    return {PATH: dump_yaml(pipeline(facts), notes)}

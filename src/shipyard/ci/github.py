"""GitHub Actions: ``.github/workflows/shipyard.yml``.

Pull requests run the pipeline and the gates; the Markdown report goes to the job
summary (``$GITHUB_STEP_SUMMARY``) and, through ``shipyard ci report --post``, into one
pull-request comment that is updated on every push. Pushes to the main branch register
the model; the ``production`` environment (configure required reviewers on it) is the
approval gate before ``shipyard deploy``. A cron schedule runs ``shipyard monitor``.
"""

from __future__ import annotations

from typing import Any

from shipyard.ci.facts import CACHE_PATHS, LOCK_FILE, REPORT_DIR, SECRETS, Facts
from shipyard.ci.render import dump_yaml, secrets_note

__all__ = ["PATH", "files", "workflow"]

PATH = ".github/workflows/shipyard.yml"
_RUN_URL = "${{ github.server_url }}/${{ github.repository }}/actions/runs/${{ github.run_id }}"


def _setup(facts: Facts, cache: bool = True) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = [
        {"uses": "actions/checkout@v4"},
        {"uses": "actions/setup-python@v5", "with": {"python-version": facts.python}},
    ]
    if cache:
        steps.append(
            {
                "name": "Cache the Shipyard artifact store",
                "uses": "actions/cache@v4",
                "with": {
                    "path": "\n".join(CACHE_PATHS) + "\n",
                    "key": f"shipyard-${{{{ runner.os }}}}-${{{{ hashFiles('{LOCK_FILE}') }}}}",
                    "restore-keys": "shipyard-${{ runner.os }}-",
                },
            }
        )
    steps.append({"name": "Install Shipyard", "run": facts.install})
    return steps


def _check_job(facts: Facts) -> dict[str, Any]:
    report = f"{REPORT_DIR}/report.json"
    return {
        "name": "Pipeline and gates",
        "if": "github.event_name == 'pull_request'",
        "runs-on": "ubuntu-latest",
        "timeout-minutes": 60,
        "permissions": {"contents": "read", "pull-requests": "write"},
        "steps": [
            *_setup(facts),
            {"name": "Run the pipeline", "run": "shipyard run"},
            {"name": "Check the gates", "id": "check", "run": facts.check},
            {
                "name": "Post the report",
                "if": "always() && hashFiles('shipyard-report/report.json') != ''",
                "env": {
                    "GITHUB_TOKEN": "${{ secrets.GITHUB_TOKEN }}",
                    "PR_NUMBER": "${{ github.event.pull_request.number }}",
                    "RUN_URL": _RUN_URL,
                },
                "run": (
                    f'shipyard ci report {report} --provider github --link "$RUN_URL"'
                    ' >> "$GITHUB_STEP_SUMMARY"\n'
                    f"shipyard ci report {report} --provider github --post"
                    ' --pr "$PR_NUMBER" --link "$RUN_URL"'
                ),
            },
            {
                "name": "Keep the full report",
                "if": "always()",
                "uses": "actions/upload-artifact@v4",
                "with": {"name": "shipyard-report", "path": f"{REPORT_DIR}/"},
            },
        ],
    }


def _register_job(facts: Facts) -> dict[str, Any]:
    return {
        "name": "Register the model",
        "if": f"github.event_name == 'push' && github.ref == 'refs/heads/{facts.branch}'",
        "runs-on": "ubuntu-latest",
        "timeout-minutes": 60,
        "outputs": {"version": "${{ steps.register.outputs.version }}"},
        "steps": [
            *_setup(facts),
            {"name": "Run the pipeline", "run": "shipyard run"},
            {"name": "Check the gates", "run": facts.check},
            {
                "name": "Register",
                "id": "register",
                "run": facts.register + '\necho "version=$MODEL_VERSION" >> "$GITHUB_OUTPUT"',
            },
        ],
    }


def _deploy_job(facts: Facts) -> dict[str, Any]:
    return {
        "name": "Deploy (after approval)",
        "needs": "register",
        "runs-on": "ubuntu-latest",
        "timeout-minutes": 120,
        # Required reviewers on this environment are the approval gate.
        "environment": "production",
        "steps": [
            *_setup(facts, cache=False),
            {
                "name": f"Deploy with strategy {facts.strategy}",
                "env": {"MODEL_VERSION": "${{ needs.register.outputs.version }}"},
                "run": facts.deploy,
            },
        ],
    }


def _monitor_job(facts: Facts) -> dict[str, Any]:
    return {
        "name": "Monitor drift and alerts",
        "if": "github.event_name == 'schedule' || github.event_name == 'workflow_dispatch'",
        "runs-on": "ubuntu-latest",
        "timeout-minutes": 30,
        "steps": [*_setup(facts, cache=False), {"name": "Monitor", "run": facts.monitor}],
    }


def workflow(facts: Facts) -> dict[str, Any]:
    env = {name: f"${{{{ secrets.{name} }}}}" for name in SECRETS}
    # Set the variable SHIPYARD_URL to act through a gateway's admin API with the token.
    env["SHIPYARD_URL"] = "${{ vars.SHIPYARD_URL }}"
    env["SHIPYARD_USER"] = "${{ github.actor }}"
    return {
        "name": f"shipyard {facts.project}",
        "on": {
            "pull_request": {},
            "push": {"branches": [facts.branch]},
            "schedule": [{"cron": facts.schedule}],
            "workflow_dispatch": {},
        },
        "permissions": {"contents": "read"},
        "concurrency": {
            "group": "shipyard-${{ github.ref }}",
            "cancel-in-progress": "${{ github.event_name == 'pull_request' }}",
        },
        "env": env,
        "jobs": {
            "check": _check_job(facts),
            "register": _register_job(facts),
            "deploy": _deploy_job(facts),
            "monitor": _monitor_job(facts),
        },
    }


def files(facts: Facts) -> dict[str, str]:
    notes = [
        f"Shipyard CI/CD for {facts.project}, written by `shipyard ci init --provider github`.",
        "Give the `production` environment required reviewers: that is the approval gate.",
        *secrets_note("Settings → Secrets and variables → Actions"),
    ]
    return {PATH: dump_yaml(workflow(facts), notes)}

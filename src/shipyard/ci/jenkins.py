"""Jenkins: a declarative ``Jenkinsfile``.

Every ``sh`` step is a single-quoted Groovy string, so the shell, not Groovy, expands
variables (secrets are never interpolated into the script Jenkins logs). Secrets are
``credentials()`` of kind "secret text". The report is archived as a build artifact
(report.md, report.html: no HTML Publisher plugin needed). On the main branch the
``input`` step is the approval gate before ``shipyard deploy``; the cron trigger runs
``shipyard monitor``. The workspace (and its ``.shipyard/`` cache) is kept between builds
on an agent, which is what keeps re-runs cached.
"""

from __future__ import annotations

from shipyard.ci.facts import REPORT_DIR, SECRETS, Facts

__all__ = ["PATH", "files", "jenkinsfile"]

PATH = "Jenkinsfile"


def _sh(script: str, indent: int) -> str:
    """A ``sh`` step with ``script`` in a Groovy ''' string (no interpolation)."""
    if "'''" in script or "\\" in script:
        raise ValueError("script must not contain ''' or backslashes")  # our own text only
    pad = " " * indent
    body = "\n".join(f"{pad}  {line}" for line in ["set -e", *script.splitlines()])
    return f"{pad}sh '''\n{body}\n{pad}'''"


def _credential_id(name: str) -> str:
    return name.lower().replace("_", "-")


def jenkinsfile(facts: Facts) -> str:
    secrets = "\n".join(f"    {name} = credentials('{_credential_id(name)}')" for name in SECRETS)
    timer = "triggeredBy 'TimerTrigger'"
    main = f"branch '{facts.branch}'"
    report = f"{REPORT_DIR}/report.json"
    post_report = (
        f"if [ -f {report} ]; then\n"
        f'  shipyard ci report {report} --provider jenkins --link "$BUILD_URL"'
        f" --output {REPORT_DIR}/comment.md\n"
        "fi"
    )
    return f"""\
// Shipyard CI/CD for {facts.project}, written by `shipyard ci init --provider jenkins`.
// Credentials (Manage Jenkins → Credentials, kind "secret text"), never values here:
{"".join(f"//   {_credential_id(n)} -> {n}" + chr(10) for n in SECRETS)}\
// The input step on {facts.branch} is the approval gate; `submitter` names who may approve.
pipeline {{
  agent any
  options {{
    timeout(time: 2, unit: 'HOURS')
    disableConcurrentBuilds()
  }}
  triggers {{
    cron('{facts.schedule}')
  }}
  environment {{
{secrets}
    SHIPYARD_USER = 'jenkins'
    PATH+VENV = "${{WORKSPACE}}/.venv/bin"
  }}
  stages {{
    stage('Install') {{
      steps {{
{_sh("python3 -m venv .venv" + chr(10) + facts.install, 8)}
      }}
    }}
    stage('Pipeline and gates') {{
      when {{ not {{ {timer} }} }}
      steps {{
{_sh("shipyard run" + chr(10) + facts.check, 8)}
      }}
      post {{
        always {{
{_sh(post_report, 10)}
          archiveArtifacts artifacts: '{REPORT_DIR}/**', allowEmptyArchive: true
        }}
      }}
    }}
    stage('Register') {{
      when {{ allOf {{ {main}; not {{ {timer} }} }} }}
      steps {{
{_sh(facts.register + chr(10) + "echo $MODEL_VERSION > model-version.txt", 8)}
        script {{
          env.MODEL_VERSION = readFile('model-version.txt').trim()
        }}
      }}
    }}
    stage('Approve') {{
      when {{ allOf {{ {main}; not {{ {timer} }} }} }}
      steps {{
        input message: "Deploy {facts.model} version ${{env.MODEL_VERSION}} to production?",
              ok: 'Deploy',
              submitter: 'shipyard-approvers'
      }}
    }}
    stage('Deploy') {{
      when {{ allOf {{ {main}; not {{ {timer} }} }} }}
      steps {{
{_sh(facts.deploy, 8)}
      }}
    }}
    stage('Monitor') {{
      when {{ {timer} }}
      steps {{
{_sh(facts.monitor, 8)}
      }}
    }}
  }}
}}
"""


def files(facts: Facts) -> dict[str, str]:
    return {PATH: jenkinsfile(facts)}

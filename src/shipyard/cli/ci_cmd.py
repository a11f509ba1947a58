"""``shipyard ci init`` (a pipeline for a CI system) and ``shipyard ci report`` (a check
report as a pull-request comment, posted or printed)."""

from __future__ import annotations

import argparse
from typing import Any

NAMES = ("ci",)
_PROVIDERS = ("github", "gitlab", "jenkins", "azure", "aws")

_INIT_EPILOG = """\
files written (under --output, default the project root):
  github   .github/workflows/shipyard.yml
  gitlab   .gitlab-ci.yml
  jenkins  Jenkinsfile
  azure    azure-pipelines.yml
  aws      buildspec.yml, ci/aws/buildspec-deploy.yml, ci/aws/buildspec-monitor.yml,
           ci/aws/codepipeline.yml (CloudFormation: CodePipeline with a manual approval)
"""


def register(sub: Any) -> None:
    parser = sub.add_parser("ci", help="CI/CD integration: write a pipeline, post a report")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    init = commands.add_parser(
        "init",
        help="write a CI pipeline: run+check on pull requests, register→approve→deploy, monitor",
        description="Write a pipeline for a CI system: `shipyard run` and `shipyard check` "
        "on pull requests with the report posted, `register`, a manual approval and "
        "`deploy` on the main branch, and a scheduled `shipyard monitor --once`.",
        epilog=_INIT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    init.add_argument("--provider", "-p", required=True, choices=_PROVIDERS)
    init.add_argument("--output", "-o", metavar="DIR", help="default: the project root")
    init.add_argument("--force", "-f", action="store_true", help="overwrite existing files")
    init.add_argument("--model", metavar="NAME", help="registry model (default: project name)")
    init.add_argument(
        "--model-path", metavar="PATH", help="what to register (default: gates.model)"
    )
    init.add_argument("--branch", metavar="NAME", help="the main branch (default: main)")
    init.add_argument("--schedule", metavar="CRON", help="monitor schedule (default: hourly)")
    init.set_defaults(handler=run_init)

    report = commands.add_parser(
        "report",
        help="turn report.json into a pull-request comment; print it or --post it",
        description="Render a `shipyard check` report.json as the provider's comment. With "
        "--post, create the pull-request comment (GitHub), merge-request note (GitLab) or "
        "pull-request thread (Azure), or update the one posted before. Missing options are "
        "read from the CI system's own variables.",
    )
    report.add_argument("report", metavar="REPORT.json")
    report.add_argument("--provider", "-p", required=True, choices=_PROVIDERS)
    report.add_argument("--post", action="store_true", help="post it through the provider's API")
    report.add_argument("--api-url", metavar="URL", help="API base URL (default: from the CI)")
    report.add_argument("--token-env", metavar="VAR", help="variable holding the API token")
    number = report.add_mutually_exclusive_group()
    number.add_argument("--pr", metavar="N", help="pull request number (GitHub, Azure)")
    number.add_argument("--mr", metavar="N", help="merge request IID (GitLab)")
    target = report.add_mutually_exclusive_group()
    target.add_argument("--repo", metavar="OWNER/NAME", help="repository (GitHub, Azure)")
    target.add_argument("--project-id", metavar="ID", help="project id or path (GitLab)")
    report.add_argument("--link", metavar="URL", help="where the full report is (the CI run)")
    report.add_argument("--output", "-o", metavar="FILE", help="write the comment to FILE")
    report.set_defaults(handler=run_report)


def run_init(args: argparse.Namespace) -> int:
    from pathlib import Path

    from shipyard.ci import facts_from_config, write_pipeline
    from shipyard.cli.output import info
    from shipyard.project import open_project

    with open_project() as project:
        facts = facts_from_config(
            project.config,
            model=args.model,
            model_path=args.model_path,
            branch=args.branch,
            schedule=args.schedule,
        )
        root = Path(args.output) if args.output else project.root
    paths = write_pipeline(args.provider, facts, root, force=args.force)
    for path in paths:
        info(f"wrote {path}")
    info(
        f"pipeline for {facts.model} ({facts.model_path}): run+check on pull requests, "
        f"register → approval → deploy --strategy {facts.strategy} on {facts.branch}, "
        f"monitor on '{facts.schedule}'; set the secrets listed at the top of the file"
    )
    return 0


def run_report(args: argparse.Namespace) -> int:
    import os
    import sys
    from pathlib import Path

    from shipyard.ci.report import load_report, post_comment, render_comment, resolve_target
    from shipyard.cli.output import info

    comment = render_comment(load_report(args.report), args.provider, link=args.link)
    target = None
    if args.post:  # resolve before writing anything: a bad option fails fast
        target = resolve_target(
            args.provider,
            os.environ,
            api_url=args.api_url,
            token_env=args.token_env,
            number=args.pr or args.mr,
            repository=args.repo or args.project_id,
        )
    if args.output:
        Path(args.output).write_text(comment.body, encoding="utf-8")
        info(f"wrote {args.output}")
    elif target is None:
        sys.stdout.write(comment.body)
    if comment.truncated:
        info(f"the comment was cut to the {args.provider} limit; it points at the full report")
    if target is not None:
        posted = post_comment(comment, target)
        info(f"{posted.action} the {args.provider} comment {posted.url}".rstrip())
    return 0

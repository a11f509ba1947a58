"""AWS CodeBuild + CodePipeline: ``buildspec.yml`` and ``ci/aws/*``.

``buildspec.yml`` runs the pipeline and the gates (a CodeBuild project with a
pull-request webhook) and, in the pipeline's Register action, registers the model and
exports ``MODEL_VERSION``. ``ci/aws/codepipeline.yml`` is a CloudFormation stack: the
CodeBuild projects, the CodePipeline (source → register → manual approval → deploy),
and an EventBridge schedule for ``shipyard monitor``. Secrets are read from Secrets
Manager in each buildspec's ``env``; AWS access comes from the build role, not keys.
"""

from __future__ import annotations

from typing import Any

from shipyard.ci.facts import CACHE_PATHS, REPORT_DIR, Facts, aws_schedule
from shipyard.ci.render import dump_yaml

__all__ = [
    "BUILDSPEC",
    "DEPLOY_BUILDSPEC",
    "MONITOR_BUILDSPEC",
    "TEMPLATE",
    "buildspec",
    "files",
    "template",
]

BUILDSPEC = "buildspec.yml"
DEPLOY_BUILDSPEC = "ci/aws/buildspec-deploy.yml"
MONITOR_BUILDSPEC = "ci/aws/buildspec-monitor.yml"
TEMPLATE = "ci/aws/codepipeline.yml"
_SECRET_NAMES = ("SHIPYARD_DB", "SHIPYARD_ARTIFACTS", "SHIPYARD_TOKEN")
_SECRET_ID = "shipyard/ci"  # the Secrets Manager secret, one JSON key per variable


def _env(exported: bool = False) -> dict[str, Any]:
    env: dict[str, Any] = {
        "shell": "bash",
        "variables": {"SHIPYARD_USER": "codebuild"},
        "secrets-manager": {name: f"{_SECRET_ID}:{name}" for name in _SECRET_NAMES},
    }
    if exported:
        env["exported-variables"] = ["MODEL_VERSION"]
    return env


def _install(facts: Facts) -> dict[str, Any]:
    return {"runtime-versions": {"python": facts.python}, "commands": [facts.install]}


def buildspec(facts: Facts) -> dict[str, Any]:
    report = f"{REPORT_DIR}/report.json"
    indented = "\n".join(f"  {line}" for line in facts.register.splitlines())
    register = f'if [ "$SHIPYARD_REGISTER" = "1" ]; then\n{indented}\nfi'
    return {
        "version": 0.2,
        "env": _env(exported=True),
        "phases": {
            "install": _install(facts),
            "build": {"commands": ["shipyard run", facts.check, register]},
            "post_build": {
                "commands": [
                    f"if [ -f {report} ]; then\n"
                    f"  shipyard ci report {report} --provider aws"
                    f" --output {REPORT_DIR}/comment.md\n"
                    f"  cat {REPORT_DIR}/comment.md\n"
                    "fi"
                ]
            },
        },
        "artifacts": {"files": [f"{REPORT_DIR}/**/*"], "name": "shipyard-report"},
        "cache": {"paths": [f"{p}/**/*" for p in CACHE_PATHS] + ["/root/.cache/pip/**/*"]},
    }


def _small_buildspec(facts: Facts, command: str) -> dict[str, Any]:
    return {
        "version": 0.2,
        "env": _env(),
        "phases": {"install": _install(facts), "build": {"commands": [command]}},
    }


def _role(service: str, statements: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": f"{service}.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            },
            "Policies": [
                {
                    "PolicyName": "shipyard",
                    "PolicyDocument": {"Version": "2012-10-17", "Statement": statements},
                }
            ],
        },
    }


def _allow(actions: list[str], resource: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": resource}


_BUCKET_OBJECTS = {"Fn::Sub": "${ArtifactBucket.Arn}/*"}
_PROJECT_ARN = "arn:${AWS::Partition}:codebuild:${AWS::Region}:${AWS::AccountId}:project/"


def _project(name: str, spec: str, source: str, **extra: Any) -> dict[str, Any]:
    pipeline = source == "CODEPIPELINE"
    props: dict[str, Any] = {
        "Name": {"Fn::Sub": f"${{AWS::StackName}}-{name}"},
        "ServiceRole": {"Fn::GetAtt": ["BuildRole", "Arn"]},
        "Artifacts": {"Type": "CODEPIPELINE" if pipeline else "NO_ARTIFACTS"},
        "Environment": {
            "Type": "LINUX_CONTAINER",
            "ComputeType": "BUILD_GENERAL1_SMALL",
            "Image": "aws/codebuild/standard:7.0",
            "EnvironmentVariables": extra.pop("variables", []),
        },
        "Source": {"Type": source, "BuildSpec": spec},
        "Cache": {"Type": "S3", "Location": {"Fn::Sub": f"${{ArtifactBucket}}/cache/{name}"}},
        "TimeoutInMinutes": 60,
    }
    if not pipeline:
        props["Source"]["Location"] = {"Ref": "RepositoryUrl"}
    props.update(extra)
    return {"Type": "AWS::CodeBuild::Project", "Properties": props}


def _action(name: str, category: str, provider: str, **extra: Any) -> dict[str, Any]:
    owner = {"Category": category, "Owner": "AWS", "Provider": provider, "Version": "1"}
    return {"Name": name, "ActionTypeId": owner, "RunOrder": 1, **extra}


def _stages(facts: Facts) -> list[dict[str, Any]]:
    version = "#{RegisterVariables.MODEL_VERSION}"
    variables = f'[{{"name":"MODEL_VERSION","value":"{version}","type":"PLAINTEXT"}}]'
    source = {
        "ConnectionArn": {"Ref": "ConnectionArn"},
        "FullRepositoryId": {"Ref": "RepositoryId"},
        "BranchName": {"Ref": "Branch"},
    }
    return [
        {
            "Name": "Source",
            "Actions": [
                _action(
                    "Source",
                    "Source",
                    "CodeStarSourceConnection",
                    Configuration=source,
                    OutputArtifacts=[{"Name": "Source"}],
                )
            ],
        },
        {
            "Name": "Register",
            "Actions": [
                _action(
                    "CheckAndRegister",
                    "Build",
                    "CodeBuild",
                    Namespace="RegisterVariables",
                    Configuration={"ProjectName": {"Ref": "RegisterProject"}},
                    InputArtifacts=[{"Name": "Source"}],
                    OutputArtifacts=[{"Name": "Report"}],
                )
            ],
        },
        {
            "Name": "Approve",
            "Actions": [
                _action(
                    "Approve",
                    "Approval",
                    "Manual",
                    Configuration={
                        "CustomData": f"Deploy {facts.model} version {version} to production?"
                    },
                )
            ],
        },
        {
            "Name": "Deploy",
            "Actions": [
                _action(
                    "Deploy",
                    "Build",
                    "CodeBuild",
                    Configuration={
                        "ProjectName": {"Ref": "DeployProject"},
                        "EnvironmentVariables": variables,
                    },
                    InputArtifacts=[{"Name": "Source"}],
                )
            ],
        },
    ]


def _build_role() -> dict[str, Any]:
    secret = (
        "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:"
        f"secret:{_SECRET_ID}-*"
    )
    logs = "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/codebuild/*"
    return _role(
        "codebuild",
        [
            _allow(
                ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                {"Fn::Sub": logs},
            ),
            _allow(["s3:GetObject", "s3:PutObject", "s3:GetObjectVersion"], _BUCKET_OBJECTS),
            _allow(["secretsmanager:GetSecretValue"], {"Fn::Sub": secret}),
            _allow(["codestar-connections:UseConnection"], {"Ref": "ConnectionArn"}),
        ],
    )


def _pipeline_role() -> dict[str, Any]:
    projects = [{"Fn::Sub": _PROJECT_ARN + "${AWS::StackName}-*"}]
    return _role(
        "codepipeline",
        [
            _allow(["codebuild:StartBuild", "codebuild:BatchGetBuilds"], projects),
            _allow(["s3:GetObject", "s3:PutObject", "s3:GetObjectVersion"], _BUCKET_OBJECTS),
            _allow(["s3:GetBucketVersioning"], {"Fn::GetAtt": ["ArtifactBucket", "Arn"]}),
            _allow(["codestar-connections:UseConnection"], {"Ref": "ConnectionArn"}),
        ],
    )


def _parameters(facts: Facts) -> dict[str, Any]:
    return {
        "ConnectionArn": {
            "Type": "String",
            "Description": "ARN of the CodeStar connection to the repository host",
        },
        "RepositoryId": {"Type": "String", "Description": "the repository, as owner/name"},
        "RepositoryUrl": {
            "Type": "String",
            "Description": "HTTPS clone URL (for pull-request builds and the monitor)",
        },
        "Branch": {"Type": "String", "Default": facts.branch},
    }


def template(facts: Facts) -> dict[str, Any]:
    pr_events = "PULL_REQUEST_CREATED,PULL_REQUEST_UPDATED,PULL_REQUEST_REOPENED"
    bucket_props = {
        "BucketEncryption": {
            "ServerSideEncryptionConfiguration": [
                {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
            ]
        },
        "PublicAccessBlockConfiguration": {
            key: True
            for key in (
                "BlockPublicAcls",
                "BlockPublicPolicy",
                "IgnorePublicAcls",
                "RestrictPublicBuckets",
            )
        },
        "VersioningConfiguration": {"Status": "Enabled"},
    }
    events_statement = _allow(["codebuild:StartBuild"], {"Fn::GetAtt": ["MonitorProject", "Arn"]})
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"Shipyard CI/CD for {facts.project}: register, approve, deploy, monitor",
        "Parameters": _parameters(facts),
        "Resources": {
            "ArtifactBucket": {
                "Type": "AWS::S3::Bucket",
                "DeletionPolicy": "Retain",
                "UpdateReplacePolicy": "Retain",
                "Properties": bucket_props,
            },
            "BuildRole": _build_role(),
            "PipelineRole": _pipeline_role(),
            "EventsRole": _role("events", [events_statement]),
            "CheckProject": _project(
                "check",
                BUILDSPEC,
                "GITHUB",
                Triggers={
                    "Webhook": True,
                    "FilterGroups": [[{"Type": "EVENT", "Pattern": pr_events}]],
                },
            ),
            "RegisterProject": _project(
                "register",
                BUILDSPEC,
                "CODEPIPELINE",
                variables=[{"Name": "SHIPYARD_REGISTER", "Value": "1", "Type": "PLAINTEXT"}],
            ),
            "DeployProject": _project("deploy", DEPLOY_BUILDSPEC, "CODEPIPELINE"),
            "MonitorProject": _project(
                "monitor", MONITOR_BUILDSPEC, "GITHUB", SourceVersion={"Ref": "Branch"}
            ),
            "Pipeline": {
                "Type": "AWS::CodePipeline::Pipeline",
                "Properties": {
                    "RoleArn": {"Fn::GetAtt": ["PipelineRole", "Arn"]},
                    "PipelineType": "V2",
                    "ArtifactStore": {"Type": "S3", "Location": {"Ref": "ArtifactBucket"}},
                    "Stages": _stages(facts),
                },
            },
            "MonitorSchedule": {
                "Type": "AWS::Events::Rule",
                "Properties": {
                    "Description": f"shipyard monitor for {facts.project}",
                    "ScheduleExpression": aws_schedule(facts.schedule),
                    "State": "ENABLED",
                    "Targets": [
                        {
                            "Arn": {"Fn::GetAtt": ["MonitorProject", "Arn"]},
                            "Id": "monitor",
                            "RoleArn": {"Fn::GetAtt": ["EventsRole", "Arn"]},
                        }
                    ],
                },
            },
        },
        "Outputs": {"PipelineName": {"Value": {"Ref": "Pipeline"}}},
    }


def files(facts: Facts) -> dict[str, str]:
    origin = f"Shipyard CI/CD for {facts.project}, written by `shipyard ci init --provider aws`."
    secrets = [
        f"Secrets come from the Secrets Manager secret '{_SECRET_ID}' (JSON keys "
        + ", ".join(_SECRET_NAMES)
        + "); never write values here.",
        "AWS access comes from the CodeBuild service role, not from keys.",
    ]
    return {
        BUILDSPEC: dump_yaml(buildspec(facts), [origin, *secrets]),
        DEPLOY_BUILDSPEC: dump_yaml(_small_buildspec(facts, facts.deploy), [origin, *secrets]),
        MONITOR_BUILDSPEC: dump_yaml(_small_buildspec(facts, facts.monitor), [origin, *secrets]),
        TEMPLATE: dump_yaml(
            template(facts),
            [
                origin,
                "Deploy: aws cloudformation deploy --template-file ci/aws/codepipeline.yml \\",
                "  --stack-name shipyard --capabilities CAPABILITY_IAM --parameter-overrides ...",
                "The pipeline's Approve stage is a CodePipeline manual approval action.",
            ],
        ),
    }

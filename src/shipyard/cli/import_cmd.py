"""``shipyard import mlflow PATH NAME``: a model version from another tool's format."""

from __future__ import annotations

import argparse
from typing import Any

NAMES = ("import",)


def register(sub: Any) -> None:
    imp = sub.add_parser(
        "import",
        help="register a model saved by another tool (MLflow) as the next version of NAME",
    )
    sources = imp.add_subparsers(title="sources", metavar="SOURCE", required=True)
    mlflow = sources.add_parser(
        "mlflow",
        help="an MLflow model folder (the one holding the MLmodel file)",
        description="Register the model in an MLflow model folder as the next version of "
        "NAME, keeping its signature and tagging it with source=mlflow and the MLflow run "
        "id. ONNX, XGBoost, LightGBM and skops files are stored as they are; a pickle is "
        "refused unless --trust-pickle, and then a scikit-learn model is converted to skops.",
    )
    mlflow.add_argument("path", metavar="PATH")
    mlflow.add_argument("model", metavar="NAME")
    mlflow.add_argument(
        "--trust-pickle",
        action="store_true",
        help="load a pickled model (it can run code; audited) and store it as skops",
    )
    mlflow.add_argument(
        "--keep-pickle",
        action="store_true",
        help="with --trust-pickle: store the pickle itself instead of converting it",
    )
    mlflow.add_argument("--json", action="store_true", help="print as JSON")
    mlflow.set_defaults(handler=run_import_mlflow)


def run_import_mlflow(args: argparse.Namespace) -> int:
    from shipyard.cli.output import emit_json, info
    from shipyard.project import open_project
    from shipyard.registry import open_registry
    from shipyard.registry.mlflow_import import import_mlflow

    with open_project() as project:
        version = import_mlflow(
            open_registry(project),
            args.path,
            args.model,
            actor=project.actor,
            trust_pickle=args.trust_pickle,
            keep_pickle=args.keep_pickle,
        )
    if args.json:
        emit_json(version)
        return 0
    run = version.tags.get("mlflow_run_id")
    info(
        f"imported {version.ref} ({version.format}, {version.oid[:12]}) from MLflow"
        + (f" run {run}" if run else "")
    )
    if version.tags.get("converted_from") == "pickle":
        info("  converted from pickle to skops; the trusted load is in the audit log")
    if version.trusted_pickle:
        info("  warning: pickle accepted with --trust-pickle; recorded in the audit log")
    if "signature_note" in version.tags:
        info(f"  note: {version.tags['signature_note']}")
    return 0

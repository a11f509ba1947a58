"""``shipyard demo``: the whole loop on embedded defaults, narrated, in a few minutes."""

from __future__ import annotations

import argparse
from typing import Any

from shipyard.cli.arguments import port

NAMES = ("demo",)


def register(sub: Any) -> None:
    demo = sub.add_parser(
        "demo",
        help="run the whole loop on an example project (a few minutes)",
        description="Create the credit-risk example in DIR and take it through "
        "pipeline, gates, registry and approvals, gateway, canary and blue-green "
        "rollouts, a poisoned and a faulty candidate, drift, an alert and retraining. "
        "Every claim printed is checked against the store.",
    )
    demo.add_argument("dir", nargs="?", default="shipyard-demo", metavar="DIR")
    demo.add_argument("--port", type=port, help="the gateway's port (default: a free one)")
    demo.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from shipyard.cli.output import info
    from shipyard.demo import run_demo

    run_demo(Path(args.dir), port=args.port, out=info)
    info("\ndemo finished: every step's claim held")
    return 0

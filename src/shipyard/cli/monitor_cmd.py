"""``shipyard monitor``: drift, performance and serving signals; alerts and actions."""

from __future__ import annotations

import argparse
from typing import Any

from shipyard.cli.arguments import port

NAMES = ("monitor",)


def _duration(text: str) -> float:
    from shipyard.config import duration_seconds

    try:
        seconds = duration_seconds(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"duration {text!r} must be more than 0")
    return seconds


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "monitor",
        help="check served traffic for drift and errors; alert, roll back, retrain",
        description="One pass (default) or a pass every --every: read the prediction log's "
        "last --window, compare it with the served version's training data, update "
        "alerts (monitor.alerts in shipyard.yaml), notify, and run their actions. "
        "Exit 0 when no alert is firing, 1 when one is.",
    )
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--once", action="store_true", help="one pass, then exit (default)")
    when.add_argument("--every", type=_duration, metavar="DURATION", help="e.g. 5m")
    parser.add_argument("--model", action="append", default=[], help="only this model")
    parser.add_argument("--window", type=_duration, default=None, metavar="DURATION")
    parser.add_argument("--json", action="store_true", help="print each pass as JSON")
    parser.add_argument(
        "--prometheus-port", type=port, metavar="PORT", help="export figures on 127.0.0.1:PORT"
    )
    parser.add_argument(
        "--export-files",
        metavar="DIR",
        help="write the Prometheus alert rules and the Grafana dashboard to DIR and exit",
    )
    parser.add_argument(
        "--list-metrics", action="store_true", help="print the names alert conditions can use"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.list_metrics:
        return _list_metrics()
    if args.export_files:
        return _export(args.export_files)
    from shipyard.config import duration_seconds
    from shipyard.monitor.runner import Monitor
    from shipyard.project import open_project

    with open_project() as project:
        window = args.window or duration_seconds(project.config.monitor.window)
        monitor = Monitor(project, window=window)
        exporter = _exporter(args.prometheus_port)
        if args.every:
            return _loop(monitor, args, exporter)
        results = monitor.run_once(args.model or None)
        _show(results, args.json)
        _export_figures(exporter, monitor, results)
        return 1 if _firing(monitor) else 0


def _list_metrics() -> int:
    import sys

    from shipyard.monitor import expr

    for name in (*expr.KNOWN_METRICS, *(p + "<feature>" for p in expr.PREFIX_METRICS)):
        sys.stdout.write(name + "\n")
    return 0


def _export(folder: str) -> int:
    from pathlib import Path

    from shipyard.cli.output import info
    from shipyard.monitor.prometheus import write_deploy_files

    for path in write_deploy_files(Path(folder)):
        info(f"wrote {path}")
    return 0


def _exporter(port_number: int | None) -> Any:
    if port_number is None:
        return None
    from shipyard.cli.output import info
    from shipyard.errors import UsageError
    from shipyard.monitor.prometheus import MonitorExporter

    exporter = MonitorExporter()
    try:
        exporter.serve(port_number)
    except OSError as exc:
        raise UsageError(f"cannot listen on 127.0.0.1:{port_number}: {exc.strerror}") from None
    info(f"monitor figures at http://127.0.0.1:{port_number}/metrics")
    return exporter


def _export_figures(exporter: Any, monitor: Any, results: list[Any]) -> None:
    if exporter is not None:
        from shipyard.monitor.alerts import open_alerts

        exporter.update(results, open_alerts(monitor.project.metadata))


def _firing(monitor: Any) -> bool:
    from shipyard.monitor.alerts import open_alerts

    return any(a["state"] == "firing" for a in open_alerts(monitor.project.metadata))


def _loop(monitor: Any, args: argparse.Namespace, exporter: Any) -> int:
    from shipyard.cli.output import info
    from shipyard.monitor.runner import run_forever

    info(f"monitoring every {args.every:g} s (Ctrl-C to stop)")

    def on_pass(results: list[Any]) -> None:
        _show(results, args.json)
        _export_figures(exporter, monitor, results)

    run_forever(monitor, args.every, args.model or None, on_pass)
    return 0


def _show(results: list[Any], as_json: bool) -> None:
    from shipyard.cli.output import emit_json, info, table

    if as_json:
        emit_json([r.to_json() for r in results])
        return
    if not results:
        info("no model has traffic in the prediction log yet (shipyard serve writes it)")
        return
    rows = []
    for r in results:
        m = r.metrics
        rows.append(
            [
                f"{r.model}:{r.version}" if r.version else r.model,
                r.rows,
                _number(m.get("drift.share"), "{:.0%}"),
                ", ".join(r.drifted) or "-",
                _number(m.get("accuracy"), "{:.3f}"),
                _number(m.get("estimated_accuracy"), "{:.3f}"),
                _number(m.get("error_rate"), "{:.2%}"),
                _number(m.get("p99_ms"), "{:.1f}"),
            ]
        )
    table(["MODEL", "ROWS", "DRIFT", "DRIFTED", "ACCURACY", "ESTIMATED", "ERRORS", "P99 MS"], rows)
    for r in results:
        for note in r.notes:
            info(f"{r.model}: {note}")
        for t in r.transitions:
            info(f"{r.model}: alert {t['rule']} {t['kind']}")
        for a in r.actions:
            info(f"{r.model}: action {a}")


def _number(value: float | None, style: str) -> str:
    return "-" if value is None else style.format(value)

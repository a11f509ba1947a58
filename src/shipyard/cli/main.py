"""The ``shipyard`` command: argument parsing, dispatch and the error edge.

Command modules only declare their arguments at import; each imports the service it
calls inside its handler, so ``shipyard --help`` loads nothing heavy.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence

from shipyard.cli import (
    audit_cmd,
    check_cmd,
    ci_cmd,
    config_cmd,
    data_cmd,
    demo_cmd,
    diff_cmd,
    import_cmd,
    init_cmd,
    monitor_cmd,
    package_cmd,
    registry_cmd,
    rollout_cmd,
    run_cmd,
    runs_cmd,
    serve_cmd,
    status_cmd,
    ui_cmd,
    users_cmd,
)

__all__ = ["EXIT_CODES", "build_parser", "main"]

EXIT_CODES = """\
exit codes:
  0  success
  1  a gate or check failed, or a policy refused the change
  2  usage or configuration error (the message says what to fix)
  3  internal or environment error (re-run with --debug for a traceback)
"""

_COMMANDS = (
    init_cmd,
    config_cmd,
    run_cmd,
    status_cmd,
    runs_cmd,
    diff_cmd,
    data_cmd,
    check_cmd,
    registry_cmd,
    import_cmd,
    users_cmd,
    serve_cmd,
    rollout_cmd,
    monitor_cmd,
    ui_cmd,
    package_cmd,
    ci_cmd,
    audit_cmd,
    demo_cmd,
)


class Parser(argparse.ArgumentParser):
    """argparse with click-style usage errors: exit 2 and a pointer to --help."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"error: {message}\nTry '{self.prog} --help' for help.\n")
        sys.exit(2)


def build_parser(only: str | None = None) -> Parser:
    """The full parser, or with ``only`` just that command's (start-up time matters:
    building every sub-parser costs more than a no-op ``shipyard run``)."""
    from shipyard import __version__

    parser = Parser(
        prog="shipyard",
        description="Continuous integration and delivery for machine-learning models.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"shipyard {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show a traceback when something fails"
    )
    parser.add_argument(
        "-C",
        dest="directory",
        metavar="DIR",
        help="run as if shipyard was started in DIR",
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=Parser)
    for module in _COMMANDS:
        if only is None or only in module.NAMES:
            module.register(sub)
    return parser


def _command_word(argv: Sequence[str]) -> str | None:
    """The sub-command named on the command line, if it is one we know."""
    known = {name for module in _COMMANDS for name in module.NAMES}
    skip_next = False
    for word in argv:
        if skip_next:
            skip_next = False
        elif word == "-C":
            skip_next = True
        elif not word.startswith("-"):
            return word if word in known else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the process exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command_word(argv))
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    debug = args.debug or bool(os.environ.get("SHIPYARD_DEBUG"))
    try:
        if args.directory:
            os.chdir(args.directory)
        return int(handler(args) or 0)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # the CLI edge: every failure becomes a message and a code
        return _report(exc, debug)


def _report(exc: Exception, debug: bool) -> int:
    from shipyard.errors import ShipyardError

    if debug:
        traceback.print_exc()
    if isinstance(exc, ShipyardError):
        sys.stderr.write(f"error: {exc}\n")
        return exc.exit_code
    if isinstance(exc, OSError) and exc.filename:
        sys.stderr.write(f"error: {exc.strerror}: '{exc.filename}'\n")
        return 3
    sys.stderr.write(
        f"internal error: {type(exc).__name__}: {exc}\n"
        "  hint: re-run with --debug for a traceback and report it as a bug\n"
    )
    return 3

"""Argument types shared by the commands: a bad value is a usage error (exit 2) that
names the option, never an internal error or a silently odd result."""

from __future__ import annotations

import argparse

__all__ = ["expected_version", "non_negative_int", "port", "positive_int"]


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None


def positive_int(text: str) -> int:
    value = _int(text, "a whole number")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = _int(text, "a whole number")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def port(text: str) -> int:
    value = _int(text, "a port number")
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 1 to 65535, got {value}")
    return value


def expected_version(text: str) -> int | None:
    """A version number, or 'none' for "the alias must not be set yet"."""
    if text.lower() == "none":
        return None
    return positive_int(text)

"""Command-line interface: parse, call one service, format the result."""

"""Command-line entry point: ``giugan profile`` (and, later, the LightningCLI subcommands)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Dispatch ``giugan <command>``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "profile":
        from giugan.profile import main as profile_main

        return profile_main(args[1:])
    print("usage: giugan profile [--table N | --all] [--format text|markdown|json]", file=sys.stderr)
    return 2

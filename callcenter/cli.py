"""The `callcenter` command: the composition root that assembles the command groups of `callcenter.commands`."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from callcenter.commands import admin, pbx, reporting, running
from kernel import config
from kernel.exceptions import AuthenticationError, CallCenterError, ConfigError

EXIT_CONFIG = 2
EXIT_AUTH = 3
EXIT_ERROR = 1


def parser() -> argparse.ArgumentParser:
    """The command line."""
    top = argparse.ArgumentParser(prog="callcenter", description="Contact center for Asterisk.")
    top.add_argument("--config", help=f"TOML config file (default: ${config.CONFIG_ENV} or ./{config.DEFAULT_FILE})")
    top.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    sub = top.add_subparsers(dest="command", required=True)
    for group in (pbx, running, admin, reporting):
        group.register(sub)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run a subcommand and turn our errors into a message and an exit code."""
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"callcenter: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except AuthenticationError as exc:
        print(f"callcenter: {exc}", file=sys.stderr)
        return EXIT_AUTH
    except CallCenterError as exc:
        print(f"callcenter: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())

"""Entry point of the ``napari-crack-al`` console script."""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence

from .. import __version__
from ..core.errors import CrackALError
from ..core.memory_advice import CLI_OUT_OF_MEMORY_ADVICE, is_out_of_memory
from .printable import OneLineFormatter, printable

log = logging.getLogger("napari_crack_al")


def _command_modules() -> list[str]:
    from . import __path__ as pkg_path

    return sorted(m.name for m in pkgutil.iter_modules(pkg_path) if m.name.startswith("cmd_"))


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every ``cmd_*`` module's subcommand."""
    parser = argparse.ArgumentParser(
        prog="napari-crack-al",
        description="Semi-automatic crack annotation: train, predict, rank, simulate, export.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in _command_modules():
        module = importlib.import_module(f"{__package__}.{name}")
        module.register(sub)
    return parser


def _configure_logging(level: int) -> None:
    """Log to stderr, one line per message (control characters in names escaped)."""
    handler = logging.StreamHandler()
    handler.setFormatter(OneLineFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(logging.WARNING - 10 * min(args.verbose, 2))
    try:
        return int(args.func(args) or 0)
    except CrackALError as exc:
        print(f"error: {printable(exc)}", file=sys.stderr)  # a name cannot forge a line
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # only an out-of-memory error: advice instead of a traceback
        if not is_out_of_memory(exc):
            raise
        log.debug("out of memory", exc_info=True)
        print(f"error: {CLI_OUT_OF_MEMORY_ADVICE}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

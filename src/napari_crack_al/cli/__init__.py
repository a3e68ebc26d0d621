"""Headless command line: ``napari-crack-al SUBCOMMAND ...``.

Each subcommand lives in a module ``cmd_<name>.py`` of this package with two
functions: ``register(subparsers)`` (argparse only, cheap) and ``run(args) -> int``.
Heavy imports (torch) happen inside ``run``.
"""

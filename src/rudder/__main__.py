"""The ``rudder`` command (also ``python -m rudder``).

``rudder demo`` runs a showcase program on the built-in model (see :mod:`rudder._demo`);
``rudder view`` serves a run store to the browser and ``rudder export`` writes one of its
runs as a page (see :mod:`rudder.store._cli`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def parser() -> argparse.ArgumentParser:
    from rudder import __version__
    from rudder._demo import add_arguments
    from rudder.store._cli import add_export_arguments, add_view_arguments

    main_parser = argparse.ArgumentParser(
        prog="rudder",
        description="Control language models with programs, and see every token.",
    )
    main_parser.add_argument("--version", action="version", version=f"rudder {__version__}")
    commands = main_parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="run a showcase program on the built-in model and write an HTML report",
        description="Run a showcase program (roles, select, gen with stop, regex, JSON with a "
        "pydantic schema) on rudder's built-in model or a Hugging Face model of yours, show it "
        "in the terminal, print its captures and usage, and write a self-contained HTML report.",
    )
    add_arguments(demo)
    view = commands.add_parser(
        "view",
        help="show the runs of a store in the browser",
        description="Serve a run store (rudder.settings.store, RUDDER_STORE) on a local web "
        "server: the list of runs, search, one run, two runs compared, runs still going.",
    )
    add_view_arguments(view)
    export = commands.add_parser(
        "export",
        help="write a stored run as a self-contained HTML page",
        description="Write one run of a store as the page rudder.export_html() writes.",
    )
    add_export_arguments(export)
    return main_parser


def main(argv: Sequence[str] | None = None) -> int:
    command_line = parser()
    args = command_line.parse_args(argv)
    if args.command is None:
        command_line.print_help()
        return 2
    if args.command == "view":
        from rudder.store._cli import view

        return view(args)
    if args.command == "export":
        from rudder.store._cli import export

        return export(args)
    from rudder._demo import run

    return run(args)


if __name__ == "__main__":
    sys.exit(main())

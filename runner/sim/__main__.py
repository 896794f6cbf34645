"""`python -m runner.sim serve ...`: the same command as `gridrun sim serve`."""

from __future__ import annotations

import argparse
import sys

from runner.entry import refuse_other_systems


def main(argv: list[str] | None = None) -> int:
    refuse_other_systems("python -m runner.sim")
    from runner.sim.serve import add_arguments, serve  # POSIX only (fcntl)

    parser = argparse.ArgumentParser(prog="python -m runner.sim")
    commands = parser.add_subparsers(dest="command", required=True)
    add_arguments(commands.add_parser("serve", help="serve the simulated video API over HTTP"))
    return serve(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

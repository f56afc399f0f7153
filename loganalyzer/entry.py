"""Console-script entry point: bound Polars' thread pool by ``--jobs`` before Polars loads.

Polars sizes its thread pool once, when it is first imported, so ``--jobs 1`` (one core for
the whole run, the parsing engine's threads included) must set ``POLARS_MAX_THREADS`` before
the command line module imports the parser. An explicit ``POLARS_MAX_THREADS`` wins.
"""

from __future__ import annotations

import os
import sys


def jobs_from_args(args: list[str]) -> int | None:
    """The value of ``--jobs N`` / ``--jobs=N`` when it is a positive integer."""
    for i, arg in enumerate(args):
        if arg == "--jobs" and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith("--jobs="):
            value = arg.split("=", 1)[1]
        else:
            continue
        return int(value) if value.isdigit() and int(value) > 0 else None
    return None


def main() -> None:
    jobs = jobs_from_args(sys.argv[1:])
    if jobs is not None and "POLARS_MAX_THREADS" not in os.environ:
        os.environ["POLARS_MAX_THREADS"] = str(jobs)
    from loganalyzer.cli import main as cli_main

    cli_main()

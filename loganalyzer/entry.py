"""Console-script entry point: bound Polars' thread pool by ``--jobs`` before Polars loads.

Polars sizes its thread pool once, when it is first imported, so ``--jobs 1`` (one core for
the whole run, the parsing engine's threads included) must set ``POLARS_MAX_THREADS`` before
the command line module imports the parser. An explicit ``POLARS_MAX_THREADS`` wins.
"""

from __future__ import annotations

import os
import sys

#: Polars' allocator settings, read once at start-up: the main process hands freed memory back
#: within 100 ms, because it builds the final table while the per-folder results are freed (a
#: 2 GB corpus then peaks under 1 GiB). Not for --jobs 1, where the main process parses too
#: and the default is faster; spawned workers always keep the default (parallel.py).
MAIN_ALLOCATOR_ENV = "_RJEM_MALLOC_CONF"
MAIN_ALLOCATOR_CONF = "dirty_decay_ms:100,muzzy_decay_ms:0"


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
    if jobs != 1:
        os.environ.setdefault(MAIN_ALLOCATOR_ENV, MAIN_ALLOCATOR_CONF)
    from loganalyzer.cli import main as cli_main

    cli_main()

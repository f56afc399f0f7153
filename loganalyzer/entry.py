"""Console-script entry point: set up the main process before Polars loads.

Polars sizes its thread pool once, when it is first imported. The console command runs it on
one thread in every process: ``--jobs N`` is N processes, this one working beside N - 1
spawned workers (parallel.py), so that the run uses N cores, no more. An explicit
``POLARS_MAX_THREADS`` wins (this process then only waits for N workers); so does a Dask
scheduler (``--scheduler``), whose workers do all the parsing.
"""

from __future__ import annotations

import os
import sys

#: Polars' allocator settings, read once at start-up: the main process hands freed memory back
#: within about a second, because it builds the final table while the per-folder results are
#: freed (a 2 GB corpus then peaks under 1 GiB: 870-915 MiB measured). A second, not less: the
#: main process parses folders too, and memory kept from one folder to the next made --jobs 2
#: faster in 10 of 11 paired rounds than 100 ms (which peaked at 771 MiB). Not for --jobs 1,
#: where the default is faster still; spawned workers always keep the default (parallel.py).
MAIN_ALLOCATOR_ENV = "_RJEM_MALLOC_CONF"
MAIN_ALLOCATOR_CONF = "dirty_decay_ms:1000,muzzy_decay_ms:0"


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


def prepare_environment(args: list[str]) -> None:
    """Environment of the main process for the command line ``args`` (before Polars loads).

    With a Dask scheduler this process does not parse: its Polars keeps every core for the
    merge at the end.
    """
    on_dask = any(a == "--scheduler" or a.startswith("--scheduler=") for a in args) or bool(
        os.environ.get("LOGANALYZER_DASK_SCHEDULER")
    )
    if not on_dask:
        os.environ.setdefault("POLARS_MAX_THREADS", "1")
    if jobs_from_args(args) != 1:
        os.environ.setdefault(MAIN_ALLOCATOR_ENV, MAIN_ALLOCATOR_CONF)


def main() -> None:
    prepare_environment(sys.argv[1:])
    from loganalyzer.cli import main as cli_main

    cli_main()

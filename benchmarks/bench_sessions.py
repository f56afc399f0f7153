#!/usr/bin/env python3
"""Benchmark ``loganalyzer.read_sessions`` against a plain ``pyarrow.csv`` read of the same logs.

Usage::

    python benchmarks/bench_sessions.py /tmp/corpus-1g --reps 3 [--json results.json]

Approaches, each repetition in a fresh child process (this script with ``--child NAME``),
order rotated and reversed between repetitions, page cache warmed first:

- ``pyarrow``: ``pyarrow.csv.read_csv`` of every file, one after another, all 9 columns as
  strings, ``skip_rows`` = the file's leading ``#`` lines (the reference, "(a)").
- ``loganalyzer``: ``loganalyzer.read_sessions([CORPUS_DIR])`` to a pandas DataFrame ("(b)").
- ``jobs1`` / ``jobs2``: the same with ``jobs=1`` (one core, one process) and ``jobs=2`` (this
  process and one spawned worker), for the scaling targets of ``--jobs``.
- ``cluster2``: the same on a Dask ``LocalCluster`` of 2 single-threaded workers that is
  already running, made as ``--scheduler local`` makes it, its workers having imported
  loganalyzer (start-up not timed); needs ``distributed``.
- ``threads2`` (only with ``--only``): the tasks of ``jobs2`` run in 2 threads of one process
  whose Polars has 2 threads, instead of in processes: the alternative design ``--jobs`` was
  measured against.

Time covers the work section inside the child only (no interpreter start, no imports). Each
child sets up its environment as the ``loganalyzer`` command does with the matching ``--jobs``
(``loganalyzer.entry.prepare_environment``: Polars on one thread in every process, so the main
process works beside ``jobs - 1`` workers; its allocator returns freed memory within a second).
Peak RSS is the child's VmHWM (interpreter and libraries included); worker processes are reported
separately (their largest peak). 1 MB = 10^6 bytes.
"""

from __future__ import annotations

import argparse
import gzip
import importlib
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

FIELDS = [
    "date-time",
    "connector-id",
    "session-id",
    "sequence-number",
    "local-endpoint",
    "remote-endpoint",
    "event",
    "data",
    "context",
]
APPROACHES = {
    "pyarrow": "(a) pyarrow.csv.read_csv, 9 string columns",
    "loganalyzer": "(b) loganalyzer.read_sessions -> pandas",
    "jobs1": "(c) read_sessions(jobs=1), one core",
    "jobs2": "(d) read_sessions(jobs=2)",
    "cluster2": "(e) read_sessions on a 2-worker LocalCluster",
    "threads2": "(f) jobs=2 tasks in 2 threads, not processes",
}
#: Approaches timed only when named with --only.
ON_REQUEST = ("threads2",)
JOBS2_TARGET = 1.7
CLUSTER_TARGET = 1.4
#: Speed-ups over jobs1 that are reported, with their targets (None: shown, not judged).
SPEEDUP_TARGETS = {"jobs2": JOBS2_TARGET, "cluster2": CLUSTER_TARGET, "threads2": None}
LOG_NAME = re.compile(r"\.log(\.gz)?$", re.IGNORECASE)
RESULT_MARK = "BENCH_RESULT "
RATIO_TARGET = 0.5
RSS_TARGET_MIB = 1024


def log_files(corpus: Path) -> list[Path]:
    """Every ``*.LOG`` / ``*.LOG.gz`` file under ``corpus``, sorted."""
    return sorted(p for p in corpus.rglob("*") if p.is_file() and LOG_NAME.search(p.name))


def raw_size(path: Path) -> int:
    """Uncompressed size: file size, or the gzip ISIZE trailer (files under 4 GiB)."""
    if path.suffix.lower() != ".gz":
        return path.stat().st_size
    with open(path, "rb") as fh:
        fh.seek(-4, os.SEEK_END)
        return int.from_bytes(fh.read(4), "little")


def header_lines(path: Path) -> int:
    """Number of leading ``#`` lines (after a UTF-8 BOM) of a log file."""
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    count = 0
    with opener(path, "rb") as fh:
        for line in fh:
            if count == 0 and line.startswith(b"\xef\xbb\xbf"):
                line = line[3:]
            if not line.startswith(b"#"):
                break
            count += 1
    return count


def warm_cache(files: list[Path]) -> None:
    """Read every file once so all approaches run on a warm page cache."""
    for path in files:
        with open(path, "rb") as fh:
            while fh.read(1 << 24):
                pass


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MB (VmHWM, else ru_maxrss)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6


# -- child side ---------------------------------------------------------------------------


def run_pyarrow(corpus: Path) -> dict:
    """Read every file with pyarrow.csv; return the row count."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    files = log_files(corpus)
    parse = pacsv.ParseOptions(delimiter=",", quote_char='"', double_quote=True)
    convert = pacsv.ConvertOptions(column_types={name: pa.string() for name in FIELDS})

    def work() -> dict:
        rows = 0
        for path in files:
            read = pacsv.ReadOptions(
                use_threads=True, skip_rows=header_lines(path), column_names=FIELDS
            )
            table = pacsv.read_csv(
                path, read_options=read, parse_options=parse, convert_options=convert
            )
            rows += table.num_rows
            del table
        return {"rows": rows}

    return timed(work)


def prepare_environment(args: list[str]) -> None:
    """``loganalyzer.entry.prepare_environment`` (a light module: it imports nothing)."""
    try:
        from loganalyzer.entry import prepare_environment as prepare
    except ModuleNotFoundError:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from loganalyzer.entry import prepare_environment as prepare
    prepare(args)


def import_product():
    """Import loganalyzer: the installed package, else the working tree beside this script."""
    try:
        import loganalyzer
    except ModuleNotFoundError as e:
        if e.name != "loganalyzer":
            raise
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        import loganalyzer
    return loganalyzer


def run_loganalyzer(corpus: Path) -> dict:
    """Build the session table with the product; return the session count."""
    loganalyzer = import_product()

    def work() -> dict:
        df = loganalyzer.read_sessions([str(corpus)])
        return {"sessions": len(df), "columns": len(df.columns)}

    return timed(work)


def run_jobs(corpus: Path, jobs: int) -> dict:
    """``read_sessions(jobs=N)``."""
    loganalyzer = import_product()

    def work() -> dict:
        df = loganalyzer.read_sessions([str(corpus)], jobs=jobs)
        return {"sessions": len(df), "columns": len(df.columns)}

    return timed(work)


def run_threads(corpus: Path) -> dict:
    """The per-folder tasks of ``jobs=2`` in 2 threads of this process (Polars with 2 threads):
    what processes were chosen over."""
    from concurrent.futures import ThreadPoolExecutor

    import_product()
    sessions = importlib.import_module("loganalyzer.sessions")

    def in_threads(tasks, work, *, jobs, scheduler=None, parallel=True):
        with ThreadPoolExecutor(jobs) as pool:
            yield from zip(tasks, pool.map(work, tasks), strict=True)

    sessions.run_inputs = in_threads
    return run_jobs(corpus, 2)


def run_cluster(corpus: Path) -> dict:
    """``read_sessions`` on a running LocalCluster (2 workers, 1 thread each)."""
    from distributed import Client

    loganalyzer = import_product()
    from loganalyzer.parallel import local_cluster

    cluster = local_cluster(2)  # as --scheduler local makes it
    client = Client(cluster)
    # Running means ready: the workers have imported the product, as on a cluster that has
    # served a run before (untimed; a cold cluster's first run takes about 0.3 s longer).
    client.run(importlib.import_module, "loganalyzer.logsets")
    try:

        def work() -> dict:
            df = loganalyzer.read_sessions([str(corpus)], scheduler=client)
            return {"sessions": len(df), "columns": len(df.columns)}

        result = timed(work)
        result["worker_peak_rss_mb"] = max(client.run(peak_rss_mb).values())
        return result
    finally:
        client.close()
        cluster.close()


def timed(work) -> dict:
    """Run ``work()`` and add wall time and CPU time (all threads) to its result."""
    who = (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)  # children: worker processes
    r0 = [resource.getrusage(w) for w in who]
    t0 = time.perf_counter()
    result = work()
    seconds = time.perf_counter() - t0
    r1 = [resource.getrusage(w) for w in who]
    cpu = sum(
        (b.ru_utime - a.ru_utime) + (b.ru_stime - a.ru_stime) for a, b in zip(r0, r1, strict=True)
    )
    workers = r1[1].ru_maxrss * 1024 / 1e6 if r1[1].ru_maxrss else 0.0
    result.update(
        seconds=seconds, cpu_seconds=cpu, peak_rss_mb=peak_rss_mb(), worker_peak_rss_mb=workers
    )
    return result


def child(name: str, corpus: Path) -> int:
    if name == "threads2":  # two threads of Polars for two threads of tasks
        os.environ["POLARS_MAX_THREADS"] = "2"
    if name != "pyarrow":  # as the console command runs it, before Polars is imported
        args = {"jobs1": ["--jobs", "1"], "jobs2": ["--jobs", "2"], "cluster2": ["--scheduler"]}
        prepare_environment(args.get(name, []))
    if name == "probe":
        import_product().read_sessions  # noqa: B018 - AttributeError when missing
        return 0
    runner = {
        "pyarrow": run_pyarrow,
        "loganalyzer": run_loganalyzer,
        "jobs1": lambda c: run_jobs(c, 1),
        "jobs2": lambda c: run_jobs(c, 2),
        "cluster2": run_cluster,
        "threads2": run_threads,
    }[name]
    result = runner(corpus)
    print(RESULT_MARK + json.dumps(result), flush=True)
    return 0


# -- parent side --------------------------------------------------------------------------


def spawn(name: str, corpus: Path) -> dict:
    """Run one repetition of one approach in a fresh interpreter."""
    cmd = [sys.executable, str(Path(__file__).resolve()), str(corpus), "--child", name]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            return json.loads(line[len(RESULT_MARK) :])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-15:]
    return {"error": f"exit code {proc.returncode}", "stderr_tail": tail}


def product_available() -> str | None:
    """None when ``loganalyzer.read_sessions`` imports; else the reason it does not."""
    cmd = [sys.executable, str(Path(__file__).resolve()), ".", "--child", "probe"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode == 0:
        return None
    lines = proc.stderr.strip().splitlines()
    return lines[-1] if lines else f"exit code {proc.returncode}"


def run_order(names: list[str], rep: int) -> list[str]:
    """Rotate by the repetition number; reverse every other full cycle."""
    k = rep % len(names)
    order = names[k:] + names[:k]
    return order[::-1] if (rep // len(names)) % 2 else order


def summarise(runs: list[dict], corpus_bytes: int) -> dict:
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return {"error": runs[0]["error"] if runs else "not run", "runs": runs}
    times = [r["seconds"] for r in ok]
    median = statistics.median(times)
    cpu = statistics.median(r["cpu_seconds"] for r in ok)
    return {
        "median_s": median,
        "mb_per_s": corpus_bytes / 1e6 / median,
        "cpu_s": cpu,
        "cores": cpu / median if median else 0.0,
        "times_s": times,
        "peak_rss_mb": max(r["peak_rss_mb"] for r in ok),
        "worker_peak_rss_mb": max(r.get("worker_peak_rss_mb", 0.0) for r in ok),
        "rows": ok[0].get("rows"),
        "sessions": ok[0].get("sessions"),
        "columns": ok[0].get("columns"),
        "failed_runs": len(runs) - len(ok),
        "runs": runs,
    }


def print_report(res: dict) -> None:
    c = res["corpus"]
    print(
        f"\ncorpus: {c['path']}: {c['files']} files, {c['bytes'] / 1e6:,.1f} MB "
        f"(uncompressed {c['raw_bytes'] / 1e6:,.1f} MB); {res['reps']} repetitions, "
        f"{res['machine']['cpus']} CPUs, load {res['machine']['load_before']}"
    )
    header = (
        f"{'approach':<44} {'median s':>9} {'MB/s':>8} {'cores':>6} {'peak RSS MB':>12} "
        f"{'workers MB':>11}  runs s"
    )
    print(header)
    print("-" * len(header))
    for name, desc in APPROACHES.items():
        s = res["results"].get(name)
        if s is None:
            continue
        if "error" in s:
            print(f"{desc:<44} failed: {s['error']}")
            for line in s["runs"][0].get("stderr_tail", []) if s["runs"] else []:
                print(f"    {line}")
            continue
        runs = " / ".join(f"{t:.3f}" for t in s["times_s"])
        print(
            f"{desc:<44} {s['median_s']:>9.3f} {s['mb_per_s']:>8,.0f} {s['cores']:>6.2f} "
            f"{s['peak_rss_mb']:>12,.0f} {s.get('worker_peak_rss_mb', 0):>11,.0f}  {runs}"
        )
    a, b = res["results"].get("pyarrow", {}), res["results"].get("loganalyzer")
    print()
    if a.get("rows") is not None:
        print(f"rows (pyarrow): {a['rows']:,}")
    if res["product_error"] is not None:
        print(f"loganalyzer not benchmarked: {res['product_error']}")
        return
    if b is not None and b.get("sessions") is not None:
        print(f"sessions (loganalyzer): {b['sessions']:,} ({b['columns']} columns)")
    t = res["targets"]
    if not t:
        print("targets not evaluated: the product's runs failed")
    if t.get("ratio") is not None:
        verdict = "MET" if t["ratio_met"] else "NOT MET"
        print(
            f"throughput ratio (b)/(a): {t['ratio']:.3f}  target ratio >= {RATIO_TARGET}: {verdict}"
        )
    for name, target in SPEEDUP_TARGETS.items():
        if t.get(f"{name}_speedup") is not None:
            verdict = "MET" if t[f"{name}_met"] else "NOT MET"
            goal = f"  target >= {target}x: {verdict}" if target is not None else " (no target)"
            print(
                f"speed-up of {name} over jobs1: {t[f'{name}_speedup']:.2f}x{goal}  (ratio to "
                f"(a): {t[f'{name}_ratio']:.3f}; median of the per-repetition speed-ups: "
                f"{t[f'{name}_paired_speedup']:.2f}x)"
            )
    if t.get("peak_rss_mib") is not None:
        verdict = "MET" if t["rss_met"] else "NOT MET"
        print(
            f"peak RSS of (b): {t['peak_rss_mib']:,.0f} MiB  "
            f"target peak RSS <= {RSS_TARGET_MIB} MiB: {verdict} "
            "(the RSS target applies to a 2 GB corpus; this one is "
            f"{c['raw_bytes'] / 1e9:.2f} GB)"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path, help="folder of Exchange protocol logs")
    parser.add_argument("--reps", type=int, default=3, help="repetitions (default 3)")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=list(APPROACHES)[1:],
        help="product approaches to time besides (a) (default: all)",
    )
    parser.add_argument("--child", choices=[*APPROACHES, "probe"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    corpus = args.corpus.resolve()
    if args.child:
        return child(args.child, corpus)
    files = log_files(corpus)
    if not files:
        parser.error(f"no *.LOG or *.LOG.gz files under {corpus}")
    names = ["pyarrow"]
    product_error = product_available()
    if product_error is None:
        names += args.only or [n for n in list(APPROACHES)[1:] if n not in ON_REQUEST]
    else:
        print(f"loganalyzer.read_sessions is not usable ({product_error}); timing (a) only.")
    raw_bytes = sum(raw_size(p) for p in files)
    disk_bytes = sum(p.stat().st_size for p in files)
    warm_cache(files)
    load_before = os.getloadavg()[0]
    runs: dict[str, list[dict]] = {n: [] for n in names}
    for rep in range(args.reps):
        for name in run_order(names, rep):
            result = spawn(name, corpus)
            runs[name].append(result)
            shown = f"{result['seconds']:.3f} s" if "error" not in result else result["error"]
            print(f"rep {rep + 1}/{args.reps} {name}: {shown}", flush=True)
    results = {n: summarise(r, raw_bytes) for n, r in runs.items()}
    targets: dict = {}
    a, b = results["pyarrow"], results.get("loganalyzer")
    if b is not None and "error" not in b and "error" not in a:
        ratio = a["median_s"] / b["median_s"]
        targets.update(ratio=ratio, ratio_met=ratio >= RATIO_TARGET)
    if b is not None and "error" not in b:
        mib = b["peak_rss_mb"] * 1e6 / 2**20
        targets.update(peak_rss_mib=mib, rss_met=mib <= RSS_TARGET_MIB)
    one = results.get("jobs1")
    for name, target in SPEEDUP_TARGETS.items():
        other = results.get(name)
        if one and other and "error" not in one and "error" not in other:
            speedup = one["median_s"] / other["median_s"]
            paired = [  # the two ran in the same repetition, close in time
                x["seconds"] / y["seconds"]
                for x, y in zip(runs["jobs1"], runs[name], strict=True)
                if "error" not in x and "error" not in y
            ]
            targets[f"{name}_paired_speedup"] = statistics.median(paired)
            targets[f"{name}_speedup"] = speedup
            targets[f"{name}_met"] = None if target is None else speedup >= target
            targets[f"{name}_ratio"] = (
                a["median_s"] / other["median_s"] if "error" not in a else None
            )
    res = {
        "corpus": {
            "path": str(corpus),
            "files": len(files),
            "bytes": disk_bytes,
            "raw_bytes": raw_bytes,
        },
        "reps": args.reps,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_before": round(load_before, 2),
            "load_after": round(os.getloadavg()[0], 2),
        },
        "product_error": product_error,
        "results": results,
        "targets": targets,
    }
    print_report(res)
    if args.json:
        args.json.write_text(json.dumps(res, indent=2) + "\n")
    return 1 if any("error" in r for rs in runs.values() for r in rs) else 0


if __name__ == "__main__":
    sys.exit(main())

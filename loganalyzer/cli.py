"""Command line: a thin typer layer over the library (validate options, call, render).

Exit codes (DESIGN.md): 0 done; 1 findings at or above --fail-on; 2 bad usage, nothing
readable, or any skip under --strict. Errors are one line on stderr; --debug adds a traceback.
"""

from __future__ import annotations

import sys
import traceback
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from loganalyzer import __version__, times
from loganalyzer.errors import LogAnalyzerError
from loganalyzer.output import escape_terminal, write
from loganalyzer.sessions import DEFAULT_FALLBACK_WINDOW, read_sessions
from loganalyzer.sources.files import DEFAULT_LIMITS, Limits, discover

app = typer.Typer(
    name="loganalyzer",
    help="Find TLS fallbacks, presented certificates and mail-flow halts in SMTP protocol logs.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)


class TableFormat(StrEnum):
    table = "table"
    csv = "csv"
    jsonl = "jsonl"
    parquet = "parquet"


class Severity(StrEnum):
    info = "info"
    warning = "warning"
    critical = "critical"


InventoryOption = Annotated[
    list[str] | None,
    typer.Option("--inventory", help="Certificate files or Get-ExchangeCertificate exports."),
]
ConnectorsOption = Annotated[
    list[str] | None, typer.Option("--connectors", help="Connector and Get-AuthConfig exports.")
]
NowOption = Annotated[
    str | None, typer.Option(help="'Today' for expiry checks (default: the wall clock).")
]
FailOnOption = Annotated[
    Severity | None,
    typer.Option(help="Exit with code 1 when findings at or above this severity exist."),
]
ServerOption = Annotated[
    str | None,
    typer.Option(help="Server name for logs whose folders and connector ids name none."),
]
StrictOption = Annotated[
    bool, typer.Option(help="Stop with exit code 2 at the first malformed row or skip.")
]
PfxOption = Annotated[Path | None, typer.Option(help="File whose first line is the PFX password.")]


FormatOption = Annotated[TableFormat, typer.Option("--format", "-f", help="Output format.")]
OutputOption = Annotated[
    Path | None, typer.Option("--output", "-o", help="Write to FILE (atomically), not stdout.")
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]
JobsOption = Annotated[
    int | None,
    typer.Option(min=1, help="Cores the run may use, parsing threads included (default: all)."),
]
SchedulerOption = Annotated[
    str | None,
    typer.Option(
        envvar="LOGANALYZER_DASK_SCHEDULER",
        help="Parse on Dask: a scheduler address (tcp://host:8786) or 'local' "
        "(a LocalCluster of --jobs workers). Needs loganalyzer[dask].",
    ),
]
DebugOption = Annotated[bool, typer.Option(help="Show tracebacks for bug reports.")]
SyslogYearOption = Annotated[
    int | None,
    typer.Option(
        min=1970,
        max=9999,
        help="Postfix logs with year-less times (Nov 27 06:00:01): the year of the newest line "
        "(default: each file's modification year; Dec -> Jan is a New Year).",
    ),
]
SyslogTzOption = Annotated[
    str | None,
    typer.Option(
        help="Postfix logs: IANA time zone of times written without one, e.g. Europe/Berlin "
        "(default: this machine's zone).",
    ),
]


def _syslog_zone(name: str | None) -> str | None:
    """Check --syslog-tz early (a bad zone is bad usage, exit code 2)."""
    from loganalyzer.syslog_time import zone_by_name

    try:
        zone_by_name(name)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--syslog-tz") from None
    return name


def parse_time(text: str | None, now: datetime | None = None) -> datetime | None:
    """ISO 8601 (naive = UTC) or a relative age such as ``24h``/``7d`` (before ``now``)."""
    try:
        return times.parse_time(text, now)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None


def _say(message: str) -> None:
    typer.echo(escape_terminal(message), err=True)


def _summary(stats: dict) -> None:
    parts = [
        f"{stats['files']} files",
        f"{stats['rows']:,} rows",
        f"{stats['sessions']:,} sessions",
        f"{stats['malformed']} malformed rows",
    ]
    if stats.get("malformed_fields"):
        parts.append(f"{stats['malformed_fields']} malformed fields")
    if stats["skipped"]:
        parts.append(f"{len(stats['skipped'])} inputs skipped")
    _say("loganalyzer: " + ", ".join(parts))
    for example in stats["malformed_examples"][:5]:
        _say(f"  malformed: {example}")
    for example in stats.get("malformed_field_examples", [])[:5]:
        _say(f"  malformed field: {example}")
    _say_skipped([(s["file"], s["reason"]) for s in stats["skipped"]])


def _say_skipped(skipped: list[tuple[str, str]], each: int = 3) -> None:
    """Skipped inputs grouped by reason: the reason, a few names, how many more."""
    by_reason: dict[str, list[str]] = {}
    for name, reason in skipped:
        by_reason.setdefault(reason, []).append(name)
    for reason, names in by_reason.items():
        if len(names) == 1:
            _say(f"  skipped: {names[0]}: {reason}")
            continue
        more = f" and {len(names) - each} more" if len(names) > each else ""
        _say(f"  skipped {len(names)}: {reason}: {', '.join(names[:each])}{more}")


class _Progress:
    """A progress bar over input bytes, on a terminal only."""

    def __init__(self, paths: list[str], enabled: bool) -> None:
        self.bar = None
        if not enabled or not sys.stderr.isatty():
            return
        from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

        found = discover(paths)
        total = sum(_size(log.disk_path) for log in found.inputs if log.member is None)
        self.bar = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            DownloadColumn(),
            TimeRemainingColumn(),
            transient=True,
            console=None,
        )
        self.task = self.bar.add_task("reading logs", total=total or None)

    def __enter__(self):
        if self.bar is not None:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def on_file(self, log, size: int) -> None:
        if self.bar is not None:
            self.bar.advance(self.task, size)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _run(debug: bool, func, *args, **kwargs):
    """Call the library; turn its errors into one-line messages and exit code 2."""
    try:
        return func(*args, **kwargs)
    except LogAnalyzerError as err:
        if debug:
            traceback.print_exc()
        _say(f"loganalyzer: error: {err}")
        raise typer.Exit(2) from None
    except (OSError, ValueError) as err:
        if debug:
            traceback.print_exc()
        _say(f"loganalyzer: error: {err}")
        raise typer.Exit(2) from None


def _version(value: bool) -> None:
    if value:
        typer.echo(f"loganalyzer {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Find TLS fallbacks, presented certificates and mail-flow halts in SMTP protocol logs."""


LogsArgument = Annotated[
    list[str] | None,
    typer.Argument(help="Log files, folders (recursive), globs, .gz files or .zip archives."),
]
StoreOption = Annotated[
    Path | None,
    typer.Option("--store", help="Read a store written by 'loganalyzer ingest' instead of LOGS."),
]
AllowlistOption = Annotated[
    Path | None,
    typer.Option(help="TOML file of accepted findings (reason, optional expiry): left out."),
]
NewOnlyOption = Annotated[
    bool, typer.Option(help="Only findings not in the previous run (needs --state FILE).")
]
StateOption = Annotated[
    Path | None,
    typer.Option(help="File remembering this run's findings for the next --new-only run."),
]


def _logs_or_store(logs: list[str] | None, store: Path | None) -> None:
    if bool(logs) == (store is not None):
        raise typer.BadParameter("give LOGS or --store DIR (one of them)")


def _store_sessions(debug: bool, store: Path, since, until, margin=None):
    """Sessions of a store overlapping the window (plus ``margin`` before it)."""
    from datetime import timedelta as _td

    from loganalyzer.store import read_store

    df = _run(debug, read_store, store, since, until, margin=margin or _td(0))
    _say(
        f"loganalyzer: {len(df):,} sessions from {len(df.attrs['partitions_read'])} "
        f"store partitions"
    )
    return df


@app.command()
def ingest(
    logs: Annotated[
        list[str],
        typer.Argument(help="Log files, folders (recursive), globs, .gz files or .zip archives."),
    ],
    store: Annotated[Path, typer.Option("--store", help="Store folder (created when missing).")],
    server: Annotated[
        str | None,
        typer.Option(help="Server name for logs whose folders and connector ids name none."),
    ] = None,
    fallback_window: Annotated[
        float,
        typer.Option(help="Minutes after a failed TLS session in which plaintext is a fallback."),
    ] = DEFAULT_FALLBACK_WINDOW.total_seconds() / 60,
    wait: Annotated[
        float,
        typer.Option(min=0, help="Seconds to wait for another run writing to the store."),
    ] = 0.0,
    strict: Annotated[
        bool, typer.Option(help="Stop with exit code 2 at the first malformed row or skip.")
    ] = False,
    jobs: JobsOption = None,
    scheduler: SchedulerOption = None,
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Add the sessions of LOGS to a store (Parquet by day and server, plus a manifest).

    Only what is new is read: new files and the appended tail of files that grew. Files that
    are gone keep their sessions. A crash leaves the previous state readable; a second run
    waits for the first (--wait) or exits with code 2.
    """
    from loganalyzer.store import ingest as ingest_logs

    if fallback_window < 0:
        raise typer.BadParameter("must not be negative", param_hint="--fallback-window")
    with _Progress(logs, enabled=not quiet) as progress:
        result = _run(
            debug,
            ingest_logs,
            logs,
            store,
            server=server,
            fallback_window=timedelta(minutes=fallback_window),
            strict=strict,
            wait=wait,
            on_file=progress.on_file,
            jobs=jobs,
            scheduler=scheduler,
        )
    stats = result.stats.as_dict()
    _say(
        f"loganalyzer: {result.files_new} new, {result.files_grown} grown, "
        f"{result.files_unchanged} unchanged, {result.files_gone} gone, "
        f"{result.files_moved} moved files; "
        f"{result.rows_read:,} rows read; {result.sessions:,} sessions in {store}"
        + (
            f" ({result.logsets_reread} log sets read again: a file older than one read"
            " before grew or arrived)"
            if result.logsets_reread
            else ""
        )
    )
    for example in stats["malformed_examples"][:5]:
        _say(f"  malformed: {example}")
    _say_skipped([(s["file"], s["reason"]) for s in stats["skipped"]])


@app.command()
def sessions(
    logs: LogsArgument = None,
    store: StoreOption = None,
    now: Annotated[
        str | None, typer.Option(help="The time relative --since/--until count back from.")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Keep sessions ending at or after: ISO time or age (24h).")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Keep sessions starting at or before: ISO time or age.")
    ] = None,
    fmt: FormatOption = TableFormat.table,
    output: OutputOption = None,
    server: ServerOption = None,
    fallback_window: Annotated[
        float,
        typer.Option(help="Minutes after a failed TLS session in which plaintext is a fallback."),
    ] = DEFAULT_FALLBACK_WINDOW.total_seconds() / 60,
    jobs: JobsOption = None,
    scheduler: SchedulerOption = None,
    max_row_bytes: Annotated[
        int, typer.Option(min=1024, help="Longer log lines are reported and skipped.")
    ] = DEFAULT_LIMITS.max_row_bytes,
    max_inflate_ratio: Annotated[
        int, typer.Option(min=1, help="Stop a .gz file or zip member that expands more (x:1).")
    ] = DEFAULT_LIMITS.max_inflate_ratio,
    max_inflate_bytes: Annotated[
        int, typer.Option(min=1, help="Stop a .gz file or zip member that expands beyond this.")
    ] = DEFAULT_LIMITS.max_inflate_bytes,
    strict: StrictOption = False,
    syslog_year: SyslogYearOption = None,
    syslog_tz: SyslogTzOption = None,
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Rebuild every SMTP session with its TLS facts: one row per session.

    Columns are described in docs/columns.md; csv, jsonl and parquet carry all of them, the
    terminal table the main ones. A summary (files, rows, sessions, malformed rows, skipped
    inputs) goes to stderr.
    """
    if fmt is TableFormat.parquet and output is None:
        raise typer.BadParameter("parquet needs -o FILE", param_hint="--format")
    if fallback_window < 0:
        raise typer.BadParameter("must not be negative", param_hint="--fallback-window")
    window = timedelta(minutes=fallback_window)
    _logs_or_store(logs, store)
    reference = parse_time(now)
    start, end = parse_time(since, reference), parse_time(until, reference)
    if store is not None:
        df = _store_sessions(debug, store, start, end)
        _run(debug, write, df, fmt.value, output)
        return
    with _Progress(logs, enabled=not quiet) as progress:
        df = _run(
            debug,
            read_sessions,
            logs,
            server=server,
            since=start,
            until=end,
            fallback_window=window,
            strict=strict,
            jobs=jobs,
            scheduler=scheduler,
            limits=Limits(max_row_bytes, max_inflate_ratio, max_inflate_bytes),
            on_file=progress.on_file,
            syslog_year=syslog_year,
            syslog_tz=_syslog_zone(syslog_tz),
        )
    _run(debug, write, df, fmt.value, output)
    _summary(df.attrs["read_stats"])


@app.command()
def certs(
    logs: Annotated[
        list[str] | None,
        typer.Argument(help="Protocol logs: where and when each certificate was presented."),
    ] = None,
    store: StoreOption = None,
    since: Annotated[
        str | None, typer.Option(help="With --store: sessions ending at or after (ISO or 24h).")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="With --store: sessions starting at or before.")
    ] = None,
    inventory: Annotated[
        list[str] | None,
        typer.Option(
            "--inventory",
            help="Certificate files (PEM, DER, P7B, PFX) or Get-ExchangeCertificate exports.",
        ),
    ] = None,
    connectors: Annotated[
        list[str] | None,
        typer.Option("--connectors", help="Get-SendConnector/Get-ReceiveConnector exports."),
    ] = None,
    now: Annotated[
        str | None, typer.Option(help="The time to judge validity at (default: now).")
    ] = None,
    fmt: FormatOption = TableFormat.table,
    output: OutputOption = None,
    pfx_password_file: Annotated[
        Path | None,
        typer.Option(
            help="File whose first line is the PFX password (else the environment "
            "variable LOGANALYZER_PFX_PASSWORD)."
        ),
    ] = None,
    date_format: Annotated[
        str | None,
        typer.Option(help="strptime format of dates in text exports, e.g. '%d/%m/%Y %I:%M:%S %p'."),
    ] = None,
    export_tz: Annotated[
        str | None, typer.Option(help="Time zone the exporting server used (default UTC).")
    ] = None,
    by_connector: Annotated[
        bool,
        typer.Option(
            "--by-connector",
            help="One row per connector and matching certificate, with why Exchange would "
            "pick it or not.",
        ),
    ] = False,
    syslog_year: SyslogYearOption = None,
    syslog_tz: SyslogTzOption = None,
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """One row per certificate: inventory, where and when it was presented, which connectors
    select it, and its status at --now (valid, expiring within 30 days, expired, not yet valid).
    """
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from loganalyzer.certs import certificates, connector_choices

    if not (logs or inventory or connectors or store):
        raise typer.BadParameter("give LOGS, --store, --inventory or --connectors")
    if logs and store is not None:
        raise typer.BadParameter("give LOGS or --store DIR (one of them)")
    if fmt is TableFormat.parquet and output is None:
        raise typer.BadParameter("parquet needs -o FILE", param_hint="--format")
    try:
        zone = ZoneInfo(export_tz) if export_tz else None
    except (ZoneInfoNotFoundError, ValueError):
        raise typer.BadParameter(
            f"unknown time zone {export_tz!r}", param_hint="--export-tz"
        ) from None
    when = parse_time(now)
    sessions = None
    if store is not None:
        sessions = _store_sessions(debug, store, parse_time(since, when), parse_time(until, when))
    if logs:
        with _Progress(logs, enabled=not quiet) as progress:
            sessions = _run(
                debug,
                read_sessions,
                logs,
                on_file=progress.on_file,
                syslog_year=syslog_year,
                syslog_tz=_syslog_zone(syslog_tz),
            )
        _summary(sessions.attrs["read_stats"])
    inv = _read_inventory(inventory, connectors, pfx_password_file, debug, date_format, zone)
    all_connectors = inv.connectors
    if by_connector:
        choices = connector_choices(all_connectors, inv.certificates, now=when)
        _run(debug, write, choices, fmt.value, output, CHOICE_COLUMNS)
        _say(f"loganalyzer: {len(choices)} connector/certificate rows")
        return
    table = certificates(sessions, inv.certificates, all_connectors, now=when)
    _run(debug, write, table, fmt.value, output, CERT_TABLE_COLUMNS)
    _say(f"loganalyzer: {len(table)} certificates")


def _read_inventory(inventory, connectors, pfx_password_file, debug, date_format=None, tz=None):
    """Read --inventory and --connectors paths (each once) and report what was skipped."""
    from loganalyzer.inventory.reader import read_files, read_pfx_password

    password = _run(debug, read_pfx_password, pfx_password_file)
    paths = list(dict.fromkeys([*(inventory or []), *(connectors or [])]))
    read = _run(debug, read_files, paths, pfx_password=password, date_format=date_format, tz=tz)
    _say_skipped([(s.name, s.reason) for s in read.skipped])
    return read


@app.command()
def findings(
    logs: LogsArgument = None,
    store: StoreOption = None,
    since: Annotated[
        str | None,
        typer.Option(help="With --store: findings reaching into this window (ISO or 24h, 7d)."),
    ] = None,
    until: Annotated[str | None, typer.Option(help="With --store: end of the window.")] = None,
    allowlist: AllowlistOption = None,
    new_only: NewOnlyOption = False,
    state: StateOption = None,
    inventory: InventoryOption = None,
    connectors: ConnectorsOption = None,
    now: NowOption = None,
    fail_on: FailOnOption = None,
    server: ServerOption = None,
    fmt: FormatOption = TableFormat.table,
    output: OutputOption = None,
    pfx_password_file: PfxOption = None,
    jobs: JobsOption = None,
    scheduler: SchedulerOption = None,
    strict: StrictOption = False,
    syslog_year: SyslogYearOption = None,
    syslog_tz: SyslogTzOption = None,
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Verdicts with evidence: mail-flow halts and silences, fallbacks, plaintext, TLS failures,
    legacy TLS, and certificate and connector problems. Most severe first.
    """
    from loganalyzer.findings import alerts, at_or_above, find_issues

    if fmt is TableFormat.parquet and output is None:
        raise typer.BadParameter("parquet needs -o FILE", param_hint="--format")
    _logs_or_store(logs, store)
    if new_only and state is None:
        raise typer.BadParameter("--new-only needs --state FILE", param_hint="--new-only")
    when = parse_time(now)
    accepted_rules = _run(debug, alerts.load_allowlist, allowlist) if allowlist else []
    start, end = parse_time(since, when), parse_time(until, when)
    sessions = _analysed_sessions(
        debug, logs, store, start, end, quiet, roots=[*(inventory or []), *(connectors or [])],
        server=server, jobs=jobs, scheduler=scheduler, strict=strict,
        syslog_year=syslog_year, syslog_tz=_syslog_zone(syslog_tz),
    )  # fmt: skip
    inv = _read_inventory(inventory, connectors, pfx_password_file, debug)
    table = find_issues(sessions, inv.certificates, inv.connectors, now=when)
    table = alerts.findings_in_window(table, start, end)
    table = _alert_filters(debug, table, accepted_rules, when, new_only, state)
    _run(debug, write, table, fmt.value, output, FINDING_COLUMNS)
    counts = table["severity"].value_counts().to_dict()
    _say(
        "loganalyzer: "
        + ", ".join(f"{counts.get(s, 0)} {s}" for s in ("critical", "warning", "info"))
        + " findings"
    )
    if fail_on is not None and len(at_or_above(table, fail_on.value)):
        raise typer.Exit(1)


#: The bundled demo: the sample incident, judged at the end of its logs.
DEMO_FOLDER = Path("sample_logs") / "incident"
DEMO_NOW = "2026-11-27T07:00Z"


@app.command()
def report(
    logs: Annotated[
        list[str] | None,
        typer.Argument(
            help="Log files, folders, globs, .gz or .zip. None: the demo on sample_logs/incident."
        ),
    ] = None,
    store: StoreOption = None,
    inventory: InventoryOption = None,
    connectors: ConnectorsOption = None,
    out: Annotated[Path, typer.Option("--out", help="Folder to write the report into.")] = Path(
        "reports"
    ),
    now: NowOption = None,
    fail_on: FailOnOption = None,
    tz: Annotated[
        str, typer.Option("--tz", help="Time zone to show times in (e.g. Europe/Berlin).")
    ] = "UTC",
    redact_: Annotated[
        bool,
        typer.Option("--redact", help="Mask the local part of mail addresses in every output."),
    ] = False,
    redact_internal: Annotated[
        bool,
        typer.Option(
            "--redact-internal",
            help="Also mask internal IP addresses and host names (implies --redact).",
        ),
    ] = False,
    dated: Annotated[
        bool,
        typer.Option(
            "--dated",
            help="Write into OUT/YYYY-MM-DD (the --now date) and copy it to OUT/latest.",
        ),
    ] = False,
    since: Annotated[
        str | None,
        typer.Option(help="Report on sessions and findings from: ISO time or age (24h, 7d)."),
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Report on sessions and findings until: ISO time or age.")
    ] = None,
    allowlist: AllowlistOption = None,
    new_only: Annotated[
        bool,
        typer.Option(
            help="Only findings the previous run into --out did not have (state kept in "
            "OUT/findings-state.json)."
        ),
    ] = False,
    server: ServerOption = None,
    jobs: JobsOption = None,
    scheduler: SchedulerOption = None,
    pfx_password_file: PfxOption = None,
    strict: StrictOption = False,
    syslog_year: SyslogYearOption = None,
    syslog_tz: SyslogTzOption = None,
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """The report: verdict, halts, fallbacks, certificates, legacy TLS, failures, peers and
    the evidence rows, as report.html (one self-contained page) and report.md, with
    findings.json, summary.json, sessions.parquet, certificates.csv, peers.csv and
    charts/*.png in --out.

    With --store it reads the sessions of a store (loganalyzer ingest), with --since/--until
    the window to report on. Without LOGS or --store it runs the demo: the sample incident in
    sample_logs/incident (a renewed certificate, the hybrid send connector pinned to the old).
    """
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from loganalyzer.findings import alerts, at_or_above
    from loganalyzer.report import collect, redact, write_report
    from loganalyzer.report.write import publish_latest

    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise typer.BadParameter(f"unknown time zone {tz!r}", param_hint="--tz") from None
    if logs and store is not None:
        raise typer.BadParameter("give LOGS or --store DIR, not both")
    if not logs and store is None:
        logs, inventory, connectors, now = _demo(inventory, connectors, now)
    when = parse_time(now) or datetime.now(UTC)
    start, end = parse_time(since, when), parse_time(until, when)
    accepted_rules = _run(debug, alerts.load_allowlist, allowlist) if allowlist else []
    sessions = _analysed_sessions(
        debug, logs, store, start, end, quiet, roots=[*(inventory or []), *(connectors or [])],
        server=server, since=start, until=end, jobs=jobs, scheduler=scheduler, strict=strict,
        syslog_year=syslog_year, syslog_tz=_syslog_zone(syslog_tz),
    )  # fmt: skip
    inv = _read_inventory(inventory, connectors, pfx_password_file, debug)
    state = out / "findings-state.json" if new_only else None

    def keep(table):
        table = alerts.findings_in_window(table, start, end)
        return _alert_filters(debug, table, accepted_rules, when, new_only, state)

    data = collect(
        sessions,
        inv.certificates,
        inv.connectors,
        now=when,
        inventory_skipped=[(s.name, s.reason) for s in inv.skipped],
        keep=keep,
    )
    if redact_ or redact_internal:
        data = redact(data, internal=redact_internal)
    target = out / f"{when:%Y-%m-%d}" if dated else out
    paths = _run(debug, write_report, data, target, tz)
    if dated:
        _run(debug, publish_latest, target, out / "latest")
    _report_summary(data, paths["report.html"], tz)
    if fail_on is not None and len(at_or_above(data.findings, fail_on.value)):
        raise typer.Exit(1)


def _analysed_sessions(debug, logs, store, start, end, quiet, roots, **read):
    """The sessions findings and reports look at: from a store (the window plus the margin
    findings need), else read from LOGS (``read``: read_sessions options). Inventory exports
    found among the logs (under ``roots``) are not reported as skipped logs."""
    if store is not None:
        from loganalyzer.store import FINDINGS_MARGIN

        return _store_sessions(debug, store, start, end, margin=FINDINGS_MARGIN)
    with _Progress(logs, enabled=not quiet) as progress:
        sessions = _run(debug, read_sessions, logs, on_file=progress.on_file, **read)
    stats = sessions.attrs["read_stats"]
    stats["skipped"] = [s for s in stats["skipped"] if not _under(s["file"], roots)]
    _summary(stats)
    return sessions


def _demo(inventory, connectors, now):
    """LOGS, inventory, connectors and --now of the demo: ./sample_logs/incident, else the
    copy shipped inside the package."""
    from loganalyzer.demo import demo_folder

    folder = DEMO_FOLDER if DEMO_FOLDER.is_dir() else demo_folder()
    _say(f"loganalyzer: no LOGS given: the demo on {folder} (the sample incident)")
    exports = [str(folder / "inventory")]
    return [str(folder)], inventory or exports, connectors or exports, now or DEMO_NOW


def _under(name: str, roots: list[str]) -> bool:
    """Whether the input ``name`` is one of ``roots`` or inside one of them."""
    path = Path(name.split("!", 1)[0]).resolve()
    for root in roots:
        top = Path(root).resolve()
        if path == top or top in path.parents:
            return True
    return False


def _report_summary(data, page: Path, tz: str) -> None:
    """The terminal's short story: the verdict, the top findings, where the report is."""
    from loganalyzer.report.document import verdict

    f = data.findings
    counts = f["severity"].value_counts().to_dict()
    lines = [verdict(data, tz).text, ""]
    for row in f.head(8).itertuples(index=False):
        lines.append(f"  {row.severity:<8}  {row.title}")
    if len(f) > 8:
        lines.append(f"  ... and {len(f) - 8} more findings")
    lines += [
        "",
        "findings: "
        + ", ".join(f"{counts.get(s, 0)} {s}" for s in ("critical", "warning", "info")),
        f"report:   {page}  (also report.md, findings.json, summary.json, sessions.parquet, "
        "certificates.csv, peers.csv, charts/)",
    ]
    typer.echo(escape_terminal("\n".join(lines)))


@app.command()
def tlsrpt(
    logs: LogsArgument = None,
    store: StoreOption = None,
    organization: Annotated[
        str, typer.Option(help="organization-name: who sends the reports.")
    ] = "",
    contact: Annotated[str, typer.Option(help="contact-info: an address for questions.")] = "",
    day: Annotated[
        str | None,
        typer.Option(
            "--date",
            help="UTC day to report, YYYY-MM-DD (default: every day in LOGS; "
            "with --store: yesterday).",
        ),
    ] = None,
    gz: Annotated[bool, typer.Option("--gzip", help="Write .json.gz files.")] = False,
    output: Annotated[
        str,
        typer.Option(
            "--output",
            "-o",
            help="Folder for one file per policy domain and day; "
            "'-' prints one JSON report per line.",
        ),
    ] = "-",
    connectors: Annotated[
        list[str] | None,
        typer.Option("--connectors", help="Send connector exports (smart hosts, address spaces)."),
    ] = None,
    policies: Annotated[
        Path | None,
        typer.Option(
            help="JSON {domain: {policy-type, policy-string, mx-host}} of known "
            "MTA-STS/DANE policies (else no-policy-found)."
        ),
    ] = None,
    now: Annotated[str | None, typer.Option(help="'Today' for the default --date.")] = None,
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """SMTP TLS reports (RFC 8460) from send sessions: one per policy domain per UTC day.

    Local faults (our own certificate unusable or rejected) are left out of the reports and
    listed here instead.
    """
    import json as _json
    from datetime import date as _date

    from loganalyzer.tlsrpt import sender_domain, tlsrpt_reports, write_tlsrpt

    _logs_or_store(logs, store)
    if not organization.strip() or not contact.strip():
        raise typer.BadParameter("--organization and --contact are required")
    try:
        wanted = _date.fromisoformat(day) if day else None
    except ValueError:
        raise typer.BadParameter(
            f"{day!r} is not a date (YYYY-MM-DD)", param_hint="--date"
        ) from None
    if store is not None:
        if wanted is None:
            wanted = ((parse_time(now) or datetime.now(UTC)) - timedelta(days=1)).date()
        begin = datetime.combine(wanted, datetime.min.time(), UTC)
        sessions = _store_sessions(debug, store, begin, begin + timedelta(days=1, microseconds=-1))
    else:
        with _Progress(logs, enabled=not quiet) as progress:
            sessions = _run(debug, read_sessions, logs, on_file=progress.on_file)
        _summary(sessions.attrs["read_stats"])
    known = {}
    if policies is not None:
        try:
            known = _json.loads(policies.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            _say(f"loganalyzer: error: {policies}: cannot read the policies: {err}")
            raise typer.Exit(2) from None
    inv = _read_inventory(None, connectors, None, debug)
    result = tlsrpt_reports(
        sessions, organization=organization, contact=contact, day=wanted,
        connectors=inv.connectors, policies=known,
    )  # fmt: skip
    if output == "-":
        for report in result.reports:
            typer.echo(_json.dumps(report, ensure_ascii=False))
    else:
        sender = sender_domain(contact, organization)
        paths = _run(debug, write_tlsrpt, result.reports, Path(output), sender=sender, gz=gz)
        for path in paths:
            _say(f"  wrote {path}")
    _say(f"loganalyzer: {len(result.reports)} TLS reports")
    _say_left_out("local fault (our certificate), not reported", result.local_faults)
    _say_left_out("no policy domain known, not reported", result.unattributed)


def _say_left_out(why: str, sessions) -> None:
    if sessions is None or sessions.empty:
        return
    _say(f"loganalyzer: {len(sessions)} sessions left out: {why}:")
    error = sessions["tls_error"].fillna(sessions["last_error"]).fillna("")
    keys = ["server", "connector", "remote_host", "remote_ip"]
    groups = sessions.assign(_error=error).groupby([*keys, "_error"], dropna=False, sort=True)
    for key, group in groups:
        first = group.iloc[0]
        scope = " ".join(str(k) for k in key[:-1] if k is not None and not pd_isna(k))
        where = f"{first['file']}:{first['line']}"
        _say(f"  {len(group)} x {key[-1] or 'no error'}: {scope} (first {where})")


def pd_isna(value) -> bool:
    try:
        return bool(value != value)
    except (TypeError, ValueError):
        return False


def _alert_filters(debug, table, accepted_rules, when, new_only, state):
    """Leave out accepted findings, then (with --new-only) those of the previous run."""
    from loganalyzer.findings import alerts

    if accepted_rules:
        table, accepted, expired = alerts.apply_allowlist(table, accepted_rules, when)
        if len(accepted):
            _say(f"loganalyzer: {len(accepted)} findings accepted by the allowlist (left out)")
        for rule in expired:
            _say(
                f"  allowlist entry {rule.entry} expired {rule.expires_utc:%Y-%m-%d}: {rule.reason}"
            )
    if state is not None:
        previous = _run(debug, alerts.read_previous_keys, state)
        _run(debug, alerts.write_state, table, state)
        if new_only:
            before = len(table)
            table = alerts.new_findings(table, previous or set())
            _say(f"loganalyzer: {before - len(table)} findings already reported (left out)")
    return table


FINDING_COLUMNS = ("severity", "kind", "title", "first_seen_utc", "sessions", "cause")
CHOICE_COLUMNS = (
    "connector",
    "thumbprint",
    "subject",
    "not_after_utc",
    "status",
    "chosen",
    "reason",
)
CERT_TABLE_COLUMNS = (
    "thumbprint", "subject", "not_after_utc", "status", "services", "in_inventory",
    "selected_by", "sessions", "last_seen_utc",
)  # fmt: skip


def main() -> None:
    """Console-script entry point."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        app(standalone_mode=True)
    except Exception as err:  # a bug: one line, not a traceback (--debug shows it)
        if "--debug" in sys.argv:
            raise
        _say(
            f"loganalyzer: internal error: {type(err).__name__}: {err} "
            "(run again with --debug and please report it)"
        )
        sys.exit(2)

"""Command line: a thin typer layer over the library (validate options, call, render).

Exit codes (DESIGN.md): 0 done; 1 findings at or above --fail-on; 2 bad usage, nothing
readable, or any skip under --strict. Errors are one line on stderr; --debug adds a traceback.
"""

from __future__ import annotations

import re
import sys
import traceback
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from loganalyzer import __version__
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


FormatOption = Annotated[TableFormat, typer.Option("--format", "-f", help="Output format.")]
OutputOption = Annotated[
    Path | None, typer.Option("--output", "-o", help="Write to FILE (atomically), not stdout.")
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]
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


_RELATIVE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(text: str | None, now: datetime | None = None) -> datetime | None:
    """ISO 8601 (naive = UTC) or a relative age such as ``24h``/``7d`` (before ``now``)."""
    if text is None:
        return None
    match = _RELATIVE.match(text.strip())
    if match:
        now = now or datetime.now(UTC)
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not a time: use ISO 8601 (2026-11-27T06:00Z) or an age like 24h, 7d"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


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


@app.command()
def sessions(
    logs: Annotated[
        list[str],
        typer.Argument(help="Log files, folders (recursive), globs, .gz files or .zip archives."),
    ],
    since: Annotated[
        str | None, typer.Option(help="Keep sessions ending at or after: ISO time or age (24h).")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Keep sessions starting at or before: ISO time or age.")
    ] = None,
    fmt: FormatOption = TableFormat.table,
    output: OutputOption = None,
    server: Annotated[
        str | None,
        typer.Option(help="Server name for logs whose folders and connector ids name none."),
    ] = None,
    fallback_window: Annotated[
        float,
        typer.Option(help="Minutes after a failed TLS session in which plaintext is a fallback."),
    ] = DEFAULT_FALLBACK_WINDOW.total_seconds() / 60,
    jobs: Annotated[
        int | None, typer.Option(min=1, help="Cores to use for parsing (default: all).")
    ] = None,
    max_row_bytes: Annotated[
        int, typer.Option(min=1024, help="Longer log lines are reported and skipped.")
    ] = DEFAULT_LIMITS.max_row_bytes,
    max_inflate_ratio: Annotated[
        int, typer.Option(min=1, help="Stop a .gz file or zip member that expands more (x:1).")
    ] = DEFAULT_LIMITS.max_inflate_ratio,
    max_inflate_bytes: Annotated[
        int, typer.Option(min=1, help="Stop a .gz file or zip member that expands beyond this.")
    ] = DEFAULT_LIMITS.max_inflate_bytes,
    strict: Annotated[
        bool, typer.Option(help="Stop with exit code 2 at the first malformed row or skip.")
    ] = False,
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
    start, end = parse_time(since), parse_time(until)
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

    if not (logs or inventory or connectors):
        raise typer.BadParameter("give LOGS, --inventory or --connectors")
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


class Severity(StrEnum):
    info = "info"
    warning = "warning"
    critical = "critical"


@app.command()
def findings(
    logs: Annotated[
        list[str],
        typer.Argument(help="Log files, folders (recursive), globs, .gz files or .zip archives."),
    ],
    inventory: Annotated[
        list[str] | None,
        typer.Option("--inventory", help="Certificate files or Get-ExchangeCertificate exports."),
    ] = None,
    connectors: Annotated[
        list[str] | None,
        typer.Option("--connectors", help="Connector and Get-AuthConfig exports."),
    ] = None,
    now: Annotated[
        str | None, typer.Option(help="'Today' for expiry checks (default: the wall clock).")
    ] = None,
    fail_on: Annotated[
        Severity | None,
        typer.Option(help="Exit with code 1 when findings at or above this severity exist."),
    ] = None,
    server: Annotated[
        str | None,
        typer.Option(help="Server name for logs whose folders and connector ids name none."),
    ] = None,
    fmt: FormatOption = TableFormat.table,
    output: OutputOption = None,
    pfx_password_file: Annotated[
        Path | None, typer.Option(help="File whose first line is the PFX password.")
    ] = None,
    syslog_year: SyslogYearOption = None,
    syslog_tz: SyslogTzOption = None,
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Verdicts with evidence: mail-flow halts and silences, fallbacks, plaintext, TLS failures,
    legacy TLS, and certificate and connector problems. Most severe first.
    """
    from loganalyzer.findings import at_or_above, find_issues

    if fmt is TableFormat.parquet and output is None:
        raise typer.BadParameter("parquet needs -o FILE", param_hint="--format")
    when = parse_time(now)
    with _Progress(logs, enabled=not quiet) as progress:
        sessions = _run(
            debug,
            read_sessions,
            logs,
            server=server,
            on_file=progress.on_file,
            syslog_year=syslog_year,
            syslog_tz=_syslog_zone(syslog_tz),
        )
    _summary(sessions.attrs["read_stats"])
    inv = _read_inventory(inventory, connectors, pfx_password_file, debug)
    table = find_issues(sessions, inv.certificates, inv.connectors, now=when)
    _run(debug, write, table, fmt.value, output, FINDING_COLUMNS)
    counts = table["severity"].value_counts().to_dict()
    _say(
        "loganalyzer: "
        + ", ".join(f"{counts.get(s, 0)} {s}" for s in ("critical", "warning", "info"))
        + " findings"
    )
    if fail_on is not None and len(at_or_above(table, fail_on.value)):
        raise typer.Exit(1)


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
    app()

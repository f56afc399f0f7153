"""The report as a neutral document: sections of paragraphs, lists, tables and charts.

``compose(data, tz)`` decides what the report says; ``markdown.render`` and ``html.render``
only decide how it looks, so both outputs carry the same content. Every text here is plain
(unescaped) text: the renderers escape it for their format.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import pandas as pd

from loganalyzer.findings.tls import LEGACY_VERSIONS
from loganalyzer.report.data import ReportData

#: Rows shown per table in the page; the CSV/Parquet/JSON files carry all of them.
MAX_ROWS = 60


@dataclass
class Paragraph:
    text: str
    style: str | None = None  # "critical", "warning", "ok" or None


@dataclass
class Items:
    items: list[str]


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    styles: list[str | None] = field(default_factory=list)  # per row: severity or None
    more: int = 0  # rows left out of the page
    mono: tuple[int, ...] = ()  # columns shown in a fixed-width font (raw log text)
    caption: str | None = None


@dataclass
class Chart:
    name: str  # charts/<name>.png
    alt: str


@dataclass
class Section:
    id: str
    title: str
    blocks: list = field(default_factory=list)


@dataclass
class Document:
    title: str
    subtitle: str
    verdict: Paragraph
    sections: list[Section]


class _Clock:
    """Formats UTC times in the display zone."""

    def __init__(self, tz: str) -> None:
        self.zone = ZoneInfo(tz)
        self.name = tz

    def __call__(self, value, seconds: bool = True) -> str:
        if value is None or (not isinstance(value, (list, str)) and pd.isna(value)):
            return "–"
        stamp = pd.Timestamp(value)
        if stamp.tzinfo is None:
            stamp = stamp.tz_localize("UTC")
        return stamp.tz_convert(self.zone).strftime(
            "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
        )


def text(value) -> str:
    """A cell as text: lists joined, missing as an en dash."""
    if value is None:
        return "–"
    if isinstance(value, (list, tuple)) or hasattr(value, "tolist"):
        items = [text(v) for v in list(value)]
        return ", ".join(items) if items else "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if pd.isna(value):
        return "–"
    return str(value)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    minutes = round(seconds / 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [f"{days} d"] * bool(days) + [f"{hours} h"] * bool(hours) + [f"{minutes} min"]
    return " ".join(parts[:2]) if days else " ".join(parts)


def _details(value) -> dict:
    try:
        return json.loads(value) if isinstance(value, str) else {}
    except ValueError:
        return {}


def _where(row) -> str:
    bits = [text(row.get("server")), text(row.get("direction")), f"'{text(row.get('connector'))}'"]
    return " ".join(b for b in bits if b not in ("–", "'–'"))


def _limit(table: Table, limit: int = MAX_ROWS) -> Table:
    if len(table.rows) > limit:
        table.more = len(table.rows) - limit
        table.rows = table.rows[:limit]
        table.styles = table.styles[:limit]
    return table


def compose(data: ReportData, tz: str = "UTC") -> Document:
    """The whole report, most severe first."""
    clock = _Clock(tz)
    f = data.findings
    sections = [
        _summary(data, clock),
        _findings(f, clock),
        _halts(data, clock),
        _fallback_plaintext(f, clock),
        _certificates(data, clock),
        _legacy(data, clock),
        _tls_failures(f, clock),
        _configuration(data, clock),
        _peers(data, clock),
        _inputs(data),
        _evidence(data),
    ]
    span = _span(data.sessions, clock)
    return Document(
        title="loganalyzer report",
        subtitle=f"{span}; judged at {clock(data.now)} {tz}; times in {tz}",
        verdict=verdict(data, tz),
        sections=sections,
    )


def _span(sessions: pd.DataFrame, clock: _Clock) -> str:
    if sessions.empty:
        return "no sessions"
    return f"logs from {clock(sessions['start_utc'].min())} to {clock(sessions['end_utc'].max())}"


def verdict(data: ReportData, tz: str = "UTC") -> Paragraph:
    """One sentence a person reads first: halted, critical problems, warnings, or fine."""
    clock = _Clock(tz)
    f = data.findings
    halts = f[f["kind"] == "mail_flow_halt"]
    if len(halts):
        parts = []
        for _, h in halts.iterrows():
            d = _details(h["details"])
            state = "still halted" if d.get("ongoing") else f"until {clock(d.get('end'))}"
            parts.append(
                f"{_where(h)} to {text(h['remote'])} since {clock(h['first_seen_utc'])} ({state})"
            )
        cause = text(halts.iloc[0]["cause"])
        fixes = [f" Fix: {fix}." for fix in fixes_for(f, set(halts["connector"].dropna()))]
        return Paragraph(
            "MAIL FLOW HALTED: "
            + "; ".join(parts)
            + f". Most likely cause: {cause}."
            + "".join(fixes),
            "critical",
        )
    counts = f["severity"].value_counts()
    if counts.get("critical", 0):
        return Paragraph(
            f"{counts['critical']} critical problem(s): {text(f.iloc[0]['title'])}.", "critical"
        )
    if counts.get("warning", 0):
        return Paragraph(
            f"Mail flows; {counts['warning']} warning(s), first: {text(f.iloc[0]['title'])}.",
            "warning",
        )
    return Paragraph("Mail flows: no critical or warning findings.", "ok")


def fixes_for(findings: pd.DataFrame, connectors: set[str]) -> list[str]:
    """The suggested commands (``details.fix`` of connector findings) for these connectors."""
    out = []
    wanted = [c for c in connectors if isinstance(c, str)]
    for _, row in findings[findings["connector"].isin(wanted).fillna(False)].iterrows():
        fix = _details(row["details"]).get("fix")
        if fix and fix not in out:
            out.append(fix)
    return out


def _summary(data: ReportData, clock: _Clock) -> Section:
    s, f = data.sessions, data.findings
    counts = f["severity"].value_counts()
    items = []
    if len(s):
        by_dir = s["direction"].value_counts()
        outcome = s["outcome"].value_counts()
        with_tls = int(outcome.get("tls", 0))
        share = 100 * with_tls / len(s)
        items += [
            f"Servers: {text(sorted(s['server'].dropna().unique()))}",
            "Sessions: "
            + f"{len(s):,} ("
            + ", ".join(f"{n:,} {d}" for d, n in by_dir.items())
            + f"), {int(s['messages'].fillna(0).sum()):,} messages",
            f"TLS: {with_tls:,} sessions ({share:.0f}%); plaintext "
            f"{int(outcome.get('plaintext', 0)):,}"
            f" (fallbacks {int(s['fallback'].fillna(False).sum()):,}); TLS failed "
            f"{int(outcome.get('tls_failed', 0)):,}; connect failed "
            f"{int(outcome.get('connect_failed', 0)):,}",
        ]
    items.append(
        "Findings: "
        + ", ".join(f"{int(counts.get(k, 0))} {k}" for k in ("critical", "warning", "info"))
    )
    top = f[f["severity"].isin(["critical", "warning"])].head(10)
    blocks: list = [Items(items)]
    if len(top):
        blocks.append(Paragraph("Most severe findings:"))
        blocks.append(Items([f"[{r['severity']}] {text(r['title'])}" for _, r in top.iterrows()]))
    return Section("summary", "Summary", blocks)


def _findings(f: pd.DataFrame, clock: _Clock) -> Section:
    if f.empty:
        return Section("findings", "Findings", [Paragraph("No findings.", "ok")])
    table = Table(
        ["severity", "kind", "finding", "first seen", "last seen", "sessions", "cause"],
        [
            [
                r["severity"],
                r["kind"],
                text(r["title"]),
                clock(r["first_seen_utc"]),
                clock(r["last_seen_utc"]),
                text(r["sessions"]),
                text(r["cause"]),
            ]
            for _, r in f.iterrows()
        ],
        styles=list(f["severity"]),
    )
    return Section("findings", "Findings (most severe first)", [_limit(table, 200)])


def _halts(data: ReportData, clock: _Clock) -> Section:
    f = data.findings
    rows = f[f["kind"].isin(["mail_flow_halt", "mail_flow_silence"])]
    blocks: list = [Chart("failures_over_time", "Failed sessions per connector, halts shaded")]
    if rows.empty:
        blocks.insert(0, Paragraph("No mail-flow halt or silence.", "ok"))
        return Section("halts", "Mail-flow halts", blocks)
    for _, h in rows.iterrows():
        d = _details(h["details"])
        end = (
            "ongoing at the end of the logs"
            if d.get("ongoing")
            else clock(d.get("end") or h["last_seen_utc"])
        )
        facts = [
            f"Where: {_where(h)}"
            + (f", peer {text(h['remote'])}" if pd.notna(h["remote"]) else ""),
            f"From {clock(h['first_seen_utc'])} to {end}"
            + (f" ({_duration(d.get('duration_s'))})" if d.get("duration_s") else ""),
        ]
        if h["kind"] == "mail_flow_halt":
            facts.append(f"Failed sessions: {text(h['sessions'])}")
        facts.append(f"Most likely cause: {text(h['cause'])}")
        others = [c for c in d.get("causes", [])[1:]]
        if others:
            facts.append("Also seen: " + "; ".join(others))
        if h["cert_thumbprint"] is not None and pd.notna(h["cert_thumbprint"]):
            facts.append(f"Certificate: {h['cert_thumbprint']}")
        facts += [f"Fix: {fix}" for fix in fixes_for(f, {h["connector"]})]
        blocks.insert(-1, Paragraph(text(h["title"]), h["severity"]))
        blocks.insert(-1, Items(facts))
    return Section("halts", "Mail-flow halts", blocks)


def _scope_rows(rows: pd.DataFrame, clock: _Clock, extra) -> list[list[str]]:
    return [
        [
            text(r["server"]),
            text(r["direction"]),
            text(r["connector"]),
            text(r["remote"]),
            text(r["sessions"]),
            text(r["messages"]),
            clock(r["first_seen_utc"]),
            clock(r["last_seen_utc"]),
            *extra(r),
        ]
        for _, r in rows.iterrows()
    ]


_SCOPE = ["server", "direction", "connector", "peer", "sessions", "messages", "first", "last"]


def _fallback_plaintext(f: pd.DataFrame, clock: _Clock) -> Section:
    blocks: list = [Chart("tls_over_time", "Sessions over time by outcome, per direction")]
    fallback = f[f["kind"] == "tls_fallback"]
    plain = f[f["kind"] == "plaintext"]
    if fallback.empty:
        blocks.append(Paragraph("No fallback to plaintext after a failed TLS attempt.", "ok"))
    else:
        blocks.append(Paragraph("Fell back to plaintext after a failed TLS attempt:"))
        blocks.append(
            _limit(
                Table(
                    [*_SCOPE, "TLS error first"],
                    _scope_rows(
                        fallback, clock, lambda r: [text(_details(r["details"]).get("tls_error"))]
                    ),
                    styles=list(fallback["severity"]),
                )
            )
        )
    if plain.empty:
        blocks.append(Paragraph("No mail was carried in plaintext.", "ok"))
    else:
        blocks.append(Paragraph("Mail carried without TLS:"))
        blocks.append(
            _limit(
                Table(
                    [*_SCOPE, "why"],
                    _scope_rows(plain, clock, lambda r: [text(r["cause"])]),
                    styles=list(plain["severity"]),
                )
            )
        )
    return Section("fallback", "Fallbacks and plaintext by peer", blocks)


def _certificates(data: ReportData, clock: _Clock) -> Section:
    c, s = data.certificates, data.sessions
    blocks: list = [
        Chart("certificate_timeline", "Certificate validity and when each was presented")
    ]
    shown = c[c["sessions"].fillna(0) > 0] if len(c) else c
    if shown.empty:
        blocks.insert(0, Paragraph("No certificate was presented in the logs."))
        return Section("certificates", "Certificates presented", blocks)
    rows, styles = [], []
    for _, r in shown.iterrows():
        late = _presented_outside_validity(s, r)
        rows.append(
            [
                text(r["directions"]),
                text(r["subject"]),
                text(r["issuer"]),
                text(r["thumbprint"]),
                clock(r["not_before_utc"], False),
                clock(r["not_after_utc"], False),
                clock(r["first_seen_utc"]),
                clock(r["last_seen_utc"]),
                text(r["sessions"]),
                f"{late} outside validity" if late else "all within validity",
                text(r["selected_by"]),
                text(r["status"]),
            ]
        )
        styles.append("critical" if late else None)
    blocks.append(
        _limit(
            Table(
                [
                    "presented",
                    "subject",
                    "issuer",
                    "thumbprint",
                    "valid from",
                    "valid to",
                    "first presented",
                    "last presented",
                    "sessions",
                    "at the time presented",
                    "selected by",
                    f"status at {clock(data.now, False)}",
                ],
                rows,
                styles=styles,
                mono=(3,),
            )
        )
    )
    return Section("certificates", "Certificates presented", blocks)


def _presented_outside_validity(s: pd.DataFrame, cert) -> int:
    """Sessions that presented this certificate (either side) outside its validity."""
    if s.empty or cert["thumbprint"] is None or pd.isna(cert["thumbprint"]):
        return 0
    count = 0
    for side in ("local", "remote"):
        mine = s[(s[f"{side}_cert_thumbprint"] == cert["thumbprint"]).fillna(False)]
        if mine.empty:
            continue
        outside = pd.Series(False, index=mine.index)
        if pd.notna(cert["not_after_utc"]):
            outside |= (mine["start_utc"] > cert["not_after_utc"]).fillna(False)
        if pd.notna(cert["not_before_utc"]):
            outside |= (mine["start_utc"] < cert["not_before_utc"]).fillna(False)
        count += int(outside.sum())
    return count


def _legacy(data: ReportData, clock: _Clock) -> Section:
    f = data.findings
    rows = f[f["kind"] == "legacy_tls"]
    blocks: list = [Chart("tls_versions", "Share of TLS versions per direction")]
    if rows.empty:
        blocks.append(Paragraph(f"No peer negotiated {', '.join(LEGACY_VERSIONS)}.", "ok"))
    else:
        blocks.append(
            _limit(
                Table(
                    [*_SCOPE, "versions"],
                    _scope_rows(
                        rows, clock, lambda r: [text(_details(r["details"]).get("versions"))]
                    ),
                    styles=list(rows["severity"]),
                )
            )
        )
    return Section("legacy", "Legacy TLS peers", blocks)


def _tls_failures(f: pd.DataFrame, clock: _Clock) -> Section:
    rows = f[f["kind"] == "tls_failure"]
    if rows.empty:
        return Section("tls-failures", "TLS failures", [Paragraph("No TLS failure.", "ok")])
    table = Table(
        [*_SCOPE, "error", "fault"],
        _scope_rows(
            rows,
            clock,
            lambda r: [
                text(_details(r["details"]).get("error")),
                text(_details(r["details"]).get("fault")),
            ],
        ),
        styles=list(rows["severity"]),
    )
    return Section("tls-failures", "TLS failures", [_limit(table)])


def _configuration(data: ReportData, clock: _Clock) -> Section:
    blocks: list = []
    f = data.findings
    config = f[
        f["kind"].isin(
            [
                "connector_cert_missing",
                "connector_tls_mismatch",
                "cert_expiring",
                "weak_certificate",
                "cert_name_mismatch",
                "self_signed_external",
            ]
        )
    ]
    if len(config):
        blocks.append(
            Items(
                [
                    f"[{r['severity']}] {text(r['title'])}: {text(r['cause'])}"
                    for _, r in config.iterrows()
                ]
            )
        )
    ch = data.choices
    if ch.empty:
        blocks.append(
            Paragraph(
                "No connector export given (--connectors): which certificate each connector "
                "selects cannot be shown."
            )
        )
    else:
        blocks.append(
            Paragraph(
                "Which certificate each connector selects (TlsCertificateName, "
                "else its FQDN), and why the others lose:"
            )
        )
        blocks.append(
            _limit(
                Table(
                    [
                        "connector",
                        "TlsCertificateName / FQDN",
                        "certificate",
                        "subject",
                        "valid to",
                        "status",
                        "chosen",
                        "why",
                    ],
                    [
                        [
                            text(r["connector"]),
                            text(
                                r["tls_certificate_name"]
                                if pd.notna(r["tls_certificate_name"])
                                else r["fqdn"]
                            ),
                            text(r["thumbprint"]),
                            text(r["subject"]),
                            clock(r["not_after_utc"], False),
                            text(r["status"]),
                            text(r["chosen"]),
                            text(r["reason"]),
                        ]
                        for _, r in ch.iterrows()
                    ],
                    styles=[
                        "critical" if r["chosen"] and r["status"] == "expired" else None
                        for _, r in ch.iterrows()
                    ],
                    mono=(2,),
                )
            )
        )
    inv = data.certificates
    inv = inv[inv["in_inventory"].fillna(False).astype(bool)] if len(inv) else inv
    if inv.empty:
        blocks.append(Paragraph("No certificate inventory given (--inventory)."))
    else:
        blocks.append(Paragraph("Certificate inventory:"))
        blocks.append(
            _limit(
                Table(
                    [
                        "thumbprint",
                        "subject",
                        "issuer",
                        "valid to",
                        "services",
                        "status",
                        "selected by",
                        "problems",
                    ],
                    [
                        [
                            text(r["thumbprint"]),
                            text(r["subject"]),
                            text(r["issuer"]),
                            clock(r["not_after_utc"], False),
                            text(r["services"]),
                            text(r["status"]),
                            text(r["selected_by"]),
                            text(r["problems"]),
                        ]
                        for _, r in inv.iterrows()
                    ],
                    mono=(0,),
                )
            )
        )
    return Section("configuration", "Connectors and certificate configuration", blocks)


def _peers(data: ReportData, clock: _Clock) -> Section:
    p = data.peers
    if p.empty:
        return Section("peers", "Peers", [Paragraph("No peers.")])
    table = Table(
        [
            "direction",
            "domain",
            "host",
            "first seen",
            "last seen",
            "sessions",
            "messages",
            "TLS",
            "plaintext",
            "TLS failed",
            "fallbacks",
            "TLS versions",
            "ciphers",
        ],
        [
            [
                text(r["direction"]),
                text(r["domain"]),
                text(r["host"]),
                clock(r["first_seen_utc"]),
                clock(r["last_seen_utc"]),
                text(r["sessions"]),
                text(r["messages"]),
                text(r["tls_sessions"]),
                text(r["plaintext_sessions"]),
                text(r["tls_failed_sessions"]),
                text(r["fallback_sessions"]),
                text(r["tls_versions"]),
                text(r["ciphers"]),
            ]
            for _, r in p.iterrows()
        ],
        styles=[
            "warning"
            if r["fallback_sessions"]
            or r["plaintext_sessions"]
            or any(v.split(" ")[0] in LEGACY_VERSIONS for v in r["tls_versions"])
            else None
            for _, r in p.iterrows()
        ],
    )
    intro = Paragraph(
        "TLS posture per remote host (all columns in peers.csv), most sessions first:"
    )
    return Section("peers", "Peers", [intro, _limit(table)])


def _inputs(data: ReportData) -> Section:
    i = data.inputs
    items = [
        f"Log files read: {i.get('files', 0)}, rows: {i.get('rows', 0):,}, sessions: "
        f"{i.get('sessions', len(data.sessions)):,}",
        f"Malformed rows: {i.get('malformed', 0)}"
        + (f" (malformed fields: {i['malformed_fields']})" if i.get("malformed_fields") else ""),
        f"Inventory: {i.get('inventory_records', 0)} certificate records, "
        f"{i.get('connector_records', 0)} connector records",
    ]
    items += [f"malformed: {e}" for e in i.get("malformed_examples", [])[:10]]
    items += [f"skipped: {s['file']}: {s['reason']}" for s in i.get("skipped", [])[:20]]
    items += [
        f"inventory skipped: {s['file']}: {s['reason']}"
        for s in i.get("inventory_skipped", [])[:20]
    ]
    return Section("inputs", "Inputs", [Items(items)])


def _evidence(data: ReportData) -> Section:
    blocks: list = []
    f = data.findings
    for i, tables in sorted(data.evidence.items()):
        r = f.iloc[i]
        blocks.append(Paragraph(f"[{r['severity']}] {text(r['title'])}", r["severity"]))
        refs = list(r["evidence"])
        for rows in tables:
            blocks.append(
                Table(
                    ["file:line", "time", "event", "data", "context"],
                    [
                        [
                            f"{row.file}:{row.line}",
                            text(row.date_time),
                            text(row.event),
                            text(row.data),
                            text(row.context),
                        ]
                        for row in rows.itertuples(index=False)
                    ],
                    mono=(0, 1, 2, 3, 4),
                    caption=f"session {rows['session_id'].iloc[0]}"
                    + (
                        f" ({n} rows in the middle left out)"
                        if (n := rows.attrs.get("omitted"))
                        else ""
                    ),
                )
            )
        if len(refs) > len(tables):
            blocks.append(Paragraph(f"Further evidence: {', '.join(refs[len(tables) :])}"))
    if not blocks:
        blocks.append(Paragraph("No evidence rows (no findings with log evidence)."))
    return Section("evidence", "Evidence: the log rows behind the findings", blocks)

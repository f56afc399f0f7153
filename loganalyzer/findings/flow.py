"""Mail-flow findings: halts (sessions keep failing) and silences (a connector goes quiet).

``mail_flow_halt``: per server, direction, connector and peer (the peer's domain: the last two
labels of ``remote_host``; a session without a host name takes the domain other sessions of the
connector show for its IP, else the ``Destination domain`` of a failed connect, else the remote
IP), a run of failed sessions with no successful one in between. Failed: outcome ``tls_failed``
or ``connect_failed``, or a 4xx/5xx ``last_error`` with nothing delivered. Successful:
``delivered > 0``, or a ``tls``/``plaintext`` session that issued MAIL FROM and did not fail.
A run is a halt with at least ``Options.halt_min_sessions`` failures and at least
``Options.halt_min_duration`` from the first failure's start to the last one's. ``cause`` is the
best of ``details["causes"]`` (all that apply, in this order): the presented certificate had
expired; it changed since the last success (renewal); the connector's TlsCertificateName selects
no valid certificate; UnknownCredentials/NoCredentials; the remote certificate was rejected;
STARTTLS required but not offered (or not used); the network; else the commonest error.

``mail_flow_silence``: a connector that carried ``MIN_STEADY_SESSIONS`` sessions since its last
silence and then has none for at least ``max(silence_min_gap, silence_gap_factor x its median
gap between session starts)`` while other connectors of the same server and direction still
have sessions (critical; ``ongoing`` when it lasts to the end of that server's logs). A gap in
which the whole server and direction has no sessions is a log-coverage gap (severity info,
``details["coverage_gap"]``); the part of a connector's gap that falls in one does not count.
A receive connector that offered STARTTLS and then does not offer it in
``STARTTLS_STOP_SESSIONS`` sessions in a row (sessions with an EHLO/HELO name; the table cannot
tell a HELO client, which is never offered STARTTLS, from an EHLO one) is reported too
(critical, ``details["starttls_stopped"]``).

Times in ``details`` are ISO 8601 text with ``Z``; durations are seconds.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa

from loganalyzer.certs import certificate_key
from loganalyzer.findings.model import Context, Finding, evidence_of
from loganalyzer.inventory.dn import normalise_dn
from loganalyzer.inventory.records import CertificateRecord, ConnectorRecord

__all__ = ["RULES", "mail_flow_halt", "mail_flow_silence"]

#: sessions a connector must have carried before a gap for the gap to count as a silence.
MIN_STEADY_SESSIONS = 10
#: sessions in a row without STARTTLS after it was offered.
STARTTLS_STOP_SESSIONS = 3
#: sessions of other connectors quoted as evidence that the logs go on.
OTHER_EVIDENCE = 5

_REPLY_ERROR = re.compile(r"^\s*[45]\d\d(?:[\s-]|$)")
_LOCAL_CREDENTIALS = re.compile(r"\b(UnknownCredentials|NoCredentials)\b")
_REMOTE_CERT = re.compile(
    r"validation|SubjectMismatch|untrusted|CertUnknown|name mismatch|did not match", re.I
)
_STARTTLS_REQUIRED = re.compile(
    r"STARTTLS is required|doesn't support TLS|TLS was not offered|Require STARTTLS", re.I
)
_STARTTLS_FIRST = re.compile(r"Must issue a STARTTLS command first", re.I)
_REFUSED = re.compile(r"Winsock error code: 10061|refused", re.I)
_TIMED_OUT = re.compile(r"Winsock error code: 10060|TimedOut|timed out", re.I)
_DESTINATION = re.compile(r"Destination domain: ([^,\s]+)")
_NOT_FOUND_QUEUE = (
    "454 4.7.5 The certificate specified in TlsCertificateName of the SendConnector could "
    "not be found."
)
_COLUMNS = (
    "server", "direction", "connector", "session_id", "start_utc", "end_utc", "remote_ip",
    "remote_host", "starttls_offered", "helo", "tls_error", "local_cert_thumbprint",
    "local_cert_subject", "local_cert_issuer", "local_cert_serial", "local_cert_not_after_utc",
    "remote_cert_thumbprint", "remote_cert_subject", "messages", "delivered", "last_error",
    "outcome", "file", "line",
)  # fmt: skip


# --------------------------------------------------------------------------------------------
# mail_flow_halt


def mail_flow_halt(ctx: Context) -> list[Finding]:
    """Runs of failed sessions per connector and peer with no successful session in between."""
    s = _prepared(ctx.sessions)
    if s.empty:
        return []
    s["_peer"] = _peers(s)
    s["_ok"], s["_fail"] = session_verdicts(s)
    s = s.sort_values(["_server", "_direction", "_connector", "_peer", "start_utc"], kind="stable")
    s = s.reset_index(drop=True)
    s["_group"] = s.groupby(["_server", "_direction", "_connector", "_peer"], sort=False).ngroup()
    s["_run"] = s.groupby("_group", sort=False)["_ok"].cumsum()
    fails = s[s["_fail"]].reset_index(drop=True)
    if fails.empty:
        return []
    # the failures of one run are contiguous: (group, run) ascending, then by time
    group, run = fails["_group"].to_numpy(), fails["_run"].to_numpy()
    starts = _micros(fails["start_utc"])
    cuts = np.flatnonzero((np.diff(group) != 0) | (np.diff(run) != 0)) + 1
    first = np.concatenate([[0], cuts])
    after = np.concatenate([cuts, [len(fails)]])
    min_span = int(ctx.options.halt_min_duration.total_seconds() * 1e6)
    wanted = np.flatnonzero(
        (after - first >= ctx.options.halt_min_sessions)
        & (starts[after - 1] - starts[first] >= min_span)
    )
    if not len(wanted):
        return []
    successes = s[s["_ok"]]
    next_success = dict(
        zip(zip(successes["_group"], successes["_run"], strict=True), successes["start_utc"],
            strict=True)
    )  # fmt: skip
    presented = _presented_when_ok(s)
    inventory = _inventory_by_key(ctx.inventory)
    positions = np.concatenate([np.arange(first[k], after[k]) for k in wanted])
    records = _records(fails.iloc[positions])
    where = fails[["file", "line"]]  # (narrow: evidence_of slices it per finding)
    found = []
    offset = 0
    for k in wanted:
        a, b = int(first[k]), int(after[k])
        rows = records[offset : offset + b - a]
        offset += b - a
        end = next_success.get((int(group[a]), int(run[a]) + 1))
        found.append(_halt(ctx, where.iloc[a:b], rows, end, presented, inventory))
    return found


def _presented_when_ok(s: pd.DataFrame) -> dict[tuple, tuple[np.ndarray, list[str]]]:
    """Per (server, direction, connector): start times (µs, ascending) of successful sessions
    that presented a local certificate, and those thumbprints."""
    ok = s[s["_ok"] & s["local_cert_thumbprint"].notna()]
    ok = ok.sort_values(["_server", "_direction", "_connector", "start_utc"], kind="stable")
    out = {}
    for key, rows in ok.groupby(["_server", "_direction", "_connector"], sort=False):
        out[key] = (_micros(rows["start_utc"]), rows["local_cert_thumbprint"].tolist())
    return out


def _halt(
    ctx: Context,
    frame: pd.DataFrame,
    rows: list[dict],
    end: pd.Timestamp | None,
    presented: dict[tuple, tuple[np.ndarray, list[str]]],
    inventory: dict[str, CertificateRecord],
) -> Finding:
    """One halt finding from its failed sessions (``frame``, and as ``rows``)."""
    first = rows[0]
    server, direction, connector, peer = (
        first["_server"], first["_direction"], first["_connector"], first["_peer"],
    )  # fmt: skip
    start = first["start_utc"]
    last = max(r["end_utc"] or r["start_utc"] for r in rows)
    ongoing = end is None
    stop = last if ongoing else _ts(end)
    duration = (stop - start).total_seconds()
    key = (server, direction, connector)
    before = _last_presented(presented.get(key), start)
    causes, thumbprint = _halt_causes(ctx, rows, before, inventory)
    counts = [r["messages"] for r in rows if r["messages"] is not None]
    side = "to" if direction == "send" else "from"
    title = (
        f"Mail flow halted: {direction or 'unknown'} connector '{connector or '?'}' "
        f"({server or 'unknown server'}) {side} {peer}, {len(rows)} failed sessions over "
        f"{_span(duration)}" + (" (ongoing)" if ongoing else "")
    )
    return Finding(
        kind="mail_flow_halt",
        title=title,
        server=server or None,
        direction=direction or None,
        connector=connector or None,
        remote=peer or None,
        cert_thumbprint=thumbprint,
        first_seen_utc=start,
        last_seen_utc=last,
        sessions=len(rows),
        messages=sum(counts) if counts else None,
        cause=causes[0] if causes else None,
        evidence=evidence_of(frame),
        details={
            "start": _iso(start),
            "end": None if ongoing else _iso(stop),
            "ongoing": ongoing,
            "duration_s": round(duration, 3),
            "failures_by_outcome": dict(sorted(Counter(r["outcome"] or "" for r in rows).items())),
            "causes": causes,
        },
    )


def _last_presented(presented: tuple[np.ndarray, list[str]] | None, before: datetime) -> str | None:
    """The thumbprint of the last successful session of the connector before ``before``."""
    if presented is None:
        return None
    times, thumbprints = presented
    i = int(np.searchsorted(times, _micro(before), side="left"))
    return thumbprints[i - 1] if i > 0 else None


def _halt_causes(
    ctx: Context,
    rows: list[dict],
    old_thumb: str | None,
    inventory: dict[str, CertificateRecord],
) -> tuple[list[str], str | None]:
    """The causes that apply, best first, and the certificate concerned (if any)."""
    causes: list[str] = []
    total = len(rows)
    first = rows[0]
    shown = [r["local_cert_thumbprint"] for r in rows if r["local_cert_thumbprint"]]
    thumbprint = Counter(shown).most_common(1)[0][0] if shown else None

    # (1) the certificate this server presented had expired at the session's time
    expired = _expired_presented(rows, inventory)
    if expired is not None:
        thumb, subject, not_after = expired
        thumbprint = thumb
        causes.append(
            f"the certificate presented (thumbprint {thumb}, subject {subject or 'unknown'}) "
            f"expired at {_iso(not_after)}"
        )

    # (2) the presented certificate changed just before the first failure
    new = next((r for r in rows if r["local_cert_thumbprint"]), None)
    if old_thumb and new and new["local_cert_thumbprint"] != old_thumb:
        new_thumb = new["local_cert_thumbprint"]
        causes.append(
            f"the certificate changed from {old_thumb} to {new_thumb} at "
            f"{_iso(new['start_utc'])} (renewal)"
        )
        thumbprint = thumbprint or new_thumb

    # (3) the connector's TlsCertificateName selects no valid certificate
    problem = _tls_name_problem(
        ctx, first["_server"], first["_direction"], first["_connector"], first["start_utc"]
    )
    if problem:
        causes.append(problem)

    errors = [f"{r['tls_error'] or ''} | {r['last_error'] or ''}" for r in rows]

    # (4) UnknownCredentials / NoCredentials: this server's certificate cannot be used
    local = [m.group(1) for m in map(_LOCAL_CREDENTIALS.search, errors) if m]
    if local:
        name = Counter(local).most_common(1)[0][0]
        record = inventory.get(thumbprint) if thumbprint else None
        known = ""
        if record is not None and record.has_private_key is False:
            known = f"; the inventory shows {thumbprint} without a private key"
        elif record is not None and record.services is not None and "SMTP" not in record.services:
            known = f"; the inventory shows {thumbprint} not enabled for SMTP"
        causes.append(
            f"{name}: a local fault: the certificate has no SMTP service or no usable private "
            f"key ({len(local)} of {total} failed sessions){known}"
        )

    # (5) the remote certificate is untrusted or does not match the name
    remote = [r for r, e in zip(rows, errors, strict=True) if _REMOTE_CERT.search(e)]
    if remote:
        text = _dominant(r["tls_error"] or r["last_error"] for r in remote)
        subjects = [r["remote_cert_subject"] for r in remote if r["remote_cert_subject"]]
        who = f" ({subjects[0]})" if subjects else ""
        causes.append(
            f"the remote certificate{who} is untrusted or does not match the name: {text} "
            f"({len(remote)} of {total} failed sessions)"
        )

    # (6) STARTTLS required but not offered (or not used)
    not_offered = [
        r
        for r, e in zip(rows, errors, strict=True)
        if _STARTTLS_REQUIRED.search(e)
        or (
            r["_direction"] == "send" and r["outcome"] == "tls_failed" and not r["starttls_offered"]
        )
    ]
    if not_offered:
        text = _dominant(r["last_error"] or r["tls_error"] for r in not_offered)
        causes.append(
            f"STARTTLS required but not offered by the remote: {text or 'no 250-STARTTLS'} "
            f"({len(not_offered)} of {total} failed sessions)"
        )
    not_used = [e for e in errors if _STARTTLS_FIRST.search(e)]
    if not_used:
        causes.append(
            "STARTTLS required but not used by the client: Must issue a STARTTLS command first "
            f"({len(not_used)} of {total} failed sessions)"
        )

    # (7) the network: connection refused or timed out
    network = [
        r
        for r, e in zip(rows, errors, strict=True)
        if r["outcome"] == "connect_failed" or _TIMED_OUT.search(e)
    ]
    if network:
        texts = [r["last_error"] or "" for r in network]
        if any(_REFUSED.search(x) for x in texts):
            what = "connection refused"
        elif any(_TIMED_OUT.search(x) for x in texts):
            what = "connection timed out"
        else:
            what = "connection failed"
        text = _dominant(texts)
        causes.append(
            f"network: {what} ({len(network)} of {total} failed sessions)"
            + (f": {text}" if text else "")
        )

    if not causes:
        texts = [r["last_error"] or r["tls_error"] for r in rows]
        text = _dominant(texts)
        if text:
            causes.append(f"{text} ({texts.count(text)} of {total} failed sessions)")
    return causes, thumbprint


def _expired_presented(
    rows: list[dict], inventory: dict[str, CertificateRecord]
) -> tuple[str, str | None, datetime] | None:
    """(thumbprint, subject, not after) of the first presented certificate expired at its
    session's start: by the log's NotAfter, else by the inventory (thumbprint or issuer+serial)."""
    for row in rows:
        thumb, issuer, serial = (
            row["local_cert_thumbprint"], row["local_cert_issuer"], row["local_cert_serial"],
        )  # fmt: skip
        key = certificate_key(thumb, issuer, serial) if (thumb or serial) else None
        if key is None:
            continue
        record = inventory.get(key)
        not_after = row["local_cert_not_after_utc"]
        if not_after is None and record is not None:
            not_after = record.not_after_utc
        if not_after is not None and not_after < row["start_utc"]:
            subject = row["local_cert_subject"] or (record.subject if record else None)
            return thumb or key, subject, not_after
    return None


def session_verdicts(s: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(successful, failed) per session, as boolean arrays."""
    outcome = s["outcome"].fillna("").to_numpy(dtype=object)
    delivered = s["delivered"].fillna(0).to_numpy(dtype="int64")
    messages = s["messages"].fillna(0).to_numpy(dtype="int64")
    reply_error = (
        s["last_error"].astype("string").str.match(_REPLY_ERROR.pattern, na=False).to_numpy(bool)
    )
    hard = np.isin(outcome, ["tls_failed", "connect_failed"])
    mailed = np.isin(outcome, ["tls", "plaintext"]) & (messages > 0)
    ok = (delivered > 0) | (mailed & ~hard & ~reply_error)
    fail = ~ok & (hard | (reply_error & (delivered == 0)))
    return ok, fail


def _peers(s: pd.DataFrame) -> pd.Series:
    """The peer of each session: the domain of its host name; for IP-only sessions the domain
    another session of the same connector shows for that IP, the failed connect's destination
    domain, or the IP itself."""
    host = s["remote_host"].astype("string")
    domains = {h: domain_of(h) for h in host.dropna().unique()}
    peer = pd.Series(host.map(domains).to_numpy(dtype=object), index=s.index)
    keys = ["_server", "_direction", "_connector", "_ip"]
    frame = s.assign(_ip=s["remote_ip"].astype("string").fillna("").to_numpy(dtype=object))
    frame["_domain"] = peer
    known = frame[peer.notna() & (frame["_ip"] != "")].drop_duplicates(keys)
    if len(known):
        by_ip = frame[keys].merge(known[[*keys, "_domain"]], on=keys, how="left")["_domain"]
        peer = peer.fillna(pd.Series(by_ip.to_numpy(dtype=object), index=s.index))
    destination = s["last_error"].astype("string").str.extract(_DESTINATION.pattern, expand=False)
    peer = peer.fillna(pd.Series(destination.str.lower().to_numpy(dtype=object), index=s.index))
    ip = frame["_ip"].replace("", None)
    return peer.fillna(ip).fillna("unknown").astype(object)


def domain_of(host: str) -> str | None:
    """``mx1.mail.example.net`` -> ``example.net``; an IP literal or empty name -> None."""
    name = host.strip().strip("[]").rstrip(".").lower()
    if not name or is_ip(name):
        return None
    labels = name.split(".")
    return ".".join(labels[-2:])


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------------------------
# mail_flow_silence


def mail_flow_silence(ctx: Context) -> list[Finding]:
    """Connectors that go quiet, log-coverage gaps, and receive connectors that stop offering
    STARTTLS."""
    s = _prepared(ctx.sessions)
    if s.empty:
        return []
    s = s.sort_values(["_server", "_direction", "start_utc"], kind="stable").reset_index(drop=True)
    found: list[Finding] = []
    for (server, direction), rows in s.groupby(["_server", "_direction"], sort=True):
        rows = rows.reset_index(drop=True)
        coverage = _coverage_gaps(ctx, server, direction, rows)
        found += coverage
        logs = _Logs(
            rows=rows,
            starts=_micros(rows["start_utc"]),
            end=_ts(rows["end_utc"].fillna(rows["start_utc"]).max()),
            unlogged=[(f.first_seen_utc, f.last_seen_utc) for f in coverage],
        )
        for connector, conn in rows.groupby("_connector", sort=True):
            found += _silences(ctx, server, direction, connector, conn, logs)
            if direction == "receive":
                found += _starttls_stops(ctx, server, connector, conn)
    return found


@dataclass
class _Logs:
    """The sessions of one server and direction (by start), where they end, what is unlogged."""

    rows: pd.DataFrame
    starts: np.ndarray
    end: datetime
    unlogged: list[tuple[datetime, datetime]]


def _gaps(
    rows: pd.DataFrame, ctx: Context, end_of_logs: datetime | None = None
) -> list[tuple[int, pd.Timedelta, pd.Timedelta, bool]]:
    """(index of the last session before, gap, threshold, ongoing) for each gap between session
    starts of at least ``max(silence_min_gap, silence_gap_factor x median of the gaps before)``
    that follows a steady rate: MIN_STEADY_SESSIONS sessions since the previous such gap. With
    ``end_of_logs``, also the gap from the last session to it (``ongoing``)."""
    starts = _micros(rows["start_utc"])
    if len(starts) < MIN_STEADY_SESSIONS:
        return []
    gaps = np.diff(starts)
    floor = int(ctx.options.silence_min_gap.total_seconds() * 1e6)
    out = []
    previous = -1  # index of the previous long gap: the steady rate counts from after it
    for i in np.flatnonzero(gaps >= floor):
        threshold = _threshold(ctx, gaps[:i])
        if gaps[i] < threshold:
            continue
        if i - previous >= MIN_STEADY_SESSIONS:
            gap = pd.Timedelta(int(gaps[i]), unit="us")
            out.append((int(i), gap, pd.Timedelta(threshold, unit="us"), False))
        previous = int(i)
    last = len(starts) - 1
    if end_of_logs is not None and last - previous >= MIN_STEADY_SESSIONS:
        gap = pd.Timedelta(_micro(end_of_logs) - int(starts[-1]), unit="us")
        threshold = pd.Timedelta(_threshold(ctx, gaps), unit="us")
        if gap >= threshold:
            out.append((last, gap, threshold, True))
    return out


def _threshold(ctx: Context, gaps: np.ndarray) -> int:
    """max(silence_min_gap, silence_gap_factor x median gap), in µs."""
    floor = int(ctx.options.silence_min_gap.total_seconds() * 1e6)
    if len(gaps) == 0:
        return floor
    return max(floor, int(np.median(gaps) * ctx.options.silence_gap_factor))


def _coverage_gaps(ctx: Context, server: str, direction: str, rows: pd.DataFrame) -> list[Finding]:
    """Gaps in which the whole server and direction logged no session (severity info)."""
    found = []
    for i, gap, threshold, _ in _gaps(rows, ctx):
        before, after = rows.iloc[i], rows.iloc[i + 1]
        start, end = _ts(before["start_utc"]), _ts(after["start_utc"])
        where = f"{server or 'unknown server'} {direction or ''}".strip()
        found.append(
            Finding(
                kind="mail_flow_silence",
                severity="info",
                title=f"No logs from {where} between {_show(start)} and {_show(end)}",
                server=server or None,
                direction=direction or None,
                first_seen_utc=start,
                last_seen_utc=end,
                cause=(
                    f"no session of any connector for {_span(gap.total_seconds())}: logs missing "
                    "(not collected, rolled over or deleted) or the service was down"
                ),
                evidence=evidence_of(rows.iloc[[i, i + 1]]),
                details={
                    "coverage_gap": True,
                    "start": _iso(start),
                    "end": _iso(end),
                    "duration_s": gap.total_seconds(),
                    "threshold_s": threshold.total_seconds(),
                },
            )
        )
    return found


def _silences(
    ctx: Context,
    server: str,
    direction: str,
    connector: str,
    conn: pd.DataFrame,
    logs: _Logs,
) -> list[Finding]:
    """Gaps of one connector while other connectors of the server and direction go on.

    The parts of a gap that fall in a coverage gap (``logs.unlogged``) do not count: what is
    left must still reach the threshold."""
    found = []
    for i, gap, threshold, ongoing in _gaps(conn, ctx, logs.end):
        before = conn.iloc[i]
        start = _ts(before["start_utc"])
        stop = logs.end if ongoing else _ts(conn.iloc[i + 1]["start_utc"])
        # sessions of the server and direction within the gap (none are this connector's)
        lo = int(np.searchsorted(logs.starts, _micro(start), side="right"))
        hi = int(np.searchsorted(logs.starts, _micro(stop), side="left"))
        inside = logs.rows.iloc[lo:hi]
        if inside.empty:
            continue  # nothing at all was logged: a coverage gap, reported per server
        missing = sum(
            (min(stop, b) - max(start, a)).total_seconds()
            for a, b in logs.unlogged
            if a < stop and start < b
        )
        if gap - pd.Timedelta(seconds=missing) < threshold:
            continue  # mostly a coverage gap
        proof = [before] if ongoing else [before, conn.iloc[i + 1]]
        evidence = evidence_of(pd.DataFrame(proof)) + evidence_of(inside.head(OTHER_EVIDENCE))
        problem = _tls_name_problem(ctx, server, direction, connector, start)
        cause = None
        if problem:
            cause = (
                f"{problem}: Exchange creates no session when TlsCertificateName finds nothing "
                f"(the queue says '{_NOT_FOUND_QUEUE}')"
                if direction == "send"
                else f"{problem}: the connector cannot offer STARTTLS (event 12014)"
            )
        title = (
            f"Mail flow silent: {direction} connector '{connector or '?'}' "
            f"({server or 'unknown server'}) had no sessions for {_span(gap.total_seconds())} "
            f"from {_show(start)}"
            + (" (ongoing)" if ongoing else f" to {_show(stop)}")
            + f" while other connectors logged {len(inside)}"
        )
        found.append(
            Finding(
                kind="mail_flow_silence",
                title=title,
                server=server or None,
                direction=direction or None,
                connector=connector or None,
                first_seen_utc=start,
                last_seen_utc=stop,
                cause=cause,
                evidence=evidence,
                details={
                    "start": _iso(start),
                    "end": None if ongoing else _iso(stop),
                    "ongoing": ongoing,
                    "duration_s": gap.total_seconds(),
                    "threshold_s": threshold.total_seconds(),
                    "sessions_before": i + 1,
                    "other_sessions": len(inside),
                    "unlogged_s": missing,
                },
            )
        )
    return found


def _starttls_stops(ctx: Context, server: str, connector: str, conn: pd.DataFrame) -> list[Finding]:
    """A receive connector that offered STARTTLS and then stops offering it."""
    said_hello = conn[conn["helo"].notna() & (conn["outcome"] != "connect_failed")]
    if len(said_hello) < STARTTLS_STOP_SESSIONS + 1:
        return []
    said_hello = said_hello.reset_index(drop=True)
    offered = said_hello["starttls_offered"].fillna(False).to_numpy(dtype=bool)
    # runs of sessions without the offer: [first, after); one that starts at 0 follows no offer
    edges = np.diff(np.concatenate([[0], (~offered).astype(np.int8), [0]]))
    runs = zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True)
    inventory = _inventory_by_key(ctx.inventory)
    # position of the last session (at or before each one) that presented a certificate
    shown = said_hello["local_cert_thumbprint"].notna().to_numpy(dtype=bool)
    last_shown = np.maximum.accumulate(np.where(shown, np.arange(len(shown)), -1))
    return [
        _starttls_stop(
            ctx, server, connector, said_hello, int(i), int(j), int(last_shown[i - 1]), inventory
        )
        for i, j in runs
        if i > 0 and j - i >= STARTTLS_STOP_SESSIONS
    ]


def _starttls_stop(
    ctx: Context,
    server: str,
    connector: str,
    rows: pd.DataFrame,
    i: int,
    j: int,
    shown: int,
    inventory: dict[str, CertificateRecord],
) -> Finding:
    """The sessions ``rows[i:j]`` had no STARTTLS offer; ``rows[shown]`` is the last one
    before them that presented a certificate (-1: none)."""
    run = rows.iloc[i:j]
    start = _ts(run.iloc[0]["start_utc"])
    last = _ts(run["end_utc"].fillna(run["start_utc"]).max())
    ongoing = j >= len(rows)
    end = None if ongoing else _ts(rows.iloc[j]["start_utc"])
    causes = ["STARTTLS no longer offered: the connector has no usable certificate (event 12014)"]
    thumbprint = None
    if shown >= 0:
        row = rows.iloc[shown]
        thumbprint = row["local_cert_thumbprint"]
        after = _ts(row["local_cert_not_after_utc"])
        if after is None:
            record = inventory.get(thumbprint)
            after = record.not_after_utc if record else None
        if after is not None and after < start:
            causes.append(
                f"the certificate last presented (thumbprint {thumbprint}) expired at {_iso(after)}"
            )
    problem = _tls_name_problem(ctx, server, "receive", connector, start)
    if problem:
        causes.append(problem)
    messages = run["messages"].sum(min_count=1)
    title = (
        f"STARTTLS no longer offered: receive connector '{connector or '?'}' "
        f"({server or 'unknown server'}), {len(run)} sessions without STARTTLS from "
        f"{_show(start)}" + (" (ongoing)" if ongoing else f" to {_show(end)}")
    )
    return Finding(
        kind="mail_flow_silence",
        severity="critical",
        title=title,
        server=server or None,
        direction="receive",
        connector=connector or None,
        cert_thumbprint=thumbprint,
        first_seen_utc=start,
        last_seen_utc=last,
        sessions=len(run),
        messages=None if pd.isna(messages) else int(messages),
        cause="; ".join(causes),
        evidence=evidence_of(run),
        details={
            "starttls_stopped": True,
            "start": _iso(start),
            "end": _iso(end) if end is not None else None,
            "ongoing": ongoing,
            "duration_s": ((end or last) - start).total_seconds(),
            "last_offered_utc": _iso(_ts(rows.iloc[i - 1]["start_utc"])),
            "causes": causes,
        },
    )


# --------------------------------------------------------------------------------------------
# shared


def _tls_name_problem(
    ctx: Context, server: str | None, direction: str | None, connector: str | None, at: datetime
) -> str | None:
    """``TlsCertificateName <I>..<S>.. selects no valid certificate`` when the connector's
    record names certificates by TlsCertificateName and the inventory has none of them valid
    (and with a usable private key) at ``at``; None when it has one, or nothing is known."""
    record = _connector_record(ctx.connectors, server, direction, connector)
    if record is None or not ctx.inventory:
        return None
    if not (record.tls_cert_subject or record.tls_cert_issuer):
        return None
    subject = normalise_dn(record.tls_cert_subject) if record.tls_cert_subject else None
    issuer = normalise_dn(record.tls_cert_issuer) if record.tls_cert_issuer else None
    where = server or record.server
    matches = [
        cert
        for cert in ctx.inventory
        if (subject is None or (cert.subject and normalise_dn(cert.subject) == subject))
        and (issuer is None or (cert.issuer and normalise_dn(cert.issuer) == issuer))
        and not (cert.server and where and cert.server.casefold() != where.casefold())
    ]
    usable = [
        cert
        for cert in matches
        if cert.has_private_key is not False
        and (cert.not_before_utc is None or cert.not_before_utc <= at)
        and (cert.not_after_utc is None or at <= cert.not_after_utc)
    ]
    if usable:
        return None
    name = record.tls_certificate_name or (
        f"<I>{record.tls_cert_issuer or ''}<S>{record.tls_cert_subject or ''}"
    )
    if matches:
        return (
            f"TlsCertificateName {name} selects no valid certificate ({len(matches)} matching, "
            f"none valid with a private key at {_iso(at)})"
        )
    return f"TlsCertificateName {name} selects no valid certificate (none in the inventory)"


def _connector_record(
    connectors: list[ConnectorRecord],
    server: str | None,
    direction: str | None,
    name: str | None,
) -> ConnectorRecord | None:
    """The send/receive connector record of that name (and server, when both say)."""
    if not name or direction not in ("send", "receive"):
        return None
    for record in connectors:
        if record.kind != direction or record.name.casefold() != name.casefold():
            continue
        if record.server and server and record.server.casefold() != server.casefold():
            continue
        return record
    return None


def _inventory_by_key(inventory: list[CertificateRecord]) -> dict[str, CertificateRecord]:
    out: dict[str, CertificateRecord] = {}
    for record in inventory:
        key = certificate_key(record.thumbprint, record.issuer, record.serial)
        if key and (key not in out or out[key].not_after_utc is None):
            out[key] = record
    return out


def _prepared(sessions: pd.DataFrame | None) -> pd.DataFrame:
    """The columns the rules read, with text scope keys (``''`` for missing)."""
    if sessions is None or sessions.empty:
        return pd.DataFrame()
    s = sessions[[c for c in _COLUMNS if c in sessions.columns]].copy()
    s.attrs = {}  # (read statistics: pandas would deep-copy them on every slice)
    for column in ("server", "direction", "connector"):
        s[f"_{column}"] = s[column].astype("string").fillna("").to_numpy(dtype=object)
    return s[s["start_utc"].notna()]


def _dominant(values) -> str | None:
    """The most frequent non-empty text (the first seen among equals)."""
    counts = Counter(v for v in values if v)
    return counts.most_common(1)[0][0] if counts else None


def _records(rows: pd.DataFrame) -> list[dict]:
    """Rows as dicts of plain values: None for missing, timezone-aware datetimes."""
    columns = {c: _plain_values(rows[c]) for c in rows.columns}
    return [
        dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)
    ]


def _plain_values(values: pd.Series) -> list:
    if isinstance(values.dtype, pd.ArrowDtype):
        return pa.chunked_array(values.array.__arrow_array__()).to_pylist()
    return [_plain(v) for v in values.tolist()]


def _plain(value):
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return _ts(value)
    if isinstance(value, float) and np.isnan(value):
        return None
    return value


def _micros(values: pd.Series) -> np.ndarray:
    """Timestamps as µs since the epoch (int64)."""
    if isinstance(values.dtype, pd.ArrowDtype):
        chunks = pa.chunked_array(values.array.__arrow_array__())
        micros = chunks.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).fill_null(0)
        return micros.to_numpy()
    return values.astype("datetime64[us, UTC]").to_numpy(dtype="datetime64[us]").astype("int64")


def _micro(value: datetime) -> int:
    return int(pd.Timestamp(value).value // 1000)  # .value: ns since the epoch


def _ts(value) -> datetime | None:
    if value is None or value is pd.NA or pd.isna(value):
        return None
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return stamp.tz_convert("UTC").to_pydatetime()


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return pd.Timestamp(value).tz_convert("UTC").isoformat().replace("+00:00", "Z")


def _show(value: datetime) -> str:
    return pd.Timestamp(value).tz_convert("UTC").strftime("%Y-%m-%d %H:%M UTC")


def _span(seconds: float) -> str:
    """``2 h 5 min``, ``12 min``, ``45 s``, ``1 d 3 h``."""
    total = round(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min"
    return f"{secs} s"


RULES = [mail_flow_halt, mail_flow_silence]

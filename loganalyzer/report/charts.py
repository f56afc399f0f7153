"""The report's charts as matplotlib Figures (also for notebooks: ``loganalyzer.plot_*``).

Each function takes the library's frames and a display time zone and returns a
``matplotlib.figure.Figure`` (no pyplot state and no backend switch, so it is safe in scripts,
servers and notebooks; ``fig.savefig("x.png")`` writes it). ``report_charts`` makes all of them
for the report.

.. code-block:: python

    import loganalyzer as la
    sessions = la.read_sessions("collected/")
    la.plot_tls_over_time(sessions, tz="Europe/Berlin").savefig("tls.png")
    la.plot_failures_over_time(sessions, la.find_issues(sessions))  # in Jupyter: shown
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import matplotlib

matplotlib.use("Agg", force=False)

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from loganalyzer.findings.flow import session_verdicts

OUTCOME_COLORS = {
    "tls": "#2e7d32",
    "plaintext": "#ef6c00",
    "tls_failed": "#c62828",
    "connect_failed": "#6a1b9a",
    "incomplete": "#9e9e9e",
}
VERSION_COLORS = {
    "TLS1.3": "#1b5e20", "TLS1.2": "#43a047", "TLS1.1": "#fb8c00", "TLS1.0": "#e53935",
    "SSL3": "#8e0000",
}  # fmt: skip
_WIDTH = 10.0


def _bin(span: timedelta) -> str:
    """A bar width that gives a readable number of bars over ``span``."""
    if span <= timedelta(days=2):
        return "1h"
    if span <= timedelta(days=14):
        return "6h"
    return "1D"


def _local(values: pd.Series, tz: str) -> pd.Series:
    return pd.to_datetime(values, utc=True).dt.tz_convert(tz)


def _empty(fig: Figure, ax, text: str) -> Figure:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#555")
    ax.set_axis_off()
    return fig


def _time_axis(ax, tz: str) -> None:
    locator = mdates.AutoDateLocator(tz=tz, minticks=4, maxticks=10)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=tz))
    ax.grid(axis="y", color="#ddd", linewidth=0.6)
    ax.set_axisbelow(True)


def tls_over_time(sessions: pd.DataFrame, tz: str = "UTC") -> Figure:
    """Sessions per time bin and outcome (TLS, plaintext, failures), one panel per direction."""
    directions = sorted(sessions["direction"].dropna().unique()) if len(sessions) else []
    fig = Figure(figsize=(_WIDTH, 2.6 * max(len(directions), 1)), layout="constrained")
    if not directions:
        return _empty(fig, fig.add_subplot(), "no sessions")
    axes = fig.subplots(len(directions), 1, sharex=True, squeeze=False)[:, 0]
    start = _local(sessions["start_utc"], tz)
    freq = _bin(start.max() - start.min())
    width = pd.Timedelta(freq) * 0.9
    for ax, direction in zip(axes, directions, strict=True):
        mine = sessions["direction"] == direction
        counts = (
            pd.DataFrame({"t": start[mine].dt.floor(freq), "o": sessions.loc[mine, "outcome"]})
            .groupby(["t", "o"])
            .size()
            .unstack(fill_value=0)
        )
        bottom = np.zeros(len(counts))
        for outcome, color in OUTCOME_COLORS.items():
            if outcome in counts:
                values = counts[outcome].to_numpy()
                ax.bar(counts.index, values, width=width, bottom=bottom, color=color,
                       label=outcome, align="edge")  # fmt: skip
                bottom += values
        ax.set_title(f"{direction}: sessions per {freq} by outcome", loc="left", fontsize=10)
        ax.set_ylabel("sessions")
        ax.legend(loc="upper left", fontsize=8, ncols=5, frameon=False)
        ax.set_ylim(0, max(bottom.max(), 1) * 1.3)
        _time_axis(ax, tz)
    axes[-1].set_xlabel(f"time ({tz})")
    return fig


def failures_over_time(
    sessions: pd.DataFrame, findings: pd.DataFrame | None = None, tz: str = "UTC"
) -> Figure:
    """Failed sessions per time bin for each connector that failed, halts shaded red."""
    fig = Figure(figsize=(_WIDTH, 3.6), layout="constrained")
    ax = fig.add_subplot()
    if sessions.empty:
        return _empty(fig, ax, "no sessions")
    _, failed = session_verdicts(sessions)
    rows = sessions[failed]
    if rows.empty:
        return _empty(fig, ax, "no failed sessions")
    start = _local(sessions["start_utc"], tz)
    freq = _bin(start.max() - start.min())
    label = (
        rows["server"].fillna("?").astype(str)
        + " "
        + rows["direction"].fillna("?").astype(str)
        + " '"
        + rows["connector"].fillna("?").astype(str)
        + "'"
    )
    counts = (
        pd.DataFrame({"t": _local(rows["start_utc"], tz).dt.floor(freq), "c": label})
        .groupby(["t", "c"])
        .size()
        .unstack(fill_value=0)
    )
    full = pd.date_range(start.min().floor(freq), start.max().ceil(freq), freq=freq)
    counts = counts.reindex(full, fill_value=0)
    top = counts.sum().sort_values(ascending=False).index[:8]
    for name in top:
        ax.step(counts.index, counts[name].to_numpy(), where="post", label=name, linewidth=1.6)
    halts = _halts(findings)
    end_of_logs = pd.to_datetime(sessions["end_utc"]).max()
    for i, (first, last) in enumerate(halts):
        ax.axvspan(
            first.tz_convert(tz), (last or end_of_logs).tz_convert(tz), color="#c62828",
            alpha=0.12, label="mail-flow halt" if i == 0 else None,
        )  # fmt: skip
    ax.set_title(f"Failed sessions per {freq} by connector", loc="left", fontsize=10)
    ax.set_ylabel("failed sessions")
    ax.set_xlabel(f"time ({tz})")
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    ax.set_ylim(0, max(counts.to_numpy().max(), 1) * 1.4)
    _time_axis(ax, tz)
    return fig


def _halts(findings: pd.DataFrame | None) -> list[tuple[pd.Timestamp, pd.Timestamp | None]]:
    """(start, end or None when ongoing) of every mail-flow halt finding."""
    if findings is None or findings.empty:
        return []
    out = []
    for _, f in findings[findings["kind"] == "mail_flow_halt"].iterrows():
        details = json.loads(f["details"]) if isinstance(f["details"], str) else {}
        end = details.get("end")
        out.append((pd.Timestamp(f["first_seen_utc"]), pd.Timestamp(end) if end else None))
    return out


def tls_versions(sessions: pd.DataFrame) -> Figure:
    """Share of TLS versions among TLS sessions, per direction (horizontal stacked bars)."""
    fig = Figure(figsize=(_WIDTH, 2.4), layout="constrained")
    ax = fig.add_subplot()
    tls = sessions[sessions["tls_version"].notna()] if len(sessions) else sessions
    if tls.empty:
        return _empty(fig, ax, "no TLS sessions")
    counts = tls.groupby(["direction", "tls_version"]).size().unstack(fill_value=0)
    share = counts.div(counts.sum(axis=1), axis=0) * 100
    versions = [v for v in VERSION_COLORS if v in share] + [
        v for v in share.columns if v not in VERSION_COLORS
    ]
    left = np.zeros(len(share))
    for version in versions:
        values = share[version].to_numpy()
        ax.barh(share.index, values, left=left, color=VERSION_COLORS.get(version, "#777"),
                label=version)  # fmt: skip
        for y, (x0, w) in enumerate(zip(left, values, strict=True)):
            if w >= 4:
                ax.text(x0 + w / 2, y, f"{w:.0f}%", ha="center", va="center", fontsize=8,
                        color="white")  # fmt: skip
        left += values
    totals = counts.sum(axis=1)
    ax.set_yticks(range(len(share)), [f"{d} ({totals[d]:,})" for d in share.index])
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of TLS sessions")
    ax.set_title("TLS versions negotiated", loc="left", fontsize=10)
    ax.legend(loc="lower right", fontsize=8, ncols=len(versions), frameon=False,
              bbox_to_anchor=(1, 1))  # fmt: skip
    return fig


def certificate_timeline(
    certificates: pd.DataFrame,
    sessions: pd.DataFrame,
    now: datetime | None = None,
    tz: str = "UTC",
    limit: int = 10,
) -> Figure:
    """Validity bars of our certificates (presented by our servers or selected by a
    connector), ticks where they were presented, the renewal moments and ``now``.

    Two panels: the overview reaches back to the renewals (at most 90 days before the logs);
    the lower one zooms in on the logs, where a certificate presented after its expiry shows.
    """
    certs = _our_certificates(certificates)[:limit] if len(certificates) else []
    height = 0.5 * max(len(certs), 1)
    fig = Figure(figsize=(_WIDTH, 1.6 + 2 * height), layout="constrained")
    if not certs:
        return _empty(fig, fig.add_subplot(), "no certificates presented by our servers")
    starts = pd.to_datetime(sessions["start_utc"]) if len(sessions) else pd.Series([])
    moments = [c["not_before_utc"] for c in certs if pd.notna(c["not_before_utc"])]
    first = starts.min() if len(starts) else min(moments)
    last = starts.max() if len(starts) else max(moments)
    if now is not None:
        last = max(last, pd.Timestamp(now))
    renewals = _renewals(certs)
    ticks = _presented(sessions, starts, {c["thumbprint"] for c in certs})
    overview, zoom = fig.subplots(2, 1)
    lo = min([first, *[r for r in renewals if r >= first - pd.Timedelta(days=90)]])
    for ax, (a, b) in ((overview, (lo, last)), (zoom, (first, last))):
        span = max(b - a, pd.Timedelta(hours=1))
        _timeline(ax, certs, ticks, a - span * 0.04, b + span * 0.06, renewals, now)
        _time_axis(ax, tz)
    overview.set_title(
        "Our certificates: validity (blue, red once expired), presented (ticks), renewals",
        loc="left", fontsize=10,
    )  # fmt: skip
    zoom.set_title("the logged period", loc="left", fontsize=9)
    zoom.set_xlabel(f"time ({tz})")
    overview.legend(loc="lower left", fontsize=8, frameon=False)
    return fig


def _presented(sessions: pd.DataFrame, starts: pd.Series, thumbprints: set) -> dict:
    """Thumbprint -> the times it was presented, as Matplotlib date numbers (handing it
    timezone-aware pandas times makes it convert them one by one: seconds on 200,000)."""
    if not len(sessions):
        return {}
    utc = pd.to_datetime(starts, utc=True).dt.tz_localize(None)
    frame = pd.DataFrame({"t": utc, "k": sessions["local_cert_thumbprint"].astype("string")})
    frame = frame[frame["k"].isin(list(thumbprints)).fillna(False)]
    return {
        key: mdates.date2num(group["t"].to_numpy(dtype="datetime64[ns]"))
        for key, group in frame.groupby("k", sort=False)
    }


def _timeline(ax, certs, ticks, lo, hi, renewals, now) -> None:
    for y, cert in enumerate(certs):
        nb, na = cert["not_before_utc"], cert["not_after_utc"]
        left = max(nb, lo) if pd.notna(nb) else lo
        right = min(na, hi) if pd.notna(na) else hi
        if right > left:
            ax.barh(y, right - left, left=left, height=0.5, color="#90caf9")
        if pd.notna(na) and lo < na < hi:
            ax.barh(y, hi - na, left=na, height=0.5, color="#ef9a9a")
            ax.annotate("expired", (na, y), xytext=(3, 9), textcoords="offset points",
                        fontsize=7, color="#c62828")  # fmt: skip
        shown = ticks.get(cert["thumbprint"], [])
        if len(shown):
            late = shown > mdates.date2num(na) if pd.notna(na) else np.zeros(len(shown), bool)
            ax.plot(shown[~late], np.full(int((~late).sum()), y), "|", color="#0d47a1", ms=9)
            ax.plot(shown[late], np.full(int(late.sum()), y), "|", color="#b71c1c", ms=9)
    for i, moment in enumerate(r for r in renewals if lo < r < hi):
        ax.axvline(moment, color="#2e7d32", linestyle="--", linewidth=1,
                   label="renewed (new NotBefore)" if i == 0 else None)  # fmt: skip
    if now is not None and lo < pd.Timestamp(now) < hi:
        ax.axvline(pd.Timestamp(now), color="#555", linestyle=":", linewidth=1, label="now")
    ax.set_yticks(range(len(certs)), [_cert_label(c) for c in certs], fontsize=8)
    ax.set_ylim(len(certs) - 0.5, -0.5)
    ax.set_xlim(lo, hi)


def _our_certificates(certificates: pd.DataFrame) -> list[dict]:
    """Certificates our servers presented or a connector selects, by subject then NotBefore."""
    rows = []
    for row in certificates.to_dict("records"):
        directions = list(row.get("directions") if row.get("directions") is not None else [])
        selected = list(row.get("selected_by") if row.get("selected_by") is not None else [])
        ours = any(str(d).endswith(":presented") for d in directions) or selected
        if ours:
            rows.append(row)
    return sorted(rows, key=lambda r: (str(r["subject"]), _sortable(r["not_before_utc"])))


def _sortable(value) -> pd.Timestamp:
    return pd.Timestamp(value) if pd.notna(value) else pd.Timestamp(0, tz="UTC")


def _renewals(certs: list[dict]) -> list[pd.Timestamp]:
    """NotBefore of each certificate that follows another one with the same subject."""
    by_subject: dict[str, list[pd.Timestamp]] = {}
    for cert in certs:
        if pd.notna(cert["not_before_utc"]):
            by_subject.setdefault(str(cert["subject"]), []).append(cert["not_before_utc"])
    return sorted(t for times in by_subject.values() for t in sorted(times)[1:])


def _cert_label(cert: dict) -> str:
    subject = str(cert.get("subject") or "?")
    cn = subject.split(",")[0].removeprefix("CN=")
    issuer = str(cert.get("issuer") or "?").split(",")[0].removeprefix("CN=")
    return f"{cn[:34]}\n{issuer[:26]} · {str(cert.get('thumbprint') or '')[:8]}"


#: Names in the top-level API (``loganalyzer.plot_*``).
plot_tls_over_time = tls_over_time
plot_failures_over_time = failures_over_time
plot_tls_versions = tls_versions
plot_certificate_timeline = certificate_timeline


def report_charts(data, tz: str = "UTC") -> dict[str, Figure]:
    """Every chart of the report, by file stem (``charts/<stem>.png``)."""
    return {
        "tls_over_time": tls_over_time(data.sessions, tz),
        "failures_over_time": failures_over_time(data.sessions, data.findings, tz),
        "tls_versions": tls_versions(data.sessions),
        "certificate_timeline": certificate_timeline(
            data.certificates, data.sessions, data.now, tz
        ),
    }

"""The peers table: the TLS posture of every remote domain and host, for ``peers.csv``.

One row per (direction, domain, host). Columns: ``direction, domain, host`` (the peer's host
name, else its IP), ``remote_ips, servers, connectors`` (lists), ``first_seen_utc,
last_seen_utc`` (UTC timestamps), ``sessions, messages, delivered, tls_sessions,
plaintext_sessions, tls_failed_sessions, connect_failed_sessions, fallback_sessions,
starttls_offered_sessions`` (counts), ``tls_versions, ciphers`` (``name (sessions)`` lists, most
used first) and ``cert_thumbprints`` (certificates the peer presented, most used first).
"""

from __future__ import annotations

import pandas as pd

from loganalyzer.findings.flow import domain_of
from loganalyzer.findings.tls import with_peer

PEER_COLUMNS = (
    "direction", "domain", "host", "remote_ips", "servers", "connectors", "first_seen_utc",
    "last_seen_utc", "sessions", "messages", "delivered", "tls_sessions", "plaintext_sessions",
    "tls_failed_sessions", "connect_failed_sessions", "fallback_sessions",
    "starttls_offered_sessions", "tls_versions", "ciphers", "cert_thumbprints",
)  # fmt: skip
_COUNTS = {
    "tls_sessions": "tls",
    "plaintext_sessions": "plaintext",
    "tls_failed_sessions": "tls_failed",
    "connect_failed_sessions": "connect_failed",
}


def peers_table(sessions: pd.DataFrame) -> pd.DataFrame:
    """Per peer: when seen, how much mail, and how it was protected (columns above)."""
    if sessions.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in PEER_COLUMNS})
    s = with_peer(sessions)
    hosts = s["peer"].astype(object)
    domains = {h: domain_of(h) or h for h in hosts.unique()}
    s = s.assign(
        host=hosts,
        domain=hosts.map(domains),
        **{name: s["outcome"].eq(value).fillna(False) for name, value in _COUNTS.items()},
        fallback_=s["fallback"].fillna(False).astype(bool),
        offered_=s["starttls_offered"].fillna(False).astype(bool),
        cipher_=_cipher_names(s),
    )
    rows = []
    for (direction, domain, host), g in s.groupby(["direction", "domain", "host"], sort=True):
        rows.append(
            {
                "direction": direction,
                "domain": domain,
                "host": host,
                "remote_ips": _distinct(g["remote_ip"]),
                "servers": _distinct(g["server"]),
                "connectors": _distinct(g["connector"]),
                "first_seen_utc": g["start_utc"].min(),
                "last_seen_utc": g["end_utc"].max(),
                "sessions": len(g),
                "messages": int(g["messages"].fillna(0).sum()),
                "delivered": int(g["delivered"].fillna(0).sum()),
                **{name: int(g[name].sum()) for name in _COUNTS},
                "fallback_sessions": int(g["fallback_"].sum()),
                "starttls_offered_sessions": int(g["offered_"].sum()),
                "tls_versions": _ranked(g["tls_version"]),
                "ciphers": _ranked(g["cipher_"]),
                "cert_thumbprints": _ranked(g["remote_cert_thumbprint"], counts=False),
            }
        )
    out = pd.DataFrame(rows, columns=list(PEER_COLUMNS))
    return out.sort_values(
        ["sessions", "direction", "domain", "host"], ascending=[False, True, True, True]
    ).reset_index(drop=True)


def _cipher_names(s: pd.DataFrame) -> pd.Series:
    """``CALG_AES_256 (256)`` per session, or NA."""
    bits = s["tls_cipher_bits"].astype("string").fillna("?")
    named = s["tls_cipher"].astype("string")
    return (named + " (" + bits + ")").where(named.notna())


def _distinct(values: pd.Series) -> list[str]:
    return sorted({str(v) for v in values.dropna()})


def _ranked(values: pd.Series, counts: bool = True) -> list[str]:
    """Distinct values, most frequent first (ties by name), as ``value (n)``."""
    tally = values.dropna().astype(str).value_counts()
    ordered = sorted(tally.items(), key=lambda item: (-item[1], item[0]))
    return [f"{value} ({n})" if counts else value for value, n in ordered]

"""TLS findings per peer: fallbacks, plaintext mail, TLS failures, legacy protocol versions."""

from __future__ import annotations

import pandas as pd

from loganalyzer.certs import session_certificate_facts
from loganalyzer.findings.model import Context, Finding, session_span

LEGACY_VERSIONS = ("SSL3", "TLS1.0", "TLS1.1")
#: TLS errors that point at this server's own certificate (no SMTP service, no private key).
LOCAL_ERRORS = ("UnknownCredentials", "NoCredentials", "Cannot load Internal Transport")
SCOPE = ["server", "direction", "connector", "peer"]


def with_peer(sessions: pd.DataFrame) -> pd.DataFrame:
    """Sessions with ``peer``: the remote host name when it is a name, else the remote IP."""
    host = sessions["remote_host"].astype("string")
    named = host.notna() & ~host.str.startswith("[", na=False) & (host.str.len() > 0)
    peer = host.where(named, sessions["remote_ip"].astype("string"))
    return sessions.assign(peer=peer.fillna("unknown"))


def groups(rows: pd.DataFrame, keys: list[str]):
    """``groupby`` on text keys (missing ones as ''); nothing for an empty frame."""
    if rows.empty:
        return []
    return rows.groupby([rows[k].astype("string").fillna("") for k in keys], sort=True)


def _scope(key: tuple) -> dict:
    server, direction, connector, peer = key[:4]
    return {
        "server": server or None,
        "direction": direction or None,
        "connector": connector or None,
        "remote": peer or None,
    }


def _where(key: tuple) -> str:
    server, direction, connector, peer = key[:4]
    side = "from" if direction == "receive" else "to"
    return f"{side} {peer} ({direction} connector '{connector}' on {server or 'unknown server'})"


def tls_fallback(ctx: Context) -> list[Finding]:
    """Plaintext sessions that followed a failed TLS attempt with the same peer."""
    sessions = with_peer(ctx.sessions)
    tls_failed = sessions.loc[sessions["outcome"] == "tls_failed", ["peer", "tls_error"]].assign(
        connector=sessions["connector"].astype("string").fillna("")
    )  # the few failed sessions, looked up once per fallback group
    found = []
    for key, rows in groups(sessions[sessions["fallback"].fillna(False)], SCOPE):
        failed = tls_failed[(tls_failed["peer"] == key[3]) & (tls_failed["connector"] == key[2])]
        errors = failed["tls_error"].dropna()
        error = errors.mode().iloc[0] if len(errors) else None
        found.append(
            Finding(
                kind="tls_fallback",
                title=f"Fell back to plaintext {_where(key)}: {len(rows)} sessions",
                cause=f"TLS failed first ({error})" if error else "TLS failed first",
                details={"tls_error": error, "failed_sessions": len(failed)},
                **_scope(key),
                **session_span(rows),
            )
        )
    return found


def plaintext(ctx: Context) -> list[Finding]:
    """Mail carried without TLS: STARTTLS offered but not used, or not offered at all."""
    sessions = with_peer(ctx.sessions)
    rows = sessions[
        (sessions["outcome"] == "plaintext")
        & (sessions["messages"].fillna(0) > 0)
        & ~sessions["fallback"].fillna(False)
    ]
    found = []
    for key, group in groups(rows, [*SCOPE, "starttls_offered"]):
        offered = key[4] == "True"
        if offered:
            who = "the client never asked" if key[1] == "receive" else "we did not ask"
            what = f"STARTTLS was offered but not used ({who})"
        else:
            what = "the server did not offer STARTTLS"
        found.append(
            Finding(
                kind="plaintext",
                title=f"Mail in plaintext {_where(key)}: {what}",
                cause=what,
                details={"starttls_offered": offered},
                **_scope(key),
                **session_span(group),
            )
        )
    return found


def tls_failure(ctx: Context) -> list[Finding]:
    """Failed TLS by peer and error; a local fault (our certificate) is told apart."""
    sessions = with_peer(ctx.sessions)
    rows = sessions[sessions["outcome"] == "tls_failed"].assign(
        error=lambda d: d["tls_error"].astype("string").fillna("unknown")
    )
    if len(rows):
        valid = session_certificate_facts(rows, ctx.inventory)["local_cert_valid_at_session"]
        rows = rows.assign(expired_=valid.eq(False).fillna(False).astype(bool).to_numpy())
    found = []
    for key, group in groups(rows, [*SCOPE, "error"]):
        error = key[4]
        local = error.startswith(LOCAL_ERRORS)
        expired = bool(group["expired_"].all())
        fault = "local" if local or expired else "remote"
        if local:
            cause = (
                f"{error}: a local fault: our certificate has no SMTP service or no usable "
                "private key"
            )
        elif expired:
            cause = f"{error}: a local fault: the certificate we presented had expired"
        else:
            cause = error
        found.append(
            Finding(
                kind="tls_failure",
                title=f"TLS failed {_where(key)}: {error} ({len(group)} sessions)",
                cause=cause,
                details={"error": error, "fault": fault},
                **_scope(key),
                **session_span(group),
            )
        )
    return found


def legacy_tls(ctx: Context) -> list[Finding]:
    """Peers still negotiating SSL 3, TLS 1.0 or TLS 1.1."""
    sessions = with_peer(ctx.sessions)
    rows = sessions[sessions["tls_version"].isin(LEGACY_VERSIONS).fillna(False)]
    found = []
    for key, group in groups(rows, SCOPE):
        versions = sorted(group["tls_version"].dropna().astype(str).unique())
        found.append(
            Finding(
                kind="legacy_tls",
                title=f"Legacy {', '.join(versions)} {_where(key)}",
                cause=f"the peer negotiates {', '.join(versions)}",
                details={"versions": versions},
                **_scope(key),
                **session_span(group),
            )
        )
    return found


RULES = [tls_fallback, plaintext, tls_failure, legacy_tls]

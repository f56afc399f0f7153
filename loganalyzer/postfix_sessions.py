"""Postfix events (``loganalyzer.sources.postfix``) -> sessions in the session table's columns.

Postfix logs no session ids (docs/postfix-tls-log.md, sections 2.3, 4.4 and 5). Sessions are cut
from each process's stream of events, keyed by (host, syslog tag, pid), in the order read:

- receive (``smtpd``): from ``connect from`` to the next ``connect from`` of the same process
  (one client at a time per process; ``disconnect from`` carries the command counters). Lines
  before the first ``connect from`` of a process (its connect is in an earlier, unread file)
  form a session of their own when they carry a session fact.
- send (``smtp``, ``lmtp``): one delivery attempt to one address. A session ends at a
  non-final ``QUEUEID: <reason>`` line (``Cannot start TLS: handshake failure``: the next MX, or
  a plaintext retry), at a ``connect to ...`` failure (a session of its own), or after the last
  delivery line of a queue id; a line naming another ``host[address]`` starts a new one.
  ``relay=none`` delivery lines (no connection) belong to no session.

``fallback``: receive sessions follow the general rule (``derive.mark_fallback``); a send
session is a fallback when it is plaintext and the session just before it in the same process
went to the same address and port, failed the TLS handshake (``SSL_connect error`` or ``Cannot
start TLS``) and ended without a final status: Postfix retries a message over plaintext that
way only at security level ``may`` once the message has waited ``minimal_backoff_time`` (fresh
mail goes to the next MX and is deferred first), and never at ``encrypt`` or higher.

Everything here runs on columns: grouped by process and session, never a loop per line.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl

from loganalyzer.derive import mark_fallback
from loganalyzer.errors import LogParseError
from loganalyzer.schema import SESSION_SCHEMA
from loganalyzer.sources import ReadStats, rotation_family
from loganalyzer.sources import postfix as pf
from loganalyzer.sources.files import LogInput
from loganalyzer.syslog_time import settle_times

_VERSIONS = {
    "SSLv2": "SSL2", "SSLv3": "SSL3", "TLSv1": "TLS1.0", "TLSv1.1": "TLS1.1",
    "TLSv1.2": "TLS1.2", "TLSv1.3": "TLS1.3",
}  # fmt: skip
_DIGESTS = {32: "md5", 40: "sha1", 64: "sha256"}
#: Send-side reasons that say TLS failed (non-final lines and delivery statuses).
_TLS_REASON = r"^(?:Cannot start TLS|Server certificate not|TLS is required)"
_WRAPPER_SERVICES = ("smtps", "submissions")
_EMPTY: pl.DataFrame = pl.from_arrow(SESSION_SCHEMA.empty_table())  # type: ignore[assignment]


def log_set_sessions(
    events: pl.DataFrame,
    *,
    files: dict[int, str],
    server: str | None,
    fallback_window: timedelta,
) -> pl.DataFrame:
    """Events of one log set (with ``time``, in reading order) -> sessions in SESSION_SCHEMA."""
    events = events.with_row_index("_i").with_columns(
        _host=pl.coalesce("host", "svc", pl.lit("")), _kind=pl.col("kind").cast(pl.Int32)
    )
    # One process's stream of lines, (host, syslog tag, pid), as one integer.
    process = pl.concat_str(["_host", "tag", "pid"], separator="\x00", ignore_nulls=True)
    events = events.with_columns(_stream=process.cast(pl.Categorical).to_physical())
    receive = events.filter(pl.col("prog").is_in(pf.RECEIVE_PROGRAMS))
    send = events.filter(pl.col("prog").is_in(pf.SEND_PROGRAMS))
    parts = [p for p in (_receive(receive), _send(send)) if p.height]
    if not parts:
        return _EMPTY.clear()
    sessions = pl.concat(parts, how="diagonal_relaxed")
    sessions = _common(sessions, files, server)
    received = sessions.filter(pl.col("direction") == "receive")
    if received.height:
        received = mark_fallback(received.drop("fallback"), fallback_window)
    sent = sessions.filter(pl.col("direction") == "send")
    return pl.concat([received.select(sessions.columns), sent], how="vertical_relaxed").select(
        SESSION_SCHEMA.names
    )


def _of(kind: int, column: str = "text") -> pl.Expr:
    """``column`` on the lines of one kind, null elsewhere (aggregate with ``first``/``last``
    and ``ignore_nulls``: masked columns aggregate much faster than filters per group)."""
    return pl.when(pl.col("_kind") == kind).then(pl.col(column))


def _masked(columns: dict[str, pl.Expr]) -> list[pl.Expr]:
    return [expr.alias(name) for name, expr in columns.items()]


def _count(*kinds: int) -> pl.Expr:
    return pl.col("_kind").is_in(kinds).cast(pl.UInt32)


def _identity() -> list[pl.Expr]:
    return [
        pl.col("time").min().alias("start"),
        pl.col("time").max().alias("end"),
        pl.col("file").first(),
        pl.col("line").first(),
        pl.col("_i").first(),
        pl.col("_stream").first(),
        pl.col("_host").first(),
        pl.col("tag").first(),
        pl.col("pid").first(),
        pl.col("host").drop_nulls().first(),
        pl.col("svc").drop_nulls().first(),
        pl.col("name").first(),
        pl.col("epn").drop_nulls().first(),
        pl.col("epa").drop_nulls().first(),
        pl.col("epp").drop_nulls().first(),
    ]


_TLS_FIELDS = ("trust", "proto", "cipher", "bits", "extra", "sni")
_CERT_FIELDS = ("cn", "issuer", "fp", "pkey")


def _tls_and_cert(tls_kind: int, cert_kind: int) -> tuple[dict[str, pl.Expr], list[pl.Expr]]:
    """Masked columns and aggregations of the last TLS summary and peer-certificate line."""
    masked = {f"_m_{c}": _of(tls_kind, c) for c in _TLS_FIELDS}
    masked |= {f"_m_{c}": _of(cert_kind, c) for c in _CERT_FIELDS}
    masked["_n_tls"] = _count(tls_kind)
    aggs = [
        pl.col(f"_m_{c}").last(ignore_nulls=True).alias(c) for c in (*_TLS_FIELDS, *_CERT_FIELDS)
    ]
    return masked, [*aggs, pl.col("_n_tls").sum().alias("n_tls")]


def _counter(name: str, part: int) -> pl.Expr:
    """``name=S`` or ``name=S/T`` from the disconnect counters: S (part 1) or T (part 2)."""
    groups = pl.col("counters").str.extract_groups(rf"(?:^| ){name}=(\d+)(?:/(\d+))?(?: |$)")
    succeeded = groups.struct.field("1").cast(pl.Int32)
    return (
        succeeded if part == 1 else pl.coalesce(groups.struct.field("2").cast(pl.Int32), succeeded)
    )


def _library_reason(column: str) -> pl.Expr:
    """The reason field of ``[pid:]error:HEX:library:function:reason:file:line:``."""
    return pl.col(column).str.extract(r"^(?:\d+:)?error:[0-9A-Fa-f]+:[^:]*:[^:]*:([^:]+)", 1)


def _receive(events: pl.DataFrame) -> pl.DataFrame:
    """smtpd sessions: connect to connect per process (columns before ``_common``)."""
    if events.is_empty():
        return pl.DataFrame()
    kind = pl.col("_kind")
    events = events.sort("_stream", "_i").with_columns(
        _sess=(_stream_starts() | (kind == pf.K_CONNECT)).cast(pl.Int32).cum_sum()
    )
    tls_masked, tls_aggs = _tls_and_cert(pf.K_R_TLS, pf.K_R_PEERCERT)
    discard = _of(pf.K_DISCARD).str.contains(r"(?i)(?:^|[\s,])STARTTLS(?:$|[\s,])")
    masked = {
        **tls_masked,
        "_counters": _of(pf.K_DISCONNECT),
        "_ssl_error": _of(pf.K_SSL_ACCEPT),
        "_library": _of(pf.K_TLS_LIB),
        "_lost": _of(pf.K_LOST),
        "_abort": _of(pf.K_ABORT),
        "_reject": _of(pf.K_REJECT),
        "_helo": _of(pf.K_REJECT, "helo"),
        "_n_connect": _count(pf.K_CONNECT),
        "_n_disconnect": _count(pf.K_DISCONNECT),
        "_n_client": _count(pf.K_CLIENT),
        "_n_setup": _count(pf.K_R_SETUP),
        "_not_offered": discard.fill_null(False),
        "_session_like": _count(
            pf.K_CONNECT,
            pf.K_DISCONNECT,
            pf.K_R_TLS,
            pf.K_SSL_ACCEPT,
            pf.K_LOST,
            pf.K_REJECT,
            pf.K_ABORT,
            pf.K_CLIENT,
        ),
    }
    last = lambda name: pl.col(f"_{name}").last(ignore_nulls=True).alias(name)  # noqa: E731
    first = lambda name: pl.col(f"_{name}").first(ignore_nulls=True).alias(name)  # noqa: E731
    total = lambda name: pl.col(f"_{name}").sum().alias(name)  # noqa: E731
    s = (
        events.with_columns(_masked(masked))
        .group_by("_sess", maintain_order=True)
        .agg(
            *_identity(),
            *tls_aggs,
            *[total(n) for n in ("n_connect", "n_disconnect", "n_client", "n_setup")],
            last("counters"),
            first("ssl_error"),
            first("library"),
            last("lost"),
            last("abort"),
            last("reject"),
            first("helo"),
            pl.col("_not_offered").any().alias("not_offered"),
            (pl.col("_session_like").sum() > 0).alias("session_like"),
        )
    )
    s = _with_queue_ids(s, events.filter(kind == pf.K_CLIENT)).filter(pl.col("session_like"))
    n = pl.col
    counted = n("counters").str.contains(r"(?:^| )commands=")
    st_ok, st_tried = _counter("starttls", 1), _counter("starttls", 2)
    wrapper = _service(n("name")).is_in(_WRAPPER_SERVICES)
    handshake = (n("n_tls") > 0) | n("ssl_error").is_not_null() | (n("n_setup") > 0)
    tls = (
        (n("n_tls") > 0)
        | (st_ok.fill_null(0) >= 1)
        | (wrapper & (_counter("commands", 1).fill_null(0) > 0) & n("ssl_error").is_null())
    )
    failed = (
        n("ssl_error").is_not_null()
        | n("abort").is_not_null()
        | (st_tried.fill_null(0) > st_ok.fill_null(0))
    )
    messages = pl.when(counted).then(_counter("mail", 2).fill_null(0)).otherwise(n("n_client"))
    data_ok = _counter("data", 1).fill_null(0)
    bdat_used = _counter("bdat", 2).is_not_null()
    ended = n("n_disconnect") > 0
    library = _library_reason("library")
    return s.with_columns(
        direction=pl.lit("receive"),
        remote_host=_known(n("epn")),
        helo=n("helo"),
        starttls_offered=pl.when(n("not_offered"))
        .then(False)
        .when(handshake | (st_tried.fill_null(0) >= 1))
        .then(True),
        starttls_requested=pl.when(st_tried.is_not_null())
        .then(st_tried >= 1)
        .when(counted)
        .then(False)
        .when(handshake & ~wrapper)
        .then(True),
        tls=tls,
        tls_error=pl.coalesce(
            n("abort"),
            pl.when(n("ssl_error").is_not_null()).then(
                pl.format("SSL_accept error: {}", pl.coalesce(library, n("ssl_error")))
            ),
        ),
        messages=messages.cast(pl.Int32),
        recipients=pl.when(counted).then(_counter("rcpt", 2).fill_null(0)),
        delivered=pl.when(counted).then(
            data_ok + pl.when(bdat_used).then(n("n_client")).otherwise(0)
        ),
        last_error=pl.coalesce(n("abort"), n("reject")),
        disconnect=pl.coalesce(
            n("lost"), pl.when(_counter("quit", 1).fill_null(0) >= 1).then(pl.lit("QUIT"))
        ),
        outcome=pl.when(failed)
        .then(pl.lit("tls_failed"))
        .when(tls)
        .then(pl.lit("tls"))
        .when(ended | (messages > 0))
        .then(pl.lit("plaintext"))
        .otherwise(pl.lit("incomplete")),
        fallback=pl.lit(False),
    )


def _send(events: pl.DataFrame) -> pl.DataFrame:
    """smtp/lmtp sessions: one delivery attempt to one address (columns before ``_common``)."""
    kind = pl.col("_kind")
    events = events.filter(~((kind == pf.K_DELIVERY) & pl.col("relay").is_not_null()))
    if events.is_empty():
        return pl.DataFrame()
    endpoint_kinds = (
        pf.K_CONNECT_FAIL, pf.K_S_SETUP, pf.K_VERIFY_FAIL, pf.K_SSL_CONNECT, pf.K_S_TLS,
        pf.K_S_PEERCERT, pf.K_DELIVERY,
    )  # fmt: skip
    endpoint = pl.when(kind.is_in(endpoint_kinds)).then(
        pl.when(pl.col("epa").is_not_null())
        .then(pl.format("{}[{}]", pl.col("epn"), pl.col("epa")))
        .otherwise(pl.col("epn"))
    )
    # Sorted by process, then as read: a process's lines are contiguous, so neighbours are
    # compared with plain shifts (guarded at process boundaries) instead of window functions.
    events = events.sort("_stream", "_i").with_columns(_ep=endpoint)
    next_same = (pl.col("_stream").shift(-1) == pl.col("_stream")).fill_null(False)
    same_delivery = (
        next_same
        & (kind.shift(-1) == pf.K_DELIVERY)
        & (pl.col("qid").shift(-1) == pl.col("qid"))
        & (pl.col("_ep").shift(-1) == pl.col("_ep"))
    ).fill_null(False)
    ender = kind.is_in([pf.K_CONNECT_FAIL, pf.K_REASON]) | (
        (kind == pf.K_DELIVERY) & ~same_delivery
    )
    events = events.with_columns(_after_end=_stream_starts() | ender.shift(1).fill_null(True))
    events = events.with_columns(_seg=pl.col("_after_end").cast(pl.Int32).cum_sum())
    ep_seg = pl.when(pl.col("_ep").is_not_null()).then(pl.col("_seg")).forward_fill()
    before = pl.when(ep_seg.shift(1) == pl.col("_seg")).then(pl.col("_ep").forward_fill().shift(1))
    split = pl.col("_ep").is_not_null() & before.is_not_null() & (pl.col("_ep") != before)
    events = events.with_columns(_sess=(pl.col("_after_end") | split).cast(pl.Int32).cum_sum())
    status, text = pl.col("status"), pl.col("text")
    failing = (
        (kind == pf.K_REASON)
        | (kind == pf.K_CONNECT_FAIL)
        | ((kind == pf.K_DELIVERY) & (status != "sent"))
    )
    reason_or_status = (kind == pf.K_REASON) | (kind == pf.K_DELIVERY)
    tls_masked, tls_aggs = _tls_and_cert(pf.K_S_TLS, pf.K_S_PEERCERT)
    attempts = (pf.K_S_SETUP, pf.K_SSL_CONNECT, pf.K_S_TLS, pf.K_VERIFY_FAIL, pf.K_S_PEERCERT)
    masked = {
        **tls_masked,
        "_n": pl.lit(1, pl.UInt32),
        "_n_connect_fail": _count(pf.K_CONNECT_FAIL),
        "_n_delivery": _count(pf.K_DELIVERY),
        "_n_offer": _count(pf.K_OFFER),
        "_ended": _count(pf.K_REASON, pf.K_DELIVERY),
        "_attempted": _count(*attempts),
        "_ssl_error": _of(pf.K_SSL_CONNECT),
        "_library": _of(pf.K_TLS_LIB),
        "_verify": _of(pf.K_VERIFY_FAIL),
        "_tls_reason": pl.when(reason_or_status & text.str.contains(_TLS_REASON)).then(text),
        "_error": pl.when(failing).then(text),
        "_tls_status": _of(pf.K_DELIVERY, "tls_status"),
        "_message": _of(pf.K_DELIVERY, "qid"),
        "_sent": pl.when((kind == pf.K_DELIVERY) & (status == "sent")).then(pl.col("qid")),
        "_qid": pl.col("qid"),
        "_disconnect": pl.when(
            (kind == pf.K_REASON) & text.str.contains(r"^(?:lost connection|conversation) with ")
        ).then(text),
    }
    last = lambda name: pl.col(f"_{name}").last(ignore_nulls=True).alias(name)  # noqa: E731
    first = lambda name: pl.col(f"_{name}").first(ignore_nulls=True).alias(name)  # noqa: E731
    total = lambda name: pl.col(f"_{name}").sum().alias(name)  # noqa: E731
    distinct = lambda name: pl.col(f"_{name}").drop_nulls().n_unique()  # noqa: E731
    s = (
        events.with_columns(_masked(masked))
        .group_by("_sess", maintain_order=True)
        .agg(
            *_identity(),
            *tls_aggs,
            *[total(c) for c in ("n", "n_connect_fail", "n_delivery", "n_offer")],
            (pl.col("_ended").sum() > 0).alias("ended"),
            (pl.col("_attempted").sum() > 0).alias("attempted"),
            first("ssl_error"),
            first("library"),
            last("verify"),
            last("tls_reason"),
            last("error"),
            last("tls_status"),
            distinct("message").alias("messages"),
            pl.col("_n_delivery").sum().alias("recipients"),
            distinct("sent").alias("delivered"),
            first("qid"),
            last("disconnect"),
        )
    )
    s = _with_queue_ids(s, events)
    n = pl.col
    status_tls = n("tls_status")
    status_says_tls = status_tls.is_not_null() & ~status_tls.str.contains(r"^!|\?$|:none$|^none$")
    tls = (n("n_tls") > 0) | status_says_tls
    failed = n("ssl_error").is_not_null() | n("tls_reason").is_not_null()
    library = _library_reason("library")
    not_offered = n("tls_reason").str.contains("was not offered") | status_tls.str.ends_with(
        ":none"
    )
    s = s.with_columns(
        direction=pl.lit("send"),
        remote_host=_known(n("epn")),
        helo=pl.lit(None, pl.String),
        starttls_offered=pl.when(not_offered.fill_null(False))
        .then(False)
        .when(n("attempted") | (n("n_offer") > 0) | status_says_tls)
        .then(True),
        starttls_requested=pl.when(n("attempted")).then(True).when(n("n_offer") > 0).then(False),
        tls=tls,
        tls_error=pl.coalesce(
            pl.when(n("verify").is_not_null()).then(
                pl.format("Certificate validation failure: {}", n("verify"))
            ),
            pl.when(n("ssl_error").is_not_null()).then(
                pl.format("SSL_connect error: {}", pl.coalesce(library, n("ssl_error")))
            ),
            n("tls_reason"),
        ),
        messages=n("messages").cast(pl.Int32),
        recipients=n("recipients").cast(pl.Int32),
        delivered=n("delivered").cast(pl.Int32),
        last_error=pl.coalesce(
            n("error").str.extract(
                r"^host \S+ (?:said|refused to talk to me): (.*?)(?: \(in reply to [^)]*\))?$", 1
            ),
            n("error"),
        ),
        outcome=pl.when((n("n_connect_fail") > 0) & (n("n_connect_fail") == n("n")))
        .then(pl.lit("connect_failed"))
        .when(failed)
        .then(pl.lit("tls_failed"))
        .when(tls)
        .then(pl.lit("tls"))
        .when(n("ended"))
        .then(pl.lit("plaintext"))
        .otherwise(pl.lit("incomplete")),
    )
    return _send_fallback(s)


def _send_fallback(s: pl.DataFrame) -> pl.DataFrame:
    """Postfix's plaintext retry: see the module docstring."""
    n = pl.col
    same_process = (n("_stream").shift(1) == n("_stream")).fill_null(False)
    prior = {
        c: pl.when(same_process).then(n(c).shift(1))
        for c in ("outcome", "ssl_error", "tls_reason", "n_delivery", "epa", "epp", "qid")
    }
    handshake_failed = prior["ssl_error"].is_not_null() | prior["tls_reason"].str.starts_with(
        "Cannot start TLS"
    ).fill_null(False)
    same_message = prior["qid"].is_null() | n("qid").is_null() | (prior["qid"] == n("qid"))
    fallback = (
        (n("outcome") == "plaintext")
        & (prior["outcome"] == "tls_failed")
        & handshake_failed
        & (prior["n_delivery"] == 0)
        & prior["epa"].eq_missing(n("epa"))
        & prior["epp"].eq_missing(n("epp"))
        & same_message
    ).fill_null(False)
    return s.with_columns(
        fallback=fallback,
        starttls_requested=pl.when(fallback).then(False).otherwise(n("starttls_requested")),
    )


def _with_queue_ids(sessions: pl.DataFrame, events: pl.DataFrame) -> pl.DataFrame:
    """``queue_ids``: the distinct queue ids of each session's ``events``, in order."""
    ids = (
        events.filter(pl.col("qid").is_not_null())
        .select("_sess", "qid")
        .unique(maintain_order=True)
        .group_by("_sess", maintain_order=True)
        .agg(queue_ids=pl.col("qid"))
    )
    return sessions.join(ids, on="_sess", how="left", maintain_order="left")


def _stream_starts() -> pl.Expr:
    """True on the first line of each process (events sorted by ``_stream``)."""
    return (pl.col("_stream").shift(1) != pl.col("_stream")).fill_null(True)


def _known(expr: pl.Expr) -> pl.Expr:
    """A logged name or address, null for Postfix's ``unknown`` and for empty text."""
    return pl.when((expr != "unknown") & (expr.str.len_chars() > 0)).then(expr)


def _service(name: pl.Expr) -> pl.Expr:
    """Connector from the syslog name: ``postfix`` -> ``smtp``; ``postfix/submission`` ->
    ``submission``; other names (instances, custom transports) as logged."""
    return (
        pl.when(name == "postfix")
        .then(pl.lit("smtp"))
        .when(name.str.starts_with("postfix/"))
        .then(name.str.strip_prefix("postfix/"))
        .otherwise(name)
    )


def _common(s: pl.DataFrame, files: dict[int, str], server: str | None) -> pl.DataFrame:
    """Columns both directions derive alike: identity, endpoints, TLS and certificate facts."""
    n = pl.col
    start_text = n("start").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
    base_id = pl.format(
        "{}[{}]@{}", n("tag"), n("pid"), pl.coalesce(start_text, pl.format("line{}", n("line")))
    )
    s = s.with_columns(_base_id=base_id).with_columns(
        _k=pl.int_range(pl.len()).over(["_host", "direction", "_base_id"]) + 1
    )
    kex = n("extra").str.extract_groups(r"key-exchange (\S+)(?: \(([^)]*)\))?")
    kex_name, kex_detail = kex.struct.field("1"), kex.struct.field("2")
    kex_bits = kex_detail.str.extract(r"^(\d+) bits$", 1).cast(pl.Int32)
    from_cipher = n("cipher").str.extract(r"^(ECDHE|DHE|EDH)-", 1).replace("EDH", "DHE")
    fingerprint = n("fp").str.replace_all(":", "", literal=True).str.to_uppercase()
    digest = fingerprint.str.len_chars().replace_strict(
        _DIGESTS, default=None, return_dtype=pl.String
    )
    address = _known(n("epa"))
    out = s.with_columns(
        source=pl.lit("postfix"),
        server=pl.lit(server, pl.String) if server is not None else pl.coalesce("host", "svc"),
        role=pl.lit(None, pl.String),
        connector=_service(n("name")),
        session_id=pl.when(n("_k") > 1)
        .then(pl.format("{}#{}", n("_base_id"), n("_k")))
        .otherwise(n("_base_id")),
        start_utc=n("start"),
        end_utc=n("end"),
        local_ip=pl.lit(None, pl.String),
        local_port=pl.lit(None, pl.Int32),
        remote_ip=pl.when(~address.str.contains("/", literal=True)).then(address),
        remote_port=n("epp").cast(pl.Int32),
        tls_version=n("proto").replace(_VERSIONS),
        tls_cipher=n("cipher"),
        tls_cipher_bits=n("bits").cast(pl.Int32),
        tls_mac=pl.lit(None, pl.String),
        tls_mac_bits=pl.lit(None, pl.Int32),
        tls_key_exchange=pl.coalesce(
            pl.when(kex_detail.is_not_null() & kex_bits.is_null())
            .then(pl.format("{} ({})", kex_name, kex_detail))
            .otherwise(kex_name),
            pl.when(n("proto") != "TLSv1.3").then(from_cipher),
        ),
        tls_key_exchange_bits=kex_bits,
        remote_cert_subject=pl.when(n("cn").is_not_null()).then(pl.format("CN={}", n("cn"))),
        remote_cert_issuer=pl.when(n("issuer").str.contains("=", literal=True))
        .then(n("issuer"))
        .when(n("issuer").is_not_null())
        .then(pl.format("CN={}", n("issuer"))),
        remote_cert_thumbprint=pl.when(digest == "sha1").then(fingerprint),
        remote_cert_fingerprint=n("fp"),
        remote_cert_fingerprint_digest=digest,
        remote_cert_pkey_fingerprint=n("pkey"),
        remote_cert_trust=n("trust"),
        queue_ids=pl.when(n("queue_ids").list.len() > 0).then(n("queue_ids")),
        file=n("file").replace_strict(files, return_dtype=pl.String),
    )
    missing = [c for c in SESSION_SCHEMA.names if c not in out.columns]
    out = out.with_columns(pl.lit(None, _EMPTY.schema[c]).alias(c) for c in missing)
    return out.sort("_i").select(SESSION_SCHEMA.names)


def sessions_from_files(
    read: Iterable[tuple[LogInput, pl.DataFrame]],
    stats: ReadStats,
    *,
    server: str | None,
    fallback_window: timedelta,
    year: int | None,
    zone: ZoneInfo | None,
    strict: bool,
) -> list[pl.DataFrame]:
    """Events of mail logs, given oldest first per folder -> sessions, one frame per folder.

    Each folder is one log set: its files are one stream of lines (rotated files in order), so
    sessions crossing a rotation are one row and a New Year between files is seen. Lines with an
    impossible date are counted as malformed.
    """
    by_folder: dict[str, list[pl.DataFrame]] = {}
    files: dict[int, str] = {}
    years: dict[int, int] = {}
    families: dict[int, int] = {}
    family_ids: dict[tuple[str, str], int] = {}
    for log, events in read:
        file_id = len(files)
        files[file_id] = log.name
        years[file_id] = _modification_year(log)
        family = rotation_family(log)
        families[file_id] = family_ids.setdefault(family, len(family_ids))
        by_folder.setdefault(log.folder_key, []).append(
            events.with_columns(file=pl.lit(file_id, pl.UInt32))
        )
    out = []
    for parts in by_folder.values():
        events = settle_times(
            _without_copies(pl.concat(parts, how="vertical_relaxed"), families),
            years,
            year=year,
            zone=zone,
            file_families=families,
        )
        for file_id, line in events.filter("bad_time").select("file", "line").iter_rows():
            if strict:
                raise LogParseError(files[file_id], line, "impossible date")
            stats.add_malformed(f"{files[file_id]}:{line}: impossible date")
        sessions = log_set_sessions(
            events.filter(~pl.col("bad_time")),
            files=files,
            server=server,
            fallback_window=fallback_window,
        )
        if sessions.height:
            out.append(sessions)
    return out


def _without_copies(events: pl.DataFrame, families: dict[int, int]) -> pl.DataFrame:
    """Drop lines that another log family of the folder holds too (Debian's rsyslog writes
    mail lines to ``mail.log`` and again to ``syslog``, ``mail.warn``, ``mail.err``): a line is
    kept from the first family (in reading order) that has it; copies inside one family stay.
    """
    family = pl.col("file").replace_strict(families, default=0, return_dtype=pl.Int64)
    events = events.with_columns(_family=family)
    if events.get_column("_family").n_unique() < 2:
        return events.drop("_family")
    facts = [c for c in pf.EVENT_SCHEMA if c != "line"]
    events = events.with_columns(_copy=pl.struct(facts).hash())
    first = events.group_by("_copy").agg(_first_family=pl.col("_family").min())
    return (
        events.join(first, on="_copy", how="left", maintain_order="left")
        .filter(pl.col("_family") == pl.col("_first_family"))
        .drop("_family", "_copy", "_first_family")
    )


def _modification_year(log: LogInput) -> int:
    """The local year in which a file (or an archive member) was last written."""
    try:
        if log.member is not None:
            with zipfile.ZipFile(log.disk_path) as archive:
                return archive.getinfo(log.member).date_time[0]
        return datetime.fromtimestamp(log.disk_path.stat().st_mtime).year
    except (OSError, KeyError, ValueError, OverflowError, zipfile.BadZipFile):
        return datetime.now().year

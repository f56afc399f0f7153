"""From merged session partials (see aggregate.py) to the session table's columns.

Everything here runs once per session, never per log row; text is parsed on distinct strings
only (a handful of TLS negotiation contexts and certificates per corpus). Cross-session rules
(the failed connect logged under another id, and the plaintext fallback) run last.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from datetime import UTC, datetime, timedelta

import polars as pl
import pyarrow as pa

from loganalyzer import tls
from loganalyzer.schema import SESSION_SCHEMA

#: A failed connect logged under another id counts for an attempt that ended this long before.
CONNECT_FAILURE_WINDOW = timedelta(seconds=60)


def log_set_sessions(
    wide: pl.DataFrame,
    *,
    direction: str,
    path_server: str | None,
    role: str | None,
    files: pl.DataFrame,
    fallback_window: timedelta,
    server: str | None,
) -> pl.DataFrame:
    """Merged partials of one log set -> its sessions in SESSION_SCHEMA's columns (unsorted).

    Sessions, failed-connect pairs and fallback peers never span log sets, so each log set is
    derived on its own and memory holds one log set's intermediate columns at a time.
    ``files``: ``file, file_name`` per file id.
    """
    wide = wide.with_columns(
        direction=pl.lit(direction),
        path_server=pl.lit(path_server, pl.String),
        role=pl.lit(role, pl.String),
        file_name=pl.col("file").replace_strict(
            files["file"], files["file_name"], return_dtype=pl.String
        ),
    )
    wide = merge_failed_connects(wide)
    columns = [c for c in SESSION_SCHEMA.names if c != "fallback"]
    sessions = _derive_columns(wide, server).filter(~pl.col("_drop"))
    sessions = _with_other_formats_columns(sessions).select(columns)
    del wide
    return mark_fallback(sessions, fallback_window).select(SESSION_SCHEMA.names)


def _with_other_formats_columns(sessions: pl.DataFrame) -> pl.DataFrame:
    """Null columns for facts other formats log and Exchange does not (Postfix fingerprints)."""
    missing = [name for name in SESSION_SCHEMA.names if name not in sessions.columns]
    return sessions.with_columns(
        pl.lit(None, _polars_type(SESSION_SCHEMA.field(name).type)).alias(name) for name in missing
    )


def _polars_type(arrow: pa.DataType) -> pl.DataType:
    """The Polars type of a session-table column (without ``pl.from_arrow``, whose first call
    imports pandas: seconds of worker start-up)."""
    if pa.types.is_string(arrow) or pa.types.is_large_string(arrow):
        return pl.String()
    if pa.types.is_list(arrow) or pa.types.is_large_list(arrow):
        return pl.List(_polars_type(arrow.value_type))
    if pa.types.is_boolean(arrow):
        return pl.Boolean()
    if pa.types.is_timestamp(arrow):
        return pl.Datetime(arrow.unit, arrow.tz)
    if pa.types.is_integer(arrow):
        return {8: pl.Int8, 16: pl.Int16, 32: pl.Int32, 64: pl.Int64}[arrow.bit_width]()
    raise TypeError(f"no Polars type for {arrow}")


#: The session table's order (ties keep the order of the parts: a fixed log-set order).
SESSION_ORDER = ["start_utc", "server", "session_id"]


def _order(keys: pl.DataFrame) -> pl.Series:
    """Row order by SESSION_ORDER (stable, nulls last) of a frame holding those columns."""
    order = pl.arg_sort_by(SESSION_ORDER, nulls_last=True, maintain_order=True)
    return keys.select(order).to_series()


def to_session_table(parts: list[pl.DataFrame], threads: int = 1) -> pa.Table:
    """Sessions of all log sets -> one Arrow table ordered by start, server, session id.

    Each column is put in order and handed to Arrow on its own, and released once converted,
    so the table exists about once in memory, not three times; ``threads`` columns at a time
    (Polars and Arrow release the GIL). ``parts`` is emptied on the way.
    """
    sessions = pl.concat(parts, how="vertical_relaxed", rechunk=False)
    parts.clear()
    order = _order(sessions)
    columns = {column.name: column for column in sessions.get_columns()}
    del sessions

    def convert(field: pa.Field) -> pa.Array:
        column = columns.pop(field.name).gather(order)
        return column.to_arrow(compat_level=pl.CompatLevel.oldest()).cast(field.type)

    if threads > 1:
        with ThreadPoolExecutor(threads) as pool:
            arrays = list(pool.map(convert, SESSION_SCHEMA))
    else:
        arrays = [convert(field) for field in SESSION_SCHEMA]
    return pa.table(arrays, schema=SESSION_SCHEMA)


def _text(name: str) -> pl.Expr:
    """A partial's text column (Categorical there, to keep memory down) as a string."""
    return pl.col(name).cast(pl.String)


def merge_failed_connects(wide: pl.DataFrame) -> pl.DataFrame:
    """Fold a ``Failed to connect`` row logged under another id into its connection attempt.

    The attempt id carries only ``Set Session Permissions``/``attempting to connect`` rows; the
    failure id carries only the failure row, for the same remote endpoint, within 60 seconds
    after the attempt. The merged row keeps the attempt's id, start, file and line.
    """
    send = pl.col("direction") == "send"
    attempt = send & (pl.col("n") == pl.col("n_preconnect"))
    failure = send & (pl.col("n") == pl.col("n_connect_fail"))
    wide = wide.with_columns(_drop=pl.lit(False))
    candidates = wide.filter(attempt | failure).with_columns(_text("rep"))
    if candidates.is_empty():
        return wide
    attempts = candidates.filter(attempt).select("logset", "rep", a_sid="sid", a_end="end")
    failures = candidates.filter(failure).select("logset", "rep", f_sid="sid", f_start="start")
    pairs = (
        failures.drop_nulls(["rep", "f_start"])
        .sort("f_start")
        .join_asof(
            attempts.drop_nulls(["rep", "a_end"]).sort("a_end"),
            left_on="f_start",
            right_on="a_end",
            by=["logset", "rep"],
            strategy="backward",
            tolerance=CONNECT_FAILURE_WINDOW,
            check_sortedness=False,
        )
        .drop_nulls("a_sid")
        .unique(subset=["logset", "a_sid"], keep="first", maintain_order=True)
    )
    if pairs.is_empty():
        return wide
    # The failure row carries the facts; the attempt gives identity, start and first row.
    identity = ["start", "line", "file", "first_seq", "chunk"]
    attempt_rows = candidates.join(
        pairs.select("logset", sid="a_sid", f_sid="f_sid"), on=["logset", "sid"]
    )
    merged = (
        candidates.join(pairs.select("logset", sid="f_sid"), on=["logset", "sid"])
        .drop([*identity])
        .rename({"sid": "f_sid"})
        .join(
            attempt_rows.select(
                "logset", "f_sid", *identity, sid="sid", a_n="n", a_pre="n_preconnect"
            ),
            on=["logset", "f_sid"],
        )
        .with_columns(n=pl.col("n") + pl.col("a_n"), n_preconnect=pl.col("a_pre"))
    )
    gone = pl.concat([pairs.select("logset", sid="a_sid"), pairs.select("logset", sid="f_sid")])
    drop = pl.struct("logset", "sid").is_in(
        gone.select(pl.struct("logset", "sid")).to_series().implode()
    )
    wide = wide.with_columns(_drop=drop)
    merged = merged.with_columns(pl.col("rep").cast(wide.schema["rep"]))
    return pl.concat([wide, merged.select(wide.columns)], how="vertical_relaxed", rechunk=False)


def _endpoint(col: str, part: int) -> pl.Expr:
    r"""Address (part 0) or port (1) of ``host:port`` / ``[v6]:port``; the whole text when
    there is no port. (Same result as ``^\[?(.*?)\]?:(\d+)$``, whose capture groups cost
    five times more.)"""
    text = _text(col)
    port = text.str.extract(r":(\d+)$", 1)
    if part == 1:
        return port.cast(pl.Int32, strict=False)
    address = text.str.replace(r":\d+$", "").str.strip_prefix("[").str.strip_suffix("]")
    return pl.when(port.is_not_null()).then(address).otherwise(text)


def _argument(expr: pl.Expr) -> pl.Expr:
    """What follows the first word (``EHLO mail.example.net`` -> ``mail.example.net``)."""
    rest = expr.str.strip_chars().str.splitn(" ", 2).struct.field("field_1").str.strip_chars()
    return pl.when(rest.str.len_chars() > 0).then(rest)


def _second_token(expr: pl.Expr) -> pl.Expr:
    """The second word (``220 mx.example.net ESMTP ...`` -> ``mx.example.net``)."""
    token = expr.str.strip_chars().str.split(" ").list.get(1, null_on_oob=True)
    return pl.when(token.str.len_chars() > 0).then(token)


def _hex16(values: pl.Series) -> pl.Series:
    """Session ids back to their 16 upper-case hex digits."""
    return pl.Series([f"{v:016X}" for v in values.to_list()], dtype=pl.String)


def _derive_columns(w: pl.DataFrame, server: str | None) -> pl.DataFrame:
    """From the wide per-session facts to the contract's columns (before fallback)."""
    n = pl.col
    receive = n("direction") == "receive"
    cid = _text("cid")
    tls_ok = n("n_tls_ok") > 0
    requested = n("n_starttls") > 0
    ended = n("n_disconnect") > 0
    tls_failure = (
        (n("n_tls_fail") > 0)
        | (n("n_tls_verdict") > 0)
        | (n("n_tls_reply") > 0)
        | (requested & ~tls_ok & ended)
    )
    outcome = (
        pl.when((n("n_connect_fail") > 0) & (n("n_connect") == 0))
        .then(pl.lit("connect_failed"))
        .when(tls_failure)
        .then(pl.lit("tls_failed"))
        .when(tls_ok)
        .then(pl.lit("tls"))
        .when((n("n_mail") > 0) | ended)
        .then(pl.lit("plaintext"))
        .otherwise(pl.lit("incomplete"))
    )
    server_expr = (
        pl.lit(server)
        if server is not None
        else pl.coalesce(
            pl.when(receive).then(cid.str.extract(r"^([^\\]+)\\", 1)), n("path_server")
        )
    )
    connector = pl.when(receive & cid.str.contains("\\", literal=True)).then(
        cid.str.splitn("\\", 2).struct.field("field_1")
    )
    after_tls = n("result_seq")
    helo_cmd = (
        pl.when(tls_ok & (n("ehlo_first_seq") > after_tls))
        .then(_text("ehlo_first"))
        .when(tls_ok & (n("ehlo_last_seq") > after_tls))
        .then(_text("ehlo_last"))
        .otherwise(_text("ehlo_first"))
    )
    out = w.with_columns(
        source=pl.lit("exchange"),
        server=server_expr,
        connector=pl.coalesce(connector, cid),
        session_id=_hex16(w.get_column("sid")),
        start_utc=n("start"),
        end_utc=n("end"),
        local_ip=_endpoint("lep", 0),
        local_port=_endpoint("lep", 1),
        remote_ip=_endpoint("rep", 0),
        remote_port=_endpoint("rep", 1),
        helo=_argument(helo_cmd),
        banner_host=_second_token(_text("banner")),
        starttls_offered=n("n_offer") > 0,
        starttls_requested=requested,
        tls=tls_ok,
        tls_context=_text("tls_ok"),
        tls_error_raw=pl.coalesce(_text("tls_fail"), _text("tls_verdict"), _text("tls_reply")),
        messages=n("n_mail"),
        recipients=n("n_rcpt"),
        delivered=n("n_queued"),
        last_error=pl.when(n("error_info_seq") >= n("error_reply_seq").fill_null(-1))
        .then(_text("error_info"))
        .otherwise(pl.coalesce(_text("error_reply"), _text("error_info"))),
        disconnect=_text("disconnect"),
        outcome=outcome,
        file=n("file_name"),
        recipient_domains=pl.when(n("rcpt_domains").list.len() > 0).then(
            n("rcpt_domains").list.sort()
        ),
    ).with_columns(remote_host=pl.when(receive).then(n("helo")).otherwise(n("banner_host")))
    out = _add_negotiation(out)
    return _add_certificates(out)


def _map_distinct(
    df: pl.DataFrame, column: str, func: Callable[[str], dict], schema: dict
) -> pl.DataFrame:
    """Apply ``func`` to each distinct non-null value of ``column``; add its result columns."""
    values = df.get_column(column).drop_nulls().unique().to_list()
    table = pl.DataFrame([func(v) for v in values], schema=schema)
    return _attach(df, df.get_column(column), values, table)


def _attach(df: pl.DataFrame, keys: pl.Series, distinct: list, table: pl.DataFrame) -> pl.DataFrame:
    """Add ``table``'s columns (row i belongs to ``distinct[i]``) to ``df`` by its ``keys``.

    A gather per new column: unlike a join, it does not copy the rest of the (wide) frame.
    """
    index = keys.replace_strict(
        {key: i for i, key in enumerate(distinct)}, default=None, return_dtype=pl.UInt32
    )
    return df.with_columns(table.get_column(c).gather(index) for c in table.columns)


_NEGOTIATION_SCHEMA = {
    "tls_version": pl.String,
    "tls_cipher": pl.String,
    "tls_cipher_bits": pl.Int32,
    "tls_mac": pl.String,
    "tls_mac_bits": pl.Int32,
    "tls_key_exchange": pl.String,
    "tls_key_exchange_bits": pl.Int32,
}


def _add_negotiation(df: pl.DataFrame) -> pl.DataFrame:
    def negotiation(text: str) -> dict:
        values = asdict(tls.parse_negotiation(text))
        return {f"tls_{k}" if k != "version" else "tls_version": v for k, v in values.items()}

    df = _map_distinct(df, "tls_context", negotiation, _NEGOTIATION_SCHEMA)
    return _map_distinct(
        df,
        "tls_error_raw",
        lambda t: {"tls_error": tls.tls_error_text(t)},
        {"tls_error": pl.String},
    )


def _add_certificates(df: pl.DataFrame) -> pl.DataFrame:
    """local_cert_* / remote_cert_* from the certificate fields of each side.

    Per field the side's value before the TLS result row wins, then the one after it (the send
    side's ``Received certificate`` thumbprint). Field rows whose label row is missing are given
    to the local side, except on a send session whose handshake succeeded (where the certificate
    logged around the handshake is the server's). Each distinct certificate is parsed once.
    """
    orphan_is_remote = (pl.col("direction") == "send") & pl.col("tls")
    fields = ("subject", "issuer", "serial", "thumbprint", "sans", "oneline")
    for side in ("local", "remote"):
        orphan_here = orphan_is_remote if side == "remote" else ~orphan_is_remote
        values = {
            f: pl.coalesce(
                pl.col(f"{side}_{f}_pre"),
                pl.col(f"{side}_{f}_post"),
                pl.when(orphan_here).then(pl.col(f"unknown_{f}_pre")),
                pl.when(orphan_here).then(pl.col(f"unknown_{f}_post")),
            )
            for f in fields
        }
        present = pl.any_horizontal(v.is_not_null() for v in values.values())
        certs = df.select(
            cert=pl.struct(**values), key=pl.when(present).then(pl.struct(**values).hash())
        )
        distinct = certs.drop_nulls("key").unique("key")
        parsed = pl.DataFrame(
            [_certificate_facts(cert) for cert in distinct.get_column("cert").to_list()],
            schema=_CERT_SCHEMA,
        ).rename({f"_c_{k}": f"{side}_cert_{k}" for k in _CERT_KEYS})
        df = _attach(df, certs.get_column("key"), distinct.get_column("key").to_list(), parsed)
    return df


_CERT_KEYS = (
    "subject", "issuer", "serial", "thumbprint", "not_before_utc", "not_after_utc", "sans",
)  # fmt: skip
_CERT_SCHEMA = {
    f"_c_{k}": (
        pl.List(pl.String)
        if k == "sans"
        else pl.Datetime("us", "UTC")
        if k.endswith("_utc")
        else pl.String
    )
    for k in _CERT_KEYS
}


def _certificate_facts(cert: dict) -> dict:
    """Final certificate columns from raw fields (the one-row form parsed when present)."""
    facts: dict[str, object] = {k: v for k, v in cert.items() if k != "oneline" and v}
    facts["sans"] = tls.split_sans(cert.get("sans"))
    if cert.get("oneline"):
        parsed = tls.parse_oneline_certificate(cert["oneline"])
        if parsed is not None:
            facts.update({k: v for k, v in asdict(parsed).items() if v is not None})
    return {
        "_c_subject": tls.repair_mojibake(facts.get("subject")),
        "_c_issuer": tls.repair_mojibake(facts.get("issuer")),
        "_c_serial": facts.get("serial"),
        "_c_thumbprint": tls.normalise_thumbprint(facts.get("thumbprint")),
        "_c_not_before_utc": _iso(facts.get("not_before")),
        "_c_not_after_utc": _iso(facts.get("not_after")),
        "_c_sans": list(facts["sans"]) if facts.get("sans") else None,
    }


def _iso(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def mark_fallback(df: pl.DataFrame, window: timedelta) -> pl.DataFrame:
    """``fallback``: a plaintext session that starts within ``window`` after the end of a
    tls_failed session with the same peer, with no successful TLS session with it in between.

    Peer = same server, direction and connector, and the same remote IP or remote host name.
    """
    scope = ["server", "direction", "connector"]
    keyed = df.with_row_index("_row").select(
        "_row", "outcome", "start_utc", "end_utc", "remote_ip", "remote_host",
        *[pl.col(c).fill_null("") for c in scope],
    )  # fmt: skip
    plain = keyed.filter(pl.col("outcome") == "plaintext")
    failed = keyed.filter(pl.col("outcome") == "tls_failed")
    good = keyed.filter(pl.col("outcome") == "tls")
    flagged = [pl.Series("_row", [], dtype=pl.UInt32)]
    if not plain.is_empty() and not failed.is_empty():
        for peer in ("remote_ip", "remote_host"):
            by = [*scope, peer]
            p = plain.select("_row", *by, "start_utc").drop_nulls([peer]).sort("start_utc")
            f = failed.select(*by, f_end="end_utc").drop_nulls([peer, "f_end"]).sort("f_end")
            g = good.select(*by, g_start="start_utc").drop_nulls([peer]).sort("g_start")
            m = p.join_asof(
                f, left_on="start_utc", right_on="f_end", by=by, strategy="backward",
                tolerance=window, check_sortedness=False,
            ).join_asof(
                g, left_on="start_utc", right_on="g_start", by=by, strategy="backward",
                check_sortedness=False,
            )  # fmt: skip
            hit = m.filter(
                pl.col("f_end").is_not_null()
                & (pl.col("g_start").is_null() | (pl.col("g_start") < pl.col("f_end")))
            )
            flagged.append(hit.get_column("_row"))
    rows = pl.concat(flagged).unique().implode()
    return df.with_row_index("_row").with_columns(fallback=pl.col("_row").is_in(rows)).drop("_row")

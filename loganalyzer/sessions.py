"""Build the session table (DESIGN.md contract 1) from classified row batches.

How it stays fast and flat in memory:

1. Each batch (one chunk of one file) is reduced to *partials*: one ``base`` row per session
   (first/last time, row count, first row's file and line, endpoints) and one ``facts`` row per
   (session, row kind) with the count and the first/last value by sequence number.
2. Partials from all batches are merged with the same rules (sum counts, keep the value with the
   lowest/highest sequence number), so a session that crosses chunks or files becomes one row.
3. The merged facts are pivoted to one row per session and the text is parsed on *distinct*
   strings only (TLS negotiation contexts, certificate rows).
4. Cross-session rules run last: the multi-id failed connect and the plaintext fallback.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import asdict
from datetime import datetime, timedelta

import pandas as pd
import polars as pl
import pyarrow as pa

from loganalyzer import tls
from loganalyzer.errors import NoInputError
from loganalyzer.schema import SESSION_SCHEMA, empty_sessions, to_pandas
from loganalyzer.sources import Batch, LogSet, ReadStats, iter_batches
from loganalyzer.sources import exchange as ex

DEFAULT_FALLBACK_WINDOW = timedelta(minutes=15)
#: A failed connect logged under another id counts for an attempt that ended this long before.
CONNECT_FAILURE_WINDOW = timedelta(seconds=60)

_FACT_VALUES = ("n", "seq_first", "seq_last", "v_first", "v_last")
_ISO_FORMAT = "%Y-%m-%dT%H:%M:%S%.fZ"


class _Accumulator:
    """Collects partials per batch and merges them once all batches are read."""

    def __init__(self) -> None:
        self.bases: list[pl.DataFrame] = []
        self.facts: list[pl.DataFrame] = []
        self.logsets: dict[LogSet, int] = {}
        self.files: dict[str, int] = {}

    def add(self, batch: Batch) -> None:
        logset = self.logsets.setdefault(batch.logset, len(self.logsets))
        file_id = self.files.setdefault(batch.log.name, len(self.files))
        chunk = len(self.bases)
        rows = batch.rows
        ids = {
            "logset": pl.lit(logset, pl.UInt32),
            "chunk": pl.lit(chunk, pl.UInt32),
        }
        base = rows.group_by("sid").agg(
            n=pl.len(),
            start=pl.col("dt").min(),
            end=pl.col("dt").max(),
            first_seq=pl.col("seq").min(),
            line=pl.col("line").first(),
            cid=pl.col("cid").first(),
            lep=pl.col("lep").drop_nulls().first(),
            rep=pl.col("rep").drop_nulls().first(),
        )
        self.bases.append(base.with_columns(**ids, file=pl.lit(file_id, pl.UInt32)))
        facts = (
            rows.filter(pl.col("kind") > 0)
            .group_by("sid", "kind")
            .agg(
                n=pl.len(),
                seq_first=pl.col("seq").first(),
                seq_last=pl.col("seq").last(),
                v_first=pl.col("v").first(),
                v_last=pl.col("v").last(),
            )
        )
        self.facts.append(facts.with_columns(**ids))

    def merged(self) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Base and facts with one row per session (and per kind), across all batches."""
        base = pl.concat(self.bases, how="vertical")
        facts = pl.concat(self.facts, how="vertical")
        self.bases, self.facts = [], []
        order = ["first_seq", "chunk"]
        base = _merge_duplicates(
            base,
            ["logset", "sid"],
            [
                pl.col("n").sum(),
                pl.col("start").min(),
                pl.col("end").max(),
                pl.col("first_seq").min(),
                pl.col("chunk").min(),
                *[pl.col(c).sort_by(order).first() for c in ("line", "file", "cid")],
                *[pl.col(c).sort_by(order).drop_nulls().first() for c in ("lep", "rep")],
            ],
        )
        facts = _merge_duplicates(
            facts,
            ["logset", "sid", "kind"],
            [
                pl.col("n").sum(),
                pl.col("seq_first").min(),
                pl.col("seq_last").max(),
                pl.col("chunk").min(),
                pl.col("v_first").sort_by(["seq_first", "chunk"]).first(),
                pl.col("v_last").sort_by(["seq_last", "chunk"]).last(),
            ],
        )
        return base, facts


def _merge_duplicates(df: pl.DataFrame, key: list[str], aggs: list[pl.Expr]) -> pl.DataFrame:
    """Group only the rows whose key occurs more than once (sessions crossing batches)."""
    dup = pl.struct(key).is_duplicated()
    if not df.select(dup.any()).item():
        return df
    merged = df.filter(dup).group_by(key).agg(aggs).select(df.columns)
    return pl.concat([df.filter(~dup), merged], how="vertical")


def read_sessions(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    server: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    fallback_window: timedelta = DEFAULT_FALLBACK_WINDOW,
    strict: bool = False,
    on_file: Callable | None = None,
    chunk_bytes: int | None = None,
) -> pd.DataFrame:
    """Read protocol logs and return one row per SMTP session (DESIGN.md contract 1).

    :param paths: files, folders (recursive), globs, ``.gz`` files, ``.zip`` archives.
    :param server: server name for logs whose path and connector-id name none.
    :param since, until: keep sessions overlapping this window (timezone-aware datetimes).
    :param fallback_window: how soon after a failed TLS session a plaintext one is a fallback.
    :param strict: raise LogParseError at the first malformed row or skipped input.
    :returns: pandas DataFrame with Arrow dtypes, ordered by start_utc, server, session_id.
        ``df.attrs["read_stats"]`` holds files, rows, malformed rows and skipped inputs.
    :raises NoInputError: when no readable protocol log was found.

    .. code-block:: python

        df = loganalyzer.read_sessions("collected-logs/")
        df[df.fallback][["server", "remote_ip", "start_utc"]]
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    stats = ReadStats()
    acc = _Accumulator()
    for batch in iter_batches(
        paths, stats, server=server, strict=strict, on_file=on_file, chunk_bytes=chunk_bytes
    ):
        acc.add(batch)
    if stats.files == 0:
        raise NoInputError(_nothing_readable(stats))
    if not acc.bases:
        df = empty_sessions()
    else:
        table = build_sessions(acc, fallback_window=fallback_window, server=server)
        df = to_pandas(table)
        df = filter_window(df, since, until)
    stats.sessions = len(df)
    df.attrs["read_stats"] = stats.as_dict()
    return df


def _nothing_readable(stats: ReadStats) -> str:
    if not stats.skipped:
        return "no input given"
    lines = [f"{s.name}: {s.reason}" for s in stats.skipped[:5]]
    more = len(stats.skipped) - len(lines)
    return "nothing readable: " + "; ".join(lines) + (f" (and {more} more)" if more > 0 else "")


def filter_window(df: pd.DataFrame, since: datetime | None, until: datetime | None) -> pd.DataFrame:
    """Keep sessions that overlap [since, until]."""
    keep = pd.Series(True, index=df.index)
    if since is not None:
        keep &= df["end_utc"] >= pd.Timestamp(since)
    if until is not None:
        keep &= df["start_utc"] <= pd.Timestamp(until)
    out = df[keep.astype(bool)].reset_index(drop=True)
    out.attrs = df.attrs
    return out


# --- building the table -----------------------------------------------------------------------


def build_sessions(
    acc: _Accumulator, *, fallback_window: timedelta, server: str | None
) -> pa.Table:
    """Merge partials and derive every column; returns an Arrow table in SESSION_SCHEMA."""
    base, facts = acc.merged()
    wide = _pivot_facts(base, facts)
    logsets = pl.DataFrame(
        [{"logset": i, **asdict(ls)} for ls, i in acc.logsets.items()],
        schema={
            "logset": pl.UInt32,
            "server": pl.String,
            "role": pl.String,
            "direction": pl.String,
            "folder": pl.String,
        },
    ).rename({"server": "path_server"})
    files = pl.DataFrame(
        {"file": list(acc.files.values()), "file_name": list(acc.files.keys())},
        schema={"file": pl.UInt32, "file_name": pl.String},
    )
    wide = wide.join(logsets, on="logset", how="left").join(files, on="file", how="left")
    wide = _merge_failed_connects(wide)
    sessions = _derive_columns(wide, server)
    sessions = _mark_fallback(sessions, fallback_window)
    sessions = sessions.sort(
        ["start_utc", "server", "session_id"], nulls_last=True, maintain_order=True
    )
    table = sessions.select(SESSION_SCHEMA.names).to_arrow()
    return table.cast(SESSION_SCHEMA)


def _col(kind: int, value: str) -> str:
    return f"{value}_{kind}"


def _pivot_facts(base: pl.DataFrame, facts: pl.DataFrame) -> pl.DataFrame:
    """One row per session with ``{n,seq_first,seq_last,v_first,v_last}_{kind}`` columns."""
    wide = facts.drop("chunk").pivot(
        on="kind", index=["logset", "sid"], values=list(_FACT_VALUES), separator="_"
    )
    wide = base.join(wide, on=["logset", "sid"], how="left")
    missing = []
    for kind in _all_kinds():
        for value in _FACT_VALUES:
            name = _col(kind, value)
            if name not in wide.columns:
                dtype = pl.String if value.startswith("v_") else pl.Int64
                missing.append(pl.lit(None, dtype).alias(name))
    if missing:
        wide = wide.with_columns(missing)
    counts = [c for c in wide.columns if c.startswith("n_")]
    return wide.with_columns(pl.col(counts).fill_null(0))


def _all_kinds() -> list[int]:
    kinds = list(range(1, ex.K_CERT_LABEL + 1))
    for side in (ex.SIDE_LOCAL, ex.SIDE_REMOTE, ex.SIDE_UNKNOWN):
        for field in range(len(ex.CERT_FIELDS)):
            kinds += [ex.cert_kind(side, field, 0), ex.cert_kind(side, field, 1)]
    return kinds


def _n(kind: int) -> pl.Expr:
    return pl.col(_col(kind, "n"))


def _v(kind: int, which: str = "last") -> pl.Expr:
    return pl.col(_col(kind, f"v_{which}"))


def _merge_failed_connects(wide: pl.DataFrame) -> pl.DataFrame:
    """Fold a ``Failed to connect`` row logged under another id into its connection attempt.

    The attempt id carries only ``Set Session Permissions``/``attempting to connect`` rows; the
    failure id carries only the failure row, for the same remote endpoint, within 60 seconds.
    The merged row keeps the attempt's id, start, file and line.
    """
    send = pl.col("direction") == "send"
    attempt = send & (pl.col("n") == _n(ex.K_PRECONNECT)) & (_n(ex.K_CONNECT_FAIL) == 0)
    failure = (
        send & (_n(ex.K_CONNECT_FAIL) > 0) & (_n(ex.K_PRECONNECT) == 0) & (_n(ex.K_CONNECT) == 0)
    )
    attempts = wide.filter(attempt)
    failures = wide.filter(failure)
    if attempts.is_empty() or failures.is_empty():
        return wide
    ts = pl.col("end").str.to_datetime(_ISO_FORMAT, time_zone="UTC", strict=False)
    a = attempts.select("logset", "rep", a_sid="sid", a_end=ts).sort("a_end")
    f = failures.select(
        "logset",
        "rep",
        f_sid="sid",
        f_start=pl.col("start").str.to_datetime(_ISO_FORMAT, time_zone="UTC", strict=False),
    ).sort("f_start")
    pairs = (
        f.drop_nulls(["rep", "f_start"])
        .join_asof(
            a.drop_nulls(["rep", "a_end"]),
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
    fail_rows = wide.join(
        pairs.select("logset", sid="f_sid", a_sid="a_sid"), on=["logset", "sid"], how="inner"
    )
    fact_cols = [c for c in wide.columns if c.split("_")[-1].isdigit()]
    donor = fail_rows.select(
        "logset",
        sid="a_sid",
        f_end="end",
        f_n="n",
        f_lep="lep",
        **{f"f_{c}": c for c in fact_cols},
    )
    merged = wide.join(donor, on=["logset", "sid"], how="left")
    has = pl.col("f_n").is_not_null()
    updates = [
        pl.when(has).then(pl.col("f_end")).otherwise(pl.col("end")).alias("end"),
        (pl.col("n") + pl.col("f_n").fill_null(0)).alias("n"),
    ]
    for c in fact_cols:
        if c.startswith("n_"):
            updates.append((pl.col(c) + pl.col(f"f_{c}").fill_null(0)).alias(c))
        else:
            updates.append(pl.coalesce(pl.col(c), pl.col(f"f_{c}")).alias(c))
    merged = merged.with_columns(updates).drop([c for c in merged.columns if c.startswith("f_")])
    drop = pairs.select("logset", sid="f_sid").with_columns(_drop=pl.lit(True))
    merged = merged.join(drop, on=["logset", "sid"], how="left")
    return merged.filter(pl.col("_drop").is_null()).drop("_drop")


def _endpoint(col: str, part: int) -> pl.Expr:
    groups = pl.col(col).str.extract_groups(r"^\[?(.*?)\]?:(\d+)$")
    if part == 0:
        return pl.coalesce(groups.struct.field("1"), pl.col(col))
    return groups.struct.field("2").cast(pl.Int32, strict=False)


def _second_token(expr: pl.Expr) -> pl.Expr:
    token = expr.str.strip_chars().str.split(" ").list.get(1, null_on_oob=True)
    return pl.when(token.str.len_chars() > 0).then(token)


def _to_ts(expr: pl.Expr) -> pl.Expr:
    return expr.str.to_datetime(_ISO_FORMAT, time_zone="UTC", strict=False)


def _derive_columns(w: pl.DataFrame, server: str | None) -> pl.DataFrame:
    """From the wide per-session facts to the contract's columns (before fallback)."""
    receive = pl.col("direction") == "receive"
    cid = pl.col("cid")
    cid_server = cid.str.extract(r"^([^\\]+)\\", 1)
    connector = pl.when(receive & cid.str.contains("\\", literal=True)).then(
        cid.str.splitn("\\", 2).struct.field("field_1")
    )
    helo_cmd = pl.coalesce(_v(ex.K_EHLO_AFTER_TLS, "first"), _v(ex.K_EHLO, "first"))
    tls_ok = _n(ex.K_TLS_OK) > 0
    requested = _n(ex.K_STARTTLS) > 0
    ended = _n(ex.K_DISCONNECT) > 0
    tls_failure = (
        (_n(ex.K_TLS_FAIL) > 0)
        | (_n(ex.K_TLS_VERDICT) > 0)
        | (_n(ex.K_TLS_REPLY) > 0)
        | (requested & ~tls_ok & ended)
    )
    connected = _n(ex.K_CONNECT) > 0
    outcome = (
        pl.when((_n(ex.K_CONNECT_FAIL) > 0) & ~connected)
        .then(pl.lit("connect_failed"))
        .when(tls_failure)
        .then(pl.lit("tls_failed"))
        .when(tls_ok)
        .then(pl.lit("tls"))
        .when((_n(ex.K_MAIL) > 0) | ended)
        .then(pl.lit("plaintext"))
        .otherwise(pl.lit("incomplete"))
    )
    error_seqs = [pl.col(_col(k, "seq_last")) for k in ex.ERROR_KINDS]
    last_seq = pl.max_horizontal(error_seqs)
    last_error = pl.coalesce(
        [pl.when(pl.col(_col(k, "seq_last")) == last_seq).then(_v(k)) for k in ex.ERROR_KINDS]
    )
    tls_error_raw = pl.coalesce(_v(ex.K_TLS_FAIL), _v(ex.K_TLS_VERDICT), _v(ex.K_TLS_REPLY))
    server_expr = (
        pl.lit(server)
        if server is not None
        else pl.coalesce(pl.when(receive).then(cid_server), pl.col("path_server"))
    )
    out = w.with_columns(
        source=pl.lit("exchange"),
        server=server_expr,
        connector=pl.coalesce(connector, cid),
        session_id=pl.col("sid"),
        start_utc=_to_ts(pl.col("start")),
        end_utc=_to_ts(pl.col("end")),
        local_ip=_endpoint("lep", 0),
        local_port=_endpoint("lep", 1),
        remote_ip=_endpoint("rep", 0),
        remote_port=_endpoint("rep", 1),
        helo=_second_token(helo_cmd),
        banner_host=_second_token(_v(ex.K_BANNER, "first")),
        starttls_offered=_n(ex.K_OFFER) > 0,
        starttls_requested=requested,
        tls=tls_ok,
        tls_context=_v(ex.K_TLS_OK),
        tls_error_raw=tls_error_raw,
        messages=_n(ex.K_MAIL),
        recipients=_n(ex.K_RCPT),
        delivered=_n(ex.K_QUEUED),
        last_error=last_error,
        disconnect=_v(ex.K_DISCONNECT),
        outcome=outcome,
        file=pl.col("file_name"),
    ).with_columns(
        remote_host=pl.when(receive).then(pl.col("helo")).otherwise(pl.col("banner_host"))
    )
    out = _add_negotiation(out)
    out = _add_certificates(out)
    return out


def _map_distinct(
    df: pl.DataFrame, column: str, func: Callable[[str], dict], schema: dict
) -> pl.DataFrame:
    """Apply ``func`` to each distinct non-null value of ``column`` and join the results back."""
    values = df.get_column(column).drop_nulls().unique().to_list()
    table = pl.DataFrame(
        [{column: v, **func(v)} for v in values], schema={column: pl.String, **schema}
    )
    return df.join(table, on=column, how="left")


def _add_negotiation(df: pl.DataFrame) -> pl.DataFrame:
    def negotiation(text: str) -> dict:
        n = tls.parse_negotiation(text)
        return {
            "tls_version": n.version,
            "tls_cipher": n.cipher,
            "tls_cipher_bits": n.cipher_bits,
            "tls_mac": n.mac,
            "tls_mac_bits": n.mac_bits,
            "tls_key_exchange": n.key_exchange,
            "tls_key_exchange_bits": n.key_exchange_bits,
        }

    schema = {
        "tls_version": pl.String,
        "tls_cipher": pl.String,
        "tls_cipher_bits": pl.Int32,
        "tls_mac": pl.String,
        "tls_mac_bits": pl.Int32,
        "tls_key_exchange": pl.String,
        "tls_key_exchange_bits": pl.Int32,
    }
    df = _map_distinct(df, "tls_context", negotiation, schema)
    df = _map_distinct(
        df,
        "tls_error_raw",
        lambda t: {"tls_error": tls.tls_error_text(t)},
        {"tls_error": pl.String},
    )
    return df


_CERT_SCHEMA = {
    "subject": pl.String,
    "issuer": pl.String,
    "serial": pl.String,
    "thumbprint": pl.String,
    "not_before": pl.String,
    "not_after": pl.String,
    "sans": pl.List(pl.String),
}


def _add_certificates(df: pl.DataFrame) -> pl.DataFrame:
    """local_cert_* / remote_cert_* from the three certificate row forms.

    Per side the block before the TLS result row wins, else the one after it (the send side's
    ``Received certificate`` thumbprint). Field rows whose label row is missing are given to the
    local side, except on a send session whose handshake succeeded (where only the server's
    certificate follows the handshake).
    """
    fields = ex.CERT_FIELDS
    send_ok = (pl.col("direction") == "send") & pl.col("tls")
    unknown_side = pl.when(send_ok).then(pl.lit(ex.SIDE_REMOTE)).otherwise(pl.lit(ex.SIDE_LOCAL))
    for side, prefix in ((ex.SIDE_LOCAL, "local_cert"), (ex.SIDE_REMOTE, "remote_cert")):
        exprs = {}
        for f, name in enumerate(fields):
            own = pl.coalesce(_v(ex.cert_kind(side, f, 0)), _v(ex.cert_kind(side, f, 1)))
            orphan = pl.coalesce(
                _v(ex.cert_kind(ex.SIDE_UNKNOWN, f, 0)), _v(ex.cert_kind(ex.SIDE_UNKNOWN, f, 1))
            )
            exprs[f"_{prefix}_{name}"] = pl.coalesce(
                own, pl.when(unknown_side == side).then(orphan)
            )
        df = df.with_columns(**exprs)
        df = _map_distinct(
            df,
            f"_{prefix}_oneline",
            lambda text, p=prefix: _oneline_dict(text, p),
            {f"_{prefix}_o_{k}": v for k, v in _CERT_SCHEMA.items()},
        )
        df = df.with_columns(
            **{
                f"{prefix}_{k}": pl.coalesce(pl.col(f"_{prefix}_o_{k}"), _multirow(df, prefix, k))
                for k in _CERT_SCHEMA
            }
        )
        df = _clean_certificate(df, prefix)
    return df


def _oneline_dict(text: str, prefix: str) -> dict:
    facts = tls.parse_oneline_certificate(text)
    if facts is None:
        return {}
    return {
        f"_{prefix}_o_{k}": (list(v) if k == "sans" and v else v) for k, v in asdict(facts).items()
    }


def _multirow(df: pl.DataFrame, prefix: str, key: str) -> pl.Expr:
    if key in ("subject", "issuer", "serial", "thumbprint"):
        return pl.col(f"_{prefix}_{key}")
    if key == "sans":
        return (
            pl.col(f"_{prefix}_sans")
            .str.split(";")
            .list.eval(pl.element().str.strip_chars().filter(pl.element().str.len_chars() > 0))
        )
    return pl.lit(None, pl.String)


def _clean_certificate(df: pl.DataFrame, prefix: str) -> pl.DataFrame:
    """Normalise thumbprints, repair mojibake in DNs, parse validity dates, drop temporaries."""
    for key in ("subject", "issuer"):
        df = _map_distinct(
            df,
            f"{prefix}_{key}",
            lambda t, k=key: {f"_{prefix}_{k}_fixed": tls.repair_mojibake(t)},
            {f"_{prefix}_{key}_fixed": pl.String},
        ).with_columns(pl.col(f"_{prefix}_{key}_fixed").alias(f"{prefix}_{key}"))
    thumb = pl.col(f"{prefix}_thumbprint").str.strip_chars()
    is_hex = thumb.str.contains(r"^[0-9A-Fa-f]+$")
    df = df.with_columns(
        pl.when(is_hex)
        .then(thumb.str.to_uppercase())
        .otherwise(thumb)
        .alias(f"{prefix}_thumbprint"),
        _to_ts(pl.col(f"{prefix}_not_before")).alias(f"{prefix}_not_before_utc"),
        _to_ts(pl.col(f"{prefix}_not_after")).alias(f"{prefix}_not_after_utc"),
    )
    return df.drop([c for c in df.columns if c.startswith(f"_{prefix}")])


def _mark_fallback(df: pl.DataFrame, window: timedelta) -> pl.DataFrame:
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

"""The per-row view: every protocol-log row, normalised, with the raw fields kept.

For notebooks and for evidence ("show me the rows of this session"). It holds every row in
memory, so use it on the files of interest, not on a whole 30-day corpus.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import pandas as pd
import polars as pl

from loganalyzer.errors import NoInputError
from loganalyzer.schema import to_pandas
from loganalyzer.sources import ReadStats, iter_batches
from loganalyzer.sources import exchange as ex

_KIND_NAMES = {
    ex.K_DISCONNECT: "disconnect",
    ex.K_EHLO: "ehlo",
    ex.K_EHLO_AFTER_TLS: "ehlo",
    ex.K_STARTTLS: "starttls",
    ex.K_MAIL: "mail_from",
    ex.K_RCPT: "rcpt_to",
    ex.K_BANNER: "banner",
    ex.K_OFFER: "starttls_offered",
    ex.K_QUEUED: "message_accepted",
    ex.K_ERROR_REPLY: "error_reply",
    ex.K_TLS_REPLY: "tls_error_reply",
    ex.K_TLS_OK: "tls_negotiated",
    ex.K_TLS_FAIL: "tls_failed",
    ex.K_TLS_VERDICT: "tls_verdict",
    ex.K_CONNECT_FAIL: "connect_failed",
    ex.K_FAIL_INFO: "failure_info",
    ex.K_PRECONNECT: "connecting",
    ex.K_CONNECT: "connect",
    ex.K_CERT_LABEL: "certificate_label",
}
_SIDES = {ex.SIDE_LOCAL: "local", ex.SIDE_REMOTE: "remote", ex.SIDE_UNKNOWN: "unlabelled"}


def kind_name(kind: int) -> str | None:
    """Readable name of a row kind (``local_certificate_subject``, ``tls_negotiated``...)."""
    if kind == 0:
        return None
    if kind < ex.CERT_BASE:
        return _KIND_NAMES.get(kind)
    offset = kind - ex.CERT_BASE
    side, field = divmod(offset, 16)
    if side not in _SIDES or field // 2 >= len(ex.CERT_FIELDS):
        return None
    return f"{_SIDES[side]}_certificate_{ex.CERT_FIELDS[field // 2]}"


_KIND_TABLE = {k: kind_name(k) for k in range(256)}


def read_events(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    server: str | None = None,
    strict: bool = False,
) -> pd.DataFrame:
    """One row per protocol-log row.

    Columns: ``source, server, role, direction, file, line, date_time`` (UTC timestamp),
    ``session_id, sequence_number, connector_id, local_endpoint, remote_endpoint, event, data,
    context`` (the raw fields) and ``kind`` (what the row says, e.g. ``tls_negotiated``,
    ``remote_certificate_thumbprint``; null for rows without a TLS/session fact).
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    stats = ReadStats()
    frames = []
    for batch in iter_batches(paths, stats, server=server, strict=strict):
        ls = batch.logset
        frames.append(
            batch.rows.select(
                source=pl.lit("exchange"),
                server=pl.lit(ls.server, pl.String),
                role=pl.lit(ls.role, pl.String),
                direction=pl.lit(ls.direction),
                file=pl.lit(batch.log.name),
                line=pl.col("line"),
                date_time=pl.col("dt").str.to_datetime(
                    "%Y-%m-%dT%H:%M:%S%.fZ", time_zone="UTC", strict=False
                ),
                session_id=pl.col("sid"),
                sequence_number=pl.col("seq"),
                connector_id=pl.col("cid"),
                local_endpoint=pl.col("lep"),
                remote_endpoint=pl.col("rep"),
                event=pl.col("ev"),
                data=pl.col("data"),
                context=pl.col("ctx"),
                kind=pl.col("kind").replace_strict(_KIND_TABLE, return_dtype=pl.String),
            )
        )
    if stats.files == 0:
        raise NoInputError("nothing readable in the given paths")
    df = to_pandas(pl.concat(frames).to_arrow()) if frames else pd.DataFrame()
    df.attrs["read_stats"] = stats.as_dict()
    return df

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

#: Readable names of the row kinds (``kind`` column).
KIND_NAMES = {
    ex.K_CONNECT: "connect",
    ex.K_DISCONNECT: "disconnect",
    ex.K_PRECONNECT: "connecting",
    ex.K_CONNECT_FAIL: "connect_failed",
    ex.K_BANNER: "banner",
    ex.K_EHLO: "ehlo",
    ex.K_OFFER: "starttls_offered",
    ex.K_STARTTLS: "starttls",
    ex.K_MAIL: "mail_from",
    ex.K_RCPT: "rcpt_to",
    ex.K_QUEUED: "message_accepted",
    ex.K_ERROR_REPLY: "error_reply",
    ex.K_TLS_REPLY: "tls_error_reply",
    ex.K_TLS_OK: "tls_negotiated",
    ex.K_TLS_FAIL: "tls_failed",
    ex.K_TLS_VERDICT: "tls_verdict",
    ex.K_FAIL_INFO: "failure_info",
    ex.K_LABEL_LOCAL: "local_certificate",
    ex.K_LABEL_REMOTE: "remote_certificate",
    ex.K_CERT_SUBJECT: "certificate_subject",
    ex.K_CERT_ISSUER: "certificate_issuer",
    ex.K_CERT_SERIAL: "certificate_serial",
    ex.K_CERT_THUMBPRINT: "certificate_thumbprint",
    ex.K_CERT_SANS: "certificate_sans",
    ex.K_ONELINE_LOCAL: "local_certificate_oneline",
    ex.K_ONELINE_REMOTE: "remote_certificate_oneline",
}


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
    ``certificate_thumbprint``; null for rows without a session fact).
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    stats = ReadStats()
    frames = []
    for batch in iter_batches(paths, stats, server=server, strict=strict):
        ls = batch.logset
        kinds = batch.facts.select("row", "kind")
        rows = batch.rows.with_row_index("row").join(kinds, on="row", how="left")
        frames.append(
            rows.select(
                source=pl.lit("exchange"),
                server=pl.lit(ls.server, pl.String),
                role=pl.lit(ls.role, pl.String),
                direction=pl.lit(ls.direction),
                file=pl.lit(batch.log.name),
                line=pl.col("line"),
                date_time=pl.col("dt").str.to_datetime(
                    "%Y-%m-%dT%H:%M:%S%.fZ", time_zone="UTC", strict=False
                ),
                session_id=pl.col("sid").map_elements(
                    lambda sid: f"{sid:016X}", return_dtype=pl.String
                ),
                sequence_number=pl.col("seq"),
                connector_id=pl.col("cid"),
                local_endpoint=pl.col("lep"),
                remote_endpoint=pl.col("rep"),
                event=pl.col("ev"),
                data=pl.col("data"),
                context=pl.col("ctx"),
                kind=pl.col("kind").replace_strict(
                    KIND_NAMES, default=None, return_dtype=pl.String
                ),
            )
        )
    if stats.files == 0:
        raise NoInputError("nothing readable in the given paths")
    df = to_pandas(pl.concat(frames).to_arrow()) if frames else pd.DataFrame()
    df.attrs["read_stats"] = stats.as_dict()
    return df

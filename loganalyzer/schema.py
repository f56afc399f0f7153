"""The session table's columns (DESIGN.md contract 1) as an Arrow schema, and the pandas form.

Timestamps are timezone-aware UTC (microseconds); bit strengths, ports and counts are integers;
missing facts are null. ``docs/columns.md`` describes every column.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

_TS = pa.timestamp("us", tz="UTC")


def _cert(prefix: str) -> list[tuple[str, pa.DataType]]:
    return [
        (f"{prefix}_thumbprint", pa.string()),
        (f"{prefix}_subject", pa.string()),
        (f"{prefix}_issuer", pa.string()),
        (f"{prefix}_serial", pa.string()),
        (f"{prefix}_not_before_utc", _TS),
        (f"{prefix}_not_after_utc", _TS),
        (f"{prefix}_sans", pa.list_(pa.string())),
    ]


SESSION_SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("server", pa.string()),
        ("role", pa.string()),
        ("direction", pa.string()),
        ("connector", pa.string()),
        ("session_id", pa.string()),
        ("start_utc", _TS),
        ("end_utc", _TS),
        ("local_ip", pa.string()),
        ("local_port", pa.int32()),
        ("remote_ip", pa.string()),
        ("remote_port", pa.int32()),
        ("helo", pa.string()),
        ("remote_host", pa.string()),
        ("starttls_offered", pa.bool_()),
        ("starttls_requested", pa.bool_()),
        ("tls", pa.bool_()),
        ("tls_version", pa.string()),
        ("tls_cipher", pa.string()),
        ("tls_cipher_bits", pa.int32()),
        ("tls_mac", pa.string()),
        ("tls_mac_bits", pa.int32()),
        ("tls_key_exchange", pa.string()),
        ("tls_key_exchange_bits", pa.int32()),
        ("tls_error", pa.string()),
        *_cert("local_cert"),
        *_cert("remote_cert"),
        ("messages", pa.int32()),
        ("recipients", pa.int32()),
        ("delivered", pa.int32()),
        ("last_error", pa.string()),
        ("disconnect", pa.string()),
        ("outcome", pa.string()),
        ("fallback", pa.bool_()),
        ("file", pa.string()),
        ("line", pa.int64()),
    ]
)

SESSION_COLUMNS = tuple(SESSION_SCHEMA.names)
OUTCOMES = ("tls", "plaintext", "tls_failed", "connect_failed", "incomplete")


def to_pandas(table: pa.Table) -> pd.DataFrame:
    """Arrow table -> pandas DataFrame with Arrow-backed dtypes (no copies into NumPy objects)."""
    return table.to_pandas(types_mapper=pd.ArrowDtype)


def empty_sessions() -> pd.DataFrame:
    """A session table with no rows and the full schema."""
    return to_pandas(SESSION_SCHEMA.empty_table())

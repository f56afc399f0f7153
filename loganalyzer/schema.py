"""The session table's columns (DESIGN.md contract 1) as an Arrow schema, and the pandas form.

Timestamps are timezone-aware UTC (microseconds); bit strengths, ports and counts are integers;
text is ``large_string`` (what Polars hands over, so no copy is needed); missing facts are null.
``docs/columns.md`` describes every column.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa

if TYPE_CHECKING:  # pandas is imported where a frame is made (workers never need it)
    import pandas as pd

_TS = pa.timestamp("us", tz="UTC")


def _cert(prefix: str) -> list[tuple[str, pa.DataType]]:
    return [
        (f"{prefix}_thumbprint", pa.large_string()),
        (f"{prefix}_subject", pa.large_string()),
        (f"{prefix}_issuer", pa.large_string()),
        (f"{prefix}_serial", pa.large_string()),
        (f"{prefix}_not_before_utc", _TS),
        (f"{prefix}_not_after_utc", _TS),
        (f"{prefix}_sans", pa.large_list(pa.large_string())),
    ]


SESSION_SCHEMA = pa.schema(
    [
        ("source", pa.large_string()),
        ("server", pa.large_string()),
        ("role", pa.large_string()),
        ("direction", pa.large_string()),
        ("connector", pa.large_string()),
        ("session_id", pa.large_string()),
        ("start_utc", _TS),
        ("end_utc", _TS),
        ("local_ip", pa.large_string()),
        ("local_port", pa.int32()),
        ("remote_ip", pa.large_string()),
        ("remote_port", pa.int32()),
        ("helo", pa.large_string()),
        ("remote_host", pa.large_string()),
        ("starttls_offered", pa.bool_()),
        ("starttls_requested", pa.bool_()),
        ("tls", pa.bool_()),
        ("tls_version", pa.large_string()),
        ("tls_cipher", pa.large_string()),
        ("tls_cipher_bits", pa.int32()),
        ("tls_mac", pa.large_string()),
        ("tls_mac_bits", pa.int32()),
        ("tls_key_exchange", pa.large_string()),
        ("tls_key_exchange_bits", pa.int32()),
        ("tls_error", pa.large_string()),
        *_cert("local_cert"),
        *_cert("remote_cert"),
        ("messages", pa.int32()),
        ("recipients", pa.int32()),
        ("delivered", pa.int32()),
        ("last_error", pa.large_string()),
        ("disconnect", pa.large_string()),
        ("outcome", pa.large_string()),
        ("fallback", pa.bool_()),
        ("file", pa.large_string()),
        ("line", pa.int64()),
        ("recipient_domains", pa.large_list(pa.large_string())),
        # Facts Postfix logs and Exchange does not (null for Exchange sessions):
        ("remote_cert_fingerprint", pa.large_string()),
        ("remote_cert_fingerprint_digest", pa.large_string()),
        ("remote_cert_pkey_fingerprint", pa.large_string()),
        ("remote_cert_trust", pa.large_string()),
        ("queue_ids", pa.large_list(pa.large_string())),
    ]
)

SESSION_COLUMNS = tuple(SESSION_SCHEMA.names)

_TEXT_LIST = pa.large_list(pa.large_string())
#: Facts of one certificate, shared by the inventory records and the certificate table.
CERTIFICATE_FACTS = [
    ("thumbprint", pa.large_string()),
    ("subject", pa.large_string()),
    ("issuer", pa.large_string()),
    ("serial", pa.large_string()),
    ("not_before_utc", _TS),
    ("not_after_utc", _TS),
    ("sans", _TEXT_LIST),
    ("services", _TEXT_LIST),
    ("self_signed", pa.bool_()),
    ("key_type", pa.large_string()),
    ("key_bits", pa.int32()),
    ("signature_hash", pa.large_string()),
]

#: ``read_inventory``: one row per certificate record (a file, an export row).
INVENTORY_SCHEMA = pa.schema(
    [
        *CERTIFICATE_FACTS,
        ("has_private_key", pa.bool_()),
        ("status", pa.large_string()),
        ("friendly_name", pa.large_string()),
        ("server", pa.large_string()),
        ("source", pa.large_string()),
        ("problems", _TEXT_LIST),
    ]
)

#: ``certificates()`` / ``loganalyzer certs``: one row per certificate.
CERTIFICATE_TABLE_SCHEMA = pa.schema(
    [
        *CERTIFICATE_FACTS,
        ("sources", _TEXT_LIST),
        ("in_inventory", pa.bool_()),
        ("has_private_key", pa.bool_()),
        ("connectors", _TEXT_LIST),
        ("selected_by", _TEXT_LIST),
        ("sessions", pa.int64()),
        ("first_seen_utc", _TS),
        ("last_seen_utc", _TS),
        ("directions", _TEXT_LIST),
        ("peers", _TEXT_LIST),
        ("status", pa.large_string()),
        ("problems", _TEXT_LIST),
    ]
)
OUTCOMES = ("tls", "plaintext", "tls_failed", "connect_failed", "incomplete")


def to_pandas(table: pa.Table) -> pd.DataFrame:
    """Arrow table -> pandas DataFrame with Arrow-backed dtypes (no copies into NumPy objects)."""
    import pandas as pd

    return table.to_pandas(types_mapper=pd.ArrowDtype)


def empty_sessions() -> pd.DataFrame:
    """A session table with no rows and the full schema."""
    return to_pandas(SESSION_SCHEMA.empty_table())

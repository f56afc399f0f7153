"""What the inventory readers produce: one record per certificate and per connector.

Every reader (certificate files, Get-ExchangeCertificate exports, connector exports) returns
these records; the join (certs.py) turns them into DataFrames. Fields a source does not carry
stay None; nothing is invented.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime

#: Exchange's AllowedServices flags, by bit and by the letter of the short string (IP.WS..).
SERVICE_FLAGS = {
    1: "IMAP",
    2: "POP",
    4: "UM",
    8: "IIS",
    16: "SMTP",
    32: "Federation",
    64: "UMCallRouter",
}
SERVICE_LETTERS = {
    "I": "IMAP",
    "P": "POP",
    "U": "UM",
    "W": "IIS",
    "S": "SMTP",
    "F": "Federation",
    "C": "UMCallRouter",
}


@dataclass
class CertificateRecord:
    """One certificate as one source describes it.

    - ``thumbprint``: 40 upper-case hex digits (SHA-1 of the DER bytes), or the text as the
      source wrote it when that is not hex (then ``problems`` says so).
    - ``subject``/``issuer``: as the source writes them (Windows order, ``S=`` for state, in
      Exchange exports; RFC 4514 order when computed from the certificate bytes).
    - ``serial``: upper-case hex as the source writes it (compare as integers).
    - times are timezone-aware UTC; ``sans`` are DNS names (and IP addresses as text).
    - ``services``: Exchange services (``SMTP``, ``IIS``, ...), None when the source does not say.
    - ``source``: ``file`` or ``file:line`` the record came from (evidence).
    - ``der``: the certificate bytes when the source had them (used to recompute facts; never
      written to any output).
    """

    source: str
    thumbprint: str | None = None
    subject: str | None = None
    issuer: str | None = None
    serial: str | None = None
    not_before_utc: datetime | None = None
    not_after_utc: datetime | None = None
    sans: tuple[str, ...] = ()
    services: tuple[str, ...] | None = None
    has_private_key: bool | None = None
    self_signed: bool | None = None
    key_type: str | None = None
    key_bits: int | None = None
    signature_hash: str | None = None
    status: str | None = None
    friendly_name: str | None = None
    server: str | None = None
    der: bytes | None = field(default=None, repr=False)
    problems: tuple[str, ...] = ()


@dataclass
class ConnectorRecord:
    """One connector (or the Auth configuration) as an export describes it.

    - ``kind``: ``send``, ``receive``, ``inbound`` / ``outbound`` (Exchange Online), ``authconfig``.
    - ``tls_certificate_name``: the raw ``<I>issuer<S>subject`` text; ``tls_cert_issuer`` and
      ``tls_cert_subject`` are its two halves.
    - ``protocol_logging_level``: ``None`` (the text) or ``Verbose``; with ``None`` the connector
      writes no protocol log, so no evidence can exist.
    - ``auth_thumbprints``: for ``authconfig``, ``{"current": ..., "next": ..., "previous": ...}``.
    """

    source: str
    kind: str
    name: str
    server: str | None = None
    fqdn: str | None = None
    tls_certificate_name: str | None = None
    tls_cert_issuer: str | None = None
    tls_cert_subject: str | None = None
    require_tls: bool | None = None
    tls_auth_level: str | None = None
    tls_domain: str | None = None
    ignore_starttls: bool | None = None
    address_spaces: tuple[str, ...] = ()
    smart_hosts: tuple[str, ...] = ()
    cloud_services_mail_enabled: bool | None = None
    auth_mechanism: str | None = None
    bindings: tuple[str, ...] = ()
    enabled: bool | None = None
    tls_sender_certificate_name: str | None = None
    protocol_logging_level: str | None = None
    auth_thumbprints: dict[str, str] = field(default_factory=dict)
    problems: tuple[str, ...] = ()


def records_from_frame(frame, cls):
    """Rows of a ``read_inventory``/``read_connectors`` DataFrame back as records of ``cls``
    (lists become tuples, missing values None, timestamps ``datetime``); other columns are
    ignored, so a filtered or extended frame works too."""
    import pandas as pd

    names = {f.name for f in fields(cls)}
    out = []
    for row in frame.to_dict("records"):
        kwargs = {}
        for key, value in row.items():
            if key not in names:
                continue
            if isinstance(value, pd.Timestamp):
                value = value.to_pydatetime()
            elif isinstance(value, (list, tuple)) or hasattr(value, "tolist"):
                value = tuple(value.tolist() if hasattr(value, "tolist") else value)
            elif not isinstance(value, dict) and pd.isna(value):
                value = None
            kwargs[key] = value
        out.append(cls(**kwargs))
    return out


def as_records(value, cls) -> list:
    """Records of ``cls`` from a list of records, a reader DataFrame, or None (empty)."""
    if value is None:
        return []
    if hasattr(value, "to_dict") and hasattr(value, "columns"):
        return records_from_frame(value, cls)
    return list(value)

"""Certificate inventory and connector settings: find the files, recognise them, read them.

``read_inventory(paths)`` reads certificate files (PEM, DER, PKCS#7, PKCS#12) and
``Get-ExchangeCertificate`` exports; ``read_connectors(paths)`` reads connector and Auth
configuration exports. Formats are recognised by content. A file that cannot be read gives one
line naming it (in ``df.attrs["read_stats"]``) and the rest is still read.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import tzinfo
from pathlib import Path

import pandas as pd
import pyarrow as pa

from loganalyzer.errors import InventoryError
from loganalyzer.inventory import connectors as connector_exports
from loganalyzer.inventory import exchange_certs
from loganalyzer.inventory import x509 as certificate_files
from loganalyzer.inventory.records import CertificateRecord, ConnectorRecord
from loganalyzer.output import escape_terminal
from loganalyzer.schema import INVENTORY_SCHEMA
from loganalyzer.sources.files import NOTES, READ_ERRORS, Skipped, discover

__all__ = ["InventoryRead", "read_connectors", "read_inventory", "read_pfx_password"]

#: Inventory files larger than this are not certificate exports (refused, reported).
MAX_INVENTORY_FILE = 64 * 1024 * 1024


@dataclass
class InventoryRead:
    """Records read and files skipped (with the reason)."""

    certificates: list[CertificateRecord] = field(default_factory=list)
    connectors: list[ConnectorRecord] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def read_pfx_password(password_file: str | os.PathLike[str] | None = None) -> bytes | None:
    """The PKCS#12 password: from a file (first line) or LOGANALYZER_PFX_PASSWORD; else None.

    Never take it from the command line (it would show in process lists and shell history).
    """
    if password_file is not None:
        text = Path(password_file).read_text("utf-8").splitlines()
        return text[0].encode("utf-8") if text else b""
    value = os.environ.get(certificate_files.PFX_PASSWORD_ENV)
    return value.encode("utf-8") if value is not None else None


def read_files(
    paths: Iterable[str | os.PathLike[str]],
    *,
    pfx_password: bytes | None = None,
    date_format: str | None = None,
    tz: tzinfo | None = None,
) -> InventoryRead:
    """Read every inventory and connector file under ``paths``."""
    found = discover(paths, ignore=NOTES)
    result = InventoryRead(skipped=list(found.skipped))
    for log in found.inputs:
        try:
            with log.open() as stream:
                data = stream.read(MAX_INVENTORY_FILE + 1)
        except READ_ERRORS as err:
            result.skipped.append(Skipped(log.name, f"cannot read: {err}"))
            continue
        if len(data) > MAX_INVENTORY_FILE:
            result.skipped.append(Skipped(log.name, "too large for an inventory export"))
            continue
        try:
            _read_one(data, log.name, result, pfx_password, date_format, tz)
        except InventoryError as err:
            result.skipped.append(Skipped(log.name, str(err).removeprefix(f"{log.name}: ")))
    return result


def _read_one(data, name, result, pfx_password, date_format, tz) -> None:
    if certificate_files.sniff(data) is not None:
        result.certificates += certificate_files.read_certificate_file(data, name, pfx_password)
        return
    text = _decode(data)
    if exchange_certs.sniff(text):
        result.certificates += exchange_certs.read_exchange_certificates(
            text, name, date_format=date_format, tz=tz
        )
    elif connector_exports.sniff(text):
        result.connectors += connector_exports.read_connectors(text, name)
    else:
        raise InventoryError(f"{name}: not a certificate file or an Exchange export")


def _decode(data: bytes) -> str:
    """Exports come as UTF-8 (with or without BOM) or UTF-16 (Windows PowerShell 5.1 '>')."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", "replace")
    return data.decode("utf-8-sig", "replace")


def certificate_frame(records: list[CertificateRecord]) -> pd.DataFrame:
    """Certificate records as a DataFrame (Arrow dtypes; the DER bytes are left out)."""
    rows = []
    for record in records:
        row = asdict(record)
        row.pop("der")
        row["sans"] = list(row["sans"])
        row["services"] = list(row["services"]) if row["services"] is not None else None
        row["problems"] = list(row["problems"])
        rows.append(row)
    table = pa.Table.from_pylist(rows, schema=INVENTORY_SCHEMA)
    return table.to_pandas(types_mapper=pd.ArrowDtype)


def read_inventory(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    pfx_password: bytes | None = None,
    date_format: str | None = None,
    tz: tzinfo | None = None,
) -> pd.DataFrame:
    """One row per certificate record in the inventory files (a certificate may appear in
    several sources; ``certificates()`` merges them). Skipped files are listed in
    ``df.attrs["read_stats"]["skipped"]``."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    read = read_files(paths, pfx_password=pfx_password, date_format=date_format, tz=tz)
    df = certificate_frame(read.certificates)
    df.attrs["read_stats"] = _stats(read)
    return df


def read_connectors(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
) -> pd.DataFrame:
    """One row per connector (and Auth configuration) in the export files."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    read = read_files(paths)
    rows = []
    for record in read.connectors:
        row = asdict(record)
        for key in ("address_spaces", "smart_hosts", "bindings", "problems"):
            row[key] = list(row[key])
        rows.append(row)
    df = pd.DataFrame(rows)
    df.attrs["read_stats"] = _stats(read)
    return df


def _stats(read: InventoryRead) -> dict:
    return {
        "certificates": len(read.certificates),
        "connectors": len(read.connectors),
        "skipped": [{"file": s.name, "reason": escape_terminal(s.reason)} for s in read.skipped],
    }

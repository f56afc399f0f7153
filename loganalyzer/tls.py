"""TLS and certificate facts from protocol-log text: Schannel names, negotiation rows, cert rows.

These functions parse one string each. The session builder calls them on the *distinct* strings
of a corpus only (a handful of TLS contexts, one per certificate), never per log row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Schannel protocol enum names (``SP_PROT_TLS1_2_SERVER``) to the session table's versions.
_SCHANNEL_VERSIONS = {
    "SSL2": "SSL2",
    "SSL3": "SSL3",
    "TLS1": "TLS1.0",
    "TLS1_0": "TLS1.0",
    "TLS1_1": "TLS1.1",
    "TLS1_2": "TLS1.2",
    "TLS1_3": "TLS1.3",
}
#: Numeric Schannel protocol values (printed when .NET has no enum name for them).
_SCHANNEL_NUMBERS = {
    0x10: "SSL3", 0x20: "SSL3", 0x40: "TLS1.0", 0x80: "TLS1.0", 0x100: "TLS1.1",
    0x200: "TLS1.1", 0x400: "TLS1.2", 0x800: "TLS1.2", 0x1000: "TLS1.3", 0x2000: "TLS1.3",
}  # fmt: skip

_NEGOTIATION = re.compile(
    r"^TLS protocol (?P<proto>\S+) negotiation succeeded using bulk encryption algorithm "
    r"(?P<cipher>\S+) with strength (?P<cipher_bits>\d+) bits, MAC hash algorithm (?P<mac>\S+) "
    r"with strength (?P<mac_bits>\d+) bits and key exchange algorithm (?P<kx>\S+) with strength "
    r"(?P<kx_bits>\d+) bits"
)


@dataclass(frozen=True)
class Negotiation:
    """Facts of a ``TLS protocol ... negotiation succeeded`` row. Bit strengths are integers."""

    version: str | None
    cipher: str | None
    cipher_bits: int | None
    mac: str | None
    mac_bits: int | None
    key_exchange: str | None
    key_exchange_bits: int | None


def schannel_version(name: str) -> str | None:
    """``SP_PROT_TLS1_2_SERVER`` -> ``TLS1.2``; numeric values too; None if unknown."""
    if name.isdigit():
        return _SCHANNEL_NUMBERS.get(int(name))
    match = re.fullmatch(r"SP_PROT_([A-Z0-9_]+?)_(?:SERVER|CLIENT)", name)
    return _SCHANNEL_VERSIONS.get(match.group(1)) if match else None


def parse_negotiation(context: str) -> Negotiation:
    """Parse the TLS success context. Unparseable text gives a Negotiation of Nones."""
    match = _NEGOTIATION.match(context)
    if match is None:
        return Negotiation(None, None, None, None, None, None, None)
    return Negotiation(
        version=schannel_version(match["proto"]),
        cipher=match["cipher"],
        cipher_bits=int(match["cipher_bits"]),
        mac=match["mac"],
        mac_bits=int(match["mac_bits"]),
        key_exchange=match["kx"],
        key_exchange_bits=int(match["kx_bits"]),
    )


def tls_error_text(kind_text: str) -> str:
    """Short TLS error from a failure row: ``TLS negotiation failed with error X`` -> ``X``.

    Replies keep their text without the codes (``454 4.7.5 Certificate validation failure`` ->
    ``Certificate validation failure``); other information rows are kept as they are.
    """
    text = kind_text.strip()
    if text.startswith("TLS negotiation failed with error"):
        return text.removeprefix("TLS negotiation failed with error").strip() or text
    match = re.match(r"^[45]\d\d[ -](?:[45]\.\d{1,3}\.\d{1,3} )?(.*)$", text)
    if match:
        return match.group(1).strip() or text
    return text


# --- certificates -----------------------------------------------------------------------------

_ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z"
_ONELINE = re.compile(
    rf"^\s*(?P<dns>.*?)\s+(?P<serial>\S+)\s+(?P<thumb>\S+)\s+(?P<nb>{_ISO})\s+(?P<na>{_ISO})"
    rf"(?:\s+(?P<sans>.*))?\s*$"
)
_RDN_START = re.compile(r"(?<!,)\s+(?=(?:CN|OU|O|L|S|ST|C|E|DC|SERIALNUMBER|STREET|PostalCode)=)")
_HEX = re.compile(r"^[0-9A-Fa-f]+$")


@dataclass(frozen=True)
class CertificateFacts:
    """A certificate as one log row describes it. Dates are ISO strings (UTC), SANs a list."""

    subject: str | None = None
    issuer: str | None = None
    serial: str | None = None
    thumbprint: str | None = None
    not_before: str | None = None
    not_after: str | None = None
    sans: tuple[str, ...] | None = None


def parse_oneline_certificate(data: str) -> CertificateFacts | None:
    """Parse the newer one-row certificate form (seen on Exchange 2016 CU23 and later).

    ``data`` is `` <subject> <issuer> <serial> <thumbprint> <not before> <not after> <SANs>``.
    DNs contain spaces and commas, so the row is anchored on the two ISO timestamps and the two
    hex tokens before them; subject and issuer are split where a new DN starts (an RDN keyword
    after a space that does not follow a comma). Returns None when the anchors are missing.
    """
    match = _ONELINE.match(data)
    if match is None:
        return None
    subject, issuer = split_subject_issuer(match["dns"])
    sans = match["sans"]
    return CertificateFacts(
        subject=repair_mojibake(subject),
        issuer=repair_mojibake(issuer),
        serial=match["serial"],
        thumbprint=match["thumb"],
        not_before=match["nb"],
        not_after=match["na"],
        sans=split_sans(sans),
    )


def split_subject_issuer(text: str) -> tuple[str | None, str | None]:
    """Split ``CN=a, O=b CN=c, O=d`` into subject and issuer DNs."""
    text = text.strip()
    if not text:
        return None, None
    parts = _RDN_START.split(text, maxsplit=1)
    if len(parts) == 2:
        return parts[0].strip(), parts[1].strip()
    return text, None


def split_sans(text: str | None) -> tuple[str, ...] | None:
    """``a;b;c`` -> ``("a", "b", "c")``; empty -> None."""
    if text is None:
        return None
    names = tuple(name.strip() for name in text.split(";") if name.strip())
    return names or None


def is_hex(value: str | None) -> bool:
    """True for a non-empty hex string (thumbprints and serials as Exchange writes them)."""
    return bool(value) and _HEX.match(value) is not None


def normalise_thumbprint(value: str | None) -> str | None:
    """Upper-case a hex thumbprint; anything else (masked, say) is kept as logged."""
    if value is None:
        return None
    value = value.strip()
    return value.upper() if is_hex(value) else value


_MOJIBAKE_HINT = re.compile("[ÃÂÅÄÆÐÑÕÖ×ØÙÚÛÜÝÞß][\u0080-\u00bf]")


def repair_mojibake(text: str | None) -> str | None:
    """Repair UTF-8 that was read as Latin-1 (``MÃ¼nchen`` -> ``München``) when that is valid.

    Text without the tell-tale byte pairs, or whose repair is not valid UTF-8, is returned as is.
    """
    if text is None or not _MOJIBAKE_HINT.search(text):
        return text
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text

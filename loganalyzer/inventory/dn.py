"""Distinguished names, TlsCertificateName values and host-name matching.

Exchange (.NET ``X500DistinguishedName``) and Python (``Name.rfc4514_string()``) print the same DN
differently: ``, `` vs ``,`` separators, ``S=``/``E=`` vs ``ST=``/``1.2.840.113549.1.9.1=``,
``OID.2.5.4.97=`` vs ``2.5.4.97=``, ``O="Contoso, Inc."`` vs ``O=Contoso\\, Inc.``.
:func:`normalise_dn` turns either form into one comparison key.

Order: the key is the **sorted multiset** of (attribute type, value) pairs, so RDN order does not
matter. .NET and ``rfc4514_string()`` both print the last RDN first, but other tools (and people)
write DNs in DER order, and the RDN order of a subject is not what tells two certificates apart.
The price: two DNs that differ only in RDN order get the same key.

Backslashes: RFC 4514 escapes with ``\\`` but .NET writes a backslash as it is. A backslash
followed by two hex digits or by one of ``,+"\\<>;=#`` and space reads as an escape, any other
as itself; a Windows value with a literal backslash before such a character is ambiguous.
"""

from __future__ import annotations

import re

__all__ = ["host_matches", "normalise_dn", "parse_tls_certificate_name"]

#: attribute OIDs with a name; the key uses the (lower-case) name.
_OID_NAMES = {
    "2.5.4.3": "cn",
    "2.5.4.4": "sn",
    "2.5.4.5": "serialnumber",
    "2.5.4.6": "c",
    "2.5.4.7": "l",
    "2.5.4.8": "st",
    "2.5.4.9": "street",
    "2.5.4.10": "o",
    "2.5.4.11": "ou",
    "2.5.4.12": "title",
    "2.5.4.13": "description",
    "2.5.4.15": "businesscategory",
    "2.5.4.17": "postalcode",
    "2.5.4.18": "postofficebox",
    "2.5.4.20": "telephonenumber",
    "2.5.4.42": "givenname",
    "2.5.4.43": "initials",
    "2.5.4.44": "generationqualifier",
    "2.5.4.46": "dnqualifier",
    "2.5.4.65": "pseudonym",
    "2.5.4.97": "organizationidentifier",
    "0.9.2342.19200300.100.1.1": "uid",
    "0.9.2342.19200300.100.1.25": "dc",
    "1.2.840.113549.1.9.1": "emailaddress",
}

#: key names (case-folded) used by Windows, RFC 4514 and OpenSSL, mapped to the key's name.
_ALIASES = {name: name for name in _OID_NAMES.values()} | {
    "commonname": "cn",
    "surname": "sn",
    "countryname": "c",
    "localityname": "l",
    "s": "st",
    "stateorprovincename": "st",
    "streetaddress": "street",
    "organizationname": "o",
    "organizationalunitname": "ou",
    "t": "title",
    "g": "givenname",
    "gn": "givenname",
    "i": "initials",
    "pobox": "postofficebox",
    "phone": "telephonenumber",
    "e": "emailaddress",
    "email": "emailaddress",
    "domaincomponent": "dc",
    "userid": "uid",
}

_TYPE = re.compile(r"(?:oid\.)?(\d+(?:\.\d+)+)|([a-z][a-z0-9-]*)", re.IGNORECASE)
_NEXT_RDN = re.compile(r"\s*(?:(?:oid\.)?\d+(?:\.\d+)+|[a-z][a-z0-9-]*)\s*=", re.IGNORECASE)
_HEX2 = re.compile(r"[0-9a-fA-F]{2}")
_BER_VALUE = re.compile(r"#([0-9a-fA-F]+)(?=\s*(?:[,;+]|$))")
_SEPARATORS = ",;+"
_ESCAPABLE = ',+"\\<>;=# '
#: ASN.1 string tags a ``#hex`` value may carry, with their codecs.
_BER_STRINGS = {
    0x0C: "utf-8",
    0x12: "ascii",
    0x13: "ascii",
    0x14: "latin-1",
    0x16: "ascii",
    0x1A: "ascii",
    0x1C: "utf-32-be",
    0x1E: "utf-16-be",
}


def normalise_dn(text: str) -> str:
    """A comparison key for a DN in Windows or RFC 4514 form (see the module docstring).

    Types map to one name (``S``/``ST``/``2.5.4.8`` -> ``st``, ``E``/``emailAddress`` ->
    ``emailaddress``, ``OID.x`` -> ``x`` or its name); values are unquoted/unescaped,
    whitespace-collapsed and case-folded. Returns ``type=value`` pairs, sorted, joined with ``,``
    (``\\``, ``,`` and ``+`` in values escaped).

    Text that is not a DN (e.g. cut short by a table column) never raises: its key is ``?``
    followed by the folded text, so it equals only the same text, never a parsed DN.
    """
    try:
        pairs = sorted(_parse_dn(text))
    except ValueError:
        return "?" + " ".join(text.split()).casefold()
    return ",".join(f"{kind}={_escape(value)}" for kind, value in pairs)


def parse_tls_certificate_name(text: str) -> tuple[str | None, str | None]:
    """Split ``<I>issuer<S>subject`` into (issuer, subject); markers are case-insensitive.

    A part that is absent or blank is None. Raises ValueError when the text has neither
    marker, repeats one, or has text before the first marker.
    """
    parts = re.split(r"<\s*([IS])\s*>", text, flags=re.IGNORECASE)
    if len(parts) == 1:
        raise ValueError(f"no <I> or <S> marker in {text!r}")
    if parts[0].strip():
        raise ValueError(f"text before the first <I>/<S> marker in {text!r}")
    found: dict[str, str | None] = {}
    for marker, part in zip(parts[1::2], parts[2::2], strict=True):
        key = marker.upper()
        if key in found:
            raise ValueError(f"<{key}> appears twice in {text!r}")
        found[key] = part.strip() or None
    return found.get("I"), found.get("S")


def host_matches(pattern: str, host: str) -> bool:
    """DNS name match, case-insensitive; ``*`` only as the whole left-most label of ``pattern``.

    ``*.example.com`` matches ``mail.example.com`` but not ``example.com`` or
    ``a.b.example.com``. A trailing dot is ignored; empty labels never match.
    """
    wanted = pattern.strip().rstrip(".").casefold().split(".")
    labels = host.strip().rstrip(".").casefold().split(".")
    if "" in wanted or "" in labels or "*" in "".join(labels):
        return False
    if wanted[0] == "*" and len(wanted) > 1:
        rest = wanted[1:]
        return "*" not in "".join(rest) and len(labels) == len(wanted) and labels[1:] == rest
    return "*" not in "".join(wanted) and labels == wanted


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("+", "\\+")


def _parse_dn(text: str) -> list[tuple[str, str]]:
    """(type, value) pairs of a DN, types canonical and values folded."""
    pairs: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while True:
        i = _skip_space(text, i)
        if i >= n:
            if pairs:
                raise ValueError(f"DN ends with a separator: {text!r}")
            return pairs
        match = _TYPE.match(text, i)
        if not match:
            raise ValueError(f"expected an attribute type at offset {i} in {text!r}")
        kind = _canonical_type(match.group(1), match.group(2))
        i = _skip_space(text, match.end())
        if i >= n or text[i] != "=":
            raise ValueError(f"expected '=' after {match.group(0)!r} in {text!r}")
        i = _skip_space(text, i + 1)
        value, i = _read_value(text, i)
        pairs.append((kind, " ".join(value.split()).casefold()))
        i = _skip_space(text, i)
        if i >= n:
            return pairs
        if text[i] not in _SEPARATORS:
            raise ValueError(f"unexpected {text[i]!r} at offset {i} in {text!r}")
        i += 1


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i].isspace():
        i += 1
    return i


def _canonical_type(oid: str | None, name: str | None) -> str:
    if oid is not None:
        return _OID_NAMES.get(oid, oid)
    folded = (name or "").casefold()
    return _ALIASES.get(folded, folded)


def _read_value(text: str, i: int) -> tuple[str, int]:
    """One attribute value starting at ``i``: quoted, ``#hex`` (BER) or plain with escapes."""
    if i < len(text) and text[i] == '"':
        return _read_quoted(text, i + 1)
    ber = _BER_VALUE.match(text, i)
    if ber:
        return _decode_ber(ber.group(1)), ber.end(1)
    return _read_plain(text, i)


def _read_quoted(text: str, i: int) -> tuple[str, int]:
    """A value in double quotes as .NET writes it: ``""`` is a quote, ``\\`` is itself."""
    out: list[str] = []
    n = len(text)
    while i < n:
        char = text[i]
        if char == '"':
            if i + 1 < n and text[i + 1] == '"':
                out.append('"')
                i += 2
                continue
            return "".join(out), i + 1
        out.append(char)
        i += 1
    raise ValueError(f"unterminated quoted value in {text!r}")


def _read_plain(text: str, i: int) -> tuple[str, int]:
    """An unquoted value up to the next separator that starts another ``type=``.

    A separator not followed by ``type=`` is kept as text, so hand-typed
    ``O=Contoso, Inc.`` still reads as one value. Trailing unescaped spaces are dropped.
    """
    out: list[str] = []
    kept = 0  # length of ``out`` up to the last escaped or non-space character
    n, end = len(text), len(text.rstrip())
    while i < n:
        char = text[i]
        if char == "\\":
            raw = bytearray()
            while i < n and text[i] == "\\" and _HEX2.fullmatch(text, i + 1, i + 3):
                raw.append(int(text[i + 1 : i + 3], 16))
                i += 3
            if raw:
                out.append(raw.decode("utf-8", errors="replace"))
            elif i + 1 < n and text[i + 1] in _ESCAPABLE:
                out.append(text[i + 1])
                i += 2
            else:  # .NET writes a backslash as it is
                out.append("\\")
                i += 1
            kept = len(out)
            continue
        if char in _SEPARATORS and (i + 1 >= end or _NEXT_RDN.match(text, i + 1)):
            break
        out.append(char)
        if not char.isspace():
            kept = len(out)
        i += 1
    return "".join(out[:kept]), i


def _decode_ber(hex_text: str) -> str:
    """An RFC 4514 ``#hex`` value: the string inside a simple BER string, else ``#hex``."""
    fallback = "#" + hex_text.lower()
    if len(hex_text) % 2:
        return fallback
    data = bytes.fromhex(hex_text)
    if len(data) < 2 or data[0] not in _BER_STRINGS:
        return fallback
    length, start = data[1], 2
    if length & 0x80:
        size = length & 0x7F
        if size == 0 or size > 4 or len(data) < 2 + size:
            return fallback
        length, start = int.from_bytes(data[2 : 2 + size], "big"), 2 + size
    if start + length != len(data):
        return fallback
    try:
        return data[start:].decode(_BER_STRINGS[data[0]])
    except UnicodeDecodeError:
        return fallback

"""Read ``Get-ExchangeCertificate`` output in the shapes admins save it in.

Shapes (docs/inventory-and-connectors.md, sections 1.2 and 5):

- default table: a ``Thumbprint  Services  Subject`` header over dashed underlines (any
  ``Format-Table`` with a ``Thumbprint`` column); the console may cut the subject;
- ``Format-List`` / ``Format-List *``: ``Label<pad> : value`` records separated by blank lines,
  wrapped values on lines indented past the colon, ``{a, b, c...}`` collections, any indentation;
- ``Export-Csv`` / ``ConvertTo-Csv``: optional ``#TYPE`` line, a header row naming the
  properties (``,``, ``;`` or tab separated); collections come out as their type name;
- ``ConvertTo-Json``: an object or an array (PS 5.1: ``/Date(ms)/`` dates and numeric enums;
  PS 7: ISO 8601 dates);
- ``Export-Clixml``: ``<Objs>`` holding ExchangeCertificate objects; ``RawData`` (base64 DER) is
  decoded and every certificate fact is recomputed from it.

Table and list blocks may sit together in one pasted console transcript. Dates written as text
are server-local and culture-formatted: they are read with ``date_format`` (a strptime format)
or guessed (``dd.MM.yyyy`` day first; ``M/d/yyyy`` month first unless the first number is over
12 or another date in the file shows day-first order) and converted from ``tz`` (default UTC).
"""

from __future__ import annotations

import base64
import binascii
import bisect
import csv
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from xml.parsers import expat

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm

from loganalyzer.errors import InventoryError
from loganalyzer.inventory.records import SERVICE_FLAGS, SERVICE_LETTERS, CertificateRecord
from loganalyzer.inventory.x509 import record_from_certificate

__all__ = ["read_exchange_certificates", "sniff"]


#: Labels (lower case) that only a certificate carries; two of them, or Thumbprint, make one.
_CERT_LABELS = frozenset(
    {
        "subject",
        "issuer",
        "notafter",
        "notbefore",
        "services",
        "servicesstringform",
        "certificatedomains",
        "serialnumber",
        "hasprivatekey",
        "isselfsigned",
        "publickeysize",
        "rootcatype",
    }
)
_ELLIPSES = ("...", "…")
_NEWLINE = re.compile(r"\r\n|\r|\n")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_FLAG_BY_NAME = {name.lower(): bit for bit, name in SERVICE_FLAGS.items()}
_BIT_BY_LETTER = {letter: _FLAG_BY_NAME[name.lower()] for letter, name in SERVICE_LETTERS.items()}
_ALL_FLAGS = sum(SERVICE_FLAGS)


@dataclass(frozen=True)
class _Context:
    source: str
    date_format: str | None
    tz: tzinfo
    day_first: bool | None  # what the file's unambiguous slash dates say (None: nothing/mixed)


# --------------------------------------------------------------------------- public API


def sniff(text: str) -> bool:
    """True when ``text`` looks like Get-ExchangeCertificate output in a supported shape."""
    return _detect(text.removeprefix("\ufeff")) is not None


def read_exchange_certificates(
    text: str, source: str, *, date_format: str | None = None, tz: tzinfo | None = None
) -> list[CertificateRecord]:
    """One record per certificate row/object; ``source`` of each is ``file:line``.

    Raises InventoryError when the text is not such an export or is a broken one.
    """
    text = text.removeprefix("\ufeff")
    shape = _detect(text)
    if shape is None:
        raise InventoryError(
            f"{source}: not Get-ExchangeCertificate output "
            "(no certificate table, list, CSV, JSON or Clixml found)"
        )
    ctx = _Context(source, date_format, tz or UTC, _day_first_hint(text))
    return _READERS[shape](text, ctx)


def _detect(text: str) -> str | None:
    body = text.lstrip()
    if body.startswith("<"):
        return "clixml" if "<Objs" in body and _CLIXML_CERT_TYPE.search(body) else None
    if body.startswith(("{", "[")) and _JSON_THUMBPRINT.search(body):
        return "json"
    lines = _lines(text)
    if _csv_layout(lines) is not None:
        return "csv"
    return "text" if _scan_text(lines) else None


def _lines(text: str) -> list[str]:
    return _NEWLINE.split(text)


def _is_certificate(keys: Iterable[str]) -> bool:
    keys = {key.lower() for key in keys}
    return "thumbprint" in keys or len(keys & _CERT_LABELS) >= 2


# --------------------------------------------------------------------------- one record


def _build(
    fields: dict[str, object], ctx: _Context, line: int, problems: list[str] | None = None
) -> CertificateRecord:
    """A record from property values: text (list, table, CSV) or typed (JSON, Clixml).

    With usable RawData the certificate facts come from the DER bytes, the rest from the text.
    """
    problems = list(problems or ())
    server, identity_thumbprint = _split_identity(_text(fields.get("identity")))
    record = CertificateRecord(
        source=f"{ctx.source}:{line}",
        services=_services(_first(fields, "services", "servicesstringform"), problems),
        has_private_key=_bool(fields.get("hasprivatekey")),
        status=_status(fields.get("status"), problems),
        friendly_name=_text(fields.get("friendlyname")),
        server=server or _text(fields.get("pscomputername")),
    )
    stated_problems: list[str] = []
    stated = _thumbprint(_first(fields, "thumbprint") or identity_thumbprint, stated_problems)
    der = _raw_bytes(fields.get("rawdata"))
    if der is None or not _apply_der(record, der, stated, problems):
        problems += stated_problems
        record.thumbprint = stated
        _apply_text_facts(record, fields, ctx, problems)
    record.problems = tuple(problems)
    return record


def _apply_text_facts(
    record: CertificateRecord, fields: dict[str, object], ctx: _Context, problems: list[str]
) -> None:
    """The certificate facts as the export prints them (no certificate bytes available)."""
    record.subject = _dn(fields.get("subject"))
    record.issuer = _dn(fields.get("issuer"))
    record.serial = _serial(fields.get("serialnumber"))
    record.not_before_utc = _date(fields.get("notbefore"), ctx, problems)
    record.not_after_utc = _date(fields.get("notafter"), ctx, problems)
    record.sans = _domains(_first(fields, "certificatedomains", "dnsnamelist"), problems)
    record.self_signed = _bool(fields.get("isselfsigned"))
    record.key_bits = _int(fields.get("publickeysize"))


def _first(fields: dict[str, object], *keys: str) -> object:
    for key in keys:
        value = fields.get(key)
        if value is not None and value != "":
            return value
    return None


def _text(value: object) -> str | None:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, str | int | float):
        text = str(value).strip()
        return text or None
    return None


def _dn(value: object) -> str | None:
    """A DN string; a serialised X500DistinguishedName object gives its ``Name``."""
    if isinstance(value, dict):
        value = _lower_keys(value).get("name")
    return _text(value) if isinstance(value, str) else None


def _bool(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    text = value.strip().lower().lstrip("$") if isinstance(value, str) else None
    return {"true": True, "false": False}.get(text) if text else None


def _int(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*\d{1,9}\s*", value):
        return int(value)
    return None


def _split_identity(identity: str | None) -> tuple[str | None, str | None]:
    """``SERVER\\THUMBPRINT`` -> (server, thumbprint)."""
    if not identity:
        return None, None
    server, sep, tail = identity.rpartition("\\")
    return (server.strip() or None) if sep else None, tail.strip() or None


def _thumbprint(value: object, problems: list[str]) -> str | None:
    """40 upper-case hex digits; anything else is kept as written and reported."""
    text = _text(value) if isinstance(value, str) else None
    if text is None:
        return None
    compact = re.sub(r"[\s:\u200e\u200f\ufeff]", "", text)
    if re.fullmatch(r"[0-9A-Fa-f]{40}", compact):
        return compact.upper()
    problems.append(f"thumbprint '{text}' is not 40 hex digits")
    return text


def _serial(value: object) -> str | None:
    text = _text(value) if isinstance(value, str) else None
    if text is None:
        return None
    compact = re.sub(r"[\s:]", "", text)
    return compact.upper() if re.fullmatch(r"[0-9A-Fa-f]+", compact) else text


def _status(value: object, problems: list[str]) -> str | None:
    """Status names; the numbers ConvertTo-Json writes are not mapped (values unverified)."""
    if isinstance(value, int) and not isinstance(value, bool):
        problems.append(f"Status is the number {value} (ConvertTo-Json enum); its name is unknown")
        return None
    return _text(value) if isinstance(value, str) else None


# --------------------------------------------------------------------------- services


def _services(value: object, problems: list[str]) -> tuple[str, ...] | None:
    """Services from a bitmask, a flags text (``IMAP, POP, IIS, SMTP``, ``None``) or the short
    string (``IP.WS..``: read by letter, 6 or 7 places, possibly cut by the console)."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return _services_from_mask(value, problems)
    text = _text(value) if isinstance(value, str) else None
    if text is None:
        problems.append(f"services value {value!r} not understood")
        return None
    if re.fullmatch(r"\d{1,4}", text):
        return _services_from_mask(int(text), problems)
    names = _services_from_names(text, problems)
    if names is not None:
        return names
    if re.fullmatch(r"[IPUWSFC.]{1,10}…?", text):
        if text.endswith("…") or len(text) > 7:
            problems.append(f"services '{text}' cut by the console (later flags unknown)")
        mask = sum({_BIT_BY_LETTER[c] for c in text if c in _BIT_BY_LETTER})
        return _names(mask)
    problems.append(f"services '{text}' not understood")
    return None


def _services_from_names(text: str, problems: list[str]) -> tuple[str, ...] | None:
    """``IMAP, POP, IIS, SMTP`` / ``None``; a cut last name (``SMTP, Fed...``) is dropped."""
    body = text
    cut = body.endswith(_ELLIPSES)
    if cut:
        body = body.removesuffix("…").removesuffix("...")
    tokens = [t for t in re.split(r"[,;\s]+", body) if t]
    if cut and tokens and tokens[-1].lower() not in _FLAG_BY_NAME:
        tokens.pop()
    if not tokens or any(t.lower() not in _FLAG_BY_NAME and t.lower() != "none" for t in tokens):
        return None
    if cut:
        problems.append(f"services '{text}' cut by the console (later flags unknown)")
    return _names(sum({_FLAG_BY_NAME.get(t.lower(), 0) for t in tokens}))


def _services_from_mask(mask: int, problems: list[str]) -> tuple[str, ...]:
    if mask < 0 or mask & ~_ALL_FLAGS:
        problems.append(f"services bitmask {mask} has bits Exchange does not define")
    return _names(max(mask, 0))


def _names(mask: int) -> tuple[str, ...]:
    return tuple(name for bit, name in sorted(SERVICE_FLAGS.items()) if mask & bit)


# --------------------------------------------------------------------------- domains, bytes


_TYPE_NAME = re.compile(r"System\.Collections|`\d\[|Microsoft\.Exchange\.|^Deserialized\.")


def _domains(value: object, problems: list[str]) -> tuple[str, ...]:
    """CertificateDomains: a list (strings or SmtpDomainWithSubdomains objects), ``{a, b...}``
    from Format-List, or ``;``/``,``/space separated text; a type name means they were lost."""
    if value is None:
        return ()
    if isinstance(value, list):
        return tuple(d for d in (_domain_item(v) for v in value) if d)
    if isinstance(value, dict):
        item = _domain_item(value)
        return (item,) if item else ()
    if not isinstance(value, str):
        return ()
    text = value.strip()
    if _TYPE_NAME.search(text):
        problems.append(f"CertificateDomains holds the type name '{text}', not the names")
        return ()
    if text.startswith("{"):
        text = text[1:].removesuffix("}").strip()
    if text.endswith(_ELLIPSES):
        text = text.removesuffix("…").removesuffix("...")
        problems.append("CertificateDomains cut by $FormatEnumerationLimit (more names exist)")
    return tuple(d for d in re.split(r"[;,\s]+", text) if d)


def _domain_item(value: object) -> str | None:
    if isinstance(value, str):
        return value.strip() or None
    if not isinstance(value, dict):
        return None
    item = _lower_keys(value)
    if isinstance(item.get("address"), str):
        return item["address"].strip() or None
    domain = item.get("domain")
    if isinstance(domain, dict):
        domain = _lower_keys(domain).get("domain")
    if not isinstance(domain, str) or not domain.strip():
        return None
    domain = domain.strip()
    wildcard = item.get("includesubdomains") is True and not domain.startswith("*")
    return f"*.{domain}" if wildcard else domain


def _raw_bytes(value: object) -> bytes | None:
    """RawData as bytes: already bytes (Clixml), a list of byte values (JSON), a complete
    ``{48, 130, ...}`` list (Format-List) or base64 text (JSON)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, list) and value and all(_is_byte(b) for b in value):
        return bytes(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if re.fullmatch(r"\{\s*\d{1,3}(?:\s*,\s*\d{1,3})*\s*\}", text):
        numbers = [int(n) for n in re.findall(r"\d+", text)]
        return bytes(numbers) if all(n < 256 for n in numbers) else None
    if len(text) >= 64 and re.fullmatch(r"[A-Za-z0-9+/=\s]+", text):
        return _b64(text)
    return None


def _is_byte(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 255


def _b64(text: str) -> bytes | None:
    try:
        return base64.b64decode(re.sub(r"\s", "", text), validate=True)
    except (binascii.Error, ValueError):
        return None


def _lower_keys(mapping: dict) -> dict[str, object]:
    return {str(key).lower(): value for key, value in mapping.items()}


# --------------------------------------------------------------------------- dates

_JSON_DATE = re.compile(r"\\?/Date\((-?\d{1,15})(?:[+-]\d{4})?\)\\?/")
_ISO_DATE = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?"
)
_CULTURE_DATE = re.compile(
    r"(?P<a>\d{1,4})(?P<sep>[./-])(?P<b>\d{1,2})(?P=sep)(?P<c>\d{1,4})\.?"
    r"(?:[ T]+(?P<h>\d{1,2})[:.](?P<mi>\d{2})(?:[:.](?P<s>\d{2}))?"
    r"(?:\s*(?P<ampm>[AaPp])\.?\s?[Mm]\.?)?)?"
)
_SLASH_DATE = re.compile(r"(?<!\d)(\d{1,2})/(\d{1,2})/\d{4}(?!\d)")


def _date(value: object, ctx: _Context, problems: list[str]) -> datetime | None:
    """A UTC time from ``/Date(ms)/``, ISO 8601 or a culture-formatted server-local text."""
    if isinstance(value, dict):  # PS 5.1 wraps some DateTime values: {"value": ..., ...}
        value = _first(_lower_keys(value), "value", "datetime")
    text = _text(value) if isinstance(value, str) else None
    if text is None:
        return None
    if match := _JSON_DATE.fullmatch(text):
        return _epoch_ms(int(match[1]), text, problems)
    if ctx.date_format:
        parsed = _strptime(text, ctx.date_format)
        if parsed is not None:
            return _to_utc(parsed, ctx, text, problems)
    if _ISO_DATE.fullmatch(text):
        return _iso(text, ctx, problems)
    if ctx.date_format:
        problems.append(f"date '{text}' does not match the date format '{ctx.date_format}'")
        return None
    return _culture_date(text, ctx, problems)


def _epoch_ms(ms: int, text: str, problems: list[str]) -> datetime | None:
    try:
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    except OverflowError:
        problems.append(f"date '{text}' is out of range")
        return None


def _strptime(text: str, date_format: str) -> datetime | None:
    try:
        return datetime.strptime(text, date_format)
    except (ValueError, re.error):
        return None


def _iso(text: str, ctx: _Context, problems: list[str]) -> datetime | None:
    trimmed = re.sub(r"[.,](\d{1,6})\d*", r".\1", text)  # .NET writes 7 fraction digits
    try:
        parsed = datetime.fromisoformat(trimmed)
    except ValueError:
        problems.append(f"date '{text}' not understood")
        return None
    return _to_utc(parsed, ctx, text, problems)


def _culture_date(text: str, ctx: _Context, problems: list[str]) -> datetime | None:
    """``M/d/yyyy h:mm:ss tt``, ``dd/MM/yyyy``, ``dd.MM.yyyy H:mm:ss``, ``yyyy/MM/dd`` ..."""
    match = _CULTURE_DATE.fullmatch(text)
    if match is None or 4 not in (len(match["a"]), len(match["c"])):
        problems.append(f"date '{text}' not understood (use --date-format)")
        return None
    a, b, c = int(match["a"]), int(match["b"]), int(match["c"])
    if len(match["a"]) == 4:
        year, month, day = a, b, c
    elif match["sep"] == "/":
        (month, day), year = _slash_order(a, b, text, ctx, problems), c
    else:
        year, month, day = c, b, a
    hour = _hour(int(match["h"] or 0), match["ampm"])
    try:
        local = datetime(year, month, day, hour, int(match["mi"] or 0), int(match["s"] or 0))
    except ValueError:  # also an hour of -1: not 1-12 before AM/PM
        problems.append(f"date '{text}' is not a valid date")
        return None
    return _to_utc(local, ctx, text, problems)


def _slash_order(a: int, b: int, text: str, ctx: _Context, problems: list[str]) -> tuple[int, int]:
    """(month, day) of ``a/b/yyyy``: month first unless the numbers or the file say otherwise."""
    if a > 12 >= b:
        return b, a
    if b > 12 or a == b:
        return a, b
    if ctx.day_first is not None:
        return (b, a) if ctx.day_first else (a, b)
    problems.append(f"date '{text}' is ambiguous (assumed month/day; use --date-format)")
    return a, b


def _hour(hour: int, ampm: str | None) -> int:
    """24-hour clock hour; -1 (an invalid hour) for ``13 PM`` or ``0 AM``."""
    if ampm is None:
        return hour
    if not 1 <= hour <= 12:
        return -1
    return hour % 12 + (12 if ampm in "Pp" else 0)


def _day_first_hint(text: str) -> bool | None:
    """True/False when the file's slash dates that are unambiguous all agree, else None."""
    votes = set()
    for match in _SLASH_DATE.finditer(text):
        a, b = int(match[1]), int(match[2])
        if a > 12 >= b:
            votes.add(True)
        elif b > 12 >= a:
            votes.add(False)
    return votes.pop() if len(votes) == 1 else None


def _to_utc(moment: datetime, ctx: _Context, text: str, problems: list[str]) -> datetime | None:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ctx.tz)
    try:
        return moment.astimezone(UTC)
    except (OverflowError, ValueError):
        problems.append(f"date '{text}' is out of range")
        return None


# --------------------------------------------------------------------------- DER facts


def _apply_der(
    record: CertificateRecord, der: bytes, stated: str | None, problems: list[str]
) -> bool:
    """Set every certificate fact from the DER bytes; False when they are not a certificate.

    ``stated`` is the thumbprint the export printed; a different one is reported.
    """
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError as err:
        problems.append(f"RawData is not a DER certificate ({err})")
        return False
    try:
        facts = record_from_certificate(cert, record.source)
    except (ValueError, TypeError, UnsupportedAlgorithm) as err:
        problems.append(f"certificate facts could not be read ({err})")
        return False
    if stated and stated.upper() != facts.thumbprint:
        problems.append(
            f"thumbprint '{stated}' in the export differs from the certificate bytes "
            f"({facts.thumbprint})"
        )
    for name in _DER_FACTS:
        setattr(record, name, getattr(facts, name))
    return True


#: Facts taken from the certificate bytes (x509.record_from_certificate) over the export text.
_DER_FACTS = (
    "thumbprint", "serial", "subject", "issuer", "not_before_utc", "not_after_utc", "sans",
    "self_signed", "key_type", "key_bits", "signature_hash", "der",
)  # fmt: skip


# --------------------------------------------------------------------------- table and list


_FL_LINE = re.compile(r"[ \t]*(?P<label>[A-Za-z][A-Za-z0-9_]*)[ \t]+:(?:[ \t]+(?P<value>.*))?")
_DASH_LINE = re.compile(r"[ \t]*-{2,}(?:[ \t]+-{2,})*[ \t]*")
_THUMB_CELL = re.compile(r"[0-9A-Za-z:\u200e ]+(?:\.\.\.|…)?")


@dataclass
class _Block:
    """One table row or Format-List record: 1-based first line, labels (lower case) -> text."""

    line: int
    indent: int = 0
    fields: dict[str, str] = field(default_factory=dict)
    table: bool = False
    last: str | None = None  # label that a continuation line extends
    wrapped: dict[str, list[str]] = field(default_factory=dict)  # continuation lines by label

    def add(self, label: str, value: str) -> None:
        key = label.lower()
        self.last = None if key in self.fields else key
        self.fields.setdefault(key, value)

    def extend(self, text: str) -> None:
        if self.last is not None:
            self.wrapped.setdefault(self.last, []).append(text)

    def finish(self) -> _Block:
        """Join wrapped values (PowerShell breaks them at spaces, so a space goes back)."""
        for key, parts in self.wrapped.items():
            self.fields[key] = " ".join([self.fields[key], *parts]).strip()
        self.wrapped = {}
        return self


def _read_text(text: str, ctx: _Context) -> list[CertificateRecord]:
    """Tables and Format-List records anywhere in a console transcript."""
    return [
        _table_record(block, ctx) if block.table else _build(block.fields, ctx, block.line)
        for block in _scan_text(_lines(text))
    ]


def _table_record(block: _Block, ctx: _Context) -> CertificateRecord:
    subject = block.fields.get("subject", "")
    notes = []
    if subject.endswith(_ELLIPSES):
        notes.append("subject truncated by the console")
    elif subject:
        notes.append("subject from a table (may be truncated)")
    return _build(block.fields, ctx, block.line, notes)


def _scan_text(lines: list[str]) -> list[_Block]:
    found: list[_Block] = []
    record: _Block | None = None
    lines = [_ANSI.sub("", line) for line in lines]
    index = 0
    while index < len(lines):
        columns = _table_columns(lines, index)
        if columns is not None:
            _keep_record(record, found)
            record = None
            rows, index = _table_rows(lines, index + 2, columns)
            found += rows
            continue
        record = _list_step(record, lines[index], index + 1, found)
        index += 1
    _keep_record(record, found)
    return found


def _list_step(record: _Block | None, line: str, number: int, found: list[_Block]) -> _Block | None:
    """Feed one line to the Format-List record being read; returns the record now open."""
    stripped = line.strip()
    indent = len(line) - len(line.lstrip())
    if not stripped:
        _keep_record(record, found)
        return None
    if record is not None and indent > record.indent:
        record.extend(stripped)
        return record
    match = _FL_LINE.fullmatch(line.rstrip())
    if match is None:
        _keep_record(record, found)
        return None
    if record is None or indent != record.indent:
        _keep_record(record, found)
        record = _Block(number, indent)
    record.add(match["label"], (match["value"] or "").strip())
    return record


def _keep_record(record: _Block | None, found: list[_Block]) -> None:
    if record is not None and _is_certificate(record.fields):
        found.append(record.finish())


def _table_columns(lines: list[str], index: int) -> list[tuple[str, int, int | None]] | None:
    """(name, start, end) per column when ``lines[index]`` is a header over dashes that
    names a Thumbprint column; dashes sit exactly under the header names."""
    if index + 1 >= len(lines) or not _DASH_LINE.fullmatch(lines[index + 1]):
        return None
    header = lines[index]
    runs = [(m.start(), m.end()) for m in re.finditer(r"-+", lines[index + 1])]
    names = [header[start:end].strip().lower() for start, end in runs]
    if "thumbprint" not in names or " ".join(names) != " ".join(header.split()).lower():
        return None
    starts = [start for start, _ in runs]
    return list(zip(names, starts, [*starts[1:], None], strict=True))


def _table_rows(
    lines: list[str], index: int, columns: list[tuple[str, int, int | None]]
) -> tuple[list[_Block], int]:
    """Rows under a table header up to a blank or non-row line; returns them and the next index."""
    rows = []
    while index < len(lines) and lines[index].strip():
        line = lines[index]
        cells = {name: line[start:end].strip() for name, start, end in columns}
        if not _THUMB_CELL.fullmatch(cells["thumbprint"]):
            break
        rows.append(_Block(index + 1, fields=cells, table=True))
        index += 1
    return rows, index


# --------------------------------------------------------------------------- CSV


def _csv_layout(lines: list[str]) -> tuple[int, str] | None:
    """(header line index, delimiter) when the text starts like Export-Csv of certificates."""
    index = next((i for i, line in enumerate(lines) if line.strip()), None)
    if index is None:
        return None
    if lines[index].lstrip().startswith("#TYPE"):
        index += 1
    if index >= len(lines):
        return None
    header = lines[index]
    for delimiter in (",", ";", "\t"):
        if delimiter not in header:
            continue
        try:
            names = next(csv.reader([header], delimiter=delimiter))
        except (csv.Error, StopIteration):
            continue
        if len(names) >= 2 and _is_certificate(name.strip() for name in names):
            return index, delimiter
    return None


def _read_csv(text: str, ctx: _Context) -> list[CertificateRecord]:
    """Export-Csv / ConvertTo-Csv rows (values are the properties' ToString())."""
    layout = _csv_layout(_lines(text))
    if layout is None:
        raise InventoryError(f"{ctx.source}: no CSV header naming certificate properties")
    index, delimiter = layout
    stream = io.StringIO(text, newline="")
    for _ in range(index):
        stream.readline()
    reader = csv.reader(stream, delimiter=delimiter)
    records: list[CertificateRecord] = []
    consumed = 0
    try:
        header = [name.strip().lower() for name in next(reader, [])]
        consumed = reader.line_num
        for row in reader:
            line, consumed = index + consumed + 1, reader.line_num
            if any(cell.strip() for cell in row):
                records.append(_csv_record(header, row, ctx, line))
    except csv.Error as err:
        raise InventoryError(
            f"{ctx.source}: broken CSV at line {index + consumed + 1} ({err})"
        ) from None
    return records


def _csv_record(header: list[str], row: list[str], ctx: _Context, line: int) -> CertificateRecord:
    notes = []
    if len(row) != len(header):
        notes.append(f"CSV row has {len(row)} fields, the header has {len(header)}")
    return _build(dict(zip(header, row, strict=False)), ctx, line, notes)


# --------------------------------------------------------------------------- JSON

_JSON_THUMBPRINT = re.compile(r'"thumbprint"\s*:', re.IGNORECASE)
_JSON_VALUE_ARRAY = re.compile(r'"value"\s*:\s*\[', re.IGNORECASE)


def _read_json(text: str, ctx: _Context) -> list[CertificateRecord]:
    """ConvertTo-Json output: one object, an array, or PS 5.1's ``{"value": [...], "Count"}``."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise InventoryError(f"{ctx.source}: broken ConvertTo-Json output ({err})") from None
    records = [
        _build(_lower_keys(item), ctx, line)
        for item, line in _json_items(data, text)
        if isinstance(item, dict) and _is_certificate(str(key) for key in item)
    ]
    if not records:
        raise InventoryError(f"{ctx.source}: JSON holds no certificate objects (no Thumbprint)")
    return records


def _json_items(data: object, text: str) -> list[tuple[object, int]]:
    """Top-level objects with the 1-based line each starts on."""
    breaks = [m.end() for m in _NEWLINE.finditer(text)]

    def line_of(offset: int) -> int:
        return bisect.bisect_right(breaks, offset) + 1

    start = len(text) - len(text.lstrip())
    if isinstance(data, dict):
        inner = _lower_keys(data)
        match = _JSON_VALUE_ARRAY.search(text)
        if isinstance(inner.get("value"), list) and "count" in inner and match:
            return _with_offsets(inner["value"], text, match.end() - 1, line_of)
        return [(data, line_of(start))]
    if isinstance(data, list):
        return _with_offsets(data, text, start, line_of)
    return []


def _with_offsets(
    items: list, text: str, start: int, line_of: Callable[[int], int]
) -> list[tuple[object, int]]:
    try:
        offsets = _array_offsets(text, start)
    except (ValueError, IndexError, RecursionError):
        offsets = []
    if len(offsets) != len(items):
        offsets = [start] * len(items)
    return [(item, line_of(offset)) for item, offset in zip(items, offsets, strict=True)]


def _array_offsets(text: str, start: int) -> list[int]:
    """Where each element of the JSON array opening at ``text[start]`` begins."""
    decoder, blank = json.JSONDecoder(), re.compile(r"[ \t\r\n]*")
    offsets = []
    pos = blank.match(text, start + 1).end()
    while text[pos] != "]":
        offsets.append(pos)
        _, pos = decoder.raw_decode(text, pos)
        pos = blank.match(text, pos).end()
        if text[pos] == ",":
            pos = blank.match(text, pos + 1).end()
    return offsets


# --------------------------------------------------------------------------- Clixml

_CLIXML_CERT_TYPE = re.compile(r"<T>[^<]*(?:ExchangeCertificate|X509Certificate2?)</T>")
_CERT_TYPE = re.compile(r"(?:^|\.)(?:ExchangeCertificate|X509Certificate2?)$")
_INT_TAGS = frozenset({"I16", "I32", "I64", "U16", "U32", "U64", "By", "SB"})
_LIST_TAGS = frozenset({"LST", "IE", "STK", "QUE"})
_TOSTRING_KEYS = {
    "subject": "subject",
    "issuer": "issuer",
    "serial number": "serialnumber",
    "not before": "notbefore",
    "not after": "notafter",
    "thumbprint": "thumbprint",
}


class _Node:
    """A minimal XML element that remembers the line it starts on."""

    __slots__ = ("attrs", "children", "line", "parts", "tag")

    def __init__(self, tag: str, attrs: dict[str, str], line: int) -> None:
        self.tag, self.attrs, self.line = tag, attrs, line
        self.children: list[_Node] = []
        self.parts: list[str] = []

    def text(self) -> str:
        return "".join(self.parts)

    def child(self, tag: str) -> _Node | None:
        return next((c for c in self.children if c.tag == tag), None)


class _DtdRefused(Exception):
    pass


def _read_clixml(text: str, ctx: _Context) -> list[CertificateRecord]:
    """Export-Clixml: each ExchangeCertificate/X509Certificate2 object becomes a record."""
    root = _parse_xml(text, ctx)
    if root.child("Objs") is None:
        raise InventoryError(f"{ctx.source}: not Clixml (no <Objs> root element)")
    types: dict[str, list[str]] = {}
    refs: dict[str, _Node] = {}
    certificates = []
    for node in _walk(root):
        if node.tag != "Obj":
            continue
        names = _type_names(node, types)
        if "RefId" in node.attrs:
            refs[node.attrs["RefId"]] = node
        if any(_CERT_TYPE.search(name) for name in names):
            certificates.append(node)
    if not certificates:
        raise InventoryError(f"{ctx.source}: Clixml holds no certificate objects")
    return [_clixml_record(node, refs, ctx) for node in certificates]


def _parse_xml(text: str, ctx: _Context) -> _Node:
    """Parse with expat (no DTDs: refused), keeping each element's line number."""
    parser = expat.ParserCreate(encoding="utf-8")
    root = _Node("", {}, 1)
    stack = [root]

    def start(tag: str, attrs: dict[str, str]) -> None:
        node = _Node(tag.rpartition(":")[2], attrs, parser.CurrentLineNumber)
        stack[-1].children.append(node)
        stack.append(node)

    def refuse(*_args: object) -> None:
        raise _DtdRefused

    parser.StartElementHandler = start
    parser.EndElementHandler = lambda _tag: stack.pop()
    parser.CharacterDataHandler = lambda data: stack[-1].parts.append(data)
    parser.StartDoctypeDeclHandler = refuse
    try:
        parser.Parse(text.encode("utf-8", "replace"), True)
    except _DtdRefused:
        raise InventoryError(f"{ctx.source}: Clixml with a DTD is refused") from None
    except expat.ExpatError as err:
        reason = expat.ErrorString(err.code)
        raise InventoryError(
            f"{ctx.source}: broken Clixml ({reason} at line {err.lineno})"
        ) from None
    return root


def _walk(root: _Node) -> Iterator[_Node]:
    """Every element in document order (no recursion: nesting depth is the file's choice)."""
    stack = [root]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(node.children))


def _type_names(obj: _Node, types: dict[str, list[str]]) -> list[str]:
    for child in obj.children:
        if child.tag == "TN":
            names = [t.text().strip() for t in child.children if t.tag == "T"]
            types[child.attrs.get("RefId", "")] = names
            return names
        if child.tag == "TNRef":
            return types.get(child.attrs.get("RefId", ""), [])
    return []


def _clixml_record(obj: _Node, refs: dict[str, _Node], ctx: _Context) -> CertificateRecord:
    """Facts from the ToString block and the properties; RawData then overrides them."""
    tostring = obj.child("ToString")
    fields = _tostring_fields(_unescape(tostring.text()) if tostring else "")
    for group in obj.children:
        if group.tag not in ("Props", "MS"):
            continue
        for prop in group.children:
            value = _clixml_value(prop, refs) if "N" in prop.attrs else None
            if value is not None:
                fields[prop.attrs["N"].lower()] = value
    problems = []
    if not isinstance(fields.get("rawdata"), bytes):
        fields.pop("rawdata", None)
        problems.append("no usable RawData in the Clixml object; facts taken from its text")
    return _build(fields, ctx, obj.line, problems)


def _tostring_fields(text: str) -> dict[str, object]:
    """The ``[Subject]`` / ``[Thumbprint]`` ... block X509Certificate.ToString() writes."""
    fields: dict[str, object] = {}
    key = None
    for line in _lines(text):
        if match := re.fullmatch(r"\s*\[([^\]]+)\]\s*", line):
            key = _TOSTRING_KEYS.get(match[1].strip().lower())
        elif key and line.strip() and key not in fields:
            fields[key] = line.strip()
    return fields


def _clixml_value(node: _Node, refs: dict[str, _Node], depth: int = 0) -> object:
    """A property's value: text, bool, int, bytes, a list, or an object's ToString."""
    tag = node.tag
    if tag == "Ref":
        target = refs.get(node.attrs.get("RefId", ""))
        return _clixml_value(target, refs, depth + 1) if target and depth < 4 else None
    if tag == "Obj":
        items = next((c for c in node.children if c.tag in _LIST_TAGS), None)
        if items is not None and depth < 4:
            values = (_clixml_value(item, refs, depth + 1) for item in items.children)
            return [value for value in values if value is not None]
        tostring = node.child("ToString")
        return _unescape(tostring.text()) if tostring is not None else None
    if tag == "Nil":
        return None
    text = _unescape(node.text())
    if tag == "B":
        return _bool(text)
    if tag in _INT_TAGS:
        return int(text) if re.fullmatch(r"\s*-?\d{1,20}\s*", text) else None
    if tag == "BA":
        return _b64(text)
    return text


def _unescape(text: str) -> str:
    """Clixml writes control and special characters as ``_xHHHH_`` (``_x000D__x000A_``)."""
    return re.sub(r"_x([0-9A-Fa-f]{4})_", lambda m: chr(int(m[1], 16)), text)


_READERS: dict[str, Callable[[str, _Context], list[CertificateRecord]]] = {
    "clixml": _read_clixml,
    "json": _read_json,
    "csv": _read_csv,
    "text": _read_text,
}

"""Connector settings from PowerShell exports: one ConnectorRecord per connector.

Reads ``Get-SendConnector``, ``Get-ReceiveConnector``, ``Get-AuthConfig`` and Exchange Online
``Get-InboundConnector`` / ``Get-OutboundConnector`` output saved as ``Format-List`` text,
``Export-Csv``, ``ConvertTo-Json`` or ``Export-Clixml``. One small parser per shape turns the
text into property bags; one builder maps a bag to a record.

The kind comes from the type name (Clixml ``<TN>``, CSV ``#TYPE``), else from properties only
one cmdlet writes (``AuthMechanism`` -> receive, ``SmartHosts`` -> send, ``SenderDomains`` ->
inbound, ...). Equivalent properties share a field: ``SmartHostAuthMechanism`` (send) fills
``auth_mechanism``, ``TlsSettings`` (outbound) fills ``tls_auth_level``, ``RecipientDomains``
(outbound) and ``SenderDomains`` (inbound) fill ``address_spaces``.

Numeric enums (ConvertTo-Json) are named only where the values are known from Exchange code and
samples: ``TlsAuthLevel`` 1/2/4, receive ``AuthMechanism`` flags (31 = ``Tls, Integrated,
BasicAuth, BasicAuthRequireTLS, ExchangeServer`` in a real Clixml sample), send
``SmartHostAuthMechanism``. Other numbers stay text and add a problem.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field

from loganalyzer.errors import InventoryError
from loganalyzer.inventory.dn import parse_tls_certificate_name
from loganalyzer.inventory.records import ConnectorRecord

__all__ = ["KINDS", "read_connectors", "sniff"]

KINDS = ("send", "receive", "inbound", "outbound", "authconfig")

#: last part of a type name -> kind (matched with endswith, so Deserialized./Selected./Tenant
#: prefixes do not matter).
_TYPE_KINDS = (
    ("smtpsendconnectorconfig", "send"),
    ("receiveconnector", "receive"),
    ("inboundconnector", "inbound"),
    ("outboundconnector", "outbound"),
    ("authconfig", "authconfig"),
)

#: properties only one cmdlet writes, checked in this order (outbound before send: both have
#: SmartHosts).
_MARKERS = (
    (
        "authconfig",
        (
            "CurrentCertificateThumbprint",
            "NextCertificateThumbprint",
            "PreviousCertificateThumbprint",
            "NextCertificateEffectiveDate",
        ),
    ),
    (
        "inbound",
        (
            "TlsSenderCertificateName",
            "SenderDomains",
            "SenderIPAddresses",
            "RestrictDomainsToCertificate",
            "RestrictDomainsToIPAddresses",
            "TreatMessagesAsInternal",
            "AssociatedAcceptedDomains",
            "EFSkipIPs",
            "EFSkipLastIP",
        ),
    ),
    (
        "outbound",
        (
            "RecipientDomains",
            "TlsSettings",
            "UseMXRecord",
            "RouteAllMessagesViaOnPremises",
            "IsTransportRuleScoped",
            "AllAcceptedDomains",
        ),
    ),
    (
        "receive",
        (
            "AuthMechanism",
            "PermissionGroups",
            "RemoteIPRanges",
            "TlsDomainCapabilities",
            "TransportRole",
        ),
    ),
    (
        "send",
        (
            "SmartHosts",
            "SmartHostsString",
            "AddressSpaces",
            "SourceTransportServers",
            "DNSRoutingEnabled",
            "SmartHostAuthMechanism",
            "TlsAuthLevel",
            "IgnoreSTARTTLS",
            "UseExternalDNSServersEnabled",
            "HomeMtaServerId",
        ),
    ),
)
_MARKER_KINDS = tuple((kind, {n.casefold() for n in names}) for kind, names in _MARKERS)
#: a record with one of these but no kind is a connector we cannot classify (error, not skip).
_TLS_PROPERTIES = ("tlscertificatename", "requiretls")

_TLS_AUTH_LEVELS = {1: "EncryptionOnly", 2: "CertificateValidation", 4: "DomainValidation"}
_RECEIVE_AUTH_FLAGS = (
    (1, "Tls"),
    (2, "Integrated"),
    (4, "BasicAuth"),
    (8, "BasicAuthRequireTLS"),
    (16, "ExchangeServer"),
    (32, "ExternalAuthoritative"),
)
_SEND_AUTH = {
    0: "None",
    2: "BasicAuth",
    4: "BasicAuthRequireTLS",
    8: "ExchangeServer",
    16: "ExternalAuthoritative",
}

_PROMPT = re.compile(r"(?:\[[^\]\r\n]*\]:[ \t]*)?(?:PS|\[PS\])[ \t][^>\r\n]*>")
_LABEL = re.compile(r"[A-Za-z_][\w.\-]*(?: [\w.\-]+)*")
_CLIXML = re.compile(r"<Objs\b|schemas\.microsoft\.com/powershell/2004/04")
_TYPE_NAME = re.compile(
    r"(?:Deserialized\.)?(?:System\.Collections\.|Microsoft\.Exchange\.)[\w.`+]*(?:\[.*\])?"
    r"|System\.\w+\[\]"
)
_THUMBPRINT = re.compile(r"[0-9A-F]{40}")
_SNIFF_KEYS = re.compile(
    r"(?:^[ \t]*|[\"\t,;])("
    + "|".join(sorted({n for _, names in _MARKERS for n in names} | {"TlsCertificateName"}))
    + r")(?=[\"\t,;]|[ \t]*:|[ \t]*$)",
    re.IGNORECASE | re.MULTILINE,
)
_SNIFF_TYPES = re.compile(
    r"\.(?:\w*InboundConnector|\w*OutboundConnector|SmtpSendConnectorConfig|ReceiveConnector"
    r"|AuthConfig)\b"
)
_SNIFF_LIMIT = 1 << 18
_MAX_DEPTH = 40


class _Obj(dict):
    """A Clixml object: its named members (case-folded names) and its ToString text."""

    def __init__(self, tostring: str | None = None) -> None:
        super().__init__()
        self.tostring = tostring


@dataclass
class _Raw:
    """One record as a shape parser read it: case-folded property names -> values."""

    where: str
    props: dict[str, object]
    types: tuple[str, ...] = ()
    tostring: str | None = None
    problems: list[str] = field(default_factory=list)
    displaced: list[_Obj] = field(default_factory=list)


class _XmlError(Exception):
    pass


# --------------------------------------------------------------------------- public API


def sniff(text: str) -> bool:
    """True when ``text`` looks like a connector or Get-AuthConfig export (any shape)."""
    shape = _shape(text)
    if shape is None:
        return False
    head = text[:_SNIFF_LIMIT]
    if shape in ("clixml", "csv") and _SNIFF_TYPES.search(head):
        return True
    if shape == "clixml":
        head = head.replace('N="', '"')
    return bool(_SNIFF_KEYS.search(head))


def read_connectors(text: str, source: str, *, kind: str | None = None) -> list[ConnectorRecord]:
    """Connector records from an export; ``source`` names the file in evidence and errors.

    ``kind`` forces the kind of every record (for property subsets such as
    ``fl Name,TlsCertificateName`` that no property identifies). Blank text gives ``[]``.
    Raises InventoryError for text that is not a readable connector export.
    """
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    text = _clean(text)
    shape = _shape(text)
    if shape is None:
        if not text.strip():
            return []
        raise InventoryError(f"{source}: not a connector export (Format-List, CSV, JSON, Clixml)")
    parser = {"list": _parse_list, "csv": _parse_csv, "json": _parse_json, "clixml": _parse_xml}
    raws = parser[shape](text, source)
    records = []
    for raw in raws:
        record = _build(raw, kind)
        if record is not None:
            records.append(record)
        elif any(name in raw.props for name in _TLS_PROPERTIES):
            raise InventoryError(
                f"{raw.where}: cannot tell which cmdlet wrote this record; export more "
                "properties (Format-List * or Export-Csv) or give the kind"
            )
    if raws and not records:
        raise InventoryError(f"{source}: no connector or Get-AuthConfig records found")
    if not records and shape in ("list", "csv") and not sniff(text):
        raise InventoryError(f"{source}: not a connector export (no connector properties)")
    return records


# --------------------------------------------------------------------------- shapes


def _clean(text: str) -> str:
    """Drop a BOM and blank out PowerShell prompt lines (line numbers stay)."""
    text = text.removeprefix("\ufeff")
    if "PS" not in text:
        return text
    lines = text.split("\n")
    return "\n".join("" if _PROMPT.match(line) else line for line in lines)


def _shape(text: str) -> str | None:
    for line in text.removeprefix("\ufeff").split("\n"):
        stripped = line.strip()
        if not stripped or _PROMPT.match(line):
            continue
        if stripped[0] == "<":
            return "clixml" if _CLIXML.search(text, 0, _SNIFF_LIMIT) else None
        if stripped[0] in "[{":
            return "json"
        if stripped[:5].upper() == "#TYPE":
            return "csv"
        if _label(line) is not None:
            return "list"
        if stripped[0] == '"' or "," in stripped or ";" in stripped or "\t" in stripped:
            return "csv"
        return None
    return None


def _label(line: str) -> tuple[str, str, int] | None:
    """(label, value, colon column) of a ``Label : value`` line, else None."""
    colon = line.find(":")
    if colon <= 0:
        return None
    label = line[:colon].strip()
    if not label or len(label) > 100 or not _LABEL.fullmatch(label):
        return None
    return label, line[colon + 1 :].lstrip(), colon


@dataclass
class _ListRecord:
    line: int
    value_col: int
    indent: int
    values: dict[str, list[str]] = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _parse_list(text: str, source: str) -> list[_Raw]:
    """Format-List text: ``Label : value`` lines, records split by blank lines."""
    lines = [line.rstrip("\r") for line in text.split("\n")]
    width = max((len(line.rstrip()) for line in lines), default=0)
    done: list[_ListRecord] = []
    current: _ListRecord | None = None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            _close(current, done)
            current = None
            continue
        indent = len(line) - len(line.lstrip())
        parsed = _label(line)
        if current is not None and (
            indent >= current.value_col or (parsed is None and indent > current.indent)
        ):
            text_part = line[current.value_col :] if indent >= current.value_col else line.strip()
            current.values[current.labels[-1]].append(text_part)
            continue
        if parsed is None:
            if current is not None:
                current.problems.append(f"line {number}: not 'Label : value', ignored")
            continue
        label, value, colon = parsed
        key = label.casefold()
        if current is not None and key in current.values:
            _close(current, done)  # a repeated label starts the next record
            current = None
        if current is None:
            current = _ListRecord(line=number, value_col=colon + 2, indent=indent)
        current.labels.append(key)
        current.names[key] = label
        current.values[key] = [value]
    _close(current, done)
    return [_list_raw(record, source, width) for record in done]


def _close(record: _ListRecord | None, done: list[_ListRecord]) -> None:
    if record is not None:
        done.append(record)


def _list_raw(record: _ListRecord, source: str, width: int) -> _Raw:
    raw = _Raw(where=f"{source}:{record.line}", props={}, problems=list(record.problems))
    for key, parts in record.values.items():
        value = _unwrap(parts, record.value_col, width)
        if value.startswith("{") and value.endswith("}"):
            inner = value[1:-1].strip()
            if inner.endswith("..."):
                raw.problems.append(
                    f"{record.names[key]}: list cut short by $FormatEnumerationLimit"
                )
                inner = inner[:-3].rstrip()
            raw.props[key] = [item.strip() for item in inner.split(", ")] if inner else []
        else:
            raw.props[key] = value
    return raw


def _unwrap(parts: list[str], value_col: int, width: int) -> str:
    """Re-join a value that Format-List wrapped over several lines.

    Word wrap leaves the space at the end of the first line; when that space was trimmed,
    a space is put back, unless the line is full width and the word across the break is
    longer than a line, which means a long word was cut.
    """
    value = last = parts[0]
    for part in parts[1:]:
        if not value.strip():
            value = part.lstrip()
        elif value[-1].isspace():
            value += part
        else:
            tail = value.rsplit(" ", 1)[-1]
            head = part.lstrip().split(" ", 1)[0]
            full = value_col + len(last.rstrip()) >= width
            cut = full and len(tail) + len(head) > width - value_col
            value += part if cut else " " + part.lstrip()
        last = part
    return value.strip()


def _parse_csv(text: str, source: str) -> list[_Raw]:
    """Export-Csv / ConvertTo-Csv: optional ``#TYPE`` line, header row, one row per record."""
    lines = text.split("\n")
    start = 0
    while start < len(lines) and not lines[start].strip():
        start += 1
    types: tuple[str, ...] = ()
    if start < len(lines) and lines[start].strip()[:5].upper() == "#TYPE":
        types = (lines[start].strip()[5:].strip(),)
        start += 1
    while start < len(lines) and not lines[start].strip():
        start += 1
    if start >= len(lines):
        raise InventoryError(f"{source}: CSV has no header row")
    header_line = lines[start]
    delimiter = max(",;\t", key=header_line.count)
    reader = csv.reader(io.StringIO("\n".join(lines[start:])), delimiter=delimiter)
    raws = []
    try:
        header = [name.strip().casefold() for name in next(reader)]
        previous = reader.line_num
        for row in reader:
            first_line = start + previous + 1
            previous = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            raw = _Raw(where=f"{source}:{first_line}", props={}, types=types)
            if len(row) > len(header):
                raw.problems.append(f"{len(row) - len(header)} value(s) beyond the header ignored")
            for name, cell in zip(header, row, strict=False):
                if name:
                    raw.props[name] = cell
            raws.append(raw)
    except csv.Error as error:
        raise InventoryError(f"{source}:{start + reader.line_num}: bad CSV ({error})") from None
    return raws


def _parse_json(text: str, source: str) -> list[_Raw]:
    """ConvertTo-Json: one object or an array of objects (PowerShell 5.1 and 7)."""
    try:
        items = _json_items(text)
    except json.JSONDecodeError as error:
        raise InventoryError(f"{source}:{error.lineno}: not valid JSON ({error.msg})") from None
    except RecursionError:
        raise InventoryError(f"{source}: JSON nested too deeply") from None
    except ValueError as error:  # e.g. an integer too long to convert
        raise InventoryError(f"{source}: not valid JSON ({error})") from None
    raws = []
    for index, (line, item) in enumerate(items, 1):
        where = f"{source}:{line}" if line else f"{source}#{index}"
        if not isinstance(item, dict):
            raise InventoryError(f"{where}: expected a JSON object per connector")
        props = {str(key).casefold(): value for key, value in item.items()}
        raws.append(_Raw(where=where, props=props))
    return raws


def _json_items(text: str) -> list[tuple[int | None, object]]:
    """Top-level JSON values with the line each starts on (None when unknown)."""
    decoder = json.JSONDecoder()
    i = _skip_json_space(text, 0)
    if text.startswith("[", i):
        items: list[tuple[int | None, object]] = []
        i = _skip_json_space(text, i + 1)
        if text.startswith("]", i):
            i += 1
        else:
            while True:
                value, end = decoder.raw_decode(text, i)
                items.append((text.count("\n", 0, i) + 1, value))
                i = _skip_json_space(text, end)
                if text.startswith(",", i):
                    i = _skip_json_space(text, i + 1)
                    continue
                if text.startswith("]", i):
                    i += 1
                    break
                raise json.JSONDecodeError("expected ',' or ']'", text, i)
    else:
        start = i
        value, i = decoder.raw_decode(text, i)
        wrapped = _array_wrapper(value)
        if wrapped is None:
            items = [(text.count("\n", 0, start) + 1, value)]
        else:
            items = [(None, item) for item in wrapped]
    if _skip_json_space(text, i) != len(text):
        raise json.JSONDecodeError("extra data after the JSON value", text, i)
    return items


def _skip_json_space(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i


def _array_wrapper(value: object) -> list | None:
    """PowerShell 5.1 sometimes writes an array as ``{"value": [...], "Count": n}``."""
    if isinstance(value, dict) and {str(k).casefold() for k in value} == {"value", "count"}:
        items = next(v for k, v in value.items() if str(k).casefold() == "value")
        return items if isinstance(items, list) else None
    return None


# --------------------------------------------------------------------------- Clixml


@dataclass
class _Node:
    tag: str
    attrs: dict[str, str]
    line: int
    children: list[_Node] = field(default_factory=list)
    text: list[str] = field(default_factory=list)

    def value(self) -> str:
        return "".join(self.text)

    def named(self) -> str | None:
        return self.attrs.get("N")


_TAG = re.compile(
    r"<(/?)([A-Za-z_][\w.\-:]*)((?:\s+[^\s=/>]+\s*=\s*(?:\"[^\"<]*\"|'[^'<]*'))*)\s*(/?)>"
)
_ATTR = re.compile(r"([^\s=/>]+)\s*=\s*(?:\"([^\"<]*)\"|'([^'<]*)')")
_ENTITY = re.compile(r"&(lt|gt|amp|quot|apos|#[0-9]{1,7}|#x[0-9A-Fa-f]{1,6});")
_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'"}
_CLIXML_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")
_CONTAINERS = ("LST", "IE", "STK", "QUE")


def _parse_xml(text: str, source: str) -> list[_Raw]:
    """Export-Clixml, read tolerantly: an excerpt with unclosed or missing tags still reads."""
    try:
        root, well_formed = _xml_tree(text)
    except _XmlError as error:
        raise InventoryError(f"{source}: bad Clixml ({error})") from None
    objects: dict[str, _Node] = {}
    type_names: dict[str, list[str]] = {}
    stack = [root]
    while stack:
        node = stack.pop()
        ref = node.attrs.get("RefId")
        if ref is not None and node.tag == "Obj":
            objects.setdefault(ref, node)
        elif ref is not None and node.tag == "TN":
            type_names.setdefault(ref, [c.value().strip() for c in node.children if c.tag == "T"])
        stack.extend(node.children)
    tops = [c for c in root.children if c.tag == "Obj"]
    for objs in (c for c in root.children if c.tag == "Objs"):
        tops.extend(c for c in objs.children if c.tag == "Obj")
    tops.sort(key=lambda node: node.line)
    raws = []
    for node in tops:
        raw = _Raw(where=f"{source}:{node.line}", props={})
        if not well_formed:
            raw.problems.append("Clixml is not well-formed (an excerpt?); read tolerantly")
        convert = _Converter(objects)
        for child in node.children:
            if child.tag == "TN":
                raw.types = tuple(c.value().strip() for c in child.children if c.tag == "T")
            elif child.tag == "TNRef":
                raw.types = tuple(type_names.get(child.attrs.get("RefId", ""), ()))
            elif child.tag == "ToString":
                raw.tostring = _clixml_text(child.value())
            elif child.tag in ("Props", "MS"):
                _clixml_members(child, raw, convert)
        raws.append(raw)
    return raws


def _clixml_members(members: _Node, raw: _Raw, convert: _Converter) -> None:
    """Named members into ``raw.props``; unnamed fragments (an excerpt lost their parent)
    are kept in ``raw.displaced`` when they form an object, else counted as ignored."""
    pending: str | None = None
    ignored = 0
    for child in members.children:
        name = child.named()
        if name is not None:
            raw.props[name.casefold()] = convert(child, 0)
            ignored += pending is not None
            pending = None
        elif child.tag == "ToString":
            ignored += pending is not None
            pending = _clixml_text(child.value())
        elif child.tag == "Props":
            obj = _Obj(pending)
            for member in child.children:
                if member.named() is not None:
                    obj[member.named().casefold()] = convert(member, 0)
            raw.displaced.append(obj)
            pending = None
        else:
            ignored += 1
    ignored += pending is not None
    if ignored:
        raw.problems.append(f"{ignored} unnamed Clixml fragment(s) ignored")


class _Converter:
    """Clixml values: primitives as text (``B`` as bool), objects as ``_Obj`` or lists.

    Each object is converted once (``Ref`` cycles and shared objects stay linear); a ``Ref``
    back into an object being converted gives None.
    """

    def __init__(self, objects: dict[str, _Node]) -> None:
        self.objects = objects
        self.done: dict[int, object] = {}
        self.active: set[int] = set()

    def __call__(self, node: _Node, depth: int) -> object:
        if depth > _MAX_DEPTH or node.tag == "Nil":
            return None
        if node.tag == "Ref":
            target = self.objects.get(node.attrs.get("RefId", ""))
            return None if target is None else self(target, depth + 1)
        if node.tag == "B":
            flag = node.value().strip().casefold()
            return {"true": True, "false": False}.get(flag, node.value())
        if node.tag != "Obj":
            return _clixml_text(node.value())
        key = id(node)
        if key in self.done:
            return self.done[key]
        if key in self.active:
            return None
        self.active.add(key)
        value = self._object(node, depth)
        self.active.discard(key)
        self.done[key] = value
        return value

    def _object(self, node: _Node, depth: int) -> object:
        obj = _Obj()
        items: list[object] | None = None
        for child in node.children:
            if child.tag == "ToString":
                obj.tostring = _clixml_text(child.value())
            elif child.tag in ("Props", "MS"):
                for member in child.children:
                    if member.named() is not None:
                        obj[member.named().casefold()] = self(member, depth + 1)
            elif child.tag in _CONTAINERS:
                items = (items or []) + [self(c, depth + 1) for c in child.children]
        return obj if items is None else items


def _clixml_text(text: str) -> str:
    """Undo Clixml's ``_xHHHH_`` escapes (CR/LF, control characters, surrogate halves)."""
    if "_x" not in text:
        return text
    text = _CLIXML_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _xml_tree(text: str) -> tuple[_Node, bool]:
    """A tolerant XML reader: (root, well_formed). Unclosed elements close at the end,
    stray end tags are skipped; DTDs are refused."""
    root = _Node("#root", {}, 1)
    stack = [root]
    well_formed = True
    pos, line, n = 0, 1, len(text)
    while pos < n:
        start = text.find("<", pos)
        if start < 0:
            start = n
        if start > pos:
            stack[-1].text.append(_unescape(text[pos:start]))
            line += text.count("\n", pos, start)
        if start >= n:
            break
        if text.startswith("<!--", start):
            end = _find_end(text, "-->", start + 4)
        elif text.startswith("<![CDATA[", start):
            end = _find_end(text, "]]>", start + 9)
            stack[-1].text.append(text[start + 9 : max(start + 9, end - 3)])
        elif text.startswith("<?", start):
            end = _find_end(text, "?>", start + 2)
        elif text.startswith("<!", start):
            raise _XmlError(f"line {line}: DTDs and entity declarations are not supported")
        else:
            match = _TAG.match(text, start)
            if match is None:
                raise _XmlError(f"line {line}: malformed tag")
            end = match.end()
            closing, tag, attributes, empty = match.groups()
            if closing:
                if any(node.tag == tag for node in stack[1:]):
                    while stack[-1].tag != tag:
                        stack.pop()
                        well_formed = False
                    stack.pop()
                else:
                    well_formed = False
            else:
                attrs = {
                    m.group(1): _unescape(m.group(2) if m.group(2) is not None else m.group(3))
                    for m in _ATTR.finditer(attributes)
                }
                node = _Node(tag, attrs, line)
                stack[-1].children.append(node)
                if not empty:
                    stack.append(node)
        line += text.count("\n", start, end)
        pos = end
    return root, well_formed and len(stack) == 1


def _find_end(text: str, marker: str, start: int) -> int:
    end = text.find(marker, start)
    return len(text) if end < 0 else end + len(marker)


def _unescape(text: str) -> str:
    if "&" not in text:
        return text

    def entity(match: re.Match[str]) -> str:
        name = match.group(1)
        if name[0] != "#":
            return _ENTITIES[name]
        code = int(name[2:], 16) if name[1] in "xX" else int(name[1:])
        return chr(code) if 0 < code < 0x110000 and not 0xD800 <= code < 0xE000 else "\ufffd"

    return _ENTITY.sub(entity, text)


# --------------------------------------------------------------------------- records


def _build(raw: _Raw, forced: str | None) -> ConnectorRecord | None:
    """The record for one property bag, or None when it is no connector we know."""
    props = raw.props
    kind = forced or _kind_from_types(raw.types) or _kind_from_props(props, raw)
    if kind is None:
        return None
    problems = raw.problems
    identity = _text(props.get("identity"), problems, "Identity") or _text(raw.tostring, [], "")
    name = _text(props.get("name"), problems, "Name") or identity
    prefix = None
    if identity and "\\" in identity:
        prefix = identity.split("\\", 1)[0].strip() or None
    if name and "\\" in name:
        name = name.split("\\", 1)[1].strip()
    if not name:
        problems.append("no Name or Identity")
    record = ConnectorRecord(source=raw.where, kind=kind, name=name or "")
    if kind == "authconfig":
        record.auth_thumbprints = _thumbprints(props, problems)
    else:
        _fill_connector(record, raw, prefix)
    record.problems = tuple(problems)
    return record


def _fill_connector(record: ConnectorRecord, raw: _Raw, prefix: str | None) -> None:
    props, problems, kind = raw.props, raw.problems, record.kind
    record.fqdn = _text(props.get("fqdn"), problems, "Fqdn")
    record.enabled = _bool(props.get("enabled"), problems, "Enabled")
    record.require_tls = _bool(props.get("requiretls"), problems, "RequireTLS")
    record.tls_domain = _text(props.get("tlsdomain"), problems, "TlsDomain")
    record.ignore_starttls = _bool(props.get("ignorestarttls"), problems, "IgnoreSTARTTLS")
    level = _text(props.get("protocollogginglevel"), problems, "ProtocolLoggingLevel")
    record.protocol_logging_level = {"0": "None", "1": "Verbose"}.get(level or "", level)
    record.cloud_services_mail_enabled = _bool(
        props.get("cloudservicesmailenabled"), problems, "CloudServicesMailEnabled"
    )
    name = _text(props.get("tlscertificatename"), problems, "TlsCertificateName")
    record.tls_certificate_name = name
    if name is not None:
        try:
            record.tls_cert_issuer, record.tls_cert_subject = parse_tls_certificate_name(name)
        except ValueError:
            problems.append("TlsCertificateNameSyntaxInvalid: no <I>/<S> markers")
        else:
            if record.tls_cert_subject is None:
                problems.append("TlsCertificateNameSyntaxInvalid: no <S> subject")
    if kind == "send":
        servers = _items(props.get("sourcetransportservers"), problems, "SourceTransportServers")
        record.server = servers[0] if servers else None
        if len(servers) > 1:
            problems.append(
                f"SourceTransportServers has {len(servers)} servers ({', '.join(servers)}); "
                "server is the first"
            )
        record.tls_auth_level = _enum(
            props.get("tlsauthlevel"), _TLS_AUTH_LEVELS, problems, "TlsAuthLevel"
        )
        record.auth_mechanism = _enum(
            props.get("smarthostauthmechanism"), _SEND_AUTH, problems, "SmartHostAuthMechanism"
        )
        record.address_spaces = _address_spaces(raw)
    elif kind == "receive":
        record.server = _text(props.get("server"), problems, "Server") or prefix
        record.auth_mechanism = _flags(props.get("authmechanism"), problems, "AuthMechanism")
        record.bindings = _items(props.get("bindings"), problems, "Bindings")
    elif kind == "outbound":
        record.tls_auth_level = _enum(props.get("tlssettings"), {}, problems, "TlsSettings")
        record.address_spaces = _items(props.get("recipientdomains"), problems, "RecipientDomains")
    elif kind == "inbound":
        record.tls_sender_certificate_name = _text(
            props.get("tlssendercertificatename"), problems, "TlsSenderCertificateName"
        )
        record.address_spaces = _items(props.get("senderdomains"), problems, "SenderDomains")
    if kind in ("send", "outbound"):
        record.smart_hosts = _items(props.get("smarthosts"), problems, "SmartHosts")
        if not record.smart_hosts:
            record.smart_hosts = _items(props.get("smarthostsstring"), [], "SmartHostsString")


def _address_spaces(raw: _Raw) -> tuple[str, ...]:
    """AddressSpaces; from displaced Clixml fragments when an excerpt lost the property."""
    value = raw.props.get("addressspaces")
    if value is not None or not raw.displaced:
        return _items(value, raw.problems, "AddressSpaces", semicolons=False)
    found = []
    for obj in raw.displaced:
        text = _address_space(obj, raw.problems, 0)
        if text is not None:
            found.append(obj.tostring.strip() if obj.tostring else text)
    if found:
        raw.problems.append("AddressSpaces recovered from Clixml fragments outside the property")
    return tuple(found)


def _kind_from_types(types: tuple[str, ...]) -> str | None:
    for type_name in types:
        last = re.sub(r"\[.*$", "", type_name.strip()).rsplit(".", 1)[-1].casefold()
        for suffix, kind in _TYPE_KINDS:
            if last.endswith(suffix):
                return kind
    return None


def _kind_from_props(props: dict[str, object], raw: _Raw) -> str | None:
    for kind, names in _MARKER_KINDS:
        if any(name in props for name in names):
            return kind
    identity = _text(props.get("identity"), [], "Identity") or _text(raw.tostring, [], "")
    if identity and "\\" in identity and "tlscertificatename" in props:
        return "receive"  # only receive connectors are named SERVER\Name
    return None


def _thumbprints(props: dict[str, object], problems: list[str]) -> dict[str, str]:
    out = {}
    for key in ("current", "next", "previous"):
        label = f"{key.capitalize()}CertificateThumbprint"
        text = _text(props.get(label.casefold()), problems, label)
        if not text:
            continue
        clean = re.sub(r"[\s:\u200e\u200f]", "", text).upper()
        if _THUMBPRINT.fullmatch(clean):
            out[key] = clean
        else:
            problems.append(f"{label}: {text!r} is not 40 hex digits")
            out[key] = text
    return out


# --------------------------------------------------------------------------- values


def _text(value: object, problems: list[str], label: str, depth: int = 0) -> str | None:
    """A value as one string (objects by their ToString or known members), blank -> None."""
    if value is None or depth > _MAX_DEPTH:
        return None
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, _Obj) and value.tostring and value.tostring.strip():
        return value.tostring.strip()
    if isinstance(value, dict):
        return _object_text(value, problems, label, depth)
    if isinstance(value, list):
        items = [t for v in value if (t := _text(v, problems, label, depth + 1)) is not None]
        if len(items) > 1:
            problems.append(f"{label}: expected one value, got {len(items)}")
        return ", ".join(items) or None
    return str(value)


def _object_text(value: dict, problems: list[str], label: str, depth: int) -> str | None:
    """Text for a nested object (ConvertTo-Json, or Clixml without ToString)."""
    members = {str(k).casefold(): v for k, v in value.items()}

    def member(name: str) -> str | None:
        return _text(members.get(name), problems, label, depth + 1)

    if "certificatesubject" in members:
        subject, issuer = member("certificatesubject"), member("certificateissuer")
        if subject is None:
            return None
        return f"<I>{issuer}<S>{subject}" if issuer else f"<S>{subject}"
    space = _address_space(members, problems, depth)
    if space is not None:
        return space
    if "port" in members and "address" in members:
        address = member("address")
        if isinstance(members["address"], dict):
            address = _text(members["address"].get("IPAddressToString"), [], label) or address
        if address and ":" in address:
            address = f"[{address}]"
        return f"{address}:{member('port')}" if address else None
    if members.get("isipaddress") is True and "address" in members:
        return member("address")
    for name in ("domain", "name", "ipaddresstostring", "value"):
        if name in members:
            return member(name)
    problems.append(f"{label}: a nested object without a text form (export it as text)")
    return None


def _address_space(members: dict, problems: list[str], depth: int) -> str | None:
    """``Type:Address;Cost`` for an AddressSpace object's members, else None."""
    if not {"type", "address", "cost"} <= set(members):
        return None
    kind = _text(members["type"], problems, "AddressSpaces", depth + 1)
    address = _text(members["address"], problems, "AddressSpaces", depth + 1)
    cost = _text(members["cost"], problems, "AddressSpaces", depth + 1)
    if not kind or not address:
        return None
    return f"{kind}:{address};{cost}" if cost else f"{kind}:{address}"


def _items(
    value: object, problems: list[str], label: str, *, semicolons: bool = True
) -> tuple[str, ...]:
    """A collection as text items; strings split on ``,``/``;``/spaces (CSV, calculated
    properties). ``semicolons=False`` keeps ``;`` inside items (``SMTP:*;1``)."""
    if value is None:
        return ()
    if isinstance(value, dict) and not isinstance(value, _Obj):
        wrapped = _array_wrapper(value)
        if wrapped is not None:
            value = wrapped
    if isinstance(value, list):
        return tuple(t for v in value if (t := _text(v, problems, label, 1)) is not None)
    text = _text(value, problems, label)
    if text is None:
        return ()
    if _TYPE_NAME.fullmatch(text):
        problems.append(f"{label}: the export holds the collection's type name, not its items")
        return ()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    if text.rstrip().endswith("..."):
        problems.append(f"{label}: list cut short by $FormatEnumerationLimit")
        text = text.rstrip()[:-3]
    pattern = r"[\s,;]+" if semicolons else r"[\s,]+"
    return tuple(item for item in re.split(pattern, text) if item)


def _bool(value: object, problems: list[str], label: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    text = _text(value, problems, label)
    if text is None:
        return None
    folded = text.casefold().removeprefix("$")
    if folded in ("true", "false"):
        return folded == "true"
    problems.append(f"{label}: {text!r} is not True/False")
    return None


def _number(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,9}", value.strip()):
        return int(value.strip())
    return None


def _enum(value: object, names: dict[int, str], problems: list[str], label: str) -> str | None:
    """An enum's name; a number is named only from ``names``, else kept with a problem."""
    number = _number(value)
    if number is None:
        return _text(value, problems, label)
    if number in names:
        return names[number]
    problems.append(f"{label}: numeric value {number} not mapped to a name")
    return str(number)


def _flags(value: object, problems: list[str], label: str) -> str | None:
    """Receive ``AuthMechanism``: a flags number becomes ``Tls, Integrated, ...``."""
    number = _number(value)
    if number is None:
        return _text(value, problems, label)
    known = sum(bit for bit, _ in _RECEIVE_AUTH_FLAGS)
    if number & ~known:
        problems.append(f"{label}: numeric value {number} has unknown flag bits")
        return str(number)
    return ", ".join(name for bit, name in _RECEIVE_AUTH_FLAGS if number & bit) or "None"

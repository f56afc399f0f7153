"""Make sample_logs/inventory/ and align the sample logs' certificate facts with it.

Run from anywhere: ``python sample_logs/make_inventory.py`` (standard library + cryptography).

Not deterministic: every run makes NEW keys, so new certificates and new thumbprints. A run
regenerates everything at once: it rewrites the files in ``inventory/``, the local-certificate
rows of the logs in ``exchange/`` (thumbprint, subject, issuer, serial, SANs, and the dates of
the one-row form) and the thumbprints in ``README.md``. Afterwards regenerate the goldens:
``python -m pytest tests/test_sample_logs.py --update-golden``.

Only the private key inside the PFX is kept. It is a TEST-ONLY key (password
``loganalyzer-sample``) for a made-up name and must never protect anything.
"""

from __future__ import annotations

import base64
import csv
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from xml.sax.saxutils import escape

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HERE = Path(__file__).resolve().parent
LOGS = HERE / "exchange"
OUT = HERE / "inventory"
README = HERE / "README.md"
PFX_NAME = "mail-corp-example-com.TEST-ONLY-KEY.pfx"
PFX_PASSWORD = b"loganalyzer-sample"
EXPORTED = datetime(2026, 11, 27, 5, 30, 0, tzinfo=UTC)  # when the exports were taken
CRLF = "\r\n"


def utc(*args: int) -> datetime:
    """A UTC datetime."""
    return datetime(*args, tzinfo=UTC)


@dataclass
class Spec:
    """One certificate: names, validity and how Exchange shows it."""

    key: str
    subject: str
    issuer: str  # key of the issuing Spec; "self" for self-signed
    serial: int
    not_before: datetime
    not_after: datetime
    sans: tuple[str, ...] = ()
    services: str = "......."  # ServicesStringForm
    servers: tuple[str, ...] = ()
    friendly: str = ""
    has_key: bool = True
    exportable: bool = False
    root_type: str = "ThirdParty"
    ca: bool = False
    note: str = ""


ROOT, CA1, CA2 = "example-root-ca", "example-issuing-ca-1", "example-issuing-ca-2"
CORP_CA = "example-corp-internal-ca"
MAIL = "CN=mail.corp.example.com, O=Example Corp, L=Springfield, S=Example State, C=US"
MAIL_SANS = ("mail.corp.example.com", "autodiscover.corp.example.com")
AUTH = "CN=Microsoft Exchange Server Auth Certificate"

SPECS = [
    Spec(ROOT, "CN=Example Root CA, O=Example Trust, C=US", "self",
         0x1F3A5C7E9B0D2F4A6C8E0B1D3F5A7C9E, utc(2021, 1, 1), utc(2041, 1, 1), ca=True),
    Spec(CA1, "CN=Example Issuing CA 1, O=Example Trust, C=US", ROOT,
         0x3B9E4F2A7C1D6E5F80A1B2C3D4E5F601, utc(2021, 6, 1), utc(2031, 6, 1), ca=True),
    Spec(CA2, "CN=Example Issuing CA 2, O=Example Trust, C=US", ROOT,
         0x3B9E4F2A7C1D6E5F80A1B2C3D4E5F602, utc(2021, 6, 1), utc(2031, 6, 1), ca=True),
    Spec(CORP_CA, "CN=Example Corp Internal CA, DC=corp, DC=example, DC=com", "self",
         0x1D7A3F9E0B5C42E68C4F1A2B3C4D5E6F, utc(2020, 9, 15, 10), utc(2035, 9, 15, 10),
         ca=True, root_type="Enterprise"),
    Spec("mail-corp-example-com-2026", MAIL, CA2,
         0x4F00000A3C1D9B7E26A5C8F10000000000A3C1, utc(2026, 3, 2), utc(2027, 3, 2, 23, 59, 59),
         MAIL_SANS, "IP.WS..", ("EX01", "EX02"), "mail.corp.example.com 2026", exportable=True,
         note="current public certificate; the one in the PFX"),
    Spec("mail-corp-example-com-2026-renewal-no-key", MAIL, CA2,
         0x4F00000B7E52A01C9D33F4620000000000B7E5, utc(2026, 11, 20),
         utc(2027, 11, 20, 23, 59, 59), MAIL_SANS, ".......", ("EX01",),
         "mail.corp.example.com 2026-11 (imported .cer)", has_key=False,
         note="same names as the current one, no private key: Outbound to Office 365 picks it "
         "(UnknownCredentials in the logs)"),
    Spec("mail-corp-example-com-2026-11-issuing-ca-1", MAIL, CA1,
         0x1A00000C5E8B2D7F41A9C3E60000000000C5E8, utc(2026, 11, 27),
         utc(2027, 11, 27, 23, 59, 59), MAIL_SANS, "IP.W...", ("EX01", "EX02"),
         "mail.corp.example.com 2026-11 renewal", exportable=True,
         note="renewal with a CHANGED issuer and IIS only (SMTP not enabled); no "
         "TlsCertificateName names it"),
    Spec("mail-corp-example-com-2025-expired", MAIL, CA2,
         0x4F000009D41E7A2C58B3F60E0000000000D41E, utc(2025, 2, 20),
         utc(2026, 3, 6, 23, 59, 59), MAIL_SANS, "....S..", ("EX01",),
         "mail.corp.example.com 2025", note="the previous public certificate, expired"),
    Spec("wildcard-corp-example-com", "CN=*.corp.example.com, O=Example Corp, L=Springfield, "
         "S=Example State, C=US", CA1, 0x1A000007B2F4E9C1D3A5876F0000000000B2F4,
         utc(2025, 12, 15), utc(2026, 12, 15, 23, 59, 59),
         ("*.corp.example.com", "corp.example.com"), ".......", ("EX01", "EX02"),
         "corp.example.com wildcard", exportable=True,
         note="wildcard, no services; expires within 30 days of 2026-11-27"),
    Spec("ex01-transport-self-signed", "CN=EX01", "self",
         0x5A1C3E7F9B2D4E6A8C0E2F4A6B8D0C1E, utc(2024, 5, 14, 9, 12, 44),
         utc(2029, 5, 14, 9, 12, 44), ("EX01", "ex01.corp.example.com"), "....S..", ("EX01",),
         "Microsoft Exchange", root_type="Registry", note="EX01 internal transport (self-signed)"),
    Spec("ex02-transport-self-signed", "CN=EX02", "self",
         0x2B7D9F1A3C5E7092B4D6F8A0C2E4F617, utc(2024, 5, 14, 9, 31, 2),
         utc(2029, 5, 14, 9, 31, 2), ("EX02", "ex02.corp.example.com"), "....S..", ("EX02",),
         "Microsoft Exchange", root_type="Registry", note="EX02 internal transport (self-signed)"),
    Spec("ex01-corp-example-com-internal-ca", "CN=ex01.corp.example.com, OU=IT, O=Example Corp, "
         "L=Springfield, S=Example State, C=US", CORP_CA, 0x610A8B4C000000000027,
         utc(2025, 12, 1), utc(2027, 12, 1), ("ex01.corp.example.com", "mail.corp.example.com"),
         "....S..", ("EX01",), "ex01 SMTP (Example Corp Internal CA)", root_type="Enterprise",
         note="EX01's certificate in the Exchange 2010 sample log"),
    Spec("exchange-server-auth-certificate", AUTH, "self",
         0x4C2E9A7B1D3F5E60718293A4B5C6D7E8, utc(2024, 5, 14, 9, 20, 31),
         utc(2029, 5, 14, 9, 20, 31), (), "....S..", ("EX01", "EX02"), AUTH, exportable=True,
         root_type="None", note="Exchange Auth (OAuth) certificate; Get-AuthConfig names it"),
]  # fmt: skip
BY_KEY = {spec.key: spec for spec in SPECS}
CURRENT = BY_KEY["mail-corp-example-com-2026"]

# --------------------------------------------------------------------------- names

_OIDS = {
    "CN": NameOID.COMMON_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "L": NameOID.LOCALITY_NAME,
    "S": NameOID.STATE_OR_PROVINCE_NAME,
    "C": NameOID.COUNTRY_NAME,
    "DC": NameOID.DOMAIN_COMPONENT,
}
_KEYS = {oid: key for key, oid in _OIDS.items()}


def make_name(display: str) -> x509.Name:
    """A Name from a Windows DN (``CN=a, O=b, C=US``): DER order is the reverse (C ... CN)."""
    pairs = [part.split("=", 1) for part in display.split(", ")]
    return x509.Name([x509.NameAttribute(_OIDS[k], v) for k, v in reversed(pairs)])


def windows_dn(name: x509.Name) -> str:
    """The DN as Windows prints it: last RDN first, ``, `` between RDNs, ``S=`` for state."""
    parts = []
    for rdn in reversed(name.rdns):
        items = []
        for attr in rdn:
            value = str(attr.value)
            if re.search(r'^\s|\s$|[,+="\n<>#;]', value):
                value = '"' + value.replace('"', '""') + '"'
            items.append(f"{_KEYS[attr.oid]}={value}")
        parts.append(" + ".join(items))
    return ", ".join(parts)


# --------------------------------------------------------------------------- certificates


@dataclass
class Made:
    """A generated certificate and the facts every output takes from it."""

    spec: Spec
    cert: x509.Certificate
    key: rsa.RSAPrivateKey

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def thumbprint(self) -> str:
        return self.cert.fingerprint(hashes.SHA1()).hex().upper()

    @property
    def serial(self) -> str:
        return format(self.cert.serial_number, "X")

    @property
    def subject(self) -> str:
        return windows_dn(self.cert.subject)

    @property
    def issuer(self) -> str:
        return windows_dn(self.cert.issuer)

    @property
    def sans(self) -> list[str]:
        try:
            ext = self.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        except x509.ExtensionNotFound:
            return []
        return ext.value.get_values_for_type(x509.DNSName)

    @property
    def domains(self) -> list[str]:
        """CertificateDomains: subject CN (if a host name) then SAN DNS names, no repeats."""
        cn = self.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        names = [cn] if re.fullmatch(r"[\w*.-]+", str(cn)) else []
        return list(dict.fromkeys([*names, *self.sans]))

    @property
    def ski(self) -> str:
        """The key identifier computed from the public key (Exchange's KeyIdentifier)."""
        ski = x509.SubjectKeyIdentifier.from_public_key(self.cert.public_key())
        return ski.digest.hex().upper()


def build_all() -> dict[str, Made]:
    """Keys and certificates for every Spec (issuers first)."""
    made: dict[str, Made] = {}
    for spec in SPECS:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        issuer = made[spec.issuer] if spec.issuer != "self" else None
        builder = (
            x509.CertificateBuilder()
            .subject_name(make_name(spec.subject))
            .issuer_name(issuer.cert.subject if issuer else make_name(spec.subject))
            .public_key(key.public_key())
            .serial_number(spec.serial)
            .not_valid_before(spec.not_before)
            .not_valid_after(spec.not_after)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        )
        if issuer:
            aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key())
            builder = builder.add_extension(aki, False)
        builder = _usage(builder, spec, issuer is None)
        cert = builder.sign(issuer.key if issuer else key, hashes.SHA256())
        made[spec.key] = Made(spec, cert, key)
        _check(made[spec.key])
    return made


def _usage(builder: x509.CertificateBuilder, spec: Spec, root: bool) -> x509.CertificateBuilder:
    if spec.ca:
        usage = x509.KeyUsage(True, False, False, False, False, True, True, False, False)
        path = None if root else 0
        return builder.add_extension(x509.BasicConstraints(True, path), True).add_extension(
            usage, True
        )
    usage = x509.KeyUsage(True, False, True, False, False, False, False, False, False)
    builder = builder.add_extension(x509.BasicConstraints(False, None), True)
    builder = builder.add_extension(usage, True)
    if spec.subject != AUTH:
        eku = [ExtendedKeyUsageOID.SERVER_AUTH]
        if spec.issuer != "self":
            eku.append(ExtendedKeyUsageOID.CLIENT_AUTH)
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), False)
    if spec.sans:
        san = x509.SubjectAlternativeName([x509.DNSName(n) for n in spec.sans])
        builder = builder.add_extension(san, False)
    return builder


def _check(item: Made) -> None:
    """The certificate shows exactly the names, serial and dates of its Spec."""
    spec = item.spec
    assert item.subject == spec.subject, (item.subject, spec.subject)
    issuer = spec.subject if spec.issuer == "self" else BY_KEY[spec.issuer].subject
    assert item.issuer == issuer, (item.issuer, issuer)
    assert item.serial == format(spec.serial, "X") and len(item.serial) % 2 == 0
    assert item.serial[0] in "1234567", "high bit set: .NET would add a leading 00"
    assert item.cert.not_valid_before_utc == spec.not_before
    assert item.cert.not_valid_after_utc == spec.not_after
    assert tuple(item.sans) == spec.sans


# --------------------------------------------------------------------------- sample logs

CERT_ROWS = {
    "Certificate subject": "subject",
    "Certificate issuer name": "issuer",
    "Certificate serial number": "serial",
    "Certificate thumbprint": "thumbprint",
    "Certificate alternate names": "sans",
}
BLOCK_STARTS = ("Sending certificate", "Remote certificate", "Received certificate")
ONE_ROW = re.compile(r"(Sending|Remote) certificate Subject Issuer name Serial number ")
BOM = b"\xef\xbb\xbf"


def csv_field(value: str) -> str:
    """Quoted iff it holds ``,`` or ``"`` (embedded quotes doubled), as Exchange writes."""
    return '"' + value.replace('"', '""') + '"' if ("," in value or '"' in value) else value


def iso_ms(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + ".000Z"


def fact(item: Made, kind: str) -> str:
    """A certificate fact in the form the multi-row block logs it."""
    if kind == "sans":
        return ";".join(item.sans)
    return getattr(item, kind)


def rewrite_logs(made: dict[str, Made]) -> dict[str, str]:
    """Rewrite every local-certificate row; returns old -> new thumbprints."""
    by_serial = {item.serial: item for item in made.values() if not item.spec.ca}
    files = sorted(p for p in LOGS.rglob("*") if p.is_file() and p.suffix.lower() == ".log")
    parsed = {}
    renamed: dict[str, str] = {}
    for path in files:
        raw = path.read_bytes()
        assert raw.startswith(BOM), path
        lines = raw[len(BOM) :].decode("utf-8").split(CRLF)
        edits = _find_edits(lines, by_serial, renamed)
        parsed[path] = (lines, edits)
    for path, (lines, edits) in parsed.items():
        for index, fields in enumerate(_split(lines)):
            if fields and fields[8] == "Certificate thumbprint" and fields[7] in renamed:
                edits.setdefault(index, renamed[fields[7]])
        changed = 0
        for index, data in edits.items():
            fields = next(csv.reader([lines[index]]))
            assert ",".join(map(csv_field, fields)) == lines[index], (path, index)
            if fields[7] != data:
                fields[7] = data
                lines[index] = ",".join(map(csv_field, fields))
                changed += 1
        if changed:
            path.write_bytes(BOM + CRLF.join(lines).encode("utf-8"))
        print(f"{path.relative_to(HERE)}: {changed} row(s) changed")
    return renamed


def _split(lines: list[str]) -> list[list[str] | None]:
    return [
        None if not line or line.startswith("#") else next(csv.reader([line])) for line in lines
    ]


def _find_edits(
    lines: list[str], by_serial: dict[str, Made], renamed: dict[str, str]
) -> dict[int, str]:
    """Row index -> new data for the rows of our certificates (multi-row and one-row form)."""
    edits: dict[int, str] = {}
    blocks: list[list[tuple[int, str, str]]] = []
    open_blocks: dict[str, list[tuple[int, str, str]]] = {}
    for index, fields in enumerate(_split(lines)):
        if fields is None:
            continue
        session, data, context = fields[2], fields[7], fields[8]
        if context in BLOCK_STARTS and not data:
            open_blocks[session] = []
            blocks.append(open_blocks[session])
        elif context in CERT_ROWS and session in open_blocks:
            open_blocks[session].append((index, CERT_ROWS[context], data))
        else:
            open_blocks.pop(session, None)
            if ONE_ROW.match(context) and data:
                _one_row(index, data, by_serial, renamed, edits)
    for block in blocks:
        serial = next((data for _, kind, data in block if kind == "serial"), None)
        item = by_serial.get(serial or "")
        if item is None:
            continue
        for index, kind, data in block:
            if kind == "thumbprint" and data != item.thumbprint:
                renamed[data] = item.thumbprint
            edits[index] = fact(item, kind)
    return edits


def _one_row(index: int, data: str, by_serial, renamed, edits) -> None:
    """`` subject issuer serial thumbprint notBefore notAfter sans`` in one data field."""
    tokens = data.split(" ")
    spot = next((i for i, token in enumerate(tokens) if token in by_serial), None)
    if spot is None:
        return
    item = by_serial[tokens[spot]]
    if tokens[spot + 1] != item.thumbprint:
        renamed[tokens[spot + 1]] = item.thumbprint
    edits[index] = " ".join(
        [
            "",
            item.subject,
            item.issuer,
            item.serial,
            item.thumbprint,
            iso_ms(item.cert.not_valid_before_utc),
            iso_ms(item.cert.not_valid_after_utc),
            ";".join(item.sans),
        ]
    )


# --------------------------------------------------------------------------- export helpers

FLAGS = {"I": ("IMAP", 1), "P": ("POP", 2), "U": ("UM", 4), "W": ("IIS", 8), "S": ("SMTP", 16),
         "F": ("Federation", 32), "C": ("UMCallRouter", 64)}  # fmt: skip
STATUS_NUMBERS = {"Valid": 1, "DateInvalid": 3}  # CertificateStatus order (unverified)
ROOT_TYPE_NUMBERS = {"None": 0, "ThirdParty": 1, "Registry": 2, "Enterprise": 3}  # unverified
SERVER_FQDN = {"EX01": "EX01.corp.example.com", "EX02": "EX02.corp.example.com"}
RUNSPACE = {
    "EX01": "3e7b1c9a-52d4-4f8e-a0b6-1d2c3e4f5a6b",
    "EX02": "9c2d4e6f-8a0b-4c1d-9e2f-3a4b5c6d7e8f",
}
WIDTH = 119  # console width 120: Format-List wraps longer lines
EKU_NAMES = {
    ExtendedKeyUsageOID.SERVER_AUTH: "Server Authentication (1.3.6.1.5.5.7.3.1)",
    ExtendedKeyUsageOID.CLIENT_AUTH: "Client Authentication (1.3.6.1.5.5.7.3.2)",
}


def services_text(form: str) -> str:
    return ", ".join(FLAGS[c][0] for c in form if c != ".") or "None"


def services_mask(form: str) -> int:
    return sum(FLAGS[c][1] for c in form if c != ".")


def status(item: Made) -> str:
    return "DateInvalid" if item.cert.not_valid_after_utc < EXPORTED else "Valid"


def self_signed(item: Made) -> bool:
    return item.spec.issuer == "self"


def en_us(moment: datetime) -> str:
    """``M/d/yyyy h:mm:ss tt`` (en-US; the servers run in UTC)."""
    hour = moment.hour % 12 or 12
    half = "AM" if moment.hour < 12 else "PM"
    return f"{moment.month}/{moment.day}/{moment.year} {hour}:{moment:%M:%S} {half}"


def listing(items: list[str], limit: int = 4) -> str:
    """A collection as Format-List prints it (``$FormatEnumerationLimit`` 4)."""
    shown = ", ".join(items[:limit])
    return "{" + shown + ("..." if len(items) > limit else "") + "}"


def fl_lines(pairs: list[tuple[str, str]], pad: int, blank_colon: str = "") -> list[str]:
    """``Label<pad> : value`` lines, long values wrapped at spaces under the value column."""
    out = []
    for label, value in pairs:
        head = f"{label.ljust(pad)} :"
        if not value:
            out.append(head + blank_colon)
            continue
        indent, room = " " * (pad + 3), WIDTH - pad - 3
        line_text = value
        first = True
        while line_text:
            if len(line_text) <= room:
                piece, line_text = line_text, ""
            else:
                cut = line_text.rfind(" ", 0, room + 1)
                cut = cut if cut > 0 else room
                piece, line_text = line_text[:cut].rstrip(), line_text[cut:].lstrip()
            out.append((head + " " if first else indent) + piece)
            first = False
    return out


def on(server: str, made: dict[str, Made]) -> list[Made]:
    return [item for item in made.values() if server in item.spec.servers]


def write_text(name: str, text: str) -> None:
    (OUT / name).write_bytes(text.replace("\r\n", "\n").replace("\n", CRLF).encode("utf-8"))


# --------------------------------------------------------------------------- certificate exports


def fl_star(server: str, made: dict[str, Made]) -> str:
    """``Get-ExchangeCertificate | Format-List *`` (Windows PowerShell 5.1, en-US)."""
    records = []
    for number, item in enumerate(on(server, made)):
        spec = item.spec
        try:
            usage = item.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
            eku = [EKU_NAMES[oid] for oid in usage]
        except x509.ExtensionNotFound:
            eku = []
        rules = ["System.Security.AccessControl.CryptoKeyAccessRule"] * 3 if spec.has_key else []
        oids = ["System.Security.Cryptography.Oid"] * len(item.cert.extensions)
        key = "System.Security.Cryptography.RSACryptoServiceProvider" if spec.has_key else ""
        pairs = [
            ("AccessRules", listing(rules) if rules else ""),
            ("CertificateDomains", listing(item.domains)),
            ("HasPrivateKey", str(spec.has_key)),
            ("IsSelfSigned", str(self_signed(item))),
            ("Issuer", item.issuer),
            ("NotAfter", en_us(item.cert.not_valid_after_utc)),
            ("NotBefore", en_us(item.cert.not_valid_before_utc)),
            ("PublicKeySize", "2048"),
            ("RootCAType", spec.root_type),
            ("SerialNumber", item.serial),
            ("Services", services_text(spec.services)),
            ("Status", status(item)),
            ("Subject", item.subject),
            ("Thumbprint", item.thumbprint),
            ("Archived", "False"),
            ("CertificateRequest", ""),
            ("DnsNameList", listing(item.sans or [AUTH.removeprefix("CN=")])),
            ("EnhancedKeyUsageList", listing(eku)),
            ("Extensions", listing(oids)),
            ("FriendlyName", spec.friendly),
            ("Handle", str(2437982163488 + 65536 * number)),
            ("Identity", f"{SERVER_FQDN[server]}\\{item.thumbprint}"),
            ("IISServices", "{IIS://" + server + "/W3SVC/1}" if "W" in spec.services else "{}"),
            ("IssuerName", "System.Security.Cryptography.X509Certificates.X500DistinguishedName"),
            ("KeyIdentifier", item.ski),
            ("PrivateKey", key),
            ("PrivateKeyExportable", str(spec.exportable and spec.has_key)),
            ("PublicKey", "System.Security.Cryptography.X509Certificates.PublicKey"),
            ("RawData", listing([str(b) for b in item.der[:5]])),
            ("SendAsTrustedIssuer", "False"),
            ("ServicesStringForm", spec.services),
            ("SignatureAlgorithm", "System.Security.Cryptography.Oid"),
            ("SubjectKeyIdentifier", item.ski),
            ("SubjectName", "System.Security.Cryptography.X509Certificates.X500DistinguishedName"),
            ("Version", "3"),
        ]  # fmt: skip
        records.append("\n".join(fl_lines(pairs, 20)))
    prompt = "[PS] C:\\Windows\\system32>"
    command = f"{prompt}Get-ExchangeCertificate -Server {server} | Format-List *"
    return f"{command}\n\n\n" + "\n\n".join(records) + f"\n\n\n\n{prompt}\n"


def table(server: str, made: dict[str, Made]) -> str:
    """The default ``Get-ExchangeCertificate`` table (Thumbprint, Services, Subject)."""
    prompt = "[PS] C:\\Windows\\system32>"
    rows = [
        f"{prompt}Get-ExchangeCertificate -Server {server}",
        "",
        f"{'Thumbprint':<42}{'Services':<11}Subject",
        f"{'----------':<42}{'--------':<11}-------",
    ]
    rows += [f"{i.thumbprint:<42}{i.spec.services:<11}{i.subject}" for i in on(server, made)]
    return "\n".join([*rows, "", "", prompt]) + "\n"


def export_csv(server: str, made: dict[str, Made]) -> str:
    """``Export-Csv`` through the Exchange Management Shell (remote: ``Deserialized.``)."""
    header = ["AccessRules", "CertificateDomains", "HasPrivateKey", "IsSelfSigned", "Issuer",
              "NotAfter", "NotBefore", "PublicKeySize", "RootCAType", "SerialNumber", "Services",
              "Status", "Subject", "Thumbprint", "Archived", "DnsNameList", "FriendlyName",
              "Identity", "IISServices", "PrivateKeyExportable", "RawData", "ServicesStringForm",
              "PSComputerName", "RunspaceId", "PSShowComputerName"]  # fmt: skip
    lines = [
        "#TYPE Deserialized.Microsoft.Exchange.Management.SystemConfigurationTasks."
        "ExchangeCertificate",
        ",".join(f'"{name}"' for name in header),
    ]
    for item in on(server, made):
        spec, arraylist = item.spec, "System.Collections.ArrayList"
        row = [arraylist, arraylist, str(spec.has_key), str(self_signed(item)), item.issuer,
               en_us(item.cert.not_valid_after_utc), en_us(item.cert.not_valid_before_utc),
               "2048", spec.root_type, item.serial, services_text(spec.services), status(item),
               item.subject, item.thumbprint, "False", arraylist, spec.friendly,
               f"{SERVER_FQDN[server]}\\{item.thumbprint}", arraylist,
               str(spec.exportable and spec.has_key), "System.Byte[]", spec.services,
               SERVER_FQDN[server].lower(), RUNSPACE[server], "False"]  # fmt: skip
        lines.append(",".join('"' + v.replace('"', '""') + '"' for v in row))
    return "\n".join(lines) + "\n"


class _Date(int):
    """Milliseconds since 1970, written the PowerShell 5.1 way: ``"\\/Date(ms)\\/"``."""


def ps51_json(value: object, col: int = 0) -> str:
    """ConvertTo-Json as Windows PowerShell 5.1 lays it out (nested values under their key)."""
    pad = " " * col
    if isinstance(value, dict):
        items = []
        for key, item in value.items():
            head = json.dumps(key) + ":  "
            items.append(" " * (col + 4) + head + ps51_json(item, col + 4 + len(head)))
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list):
        if not value:
            return "[\n\n" + pad + "]"
        items = [" " * (col + 4) + ps51_json(item, col + 4) for item in value]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    if isinstance(value, _Date):
        return f'"\\/Date({int(value)})\\/"'
    return json.dumps(value)


def ms(moment: datetime) -> _Date:
    return _Date(int(moment.timestamp() * 1000))


def export_json(server: str, made: dict[str, Made]) -> str:
    """``Get-ExchangeCertificate | ConvertTo-Json`` (PS 5.1: numeric enums, /Date(ms)/)."""
    objects = []
    for item in on(server, made):
        spec = item.spec
        domains = []
        for name in item.domains:
            wildcard = name.startswith("*.")
            bare = name.removeprefix("*.")
            domains.append({"IncludeSubDomains": wildcard, "Domain": bare, "SmtpDomain": bare})
        objects.append(
            {
                "AccessRules": ["System.Security.AccessControl.CryptoKeyAccessRule"] * 2
                if spec.has_key
                else None,
                "CertificateDomains": domains,
                "HasPrivateKey": spec.has_key,
                "IsSelfSigned": self_signed(item),
                "Issuer": item.issuer,
                "NotAfter": ms(item.cert.not_valid_after_utc),
                "NotBefore": ms(item.cert.not_valid_before_utc),
                "PublicKeySize": 2048,
                "RootCAType": ROOT_TYPE_NUMBERS[spec.root_type],
                "SerialNumber": item.serial,
                "Services": services_mask(spec.services),
                "Status": STATUS_NUMBERS[status(item)],
                "Subject": item.subject,
                "Thumbprint": item.thumbprint,
                "Archived": False,
                "FriendlyName": spec.friendly,
                "Identity": f"{SERVER_FQDN[server]}\\{item.thumbprint}",
                "PrivateKeyExportable": spec.exportable and spec.has_key,
                "ServicesStringForm": spec.services,
                "PSComputerName": SERVER_FQDN[server].lower(),
                "RunspaceId": RUNSPACE[server],
                "PSShowComputerName": False,
            }
        )
    return ps51_json(objects) + "\n"


def export_clixml(server: str, made: dict[str, Made]) -> str:
    """``Get-ExchangeCertificate | Export-Clixml`` through remote PowerShell (RawData base64)."""
    nl = "_x000D__x000A_"
    out = ['<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">']
    ref = 0
    types_done: set[str] = set()
    type_ids = {"cert": 0, "services": 1, "status": 2, "domains": 3}
    type_names = {
        "cert": ["Microsoft.Exchange.Management.SystemConfigurationTasks.ExchangeCertificate",
                 "System.Security.Cryptography.X509Certificates.X509Certificate2",
                 "System.Security.Cryptography.X509Certificates.X509Certificate",
                 "System.Object"],
        "services": ["Microsoft.Exchange.Management.SystemConfigurationTasks.AllowedServices",
                     "System.Enum", "System.ValueType", "System.Object"],
        "status": ["Microsoft.Exchange.Management.SystemConfigurationTasks.CertificateStatus",
                   "System.Enum", "System.ValueType", "System.Object"],
        "domains": ["System.Collections.ObjectModel.ReadOnlyCollection`1[[Microsoft.Exchange."
                    "Data.SmtpDomainWithSubdomains, Microsoft.Exchange.Data, Version=15.0.0.0, "
                    "Culture=neutral, PublicKeyToken=31bf3856ad364e35]]", "System.Object"],
    }  # fmt: skip

    def type_ref(kind: str, indent: str) -> list[str]:
        if kind in types_done:
            return [f'{indent}<TNRef RefId="{type_ids[kind]}" />']
        types_done.add(kind)
        names = [f"{indent}  <T>Deserialized.{escape(n)}</T>" for n in type_names[kind]]
        return [f'{indent}<TN RefId="{type_ids[kind]}">', *names, f"{indent}</TN>"]

    for item in on(server, made):
        spec = item.spec
        text = nl.join(
            [
                "[Subject]", f"  {item.subject}", "", "[Issuer]", f"  {item.issuer}", "",
                "[Serial Number]", f"  {item.serial}", "",
                "[Not Before]", f"  {item.cert.not_valid_before_utc:%m/%d/%Y %H:%M:%S}", "",
                "[Not After]", f"  {item.cert.not_valid_after_utc:%m/%d/%Y %H:%M:%S}", "",
                "[Thumbprint]", f"  {item.thumbprint}", "",
            ]
        )  # fmt: skip
        cert_ref, ref = ref, ref + 1
        lines = [f'  <Obj RefId="{cert_ref}">', *type_ref("cert", "    ")]
        lines += [f"    <ToString>{escape(text)}</ToString>", "    <Props>"]
        lines.append(f'      <BA N="RawData">{base64.b64encode(item.der).decode()}</BA>')
        lines += [f'      <Obj N="Services" RefId="{ref}">', *type_ref("services", "        ")]
        lines += [
            f"        <ToString>{services_text(spec.services)}</ToString>",
            f"        <I32>{services_mask(spec.services)}</I32>",
            "      </Obj>",
            f'      <B N="HasPrivateKey">{str(spec.has_key).lower()}</B>',
            f'      <Obj N="Status" RefId="{ref + 1}">',
            *type_ref("status", "        "),
            f"        <ToString>{status(item)}</ToString>",
            f"        <I32>{STATUS_NUMBERS[status(item)]}</I32>",
            "      </Obj>",
            f'      <S N="FriendlyName">{escape(spec.friendly)}</S>',
            f'      <S N="Identity">{SERVER_FQDN[server]}\\{item.thumbprint}</S>',
            f'      <Obj N="CertificateDomains" RefId="{ref + 2}">',
            *type_ref("domains", "        "),
            "        <LST>",
            *[f"          <S>{escape(name)}</S>" for name in item.domains],
            "        </LST>",
            "      </Obj>",
            "    </Props>",
            "    <MS>",
            f'      <S N="PSComputerName">{SERVER_FQDN[server].lower()}</S>',
            f'      <G N="RunspaceId">{RUNSPACE[server]}</G>',
            '      <B N="PSShowComputerName">false</B>',
            '      <BA N="SerializationData">AAEAAAD/////AQAAAAAAAAA=</BA>',
            "    </MS>",
            "  </Obj>",
        ]
        ref += 3
        out += lines
    return "\n".join([*out, "</Objs>"]) + "\n"


# --------------------------------------------------------------------------- connectors


def tls_name(item: Made) -> str:
    return f"<I>{item.issuer}<S>{item.subject}"


def send_connectors(made: dict[str, Made]) -> str:
    """``Get-SendConnector | Format-List`` for the two connectors the sample logs use."""
    current = made[CURRENT.key]
    common = {
        "RunspaceId": RUNSPACE["EX01"],
        "AuthenticationCredential": "",
        "Comment": "",
        "ConnectedDomains": "{}",
        "ConnectionInactivityTimeOut": "00:10:00",
        "ConnectorType": "Default",
        "DomainSecureEnabled": "False",
        "Enabled": "True",
        "ErrorPolicies": "Default",
        "ForceHELO": "False",
        "Fqdn": "mail.corp.example.com",
        "FrontendProxyEnabled": "False",
        "HomeMTA": "Microsoft MTA",
        "HomeMtaServerId": "EX01",
        "IgnoreSTARTTLS": "False",
        "IsScopedConnector": "False",
        "IsSmtpConnector": "True",
        "MaxMessageSize": "35 MB (36,700,160 bytes)",
        "Port": "25",
        "ProtocolLoggingLevel": "Verbose",
        "RequireOorg": "False",
        "SmartHostAuthMechanism": "None",
        "SmtpMaxMessagesPerConnection": "20",
        "SourceIPAddress": "0.0.0.0",
        "SourceRoutingGroup": "Exchange Routing Group (DWBGZMFD01QNBJR)",
        "SourceTransportServers": "{EX01, EX02}",
        "UseExternalDNSServersEnabled": "False",
    }
    office = common | {
        "AddressSpaces": "{smtp:contoso-example.mail.onmicrosoft.com;1}",
        "CloudServicesMailEnabled": "True",
        "DNSRoutingEnabled": "False",
        "Identity": "Outbound to Office 365",
        "Name": "Outbound to Office 365",
        "RequireTLS": "True",
        "SmartHosts": "{contoso-example.mail.protection.example.net}",
        "SmartHostsString": "contoso-example.mail.protection.example.net",
        "TlsAuthLevel": "DomainValidation",
        "TlsCertificateName": tls_name(current),
        "TlsDomain": "mail.protection.outlook.com",
    }
    internet = common | {
        "AddressSpaces": "{SMTP:*;1}",
        "CloudServicesMailEnabled": "False",
        "DNSRoutingEnabled": "True",
        "Identity": "Internet Send Connector",
        "Name": "Internet Send Connector",
        "RequireTLS": "False",
        "SmartHosts": "{}",
        "SmartHostsString": "",
        "TlsAuthLevel": "",
        "TlsCertificateName": "",
        "TlsDomain": "",
    }
    pad = max(len(k) for k in office)
    blocks = []
    for connector in (office, internet):
        pairs = sorted(connector.items(), key=lambda pair: pair[0].lower())
        pairs.sort(key=lambda pair: pair[0] != "RunspaceId")  # RunspaceId comes first
        blocks.append("\n".join(fl_lines(pairs, pad)))
    prompt = "[PS] C:\\Windows\\system32>"
    return (
        f"{prompt}Get-SendConnector | Format-List\n\n\n"
        + "\n\n".join(blocks)
        + (f"\n\n\n{prompt}\n")
    )


def receive_connectors(made: dict[str, Made]) -> str:
    """``Get-ReceiveConnector | Export-Clixml``: the Default Frontend connector of each server."""
    current = made[CURRENT.key]
    out = ['<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">']
    ref = 0
    for number, server in enumerate(("EX01", "EX02")):
        first = number == 0
        name = f"Default Frontend {server}"

        def tn(refid: int, names: list[str], indent: str, first: bool = first) -> list[str]:
            if not first:
                return [f'{indent}<TNRef RefId="{refid}" />']
            return [f'{indent}<TN RefId="{refid}">', *[f"{indent}  <T>{n}</T>" for n in names],
                    f"{indent}</TN>"]  # fmt: skip

        ds = "Deserialized.Microsoft.Exchange.Data."
        obj = [f'  <Obj RefId="{ref}">']
        obj += tn(0, [f"{ds}Directory.SystemConfiguration.ReceiveConnector",
                      f"{ds}Directory.SystemConfiguration.ADConfigurationObject",
                      f"{ds}Directory.ADObject", f"{ds}Directory.ADRawEntry",
                      f"{ds}ConfigurableObject", "Deserialized.System.Object"], "    ")  # fmt: skip
        obj += [f"    <ToString>{server}\\{name}</ToString>", "    <Props>"]
        obj += [f'      <Obj N="AuthMechanism" RefId="{ref + 1}">']
        obj += tn(1, ["Microsoft.Exchange.Data.Directory.SystemConfiguration.AuthMechanisms",
                      "System.Enum", "System.ValueType", "System.Object"], "        ")  # fmt: skip
        obj += [
            "        <ToString>Tls, Integrated, BasicAuth, BasicAuthRequireTLS, ExchangeServer"
            "</ToString>",
            "        <I32>31</I32>",
            "      </Obj>",
            '      <Nil N="Banner" />',
            f'      <Obj N="Bindings" RefId="{ref + 2}">',
        ]
        obj += tn(2, [f"{ds}MultiValuedProperty`1[[Microsoft.Exchange.Data.IPBinding, "
                      "Microsoft.Exchange.Data, Version=15.0.0.0, Culture=neutral, "
                      "PublicKeyToken=31bf3856ad364e35]]", f"{ds}MultiValuedPropertyBase",
                      "Deserialized.System.Object"], "        ")  # fmt: skip
        obj += ["        <LST>"]
        for offset, (text, family, address) in enumerate(
            (("0.0.0.0:25", "InterNetwork", "0.0.0.0"), ("[::]:25", "InterNetworkV6", "::"))
        ):
            obj += [f'          <Obj RefId="{ref + 3 + offset}">']
            obj += tn(3, [f"{ds}IPBinding", "Deserialized.System.Net.IPEndPoint",
                          "Deserialized.System.Net.EndPoint", "Deserialized.System.Object"],
                      "            ", first and offset == 0)  # fmt: skip
            obj += [
                f"            <ToString>{text}</ToString>",
                "            <Props>",
                '              <I32 N="Port">25</I32>',
                f'              <S N="AddressFamily">{family}</S>',
                f'              <S N="Address">{address}</S>',
                "            </Props>",
                "          </Obj>",
            ]
        obj += ["        </LST>", "      </Obj>", '      <B N="DomainSecureEnabled">false</B>']
        obj += [f'      <Obj N="Fqdn" RefId="{ref + 5}">']
        obj += tn(4, [f"{ds}Fqdn", f"{ds}SmtpDomain", "Deserialized.System.Object"], "        ")
        obj += [
            "        <ToString>mail.corp.example.com</ToString>",
            "        <Props>",
            '          <S N="Domain">mail.corp.example.com</S>',
            "        </Props>",
            "      </Obj>",
            f'      <Obj N="TlsCertificateName" RefId="{ref + 6}">',
        ]
        obj += tn(5, [f"{ds}SmtpX509Identifier", "Deserialized.System.Object"], "        ")
        obj += [
            f"        <ToString>{escape(tls_name(current))}</ToString>",
            "        <Props>",
            f'          <S N="CertificateSubject">{escape(current.subject)}</S>',
            f'          <S N="CertificateIssuer">{escape(current.issuer)}</S>',
            '          <S N="SubjectCommonName">mail.corp.example.com</S>',
            "        </Props>",
            "      </Obj>",
            '      <B N="Enabled">true</B>',
            '      <B N="RequireTLS">false</B>',
            f'      <Obj N="TlsDomainCapabilities" RefId="{ref + 7}">',
        ]
        obj += tn(6, [f"{ds}MultiValuedProperty`1[[Microsoft.Exchange.Data."
                      "SmtpReceiveDomainCapabilities, Microsoft.Exchange.Data, Version=15.0.0.0, "
                      "Culture=neutral, PublicKeyToken=31bf3856ad364e35]]",
                      f"{ds}MultiValuedPropertyBase", "Deserialized.System.Object"],
                  "        ")  # fmt: skip
        obj += [
            "        <LST>",
            "          <S>mail.protection.outlook.com:AcceptCloudServicesMail</S>",
            "        </LST>",
            "      </Obj>",
            f'      <Obj N="Server" RefId="{ref + 8}">',
        ]
        obj += tn(7, [f"{ds}Directory.ADObjectId", f"{ds}ObjectId", "Deserialized.System.Object"],
                  "        ")  # fmt: skip
        obj += [
            f"        <ToString>{server}</ToString>",
            "        <Props>",
            f'          <S N="Rdn">CN={server}</S>',
            f'          <S N="Name">{server}</S>',
            "        </Props>",
            "      </Obj>",
            '      <S N="TransportRole">FrontendTransport</S>',
            f'      <S N="Name">{name}</S>',
            f'      <Obj N="Identity" RefId="{ref + 9}">',
            '        <TNRef RefId="7" />',
            f"        <ToString>{server}\\{name}</ToString>",
            "        <Props>",
            f'          <S N="Rdn">CN={name}</S>',
            f'          <S N="Name">{name}</S>',
            "        </Props>",
            "      </Obj>",
            "    </Props>",
            "  </Obj>",
        ]
        out += obj
        ref += 10
    return "\n".join([*out, "</Objs>"]) + "\n"


def authconfig(made: dict[str, Made]) -> str:
    """``Get-AuthConfig | Format-List`` naming the Auth certificate as the current one."""
    auth = made["exchange-server-auth-certificate"]
    pairs = [
        ("RunspaceId", RUNSPACE["EX01"]),
        ("CurrentCertificateThumbprint", auth.thumbprint),
        ("PreviousCertificateThumbprint", ""),
        ("NextCertificateThumbprint", ""),
        ("NextCertificateEffectiveDate", ""),
        ("ServiceName", "00000002-0000-0ff1-ce00-000000000000"),
        ("IssuerIdentifier", ""),
        ("Realm", ""),
        ("DeploymentId", ""),
        ("AdminDisplayName", ""),
        ("ExchangeVersion", "0.1 (8.0.535.0)"),
        ("Name", "Auth Configuration"),
        ("DistinguishedName", "CN=Auth Configuration,CN=Example Organization,CN=Microsoft "
         "Exchange,CN=Services,CN=Configuration,DC=corp,DC=example,DC=com"),
        ("Identity", "Auth Configuration"),
        ("Guid", "5b0d7c3e-1f2a-4e6b-8c9d-0a1b2c3d4e5f"),
        ("ObjectCategory", "corp.example.com/Configuration/Schema/ms-Exch-Auth-Auth-Config"),
        ("ObjectClass", "{top, container, msExchContainer, msExchAuthAuthConfig}"),
        ("WhenChanged", "5/14/2024 9:24:10 AM"),
        ("WhenCreated", "5/14/2024 9:24:10 AM"),
        ("WhenChangedUTC", "5/14/2024 9:24:10 AM"),
        ("WhenCreatedUTC", "5/14/2024 9:24:10 AM"),
        ("OrganizationId", ""),
        ("Id", "Auth Configuration"),
        ("OriginatingServer", "DC01.corp.example.com"),
        ("IsValid", "True"),
        ("ObjectState", "Unchanged"),
    ]  # fmt: skip
    return "\n\n" + "\n".join(fl_lines(pairs, 29, " ")) + "\n\n\n"


# --------------------------------------------------------------------------- files


def write_inventory(made: dict[str, Made]) -> None:
    """Every file of inventory/ (old generated files are replaced)."""
    certs = OUT / "certificates"
    certs.mkdir(parents=True, exist_ok=True)
    for old in certs.glob("*"):
        if old.suffix in (".pem", ".cer"):
            old.unlink()
    for item in made.values():
        if item.spec.ca:
            continue
        pem = item.cert.public_bytes(serialization.Encoding.PEM)
        (certs / f"{item.spec.key}.pem").write_bytes(pem)
        (certs / f"{item.spec.key}.cer").write_bytes(item.der)
    chain = [made[k].cert for k in (ROOT, CA1, CA2, CORP_CA)]
    (OUT / "chain.p7b").write_bytes(pkcs7.serialize_certificates(chain, serialization.Encoding.DER))
    current = made[CURRENT.key]
    pfx = pkcs12.serialize_key_and_certificates(
        CURRENT.friendly.encode(),
        current.key,
        current.cert,
        [made[CA2].cert, made[ROOT].cert],
        serialization.BestAvailableEncryption(PFX_PASSWORD),
    )
    (OUT / PFX_NAME).write_bytes(pfx)
    write_text("EX01-get-exchangecertificate-fl-star.txt", fl_star("EX01", made))
    write_text("EX01-get-exchangecertificate-table.txt", table("EX01", made))
    write_text("EX01-get-exchangecertificate.csv", export_csv("EX01", made))
    write_text("EX02-get-exchangecertificate.clixml.xml", export_clixml("EX02", made))
    write_text("EX02-get-exchangecertificate.json", export_json("EX02", made))
    write_text("send-connectors.fl.txt", send_connectors(made))
    write_text("receive-connectors.clixml.xml", receive_connectors(made))
    write_text("authconfig.fl.txt", authconfig(made))


TABLE_START = "<!-- make_inventory.py: certificate table -->"
TABLE_END = "<!-- /make_inventory.py -->"


def update_readme(made: dict[str, Made], renamed: dict[str, str]) -> None:
    """New thumbprints (full and 8-digit) in README.md, and the inventory certificate table."""
    text = README.read_text("utf-8")
    for old, new in renamed.items():
        text = text.replace(old, new)
        text = re.sub(rf"(?<![0-9A-F]){old[:8]}(?![0-9A-F])", new[:8], text)
    if TABLE_START in text and TABLE_END in text:
        head, rest = text.split(TABLE_START, 1)
        _, tail = rest.split(TABLE_END, 1)
        text = head + TABLE_START + "\n" + inventory_table(made) + TABLE_END + tail
    README.write_text(text, "utf-8", newline="\n")


def inventory_table(made: dict[str, Made]) -> str:
    rows = [
        "| file stem | subject | issuer | serial | thumbprint (SHA-1) | not before | not after "
        "| SANs | services (EX01 / EX02) | notes |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for item in made.values():
        spec = item.spec
        where = " / ".join(spec.services if s in spec.servers else "-" for s in ("EX01", "EX02"))
        where = "CA (`chain.p7b`)" if spec.ca else where
        note = spec.note + ("" if spec.has_key else " (HasPrivateKey False)")
        rows.append(
            f"| `{spec.key}` | `{item.subject}` | `{item.issuer}` | `{item.serial}` "
            f"| `{item.thumbprint}` | {iso_ms(item.cert.not_valid_before_utc)} "
            f"| {iso_ms(item.cert.not_valid_after_utc)} | `{';'.join(item.sans) or '-'}` "
            f"| {where} | {note.strip() or '-'} |"
        )
    return "\n".join(rows) + "\n"


def foreign_prefixes() -> set[str]:
    """8-digit thumbprint prefixes README.md cites for certificates that are not ours."""
    ours = {format(spec.serial, "X") for spec in SPECS}
    found = set()
    for line in README.read_text("utf-8").splitlines():
        if not any(f"`{serial}`" in line for serial in ours):
            found |= {t[:8] for t in re.findall(r"(?<![0-9A-F])[0-9A-F]{40}(?![0-9A-F])", line)}
    return found


def main() -> None:
    taken = foreign_prefixes()
    while True:  # README.md cites 8-digit prefixes: they must stay unambiguous
        made = build_all()
        prefixes = [item.thumbprint[:8] for item in made.values()]
        if len(set(prefixes)) == len(prefixes) and not taken & set(prefixes):
            break
    renamed = rewrite_logs(made)
    write_inventory(made)
    update_readme(made, renamed)
    for item in made.values():
        print(f"{item.thumbprint}  {item.spec.key}")


if __name__ == "__main__":
    main()

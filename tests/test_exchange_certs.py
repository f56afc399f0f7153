"""Get-ExchangeCertificate exports in every shape: real excerpts, synthetic samples, fuzzing.

The synthetic samples in tests/data/inventory/ follow documented PowerShell and Exchange
behaviour (docs/inventory-and-connectors.md, sections 1.1-1.2); they are NOT real captures. The
Clixml sample is a template whose RawData is filled with certificates generated here (no key
material is stored). Real excerpts are read in place from ../shared/fixtures/inventory/ (never
copied into the project); those tests skip when that folder is absent.

Goldens: tests/golden/inventory/real/ and tests/golden/inventory/synthetic/. Regenerate them with
``pytest tests/test_exchange_certs.py --update-golden`` and review the diff.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import hashlib
import ipaddress
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from hypothesis import example, given
from hypothesis import strategies as st

from loganalyzer.errors import InventoryError
from loganalyzer.inventory.exchange_certs import read_exchange_certificates, sniff
from loganalyzer.inventory.records import CertificateRecord
from tests.conftest import GOLDEN, check_golden

REAL = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "inventory"
DATA = Path(__file__).resolve().parent / "data" / "inventory"
GOLDEN_REAL = GOLDEN / "inventory" / "real"
GOLDEN_SYNTHETIC = GOLDEN / "inventory" / "synthetic"

TOSTKA = "get-exchangecertificate-fl-subset-and-table-ex2016.txt"
RENEWAL = "get-exchangecertificate-table-before-after-renewal.txt"
REAL_EXPORTS = [TOSTKA, RENEWAL]
SYNTHETIC_TEXT_SAMPLES = sorted(
    p.name for p in DATA.glob("*") if p.suffix in (".txt", ".csv", ".json")
)
TABLE_NOTE = "subject from a table (may be truncated)"
ALL_FOUR = ["IMAP", "POP", "IIS", "SMTP"]


def as_dicts(records: list[CertificateRecord]) -> list[dict]:
    """Records as JSON-able dicts: no DER, ISO datetimes, lists for tuples."""
    rows = []
    for record in records:
        row = dataclasses.asdict(record)
        row.pop("der")
        for key, value in row.items():
            if isinstance(value, datetime):
                row[key] = value.isoformat()
            elif isinstance(value, tuple):
                row[key] = list(value)
        rows.append(row)
    return rows


def real(name: str) -> Path:
    if not REAL.is_dir():
        pytest.skip(f"real inventory fixtures not found at {REAL} (they live beside the project)")
    path = REAL / name
    if not path.is_file():
        pytest.skip(f"real inventory fixture {name} not found in {REAL}")
    return path


def read_sample(name: str, **options) -> list[CertificateRecord]:
    text = (DATA / name).read_text(encoding="utf-8")
    assert sniff(text)
    return read_exchange_certificates(text, name, **options)


def read_text(text: str, **options) -> list[CertificateRecord]:
    return read_exchange_certificates(text, "inline.txt", **options)


def one_list_record(**labels: str) -> CertificateRecord:
    """A Format-List record with a valid thumbprint and the given labels."""
    lines = ["Thumbprint : 0123456789ABCDEF0123456789ABCDEF01234567"]
    lines += [f"{label} : {value}" for label, value in labels.items()]
    (record,) = read_text("\n".join(lines) + "\n")
    return record


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --------------------------------------------------------------------------- real excerpts


@pytest.mark.parametrize("name", REAL_EXPORTS)
def test_real_export_golden(name, update_golden):
    path = real(name)
    records = read_exchange_certificates(path.read_text(encoding="utf-8"), name)
    check_golden(as_dicts(records), GOLDEN_REAL / f"{Path(name).stem}.jsonl", update_golden)


def test_real_tostka_list_and_table():
    path = real(TOSTKA)
    listed, table = read_exchange_certificates(path.read_text(encoding="utf-8"), TOSTKA)
    mangled = "6F029E0D20605DBTRIM7016B787C4503FD0002C0"
    assert listed.source == f"{TOSTKA}:3"  # the list is indented by 8 spaces
    assert listed.thumbprint == mangled  # kept as written, reported, no crash
    assert f"thumbprint '{mangled}' is not 40 hex digits" in listed.problems
    assert listed.services == tuple(ALL_FOUR)
    assert listed.subject == (
        "CN=AAAAAA.AAAA.com, O=The Toro Company, L=Bloomington, S=Minnesota, C=US"
    )
    assert listed.issuer == "CN=DigiCert Global G2 TLS RSA SHA256 2020 CA1, O=DigiCert Inc, C=US"
    assert listed.not_before_utc == utc(2025, 11, 2, 18, 0, 0)
    assert listed.not_after_utc == utc(2026, 11, 2, 17, 59, 59)
    assert listed.key_bits == 2048
    assert listed.status == "Valid"
    assert listed.friendly_name == "AAAAAA.AAAA.com (11-02-2026)"
    assert listed.sans == ()  # the fl subset has no CertificateDomains
    assert "date '11/2/2026 5:59:59 PM' is ambiguous (assumed month/day; use --date-format)" in (
        listed.problems
    )
    assert table.source == f"{TOSTKA}:22"
    assert table.thumbprint == mangled
    assert table.services == tuple(ALL_FOUR)  # from IP.WS.
    assert (
        table.subject == "CN=AAAAAA.AAAA.com, O=AAA AAAA AAAAAAA, L=AAAAAAAAAAA, S=AAAAAAAAA, C=US"
    )
    assert TABLE_NOTE in table.problems
    assert table.not_after_utc is None


def test_real_tostka_with_date_format_and_zone():
    path = real(TOSTKA)
    listed, _ = read_exchange_certificates(
        path.read_text(encoding="utf-8"),
        TOSTKA,
        date_format="%m/%d/%Y %I:%M:%S %p",
        tz=ZoneInfo("America/Chicago"),
    )
    assert listed.not_after_utc == utc(2026, 11, 2, 23, 59, 59)  # CST, UTC-6
    assert listed.not_before_utc == utc(2025, 11, 3, 0, 0, 0)
    assert not any("ambiguous" in p for p in listed.problems)


def test_real_renewal_tables():
    path = real(RENEWAL)
    records = read_exchange_certificates(path.read_text(encoding="utf-8"), RENEWAL)
    got = [(r.source, r.thumbprint, r.services, r.subject) for r in records]
    assert got == [
        (f"{RENEWAL}:8", "5E4325D6195B5E2932EAE402F515172DC827D083", tuple(ALL_FOUR), "CN=mail"),
        (
            f"{RENEWAL}:9",
            "8E309044815B47A130C6151644263D781DF839C0",
            ("SMTP", "Federation"),
            "CN=Fede",
        ),
        (f"{RENEWAL}:10", "7CC1A6A8C7151C6E7D8079030334B4C8353CE67C", ("SMTP",), "CN=exhc"),
        (f"{RENEWAL}:20", "90158F1DC655C04E65E91198EA507562A837ECC4", ("IMAP", "POP"), "CN=mail.t"),
        (
            f"{RENEWAL}:21",
            "8E309044815B47A130C6151644263D781DF839C0",
            ("SMTP", "Federation"),
            "CN=Federa",
        ),
        (f"{RENEWAL}:22", "7CC1A6A8C7151C6E7D8079030334B4C8353CE67C", ("SMTP",), "CN=exhctn"),
    ]
    assert all(r.problems == (TABLE_NOTE,) for r in records)


@pytest.mark.parametrize(
    "name",
    [
        "get-sendconnector-export-clixml-excerpt-tlscertificatename.xml",
        "event-12014-msexchangetransport-edge.txt",
        "SOURCES.md",
    ],
)
def test_other_real_files_are_not_certificate_exports(name):
    text = real(name).read_text(encoding="utf-8")
    assert not sniff(text)
    with pytest.raises(InventoryError, match=f"^{re.escape(name)}: "):
        read_exchange_certificates(text, name)


# --------------------------------------------------------------------------- synthetic samples


@pytest.mark.parametrize("name", SYNTHETIC_TEXT_SAMPLES)
def test_synthetic_sample_golden(name, update_golden):
    golden = GOLDEN_SYNTHETIC / f"{Path(name).stem}.jsonl"
    check_golden(as_dicts(read_sample(name)), golden, update_golden)


def test_format_list_star():
    first, second, auth = read_sample("fl-star-ex2019-en-us.txt")
    assert [r.source for r in (first, second, auth)] == [
        "fl-star-ex2019-en-us.txt:5",
        "fl-star-ex2019-en-us.txt:43",
        "fl-star-ex2019-en-us.txt:69",
    ]
    assert first.thumbprint == "3F2A9C1D5E7B8A6F4C3D2E1F0A9B8C7D6E5F4A3B"
    assert first.services == ("IIS", "SMTP")
    assert first.sans == (
        "mail.contoso.com",
        "autodiscover.contoso.com",
        "contoso.com",
        "legacy.contoso.com",
    )
    assert first.problems == (
        "CertificateDomains cut by $FormatEnumerationLimit (more names exist)",
    )
    assert first.server == "EX01.corp.contoso.com"
    assert first.not_before_utc == utc(2025, 11, 29, 0, 0, 0)  # 12:00:00 AM
    assert first.not_after_utc == utc(2026, 2, 27, 23, 59, 59)
    assert (first.has_private_key, first.self_signed, first.key_bits) == (True, False, 2048)
    assert first.serial == "04A1B2C3D4E5F60718293A4B5C6D7E8F9012"
    assert first.friendly_name == "mail.contoso.com 2025-11"
    assert first.der is None  # RawData was cut ({48, 130, 5, 12...})
    # a wrapped value continues on lines indented past the colon
    assert second.subject == (
        "CN=mail.fabrikam.com, OU=Messaging and Collaboration Services, "
        "O=Fabrikam Regional Health Authority, L=Christchurch, S=Canterbury, C=NZ"
    )
    assert second.services == ()  # None
    assert second.problems == ()
    assert auth.services == ("SMTP",)
    assert auth.sans == ()
    assert auth.self_signed is True
    # 8/5/2029 is ambiguous alone; other dates in the file (2/27/2026) show month-first order
    assert auth.not_after_utc == utc(2029, 8, 5, 14, 14, 37)
    assert auth.problems == ()


def test_format_list_en_au_dates():
    name = "fl-default-ex2010-en-au.txt"
    (guessed,) = read_sample(name)
    assert guessed.not_before_utc == utc(2018, 12, 2, 13, 53)  # month first: wrong, and said so
    assert "date '12/02/2018 1:53:00 PM' is ambiguous (assumed month/day; use --date-format)" in (
        guessed.problems
    )
    assert guessed.issuer == (
        "CN=Go Daddy Secure Certification Authority, OU=http://certificates.godaddy.com/repository,"
        ' O="GoDaddy.com, Inc.", L=Scottsdale, S=Arizona, C=US'
    )
    (told,) = read_sample(name, date_format="%d/%m/%Y %I:%M:%S %p", tz=ZoneInfo("Australia/Sydney"))
    assert told.not_before_utc == utc(2018, 2, 12, 2, 53)  # 12 Feb 2018 13:53 AEDT (UTC+11)
    assert told.not_before_utc == datetime(2018, 2, 12, 13, 53, tzinfo=ZoneInfo("Australia/Sydney"))
    assert told.problems == ()
    assert told.sans == ("remote.example.com.au", "www.remote.example.com.au")
    assert told.services == tuple(ALL_FOUR)


def test_csv_with_type_line_from_remote_session():
    name = "csv-ps51-typeinfo-remote.csv"
    first, second = read_sample(name)
    assert (first.source, second.source) == (f"{name}:3", f"{name}:4")
    assert first.thumbprint == "A1B2C3D4E5F60718293A4B5C6D7E8F9012345678"
    assert first.services == tuple(ALL_FOUR)
    assert first.sans == ()  # Export-Csv wrote the collection's type name
    assert first.problems == (
        "CertificateDomains holds the type name 'System.Collections.ArrayList', not the names",
    )
    assert first.server == "EX02.corp.contoso.com"
    assert first.not_after_utc == utc(2027, 3, 31, 18, 30)
    assert second.self_signed is True
    assert second.not_before_utc == utc(2025, 1, 9, 7, 41, 2)  # 1/9 follows the file's order


def test_csv_calculated_domains_day_first_file():
    name = "csv-calculated-domains-en-gb.csv"
    first, second = read_sample(name)
    assert first.sans == ("mail.contoso.co.uk", "autodiscover.contoso.co.uk")
    assert first.not_before_utc == utc(2025, 3, 25, 9, 0, 0)
    # 02/11/2025 alone is ambiguous; 25/03/2025 in the same file shows day-first order
    assert second.not_before_utc == utc(2025, 11, 2, 10, 15, 0)
    assert second.problems == ()
    (london,) = read_exchange_certificates(
        "\n".join((DATA / name).read_text().splitlines()[:2]), name, tz=ZoneInfo("Europe/London")
    )
    assert london.not_before_utc == utc(2025, 3, 25, 9, 0, 0)  # still GMT on 25 March


def test_csv_use_culture_semicolons_and_dotted_dates():
    first, second = read_sample("csv-useculture-de-de.csv", tz=ZoneInfo("Europe/Berlin"))
    assert first.subject == "CN=mail.contoso.de, O=Contoso GmbH, L=München, C=DE"
    assert first.sans == ("mail.contoso.de", "autodiscover.contoso.de")
    assert first.not_after_utc == utc(2028, 2, 2, 3, 22, 23)  # 04:22:23 CET
    assert second.services == ()
    assert (second.status, second.has_private_key) == ("DateInvalid", False)
    assert second.not_before_utc == utc(2024, 7, 15, 11, 0, 0)  # 13:00 CEST


def test_json_ps51():
    name = "json-ps51-depth2.json"
    first, auth = read_sample(name)
    assert (first.source, auth.source) == (f"{name}:2", f"{name}:45")
    assert first.services == tuple(ALL_FOUR)  # bitmask 27
    assert first.not_before_utc == utc(2025, 1, 1)
    assert first.not_after_utc == utc(2026, 12, 31, 23, 59, 59)
    assert first.sans == ("mail.contoso.com", "autodiscover.contoso.com", "*.contoso.com")
    assert first.status is None
    assert first.problems == ("Status is the number 1 (ConvertTo-Json enum); its name is unknown",)
    assert first.server == "EX03.corp.contoso.com"
    assert auth.services == ("SMTP",)
    assert auth.sans == ()


def test_json_ps7_single_object():
    name = "json-ps7-enumsasstrings.json"
    (record,) = read_sample(name)
    assert record.source == f"{name}:1"
    assert record.services == ("IIS", "SMTP")
    assert record.status == "Valid"
    assert record.not_after_utc == utc(2026, 6, 30, 1, 59, 59)
    assert record.not_before_utc == datetime(2025, 6, 30, 2, 0, 0, 123456, tzinfo=UTC)
    assert record.sans == ("mail.fabrikam.com", "autodiscover.fabrikam.com", "*.fabrikam.com")
    assert record.key_bits == 3072
    assert record.problems == ()


# --------------------------------------------------------------------------- Clixml


_VALID_FROM = datetime(2025, 3, 1, 8, 0, 0, tzinfo=UTC)


def _certificate(subject, issuer, key, signer, serial, days, sans=(), algorithm=None) -> bytes:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(_VALID_FROM)
        .not_valid_after(_VALID_FROM + timedelta(days=days) - timedelta(seconds=1))
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return builder.sign(signer, algorithm).public_bytes(Encoding.DER)


@functools.cache
def generated_certificates() -> dict[str, bytes]:
    """Three certificates made for this test run (the keys are never stored)."""
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP384R1())
    ed_key = ed25519.Ed25519PrivateKey.generate()
    ca = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Contoso Ltd"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Contoso Issuing CA 01"),
        ]
    )
    leaf = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "Washington"),
            x509.NameAttribute(NameOID.LOCALITY_NAME, "Redmond"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Contoso, Inc."),
            x509.NameAttribute(NameOID.COMMON_NAME, "mail.contoso.com"),
        ]
    )
    ex01 = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "EX01")])
    auth = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, "Microsoft Exchange Server Auth Certificate")]
    )
    leaf_sans = [
        x509.DNSName("mail.contoso.com"),
        x509.DNSName("autodiscover.contoso.com"),
        x509.IPAddress(ipaddress.ip_address("192.0.2.25")),
    ]
    ex01_sans = [x509.DNSName("EX01"), x509.DNSName("EX01.corp.contoso.com")]
    return {
        "LEAF": _certificate(
            leaf,
            ca,
            leaf_key,
            ca_key,
            0x0A1B2C3D4E5F60718293A4B5C6D7E8F9,
            365,
            leaf_sans,
            hashes.SHA256(),
        ),
        "EC": _certificate(
            ex01,
            ex01,
            ec_key,
            ec_key,
            0x2B3C4D5E6F708192A3B4C5D6E7F80912,
            1826,
            ex01_sans,
            hashes.SHA384(),
        ),
        "ED": _certificate(auth, auth, ed_key, ed_key, 0x3C4D5E6F708192A3B4C5D6E7F8091A2B, 1826),
    }


def thumbprint_of(der: bytes) -> str:
    return hashlib.sha1(der).hexdigest().upper()


@functools.cache
def clixml_text() -> str:
    text = (DATA / "clixml-template.xml").read_text(encoding="utf-8")
    for name, der in generated_certificates().items():
        text = text.replace(f"{{{{RAWDATA_{name}}}}}", base64.b64encode(der).decode("ascii"))
        text = text.replace(f"{{{{THUMBPRINT_{name}}}}}", thumbprint_of(der))
    return text


def test_clixml_recomputes_everything_from_raw_data(update_golden):
    ders = generated_certificates()
    text = clixml_text()
    assert sniff(text)
    leaf, ex01, auth, pending = read_exchange_certificates(text, "certs.xml")
    for record, name in ((leaf, "LEAF"), (ex01, "EC"), (auth, "ED")):
        assert record.der == ders[name]
        assert record.thumbprint == hashlib.sha1(record.der).hexdigest().upper()
        assert record.problems == ()
    assert (leaf.source, ex01.source, auth.source, pending.source) == (
        "certs.xml:2",
        "certs.xml:20",
        "certs.xml:60",
        "certs.xml:73",
    )
    # Written as Windows (and the protocol log) writes it, so it joins with the log's text.
    assert leaf.subject == 'CN=mail.contoso.com, O="Contoso, Inc.", L=Redmond, S=Washington, C=US'
    assert leaf.issuer == "CN=Contoso Issuing CA 01, O=Contoso Ltd, C=US"
    assert leaf.serial == "A1B2C3D4E5F60718293A4B5C6D7E8F9"
    assert leaf.not_before_utc == utc(2025, 3, 1, 8, 0, 0)
    assert leaf.not_after_utc == utc(2026, 3, 1, 7, 59, 59)
    assert leaf.sans == ("mail.contoso.com", "autodiscover.contoso.com", "192.0.2.25")
    assert (leaf.key_type, leaf.key_bits, leaf.signature_hash) == ("RSA", 2048, "sha256")
    assert leaf.self_signed is False
    assert leaf.server == "ex01.corp.contoso.com"  # PSComputerName
    assert leaf.services is None  # only inside SerializationData in a remote export
    assert (ex01.key_type, ex01.key_bits, ex01.signature_hash) == ("EC", 384, "sha384")
    assert ex01.self_signed is True
    assert ex01.services == tuple(ALL_FOUR)
    assert (ex01.status, ex01.has_private_key, ex01.server) == (
        "Valid",
        True,
        "EX01.corp.contoso.com",
    )
    assert ex01.sans == ("EX01", "EX01.corp.contoso.com")  # from the certificate's SAN
    assert (auth.key_type, auth.key_bits, auth.signature_hash) == ("Ed25519", 256, None)
    assert auth.self_signed is True
    assert auth.sans == ()
    assert (auth.services, auth.status) == (("SMTP",), "Valid")  # Status via <Ref>
    assert pending.der is None
    assert pending.thumbprint == "9E8D7C6B5A4F3E2D1C0B9A8F7E6D5C4B3A2F1E0D"
    assert (pending.services, pending.status) == ((), "Untrusted")
    assert pending.not_before_utc == utc(2026, 2, 20, 9, 0, 0)  # from the ToString block
    assert pending.problems == (
        "no usable RawData in the Clixml object; facts taken from its text",
    )
    # the thumbprints change with every generated key: the golden holds a marker instead
    rows = as_dicts([leaf, ex01, auth, pending])
    for row in rows[:3]:
        row["thumbprint"] = "<sha1 of RawData>"
    check_golden(rows, GOLDEN_SYNTHETIC / "clixml-generated.jsonl", update_golden)


def test_clixml_thumbprint_that_differs_from_the_bytes_is_reported():
    der = generated_certificates()["LEAF"]
    text = clixml_text().replace(thumbprint_of(der), "00" * 20, 1)
    leaf = read_exchange_certificates(text, "certs.xml")[0]
    assert leaf.thumbprint == thumbprint_of(der)
    assert leaf.problems == (
        f"thumbprint '{'00' * 20}' in the export differs from the certificate bytes "
        f"({thumbprint_of(der)})",
    )


def test_clixml_raw_data_that_is_not_a_certificate():
    text = clixml_text().replace(
        base64.b64encode(generated_certificates()["LEAF"]).decode(), "AAAA"
    )
    leaf = read_exchange_certificates(text, "certs.xml")[0]
    assert leaf.der is None
    assert leaf.subject == 'CN=mail.contoso.com, O="Contoso, Inc.", L=Redmond, S=Washington, C=US'
    assert any(p.startswith("RawData is not a DER certificate") for p in leaf.problems)


def test_clixml_with_utf16_declaration_is_read():
    text = '<?xml version="1.0" encoding="utf-16"?>\n' + clixml_text()
    assert len(read_exchange_certificates(text, "certs.xml")) == 4


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('<Objs Version="1.1.0.1"><Obj><TN><T>X509Certificate2</T></TN>', "broken Clixml"),
        (
            '<!DOCTYPE Objs [<!ENTITY a "b">]><Objs><Obj><TN><T>X509Certificate2</T></TN></Obj>'
            "</Objs>",
            "Clixml with a DTD is refused",
        ),
    ],
)
def test_broken_clixml_raises(text, message):
    with pytest.raises(InventoryError, match=f"^bad.xml: {message}"):
        read_exchange_certificates(text, "bad.xml")


def test_json_raw_data_as_byte_list_is_decoded():
    der = generated_certificates()["EC"]
    text = json.dumps({"Thumbprint": thumbprint_of(der), "RawData": list(der), "Services": 16})
    (record,) = read_text(text)
    assert record.der == der
    assert record.subject == "CN=EX01"
    assert record.services == ("SMTP",)


# --------------------------------------------------------------------------- field rules


@pytest.mark.parametrize(
    ("value", "services"),
    [
        ("IP.WS.", ALL_FOUR),  # Exchange 2010: 6 places
        ("IP.WS..", ALL_FOUR),
        ("....SF", ["SMTP", "Federation"]),
        ("....S.", ["SMTP"]),
        ("IP....", ["IMAP", "POP"]),
        (".......", []),
        ("IPUWSFC", ["IMAP", "POP", "UM", "IIS", "SMTP", "Federation", "UMCallRouter"]),
        ("IMAP, POP, IIS, SMTP", ALL_FOUR),
        ("SMTP, IIS", ["IIS", "SMTP"]),
        ("IIS", ["IIS"]),
        ("None", []),
        ("27", ALL_FOUR),
        ("48", ["SMTP", "Federation"]),
    ],
)
def test_services_decoding(value, services):
    record = one_list_record(Services=value)
    assert record.services == tuple(services)
    assert record.problems == ()


def test_services_cut_by_the_console_are_reported():
    record = one_list_record(Services="IP.W…")
    assert record.services == ("IMAP", "POP", "IIS")
    assert record.problems == ("services 'IP.W…' cut by the console (later flags unknown)",)
    record = one_list_record(Services="IMAP, POP, II...")
    assert record.services == ("IMAP", "POP")
    assert len(record.problems) == 1


def test_services_nonsense_is_a_problem_not_a_crash():
    record = one_list_record(Services="Everything")
    assert record.services is None
    assert record.problems == ("services 'Everything' not understood",)
    (record,) = read_text(json.dumps({"Thumbprint": "A" * 40, "Services": 1024 + 16}))
    assert record.services == ("SMTP",)
    assert record.problems == ("services bitmask 1040 has bits Exchange does not define",)


@pytest.mark.parametrize(
    "written",
    [
        "78e1be82f683ee6d8cb9b9266fc1185ae0890c41",
        "78 E1 BE 82 F6 83 EE 6D 8C B9 B9 26 6F C1 18 5A E0 89 0C 41",
        "78:E1:BE:82:F6:83:EE:6D:8C:B9:B9:26:6F:C1:18:5A:E0:89:0C:41",
        "\u200e78E1BE82F683EE6D8CB9B9266FC1185AE0890C41",
    ],
)
def test_thumbprint_normalised(written):
    (record,) = read_text(f"Thumbprint : {written}\nServices : SMTP\n")
    assert record.thumbprint == "78E1BE82F683EE6D8CB9B9266FC1185AE0890C41"
    assert record.problems == ()


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("11/2/2026 5:59:59 PM", utc(2026, 11, 2, 17, 59, 59)),
        ("13/02/2018 1:53:00 PM", utc(2018, 2, 13, 13, 53)),  # first number > 12: day first
        ("2/13/2018 12:00:00 AM", utc(2018, 2, 13, 0, 0)),
        ("2/13/2018 12:30:00 PM", utc(2018, 2, 13, 12, 30)),
        ("02.02.2028 4:22:23", utc(2028, 2, 2, 4, 22, 23)),  # ru/de: day first
        ("2028-02-02 04:22:23", utc(2028, 2, 2, 4, 22, 23)),
        ("2028-02-02T04:22:23Z", utc(2028, 2, 2, 4, 22, 23)),
        ("2028/02/03 16:00:00", utc(2028, 2, 3, 16, 0)),
        ("/Date(1696118400000)/", utc(2023, 10, 1)),
    ],
)
def test_dates(written, expected):
    record = one_list_record(NotAfter=written)
    assert record.not_after_utc == expected


def test_dates_are_server_local_times():
    record = read_text(
        "Thumbprint : " + "A" * 40 + "\nNotAfter : 02.02.2028 4:22:23\n",
        tz=ZoneInfo("Europe/Moscow"),
    )[0]
    assert record.not_after_utc == utc(2028, 2, 2, 1, 22, 23)
    # an explicit offset wins over tz; /Date(ms)/ is UTC already
    (record,) = read_text(
        json.dumps(
            {
                "Thumbprint": "A" * 40,
                "NotAfter": "2028-02-02T04:22:23+03:00",
                "NotBefore": "/Date(0)/",
            }
        ),
        tz=ZoneInfo("Pacific/Auckland"),
    )
    assert record.not_after_utc == utc(2028, 2, 2, 1, 22, 23)
    assert record.not_before_utc == utc(1970, 1, 1)


@pytest.mark.parametrize(
    ("written", "problem"),
    [
        ("31/31/2026 1:00:00 PM", "date '31/31/2026 1:00:00 PM' is not a valid date"),
        ("13/2/2026 13:00:00 PM", "date '13/2/2026 13:00:00 PM' is not a valid date"),
        ("next Tuesday", "date 'next Tuesday' not understood (use --date-format)"),
        ("1/2/26 3:00 PM", "date '1/2/26 3:00 PM' not understood (use --date-format)"),
    ],
)
def test_bad_dates_are_problems(written, problem):
    record = one_list_record(NotAfter=written)
    assert record.not_after_utc is None
    assert record.problems == (problem,)


def test_date_format_that_does_not_match_is_reported():
    (record,) = read_text(
        "Thumbprint : " + "A" * 40 + "\nNotAfter : 11/2/2026 5:59:59 PM\n", date_format="%d.%m.%Y"
    )
    assert record.not_after_utc is None
    assert record.problems == (
        "date '11/2/2026 5:59:59 PM' does not match the date format '%d.%m.%Y'",
    )


def test_identity_gives_server_and_thumbprint():
    (record,) = read_text(
        "Identity : EX01.contoso.com\\78E1BE82F683EE6D8CB9B9266FC1185AE0890C41\n"
        "Services : SMTP\nSubject  : CN=mail.contoso.com\n"
    )
    assert (record.server, record.thumbprint) == (
        "EX01.contoso.com",
        "78E1BE82F683EE6D8CB9B9266FC1185AE0890C41",
    )


def test_json_domains_in_every_shape():
    (record,) = read_text(
        json.dumps(
            {
                "Thumbprint": "A" * 40,
                "CertificateDomains": [
                    "a.example.com",
                    {"Address": "b.example.com"},
                    {"Domain": {"Domain": "c.example.com"}},
                    {"Domain": "example.com", "IncludeSubDomains": True},
                    {"Unknown": 1},
                    7,
                ],
            }
        )
    )
    assert record.sans == ("a.example.com", "b.example.com", "c.example.com", "*.example.com")


def test_ps51_value_wrapper_and_line_numbers():
    text = (
        '{\r\n  "value": [\r\n    {"Thumbprint": "' + "A" * 40 + '"},\r\n\r\n    {"Thumbprint": "'
    )
    text += "B" * 40 + '"}\r\n  ],\r\n  "Count": 2\r\n}\r\n'
    records = read_exchange_certificates(text, "w.json")
    assert [r.source for r in records] == ["w.json:3", "w.json:5"]


def test_table_in_a_transcript_with_a_prompt_and_ansi_colours():
    text = (
        "[PS] C:\\>Get-ExchangeCertificate\n\n"
        "\x1b[32;1mThumbprint                                Services   Subject\x1b[0m\n"
        "\x1b[32;1m----------                                --------   -------\x1b[0m\n"
        "5E4325D6195B5E2932EAE402F515172DC827D083  IP.WS..    CN=mail.contoso.com, O=Contoso Lt…\n"
        "[PS] C:\\>\n"
    )
    assert sniff(text)
    (record,) = read_text(text)
    assert record.source == "inline.txt:5"
    assert record.services == tuple(ALL_FOUR)
    assert record.problems == ("subject truncated by the console",)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello world\n",
        "Name : Default Frontend EX01\nFqdn : mail.contoso.com\n",  # a connector, not a cert
        '{"CurrentCertificateThumbprint": "' + "A" * 40 + '"}',  # Get-AuthConfig
        '"Name","Fqdn"\n"Outbound to Office 365","mail.contoso.com"\n',
        "[]",
    ],
)
def test_not_an_export(text):
    assert not sniff(text)
    with pytest.raises(InventoryError, match=r"^x\.txt: not Get-ExchangeCertificate output"):
        read_exchange_certificates(text, "x.txt")


def test_broken_json_export_raises():
    text = '[{"Thumbprint": "' + "A" * 40 + '", "Services": 16},'
    assert sniff(text)
    with pytest.raises(InventoryError, match=r"^b\.json: broken ConvertTo-Json output"):
        read_exchange_certificates(text, "b.json")


def test_csv_header_only_is_an_empty_inventory():
    assert read_text('#TYPE x\n"Thumbprint","Services"\n') == []


# --------------------------------------------------------------------------- fuzzing


def read_or_inventory_error(text: str) -> None:
    """Arbitrary text gives records or InventoryError, never another exception."""
    sniff(text)
    try:
        records = read_exchange_certificates(text, "fuzz.txt")
    except InventoryError as err:
        assert str(err).startswith("fuzz.txt: ")
        return
    assert all(isinstance(r, CertificateRecord) for r in records)
    assert all(r.source.startswith("fuzz.txt:") for r in records)


@functools.cache
def all_samples() -> list[str]:
    texts = [(DATA / name).read_text(encoding="utf-8") for name in SYNTHETIC_TEXT_SAMPLES]
    texts.append(clixml_text())
    texts += [(REAL / name).read_text("utf-8") for name in REAL_EXPORTS if (REAL / name).is_file()]
    return texts


@given(text=st.text(max_size=400))
@example(text="Thumbprint : \nServices : 99999999999999999999\n")
@example(text='{"Thumbprint": 1, "NotAfter": "/Date(999999999999999)/", "Services": -1}')
@example(text='[{"thumbprint": "x", "RawData": [48, 0], "CertificateDomains": "a;b"}]')
@example(text="[" * 5000 + '"Thumbprint":')
@example(text='"Thumbprint","NotAfter"\n"x","99/99/9999 99:99:99 PM"\n')
@example(text="<Objs><Obj><TN><T>X509Certificate2</T></TN><Props><BA N='RawData'>====</BA>")
def test_arbitrary_text(text):
    read_or_inventory_error(text)


@given(data=st.data())
def test_truncated_samples(data):
    text = data.draw(st.sampled_from(all_samples()))
    cut = data.draw(st.integers(min_value=0, max_value=len(text)))
    read_or_inventory_error(text[:cut])


@given(data=st.data(), junk=st.text(max_size=40))
def test_junk_inserted_into_samples(data, junk):
    text = data.draw(st.sampled_from(all_samples()))
    at = data.draw(st.integers(min_value=0, max_value=len(text)))
    read_or_inventory_error(text[:at] + junk + text[at:])

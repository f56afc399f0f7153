"""Certificate files: PEM (bundles), DER, PKCS#7 (PEM and DER), PKCS#12 with passwords."""

from __future__ import annotations

import contextlib
import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from loganalyzer.errors import InventoryError
from loganalyzer.inventory.x509 import read_certificate_file, windows_dn
from tests.certgen import issue, name

PEM = serialization.Encoding.PEM
DER = serialization.Encoding.DER


@pytest.fixture(scope="module")
def chain():
    ca = issue(name("Example Issuing CA 2", "Example Trust"), serial=0x01)
    server = issue(
        name("mail.corp.example.com", "Example Corp, Inc.", st="Example State"),
        ca,
        sans=("mail.corp.example.com", "autodiscover.corp.example.com"),
        serial=0x00C0FFEE,
    )
    return ca, server


def test_facts_from_pem(chain):
    _, server = chain
    (record,) = read_certificate_file(server.cert.public_bytes(PEM), "server.pem")
    der = server.cert.public_bytes(DER)
    assert record.thumbprint == hashlib.sha1(der).hexdigest().upper()
    assert (
        record.subject == 'CN=mail.corp.example.com, O="Example Corp, Inc.", S=Example State, C=US'
    )
    assert record.issuer == "CN=Example Issuing CA 2, O=Example Trust, C=US"
    assert record.serial == "C0FFEE"
    assert record.sans == ("mail.corp.example.com", "autodiscover.corp.example.com")
    assert (record.key_type, record.key_bits, record.signature_hash) == ("RSA", 2048, "sha256")
    assert record.self_signed is False
    assert record.not_after_utc.isoformat() == "2027-10-27T00:00:00+00:00"
    assert record.source == "server.pem" and record.der == der


def test_bundle_der_and_pkcs7(chain):
    ca, server = chain
    bundle = server.cert.public_bytes(PEM) + b"\n" + ca.cert.public_bytes(PEM)
    assert [r.subject.split(",")[0] for r in read_certificate_file(bundle, "b.pem")] == [
        "CN=mail.corp.example.com",
        "CN=Example Issuing CA 2",
    ]
    (der_record,) = read_certificate_file(server.cert.public_bytes(DER), "s.cer")
    assert der_record.serial == "C0FFEE"
    (root,) = read_certificate_file(ca.cert.public_bytes(DER), "ca.crt")
    assert root.self_signed is True
    for encoding in (PEM, DER):
        p7 = pkcs7.serialize_certificates([server.cert, ca.cert], encoding)
        assert len(read_certificate_file(p7, "chain.p7b")) == 2


def test_pkcs12_passwords(chain, monkeypatch):
    ca, server = chain
    pfx = pkcs12.serialize_key_and_certificates(
        b"mail", server.key, server.cert, [ca.cert],
        serialization.BestAvailableEncryption(b"s3cret"),
    )  # fmt: skip
    records = read_certificate_file(pfx, "mail.pfx", b"s3cret")
    assert [r.has_private_key for r in records] == [True, None]
    assert records[0].friendly_name == "mail"
    with pytest.raises(InventoryError, match=r"mail\.pfx: PKCS#12 file: wrong or missing password"):
        read_certificate_file(pfx, "mail.pfx", b"wrong")
    with pytest.raises(InventoryError, match="LOGANALYZER_PFX_PASSWORD"):
        read_certificate_file(pfx, "mail.pfx")
    open_pfx = pkcs12.serialize_key_and_certificates(
        None, server.key, server.cert, None, serialization.NoEncryption()
    )
    assert len(read_certificate_file(open_pfx, "open.pfx")) == 1


def test_corrupt_and_unknown(chain):
    _, server = chain
    der = bytearray(server.cert.public_bytes(DER))
    der[40:60] = bytes(20)
    with pytest.raises(InventoryError, match=r"bad\.cer: "):
        read_certificate_file(bytes(der), "bad.cer")
    with pytest.raises(InventoryError, match="not a certificate file"):
        read_certificate_file(b"hello", "notes.txt")
    with pytest.raises(InventoryError, match=r"x\.pem"):
        read_certificate_file(
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "x.pem"
        )


def test_windows_dn_quotes_like_dotnet():
    dn = windows_dn(name('Quote "me"', " lead"))
    assert dn == 'CN="Quote ""me""", O=" lead", C=US'


@given(data=st.binary(max_size=2000))
@example(data=b"\x30\x82\xff\xff")
@example(data=b"-----BEGIN CERTIFICATE-----\n\n-----END CERTIFICATE-----")
def test_arbitrary_bytes_raise_only_inventory_errors(data):
    with contextlib.suppress(InventoryError):
        read_certificate_file(data, "fuzz.bin", b"pw")


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=0, max_value=2000))
def test_truncated_certificates_raise_only_inventory_errors(chain, cut):
    _, server = chain
    for blob in (server.cert.public_bytes(PEM), server.cert.public_bytes(DER)):
        with contextlib.suppress(InventoryError):
            read_certificate_file(blob[:cut], "cut.cer")

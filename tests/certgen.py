"""Certificates for tests, built at test time with cryptography (no private key is committed)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

NOW = datetime(2026, 11, 26, tzinfo=UTC)


def name(cn: str, o: str | None = None, c: str = "US", st: str | None = None) -> x509.Name:
    """A DN in the usual CA order (C first in DER, so CN comes first when displayed)."""
    attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, c)]
    if st:
        attrs.append(x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, st))
    if o:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, o))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


@dataclass
class Issued:
    cert: x509.Certificate
    key: object


def issue(
    subject: x509.Name,
    issuer: Issued | None = None,
    *,
    sans: tuple[str, ...] = (),
    days: tuple[int, int] = (-30, 335),
    serial: int = 0x1A2B3C,
    ec_key: bool = False,
) -> Issued:
    """A certificate for ``subject``, signed by ``issuer`` (self-signed when None)."""
    key = (
        ec.generate_private_key(ec.SECP256R1()) if ec_key else rsa.generate_private_key(65537, 2048)
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(NOW + timedelta(days=days[0]))
        .not_valid_after(NOW + timedelta(days=days[1]))
    )
    if sans:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in sans]), critical=False
        )
    signer = issuer.key if issuer else key
    return Issued(builder.sign(signer, hashes.SHA256()), key)

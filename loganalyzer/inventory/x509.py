"""Certificate files (PEM, DER, PKCS#7, PKCS#12) and facts computed from certificate bytes.

Formats are recognised by content, not by file extension. Subjects and issuers are written the
way Windows (and so Exchange and its protocol logs) writes them: last RDN first, ``", "``
between RDNs, ``S=`` for the state, ``E=`` for e-mail, quoted values where .NET quotes them.
A PKCS#12 password is only ever used to open the file: never printed, logged or stored.
"""

from __future__ import annotations

import hashlib
import re

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from cryptography.x509.oid import NameOID

from loganalyzer.errors import InventoryError
from loganalyzer.inventory.records import CertificateRecord

#: Windows key names of RDN attributes (others are written as ``OID.1.2.3=``).
_WINDOWS_KEYS = {
    NameOID.COMMON_NAME: "CN",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
    NameOID.ORGANIZATION_NAME: "O",
    NameOID.LOCALITY_NAME: "L",
    NameOID.STATE_OR_PROVINCE_NAME: "S",
    NameOID.COUNTRY_NAME: "C",
    NameOID.EMAIL_ADDRESS: "E",
    NameOID.SERIAL_NUMBER: "SERIALNUMBER",
    NameOID.STREET_ADDRESS: "STREET",
    NameOID.DOMAIN_COMPONENT: "DC",
    NameOID.GIVEN_NAME: "G",
    NameOID.SURNAME: "SN",
    NameOID.TITLE: "T",
}
_NEEDS_QUOTES = re.compile(r'^\s|\s$|[,+="\n<>#;]')


def windows_dn(name: x509.Name) -> str:
    """A DN as .NET's ``X500DistinguishedName.Name`` writes it (``CN=a, O=b, S=c, C=US``)."""
    parts = []
    for rdn in reversed(name.rdns):
        items = []
        for attribute in rdn:
            key = _WINDOWS_KEYS.get(attribute.oid, f"OID.{attribute.oid.dotted_string}")
            value = attribute.value if isinstance(attribute.value, str) else attribute.value.hex()
            if _NEEDS_QUOTES.search(value):
                value = '"' + value.replace('"', '""') + '"'
            items.append(f"{key}={value}")
        parts.append(" + ".join(items))
    return ", ".join(parts)


def record_from_certificate(
    cert: x509.Certificate,
    source: str,
    *,
    has_private_key: bool | None = None,
    friendly_name: str | None = None,
) -> CertificateRecord:
    """Every fact the session table and the join need, computed from the certificate itself."""
    der = cert.public_bytes(serialization.Encoding.DER)
    key = cert.public_key()
    key_type, key_bits = _key_facts(key)
    try:
        hash_name = cert.signature_hash_algorithm.name if cert.signature_hash_algorithm else None
    except Exception:  # an unsupported signature algorithm must not stop the inventory
        hash_name = None
    return CertificateRecord(
        source=source,
        thumbprint=hashlib.sha1(der).hexdigest().upper(),
        subject=windows_dn(cert.subject),
        issuer=windows_dn(cert.issuer),
        serial=format(cert.serial_number, "X"),
        not_before_utc=cert.not_valid_before_utc,
        not_after_utc=cert.not_valid_after_utc,
        sans=_sans(cert),
        has_private_key=has_private_key,
        self_signed=_self_signed(cert),
        key_type=key_type,
        key_bits=key_bits,
        signature_hash=hash_name,
        friendly_name=friendly_name,
        der=der,
    )


def _key_facts(key) -> tuple[str | None, int | None]:
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC", key.key_size
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456
    return None, None


def _sans(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return ()
    names = list(san.get_values_for_type(x509.DNSName))
    names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    return tuple(names)


def _self_signed(cert: x509.Certificate) -> bool:
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except Exception:  # wrong signature, unsupported algorithm: not provably self-signed
        return False
    return True


# --- files ------------------------------------------------------------------------------------

PFX_PASSWORD_ENV = "LOGANALYZER_PFX_PASSWORD"


def sniff(data: bytes) -> str | None:
    """``pem``, ``pkcs7-pem``, ``der`` (a certificate, a PKCS#7 or a PKCS#12 in DER) or None."""
    head = data[:200].lstrip()
    if head.startswith(b"-----BEGIN PKCS7-----"):
        return "pkcs7-pem"
    if b"-----BEGIN CERTIFICATE-----" in data[:65536]:
        return "pem"
    if head[:1] == b"\x30":  # an ASN.1 SEQUENCE: certificate, PKCS#7 or PKCS#12
        return "der"
    return None


def read_certificate_file(
    data: bytes, source: str, password: bytes | None = None
) -> list[CertificateRecord]:
    """All certificates in one PEM/DER/PKCS#7/PKCS#12 file.

    Raises InventoryError naming ``source`` for corrupt data, a PKCS#12 file without the right
    password ("wrong or missing password"), or content that is no certificate file.
    """
    kind = sniff(data)
    try:
        if kind == "pem":
            return [record_from_certificate(c, source) for c in _pem_certificates(data)]
        if kind == "pkcs7-pem":
            certs = pkcs7.load_pem_pkcs7_certificates(data)
            return [record_from_certificate(c, source) for c in certs]
        if kind == "der":
            return _der_records(data, source, password)
    except InventoryError:
        raise
    except ValueError as err:
        raise InventoryError(f"{source}: not a readable certificate file ({err})") from None
    raise InventoryError(f"{source}: not a certificate file (PEM, DER, PKCS#7 or PKCS#12)")


def _pem_certificates(data: bytes) -> list[x509.Certificate]:
    blocks = re.findall(
        rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", data, flags=re.DOTALL
    )
    return [x509.load_pem_x509_certificate(block) for block in blocks]


def _der_records(data: bytes, source: str, password: bytes | None) -> list[CertificateRecord]:
    try:
        return [record_from_certificate(x509.load_der_x509_certificate(data), source)]
    except ValueError:
        pass
    try:
        certs = pkcs7.load_der_pkcs7_certificates(data)
        return [record_from_certificate(c, source) for c in certs]
    except ValueError:
        pass
    return _pkcs12_records(data, source, password)


def _pkcs12_records(data: bytes, source: str, password: bytes | None) -> list[CertificateRecord]:
    """A PKCS#12 file: tries no password, the empty password, then the user's."""
    candidates: list[bytes | None] = [None, b""]
    if password is not None:
        candidates.append(password)
    for candidate in candidates:
        try:
            bundle = pkcs12.load_pkcs12(data, candidate)
        except ValueError:
            continue
        records = []
        if bundle.cert is not None:
            name = bundle.cert.friendly_name
            records.append(
                record_from_certificate(
                    bundle.cert.certificate,
                    source,
                    has_private_key=bundle.key is not None,
                    friendly_name=name.decode("utf-8", "replace") if name else None,
                )
            )
        records += [
            record_from_certificate(extra.certificate, source) for extra in bundle.additional_certs
        ]
        return records
    if _looks_like_pkcs12(data):
        hint = "" if password is not None else f" (set {PFX_PASSWORD_ENV} or --pfx-password-file)"
        raise InventoryError(f"{source}: PKCS#12 file: wrong or missing password{hint}")
    raise InventoryError(f"{source}: not a readable certificate file (DER data of another kind)")


def _looks_like_pkcs12(data: bytes) -> bool:
    """A PFX starts SEQUENCE { INTEGER 3, SEQUENCE { OID pkcs7-data ... } }."""
    return b"\x02\x01\x03\x30" in data[:12] and b"\x2a\x86\x48\x86\xf7\x0d\x01\x07\x01" in data[:40]

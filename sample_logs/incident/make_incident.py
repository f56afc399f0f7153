"""Make the two-server incident sample: certificates, exports and protocol logs of EX01/EX02.

Run from anywhere: ``python sample_logs/incident/make_incident.py`` (standard library +
cryptography). See README.md beside this script for the story.

Two phases:

1. Certificates (only with ``--new-certificates``, or when the PEM files are missing): new keys,
   so new certificates and thumbprints. Writes ``inventory/*.pem``. Not deterministic.
2. Everything else (every run): reads the PEM files back and writes the
   ``Get-ExchangeCertificate | Format-List *`` export of each server, ``send-connectors.fl.txt``
   and the SmtpSend/SmtpReceive logs of EX01 and EX02. Deterministic: re-running it with the same
   PEM files rewrites byte-identical files.

After new certificates, regenerate the golden findings:
``python -m pytest tests/test_incident.py --update-golden``.

The private keys are never written: nothing here can protect anything.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import sys
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

HERE = Path(__file__).resolve().parent
INVENTORY = HERE / "inventory"
CRLF = "\r\n"
BOM = "\ufeff"

# make_inventory.py (one folder up) has the DN, Format-List and certificate-extension helpers.
_spec = importlib.util.spec_from_file_location("make_inventory", HERE.parent / "make_inventory.py")
assert _spec and _spec.loader
mi = importlib.util.module_from_spec(_spec)
sys.modules["make_inventory"] = mi  # (dataclasses look their module up)
_spec.loader.exec_module(mi)
mi.EXPORTED = datetime(2026, 11, 27, 6, 40, 0, tzinfo=UTC)  # when the exports were taken


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --------------------------------------------------------------------------- certificates

ROOT, CA2, CA3 = "example-root-ca", "example-issuing-ca-2", "example-issuing-ca-3"
OLD, NEW = "hybrid-corp-example-com-2025", "hybrid-corp-example-com-2026"
HYBRID = "CN=hybrid.corp.example.com, O=Example Corp, C=US"
HYBRID_SANS = ("hybrid.corp.example.com", "autodiscover.corp.example.com")
EXPIRY = utc(2026, 11, 27, 3, 0, 0)

SPECS = [
    mi.Spec(ROOT, "CN=Example Root CA, O=Example Trust, C=US", "self",
            0x1F3A5C7E9B0D2F4A6C8E0B1D3F5A7C9F, utc(2021, 1, 1), utc(2041, 1, 1), ca=True),
    mi.Spec(CA2, "CN=Example Issuing CA 2, O=Example Trust, C=US", ROOT,
            0x3B9E4F2A7C1D6E5F80A1B2C3D4E5F612, utc(2021, 6, 1), utc(2031, 6, 1), ca=True),
    mi.Spec(CA3, "CN=Example Issuing CA 3, O=Example Trust, C=US", ROOT,
            0x3B9E4F2A7C1D6E5F80A1B2C3D4E5F613, utc(2025, 6, 1), utc(2035, 6, 1), ca=True),
    mi.Spec(OLD, HYBRID, CA2, 0x4F0000117A2C3E5D7F91B3C50000000000117A,
            utc(2025, 11, 26, 3, 0, 0), EXPIRY, HYBRID_SANS, "...WS..", ("EX01", "EX02"),
            "hybrid.corp.example.com 2025", exportable=True,
            note="the public certificate; expires 2026-11-27 03:00Z; TlsCertificateName names it"),
    mi.Spec(NEW, HYBRID, CA3, 0x2C000012B4D6F8091A3C5E700000000000B4D6,
            utc(2026, 11, 13), utc(2027, 11, 13), HYBRID_SANS, "...WS..", ("EX01", "EX02"),
            "hybrid.corp.example.com 2026 renewal", exportable=True,
            note="the renewal (issuer changed to CA 3), enabled for SMTP on both servers"),
]  # fmt: skip
BY_KEY = {spec.key: spec for spec in SPECS}


def new_certificates() -> None:
    """New keys and certificates; writes ``inventory/<key>.pem`` (certificates only)."""
    keys: dict[str, rsa.RSAPrivateKey] = {}
    certs: dict[str, x509.Certificate] = {}
    for spec in SPECS:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        root = spec.issuer == "self"
        issuer_name = mi.make_name(spec.subject) if root else certs[spec.issuer].subject
        builder = (
            x509.CertificateBuilder()
            .subject_name(mi.make_name(spec.subject))
            .issuer_name(issuer_name)
            .public_key(key.public_key())
            .serial_number(spec.serial)
            .not_valid_before(spec.not_before)
            .not_valid_after(spec.not_after)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        )
        if not root:
            aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(keys[spec.issuer].public_key())
            builder = builder.add_extension(aki, False)
        builder = mi._usage(builder, spec, root)
        cert = builder.sign(key if root else keys[spec.issuer], hashes.SHA256())
        keys[spec.key], certs[spec.key] = key, cert
    INVENTORY.mkdir(parents=True, exist_ok=True)
    for name, cert in certs.items():
        (INVENTORY / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def load() -> dict[str, mi.Made]:
    """The certificates written by ``new_certificates``, checked against their Spec."""
    made = {}
    for spec in SPECS:
        cert = x509.load_pem_x509_certificate((INVENTORY / f"{spec.key}.pem").read_bytes())
        item = mi.Made(spec, cert, None)
        issuer = spec.subject if spec.issuer == "self" else BY_KEY[spec.issuer].subject
        assert (item.subject, item.issuer) == (spec.subject, issuer), spec.key
        assert item.serial == format(spec.serial, "X") and item.serial[0] in "1234567"
        assert cert.not_valid_after_utc == spec.not_after and tuple(item.sans) == spec.sans
        made[spec.key] = item
    return made


def write_exports(made: dict[str, mi.Made]) -> None:
    for server in ("EX01", "EX02"):
        name = f"{server}-get-exchangecertificate-fl-star.txt"
        write_text(INVENTORY / name, mi.fl_star(server, {k: made[k] for k in (OLD, NEW)}))
    write_text(INVENTORY / "send-connectors.fl.txt", send_connectors(made[OLD]))


def send_connectors(old: mi.Made) -> str:
    """``Get-SendConnector "Outbound to Office 365" | Format-List`` (Hybrid wizard connector)."""
    pairs = {
        "RunspaceId": mi.RUNSPACE["EX01"],
        "AddressSpaces": "{smtp:contoso-example.mail.onmicrosoft.com;1}",
        "AuthenticationCredential": "",
        "CloudServicesMailEnabled": "True",
        "Comment": "",
        "ConnectedDomains": "{}",
        "ConnectionInactivityTimeOut": "00:10:00",
        "ConnectorType": "Default",
        "DNSRoutingEnabled": "False",
        "DomainSecureEnabled": "False",
        "Enabled": "True",
        "ErrorPolicies": "Default",
        "ForceHELO": "False",
        "Fqdn": "hybrid.corp.example.com",
        "FrontendProxyEnabled": "False",
        "HomeMTA": "Microsoft MTA",
        "HomeMtaServerId": "EX01",
        "Identity": "Outbound to Office 365",
        "IgnoreSTARTTLS": "False",
        "IsScopedConnector": "False",
        "IsSmtpConnector": "True",
        "MaxMessageSize": "35 MB (36,700,160 bytes)",
        "Name": "Outbound to Office 365",
        "Port": "25",
        "ProtocolLoggingLevel": "Verbose",
        "RequireOorg": "False",
        "RequireTLS": "True",
        "SmartHostAuthMechanism": "None",
        "SmartHosts": "{contoso-example.mail.protection.example.net}",
        "SmartHostsString": "contoso-example.mail.protection.example.net",
        "SmtpMaxMessagesPerConnection": "20",
        "SourceIPAddress": "0.0.0.0",
        "SourceRoutingGroup": "Exchange Routing Group (DWBGZMFD01QNBJR)",
        "SourceTransportServers": "{EX01, EX02}",
        "TlsAuthLevel": "DomainValidation",
        "TlsCertificateName": mi.tls_name(old),
        "TlsDomain": "contoso-example.mail.protection.example.net",
        "UseExternalDNSServersEnabled": "False",
    }
    pad = max(len(k) for k in pairs)
    prompt = "[PS] C:\\Windows\\system32>"
    body = "\n".join(mi.fl_lines(list(pairs.items()), pad))
    command = f'{prompt}Get-SendConnector "Outbound to Office 365" | Format-List'
    return f"{command}\n\n\n{body}\n\n\n{prompt}\n"


def write_text(path: Path, text: str) -> None:
    path.write_bytes(text.replace("\r\n", "\n").replace("\n", CRLF).encode("utf-8"))


# --------------------------------------------------------------------------- logs

START = utc(2026, 11, 26, 20, 0, 0)
END = utc(2026, 11, 27, 7, 0, 0)
SERVERS = {"EX01": "10.20.1.11", "EX02": "10.20.1.12"}
NAT = "198.51.100.10"
OUR_NAME = "hybrid.corp.example.com"
O365 = "Outbound to Office 365"
INTERNET = "Internet Send Connector"
EXO = {"203.0.113.80": "SN1PEPF000252A1", "203.0.113.81": "BL2PEPF00003F7C"}
EXO_CERT = {
    "subject": "CN=mail.protection.example.net, O=Example Cloud Services, L=Redmond, S=WA, C=US",
    "issuer": "CN=Example Cloud TLS Issuing RSA CA 01, O=Example Cloud Services, C=US",
    "serial": "330005A1B2C3D4E5F60718293A4B5C6D7E8F90",
    "thumbprint": "6C2D9E1F4A7B3C5D8E0F1A2B3C4D5E6F7A8B9C0D",
    "sans": "mail.protection.example.net;*.mail.protection.example.net;"
    "*.mail.eo.example.net;*.olc.protection.example.net",
}
MX1_CERT = {
    "subject": "CN=mx1.example.org",
    "issuer": "CN=Example Public CA R3, O=Example Trust Services, C=US",
    "serial": "03A1F2C47E9B5D60128F44C9E07A3B1D22F7",
    "thumbprint": "5E0B7C3A9D1F2E4B6A8C0D2E4F6A8B0C1D3E5F70",
    "sans": "mx1.example.org;mx2.example.org",
}
HOSTING_CERT = {  # the hosting provider's certificate: does not cover mx.fabrikam-mail.example
    "subject": "CN=mailgw.hosting.example.net, O=Example Hosting, C=US",
    "issuer": "CN=Example Public CA R3, O=Example Trust Services, C=US",
    "serial": "04B2E3D58F0C6E71239A55DAF18B4C2E33A8",
    "thumbprint": "7A1E3C5B9F2D4E6A8B0C1D3E5F7A9B2C4D6E8F01",
    "sans": "mailgw.hosting.example.net;*.hosting.example.net",
}
TLS = (
    "TLS protocol SP_PROT_{version}_{side} negotiation succeeded using bulk encryption algorithm "
    "{cipher} with strength {bits} bits, MAC hash algorithm {mac} with strength {macbits} bits "
    "and key exchange algorithm {kx} with strength {kxbits} bits"
)
TLS12 = {"version": "TLS1_2", "cipher": "CALG_AES_256", "bits": 256, "mac": "CALG_SHA_384",
         "macbits": 0, "kx": "CALG_ECDH_EPHEM", "kxbits": 384}  # fmt: skip
TLS10_AES = {"version": "TLS1_0", "cipher": "CALG_AES_256", "bits": 256, "mac": "CALG_SHA1",
             "macbits": 160, "kx": "CALG_ECDHE", "kxbits": 256}  # fmt: skip
TLS10_3DES = {"version": "TLS1_0", "cipher": "CALG_3DES", "bits": 168, "mac": "CALG_SHA1",
              "macbits": 160, "kx": "CALG_RSA_KEYX", "kxbits": 2048}  # fmt: skip
EXO_EHLO = ["SIZE 157286400", "PIPELINING", "DSN", "ENHANCEDSTATUSCODES", "STARTTLS", "8BITMIME",
            "BINARYMIME", "CHUNKING", "SMTPUTF8"]  # fmt: skip
OUR_EHLO = (
    "SIZE 37748736 PIPELINING DSN ENHANCEDSTATUSCODES STARTTLS X-ANONYMOUSTLS AUTH NTLM X-EXPS "
    "GSSAPI NTLM 8BITMIME BINARYMIME CHUNKING XRDST"
)
OUR_EHLO_TLS = (
    "SIZE 37748736 PIPELINING DSN ENHANCEDSTATUSCODES AUTH NTLM LOGIN X-EXPS GSSAPI NTLM "
    "8BITMIME BINARYMIME CHUNKING XRDST"
)
ONE_ROW_CONTEXT = (
    "Sending certificate Subject Issuer name Serial number Thumbprint Not before Not after "
    "Subject alternate names"
)
USERS = ["j.doe", "a.smith", "finance", "hr-team", "m.garcia", "it-helpdesk", "sales", "k.lee"]


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def rfc822(moment: datetime) -> str:
    return moment.strftime("%a, %d %b %Y %H:%M:%S +0000")


@dataclass
class Session:
    """The rows of one session: sequence numbers 0..n, time advancing by ``step``."""

    connector: str
    sid: str
    local: str
    remote: str
    time: datetime
    rows: list[tuple[datetime, list[str]]] = field(default_factory=list)

    def add(self, event: str, data: str = "", context: str = "", after: float = 0.0,
            local: str | None = None) -> None:  # fmt: skip
        self.time += timedelta(milliseconds=after)
        fields = [
            stamp(self.time),
            self.connector,
            self.sid,
            str(len(self.rows)),
            self.local if local is None else local,
            self.remote,
            event,
            data,
            context,
        ]
        self.rows.append((self.time, fields))


def cert_block(s: Session, label: str, facts: dict[str, str]) -> None:
    s.add("*", "", label, 1)
    for context, kind in mi.CERT_ROWS.items():
        s.add("*", facts[kind], context)


def facts_of(item: mi.Made) -> dict[str, str]:
    return {kind: mi.fact(item, kind) for kind in mi.CERT_ROWS.values()}


def one_row_cert(item: mi.Made) -> str:
    not_before = mi.iso_ms(item.cert.not_valid_before_utc)
    not_after = mi.iso_ms(item.cert.not_valid_after_utc)
    return " ".join(["", item.subject, item.issuer, item.serial, item.thumbprint, not_before,
                     not_after, ";".join(item.sans)])  # fmt: skip


class Ids:
    """Session ids: 16 upper-case hex digits, increasing, unique per server and direction."""

    def __init__(self, base: int) -> None:
        self.value = base

    def next(self, rng: random.Random) -> str:
        self.value += rng.randint(1, 3)
        return f"{self.value:016X}"


def send_session(
    rng: random.Random, ids: Ids, server: str, connector: str, ip: str, when: datetime, port: int
) -> Session:
    s = Session(connector, ids.next(rng), f"{SERVERS[server]}:{port}", f"{ip}:25", when)
    s.add("*", "SendRoutingHeaders", "Set Session Permissions", local="")
    s.add("*", "", "attempting to connect", local="")
    s.add("+", "", "", rng.randint(15, 40))
    return s


def ehlo_multi(s: Session, host: str, words: list[str], hello: bool, after: float) -> None:
    first = f"{host} Hello [{NAT}]" if hello else host
    lines = [first, *words]
    for i, line in enumerate(lines):
        s.add("<", f"{'250 ' if i == len(lines) - 1 else '250-'}{line}", "", after if i == 0 else 0)


def message_rows(s: Session, rng: random.Random, rcpt_domain: str, host: str, to_exo: bool):
    size = rng.randint(9000, 240000)
    sender = rng.choice(USERS)
    s.add(">", f"MAIL FROM:<{sender}@corp.example.com> SIZE={size}", "", 1)
    s.add("<", "250 2.1.0 Sender OK", "", rng.randint(40, 90))
    s.add(">", f"RCPT TO:<{rng.choice(USERS)}@{rcpt_domain}>", "", 1)
    s.add("<", "250 2.1.5 Recipient OK", "", rng.randint(40, 90))
    s.add(">", "DATA", "", 1)
    s.add("<", "354 Start mail input; end with <CRLF>.<CRLF>", "", rng.randint(40, 90))
    msgid = f"{rng.getrandbits(64):016x}{rng.getrandbits(64):016x}@corp.example.com"
    if to_exo:
        internal = rng.randint(10**11, 10**12 - 1)
        reply = (
            f"250 2.6.0 <{msgid}> [InternalId={internal}, Hostname={host}.namprd00.prod."
            f"example.net] {size} bytes in {rng.randint(90, 400) / 1000:.3f}, "
            f"{rng.randint(40000, 900000) / 1000:.3f} KB/sec Queued mail for delivery"
        )
    else:
        reply = f"250 2.0.0 Ok: queued as {rng.getrandbits(40):010X}"
    s.add("<", reply, "", rng.randint(150, 700))
    s.add(">", "QUIT", "", 1)
    s.add("<", "221 2.0.0 Service closing transmission channel", "", rng.randint(40, 90))
    s.add("-", "", "Local", 1)


def exo_send(rng, ids, server, when, port, cert: mi.Made) -> Session:
    """A session of Outbound to Office 365: delivered while ``cert`` is valid, else 454."""
    ip = rng.choice(sorted(EXO))
    host = f"{EXO[ip]}.mail.protection.example.net"
    s = send_session(rng, ids, server, O365, ip, when, port)
    banner = f"220 {host} Microsoft ESMTP MAIL Service ready at {rfc822(s.time)}"
    s.add("<", banner, "", rng.randint(40, 90))
    s.add(">", f"EHLO {OUR_NAME}", "", 1)
    ehlo_multi(s, host, EXO_EHLO, True, rng.randint(40, 90))
    s.add(">", "STARTTLS", "", 1)
    s.add("<", "220 2.0.0 SMTP server ready", "", rng.randint(40, 90))
    cert_block(s, "Sending certificate", facts_of(cert))
    s.add("*", "", "Remote certificate", rng.randint(60, 120))
    for context, kind in mi.CERT_ROWS.items():
        s.add("*", EXO_CERT[kind], context)
    s.add("*", "", TLS.format(side="CLIENT", **TLS12))
    s.add("*", "", "Received certificate")
    s.add("*", EXO_CERT["thumbprint"], "Certificate thumbprint")
    s.add(">", f"EHLO {OUR_NAME}", "", 1)
    ehlo_multi(s, host, [w for w in EXO_EHLO if w != "STARTTLS"], True, rng.randint(40, 90))
    if s.time < cert.cert.not_valid_after_utc:
        message_rows(s, rng, "contoso-example.mail.onmicrosoft.com", EXO[ip], True)
        return s
    size = rng.randint(9000, 240000)
    s.add(">", f"MAIL FROM:<{rng.choice(USERS)}@corp.example.com> SIZE={size}", "", 1)
    s.add("<", "454 4.7.5 Certificate validation failure", "", rng.randint(40, 90))
    s.add(">", "QUIT", "", 1)
    s.add("<", "221 2.0.0 Service closing transmission channel", "", rng.randint(40, 90))
    s.add("-", "", "Local", 1)
    return s


def internet_send(rng, ids, server, when, port, peer: str) -> list[Session]:
    """Internet Send Connector: ``mx1`` (TLS), ``fabrikam`` (TLS, certificate of another name),
    ``tailwind`` (TLS fails with IllegalMessage, plaintext retry 30-60 s later delivers)."""
    if peer == "mx1":
        ip, host, cert, domain, banner = (
            "203.0.113.10", "mx1.example.org", MX1_CERT, "example.org", "ESMTP Postfix",
        )  # fmt: skip
    elif peer == "fabrikam":
        ip, host, cert, domain, banner = (
            "192.0.2.60", "mx.fabrikam-mail.example", HOSTING_CERT, "fabrikam-mail.example",
            "ESMTP ready",
        )  # fmt: skip
    else:
        ip, host, cert, domain, banner = (
            "198.51.100.140", "mx.tailwind.example", None, "tailwind.example", "ESMTP Exim 4.96",
        )  # fmt: skip
    words = ["PIPELINING", "SIZE 52428800", "STARTTLS", "ENHANCEDSTATUSCODES", "8BITMIME",
             "CHUNKING"]  # fmt: skip
    s = send_session(rng, ids, server, INTERNET, ip, when, port)
    text = f"220 {host} {banner}"
    s.add("<", f"{text} {rfc822(s.time)}" if cert is None else text, "", rng.randint(25, 120))
    s.add(">", f"EHLO {OUR_NAME}", "", 1)
    ehlo_multi(s, host, words, False, rng.randint(25, 120))
    s.add(">", "STARTTLS", "", 1)
    s.add("<", "220 2.0.0 Ready to start TLS", "", rng.randint(25, 120))
    if cert is None:
        s.add("*", "", "TLS negotiation failed with error IllegalMessage", rng.randint(25, 60))
        s.add("-", "", "Local", 1)
        retry = send_session(
            rng, ids, server, INTERNET, ip, s.time + timedelta(seconds=rng.randint(30, 60)),
            port + rng.randint(3, 9),
        )  # fmt: skip
        retry.add("<", f"{text} {rfc822(retry.time)}", "", rng.randint(25, 120))
        retry.add(">", f"EHLO {OUR_NAME}", "", 1)
        ehlo_multi(retry, host, words, False, rng.randint(25, 120))
        message_rows(retry, rng, domain, host, False)
        return [s, retry]
    s.add("*", "", "Remote certificate", rng.randint(60, 120))
    for context, kind in mi.CERT_ROWS.items():
        s.add("*", cert[kind], context)
    s.add("*", "", TLS.format(side="CLIENT", **TLS12))
    s.add("*", "", "Received certificate")
    s.add("*", cert["thumbprint"], "Certificate thumbprint")
    s.add(">", f"EHLO {OUR_NAME}", "", 1)
    ehlo_multi(s, host, [w for w in words if w != "STARTTLS"], False, rng.randint(25, 120))
    message_rows(s, rng, domain, host, False)
    return [s]


RECEIVE_PEERS = {  # remote ip -> (EHLO name, sender domain, TLS parameters)
    "203.0.113.90": ("BL2PEPF00003F81.mail.protection.example.net",
                     "contoso-example.mail.onmicrosoft.com", TLS12),
    "203.0.113.91": ("SN1PEPF000252B7.mail.protection.example.net",
                     "contoso-example.mail.onmicrosoft.com", TLS12),
    "198.51.100.23": ("mail.example.net", "example.net", TLS12),
    "192.0.2.30": ("mx.northwind.example", "northwind.example", TLS12),
    "192.0.2.51": ("relay.partner-a.example", "partner-a.example", TLS10_AES),
    "203.0.113.71": ("smtp.legacy.example", "legacy.example", TLS10_3DES),
}  # fmt: skip
MODERN = ["203.0.113.90", "203.0.113.91", "198.51.100.23", "192.0.2.30"]
LEGACY = ["192.0.2.51", "203.0.113.71"]


def receive(rng, ids, server, when, ip, cert: mi.Made) -> Session:
    """Default Frontend: STARTTLS with the certificate chosen by FQDN (the renewal)."""
    helo, domain, params = RECEIVE_PEERS[ip]
    connector = f"{server}\\Default Frontend {server}"
    s = Session(connector, ids.next(rng), f"{SERVERS[server]}:25",
                f"{ip}:{rng.randint(1025, 65000)}", when)  # fmt: skip
    s.add("+", "", "")
    s.add(">", f"220 {OUR_NAME} Microsoft ESMTP MAIL Service ready at {rfc822(s.time)}", "", 3)
    s.add("<", f"EHLO {helo}", "", rng.randint(30, 250))
    s.add(">", f"250  {OUR_NAME} Hello [{ip}] {OUR_EHLO}", "")
    s.add("<", "STARTTLS", "", rng.randint(30, 200))
    s.add(">", "220 2.0.0 SMTP server ready", "")
    s.add("*", one_row_cert(cert), ONE_ROW_CONTEXT)
    s.add("*", "", TLS.format(side="SERVER", **params), rng.randint(30, 200))
    s.add("<", f"EHLO {helo}", "", rng.randint(30, 200))
    s.add("*", "", "Client certificate chain validation status: 'EmptyCertificate'", 1)
    s.add("*", "", "TlsDomainCapabilities='None'; Status='NoRemoteCertificate'")
    s.add(">", f"250  {OUR_NAME} Hello [{ip}] {OUR_EHLO_TLS}", "")
    sender = f"{rng.choice(['billing', 'noreply', 'info', 'orders', 'support'])}@{domain}"
    s.add("<", f"MAIL FROM:<{sender}> SIZE={rng.randint(4000, 180000)}", "", rng.randint(30, 200))
    s.add("*", f"{s.sid};{stamp(s.time)};1", "receiving message", 1)
    s.add(">", "250 2.1.0 Sender OK", "")
    s.add("<", f"RCPT TO:<{rng.choice(USERS)}@corp.example.com>", "", rng.randint(30, 200))
    s.add(">", "250 2.1.5 Recipient OK", "", 2)
    s.add("<", "DATA", "", rng.randint(30, 200))
    s.add(">", "354 Start mail input; end with <CRLF>.<CRLF>", "", 1)
    msgid = f"{rng.getrandbits(64):016x}@{helo}"
    internal = rng.randint(1400000, 1900000)
    s.add(">", f"250 2.6.0 <{msgid}> [InternalId={internal}, Hostname={server}] Queued mail for "
          "delivery", "", rng.randint(150, 600))  # fmt: skip
    s.add("<", "QUIT", "", rng.randint(30, 200))
    s.add(">", "221 2.0.0 Closing connection.", "")
    s.add("-", "", "Local", 1)
    return s


def every(rng: random.Random, low: float, high: float, start: datetime = START):
    """Times from ``start`` to END, ``low``-``high`` minutes apart (seconds and ms jittered)."""
    moment = start + timedelta(seconds=rng.randint(5, 240), milliseconds=rng.randint(0, 999))
    while moment < END - timedelta(minutes=1):
        if not (moment.hour == 23 and moment.minute == 59):  # no session across midnight
            yield moment
        moment += timedelta(seconds=rng.randint(int(low * 60), int(high * 60)),
                            milliseconds=rng.randint(0, 999))  # fmt: skip


def server_sessions(server: str, made: dict[str, mi.Made]) -> tuple[list, list]:
    """(send sessions, receive sessions) of one server."""
    number = int(server[-1])
    rng = random.Random(f"incident-{server}")
    send_ids = Ids(0x08DF4C1A00000100 + number * 0x0100000000)
    recv_ids = Ids(0x08DF4C3C00000100 + number * 0x0100000000)
    port = 40000 + number * 5000
    send: list[Session] = []
    for when in every(rng, 5, 10):
        port += rng.randint(2, 40)
        send.append(exo_send(rng, send_ids, server, when, port, made[OLD]))
    plan = [(when, "mx1") for when in every(rng, 18, 26)]
    if server == "EX01":
        plan += [(utc(2026, 11, 26, 21, 3, 17), "fabrikam"), (utc(2026, 11, 27, 1, 47, 5),
                 "fabrikam"), (utc(2026, 11, 27, 6, 10, 41), "fabrikam"),
                 (utc(2026, 11, 26, 22, 14, 9), "tailwind"), (utc(2026, 11, 27, 5, 32, 50),
                 "tailwind")]  # fmt: skip
    for when, peer in sorted(plan):
        port += rng.randint(2, 40)
        send += internet_send(rng, send_ids, server, when, port, peer)
    received: list[Session] = []
    plan = [(when, rng.choice(MODERN)) for when in every(rng, 8, 16)]
    if server == "EX01":
        plan += [(when, rng.choice(LEGACY)) for when in every(rng, 50, 80)]
    for when, ip in sorted(plan):
        received.append(receive(rng, recv_ids, server, when, ip, made[NEW]))
    return send, received


def write_logs(made: dict[str, mi.Made]) -> None:
    for server in ("EX01", "EX02"):
        send, received = server_sessions(server, made)
        base = HERE / server / "TransportRoles" / "Logs"
        for folder, prefix, kind, sessions in (
            (base / "Hub" / "ProtocolLog" / "SmtpSend", "SEND", "Send", send),
            (base / "FrontEnd" / "ProtocolLog" / "SmtpReceive", "RECV", "Receive", received),
        ):
            folder.mkdir(parents=True, exist_ok=True)
            for old in folder.glob("*.LOG"):
                old.unlink()
            by_day: dict[str, list] = {}
            for session in sessions:  # a session stays in the file of its start (daily roll)
                day = session.rows[0][0].strftime("%Y%m%d")
                by_day.setdefault(day, []).extend(session.rows)
            for rows in by_day.values():
                rows.sort(key=lambda r: r[0])  # stable: a session's rows keep their order
                first = rows[0][0]
                name = f"{prefix}{first:%Y%m%d%H}-1.LOG"
                header = [
                    "#Software: Microsoft Exchange Server",
                    "#Version: 15.0.0.0",
                    f"#Log-type: SMTP {kind} Protocol Log",
                    f"#Date: {stamp(first)}",
                    "#Fields: date-time,connector-id,session-id,sequence-number,local-endpoint,"
                    "remote-endpoint,event,data,context",
                ]
                lines = header + [",".join(map(mi.csv_field, fields)) for _, fields in rows]
                (folder / name).write_bytes((BOM + CRLF.join(lines) + CRLF).encode("utf-8"))
                print(f"{(folder / name).relative_to(HERE)}: {len(rows)} rows")


#: The copy of this folder shipped inside the package (``loganalyzer report`` without LOGS).
DEMO_ARCHIVE = HERE.parent.parent / "loganalyzer" / "demo" / "incident.zip"


def demo_members() -> list[Path]:
    """The files the demo needs: the logs and the inventory (not this script or notes)."""
    return sorted(
        p
        for p in HERE.rglob("*")
        if p.is_file()
        and p.suffix.lower() in (".log", ".pem", ".txt")
        and "__pycache__" not in p.parts
    )


def write_demo_archive() -> None:
    """Zip the logs and inventory for the package, byte-identical for the same files."""
    with zipfile.ZipFile(DEMO_ARCHIVE, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as bundle:
        for path in demo_members():
            info = zipfile.ZipInfo(
                path.relative_to(HERE).as_posix(), date_time=(2026, 11, 27, 7, 0, 0)
            )
            info.compress_type = zipfile.ZIP_DEFLATED
            bundle.writestr(info, path.read_bytes())
    print(f"{DEMO_ARCHIVE.relative_to(HERE.parent.parent)}: {len(demo_members())} files")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--new-certificates",
        action="store_true",
        help="make new keys and certificates first (changes every thumbprint)",
    )
    args = parser.parse_args()
    if args.new_certificates or not all((INVENTORY / f"{s.key}.pem").exists() for s in SPECS):
        new_certificates()
    made = load()
    write_exports(made)
    write_logs(made)
    write_demo_archive()
    for key in (OLD, NEW):
        print(f"{made[key].thumbprint}  {key}")


if __name__ == "__main__":
    main()

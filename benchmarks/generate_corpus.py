#!/usr/bin/env python3
"""Generate a deterministic synthetic corpus of Exchange SMTP protocol logs.

Standard library only. The same seed, size and options give byte-identical files, whatever
``jobs`` is set to: every stream (one server's receive or send log set) has its own random
generator, seeded from the corpus seed and the stream's name.

Usage::

    python benchmarks/generate_corpus.py /tmp/corpus-1g --size 1GB --seed 1
    python benchmarks/generate_corpus.py /tmp/small --size 2MB --file-size 200KB --gzip

Library::

    from generate_corpus import generate
    stats = generate(Path("/tmp/corpus"), 20_000_000, seed=1)

All text is ASCII, so byte counts equal character counts. Addresses are RFC 1918 (our
servers) and RFC 5737 (internet peers); domains are under example.com/.net/.org.
"""

from __future__ import annotations

import argparse
import bisect
import datetime as dt
import gzip as gzip_module
import heapq
import itertools
import json
import random
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

FIELDS = (
    "date-time,connector-id,session-id,sequence-number,local-endpoint,remote-endpoint,"
    "event,data,context"
)
START = dt.datetime(2024, 3, 11, 8, 0, tzinfo=dt.UTC)
SID_BASE = 0x5F000000  # session ids: 0x08DC, 32 bits of milliseconds, stream, counter
CONCURRENT = 24  # sessions open at once per stream
RECEIVE_SHARE = 0.6  # share of the bytes written to SmtpReceive logs
FLUSH_BYTES = 1 << 21
ORG = "example.com"
RECEIVE_DIR = ("TransportRoles", "Logs", "FrontEnd", "ProtocolLog", "SmtpReceive")
SEND_DIR = ("TransportRoles", "Logs", "Hub", "ProtocolLog", "SmtpSend")
BOM = b"\xef\xbb\xbf"
CRLF = "\r\n"

# Milliseconds between two consecutive rows of a stream (mean about 9 ms).
DELTAS = (0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 3, 5, 8, 12, 20, 30, 45, 60)
# "SS.fffZ" for every millisecond of a minute.
SECMS = [f"{s:02d}.{m:03d}Z" for s in range(60) for m in range(1000)]
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

TLS_VERSIONS = ("TLS1_2", "TLS1_3", "TLS1_0", "TLS1_1")
TLS_WEIGHTS = (58, 14, 5, 3)
CIPHERS = {
    "TLS1_3": [
        ("CALG_AES_256", 256, "CALG_SHA_384", 0, "CALG_ECDH_EPHEM", 384),
        ("CALG_AES_128", 128, "CALG_SHA_256", 0, "CALG_ECDH_EPHEM", 256),
    ],
    "TLS1_2": [
        ("CALG_AES_256", 256, "CALG_SHA_384", 0, "CALG_ECDH_EPHEM", 384),
        ("CALG_AES_256", 256, "CALG_SHA_384", 0, "CALG_ECDH_EPHEM", 384),
        ("CALG_AES_128", 128, "CALG_SHA_256", 0, "CALG_ECDH_EPHEM", 256),
        ("CALG_AES_256", 256, "CALG_SHA_384", 0, "CALG_DH_EPHEM", 2048),
    ],
    "TLS1_1": [
        ("CALG_AES_256", 256, "CALG_SHA1", 160, "CALG_ECDH_EPHEM", 256),
        ("CALG_AES_128", 128, "CALG_SHA1", 160, "CALG_RSA_KEYX", 2048),
    ],
    "TLS1_0": [
        ("CALG_AES_256", 256, "CALG_SHA1", 160, "CALG_ECDH_EPHEM", 256),
        ("CALG_AES_128", 128, "CALG_SHA1", 160, "CALG_RSA_KEYX", 2048),
        ("CALG_3DES", 168, "CALG_SHA1", 160, "CALG_RSA_KEYX", 2048),
    ],
}
TLS_ERRORS = ("UnknownCredentials", "IllegalMessage", "SocketError")

ISSUERS = (
    "CN=Example Issuing CA 1, O=Example Trust Services, C=US",
    "CN=Example TLS RSA CA G2, OU=www.example.org, O=Example PKI Inc, C=US",
    'CN=Demo Secure Server CA, O="Example Holdings, Inc.", L=Austin, S=Texas, C=US',
    "CN=R11, O=Example Encrypt, C=US",
    "CN=Example ECC Domain Validation CA, O=Example Certs Ltd, L=Salford, C=GB",
    "CN=Test Root Authority 2, OU=Certification Services, O=Example Org, C=DE",
)
ORG_WORDS = (
    "contoso",
    "fabrikam",
    "northwind",
    "adatum",
    "tailspin",
    "woodgrove",
    "litware",
    "proseware",
    "wingtip",
    "fourthcoffee",
    "alpineski",
    "blueyonder",
    "coho",
    "lucerne",
    "margie",
    "relecloud",
    "trey",
    "wideworld",
    "humongous",
    "graphic",
    "lamna",
    "nod",
)
LOCAL_PARTS = (
    "alice",
    "bob",
    "carol",
    "dave",
    "erin",
    "frank",
    "grace",
    "heidi",
    "ivan",
    "judy",
    "mallory",
    "niaj",
    "olivia",
    "peggy",
    "rupert",
    "sybil",
    "trent",
    "victor",
    "walter",
    "info",
    "sales",
    "support",
    "billing",
    "noreply",
    "hr",
    "it-helpdesk",
    "newsletter",
)
SOFTWARE = ("postfix", "postfix", "exchange", "exim", "other")

RECV_PERMS_ANON = "SMTPAcceptAnySender SMTPAcceptAuthoritativeDomainSender AcceptRoutingHeaders"
RECV_PERMS_INTERNAL = (
    "SMTPSubmit SMTPAcceptAnyRecipient SMTPAcceptAuthenticationFlag SMTPAcceptAnySender "
    "SMTPAcceptAuthoritativeDomainSender BypassAntiSpam BypassMessageSizeLimit SMTPAcceptEXCH50 "
    "AcceptRoutingHeaders"
)
EXCHANGE_KEYWORDS = (
    "SIZE 37748736",
    "PIPELINING",
    "DSN",
    "ENHANCEDSTATUSCODES",
    "STARTTLS",
    "X-ANONYMOUSTLS",
    "AUTH NTLM",
    "X-EXPS GSSAPI NTLM",
    "8BITMIME",
    "BINARYMIME",
    "CHUNKING",
    "XEXCH50",
    "XRDST",
    "XSHADOWREQUEST",
)
CONNECT_ERRORS = (
    "Failed to connect. Winsock error code: 10060, Win32 error code: 10060, Destination domain: "
    "{domain}, Error Message: A connection attempt failed because the connected party did not "
    "properly respond after a period of time, or established connection failed to respond "
    "{ip}:25",
    "Failed to connect. Winsock error code: 10061, Win32 error code: 10061, Destination domain: "
    "{domain}, Error Message: No connection could be made because the target machine actively "
    "refused it {ip}:25",
)
SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
SIZE_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}


def esc(value: str) -> str:
    """CSV-escape one field the way Exchange does: quote iff it holds ``,`` or ``"``."""
    if "," in value or '"' in value:
        return '"' + value.replace('"', '""') + '"'
    return value


def row(event: str, data: str = "", context: str = "") -> str:
    """Return the ``event,data,context`` part of a row, escaped and CRLF-terminated."""
    return f"{event},{esc(data)},{esc(context)}{CRLF}"


def parse_size(text: str) -> int:
    """Parse ``10MB``, ``1GB``, ``200KB``, ``2GiB`` or a plain byte count (1 MB = 10^6)."""
    m = SIZE_RE.match(text)
    if not m:
        raise ValueError(f"not a size: {text!r}")
    unit = (m.group(2) or "").lower()
    base = 1024 if "i" in unit else None
    prefix = unit[:1] if unit[:1] in "kmgt" else ""
    mult = base ** "_kmgt".index(prefix) if base else SIZE_UNITS[prefix]
    return int(float(m.group(1)) * mult)


class Cert:
    """One certificate of the pool, with its log rows pre-built."""

    def __init__(self, rng: random.Random, subject: str, issuer: str, sans: str) -> None:
        self.subject = subject
        self.issuer = issuer
        self.serial = f"{rng.getrandbits(128):032X}"
        self.thumbprint = f"{rng.getrandbits(160):040X}"
        start = START - dt.timedelta(days=rng.randrange(30, 900), seconds=rng.randrange(86400))
        end = start + dt.timedelta(days=rng.choice((90, 365, 397, 730, 1826)))
        self.not_before = start.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        while end < START and rng.random() < 0.9:  # about one certificate in ten has expired
            end += dt.timedelta(days=365)
        self.not_after = end.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        self.sans = sans

    def one_row(self, label: str) -> str:
        """The one-row form of newer FrontEnd builds (data has a leading space)."""
        values = (self.subject, self.issuer, self.serial, self.thumbprint)
        data = " " + " ".join((*values, self.not_before, self.not_after, self.sans))
        context = (
            f"{label} Subject Issuer name Serial number Thumbprint Not before Not after "
            "Subject alternate names"
        )
        return row("*", data, context)

    def block(self, label: str) -> list[str]:
        """The multi-row form: label row plus five field rows."""
        return [
            row("*", "", label),
            row("*", self.subject, "Certificate subject"),
            row("*", self.issuer, "Certificate issuer name"),
            row("*", self.serial, "Certificate serial number"),
            row("*", self.thumbprint, "Certificate thumbprint"),
            row("*", self.sans, "Certificate alternate names"),
        ]

    def received(self) -> list[str]:
        """The thumbprint-only form written after a successful client handshake."""
        return [
            row("*", "", "Received certificate"),
            row("*", self.thumbprint, "Certificate thumbprint"),
        ]


class Peer:
    """An internet mail server or an internal host, with its reply texts pre-built."""

    def __init__(self, rng: random.Random, ip: str, host: str, domain: str, software: str) -> None:
        self.ip = ip
        self.host = host
        self.domain = domain
        self.software = software
        self.starttls = rng.random() < 0.95
        self.tls_error: str | None = None  # set on peers whose TLS handshakes always fail
        self.cert: Cert | None = None
        if software == "exchange":
            banner = f"220 {host} Microsoft ESMTP MAIL Service ready"
            keywords = [
                k for k in EXCHANGE_KEYWORDS if k not in ("XEXCH50", "XSHADOWREQUEST", "DSN")
            ]
            self.ok_from, self.ok_rcpt = "250 2.1.0 Sender OK", "250 2.1.5 Recipient OK"
            self.bye = "221 2.0.0 Service closing transmission channel"
            self.tls_ready = "220 2.0.0 SMTP server ready"
        elif software == "exim":
            banner = f"220 {host} ESMTP Exim 4.97 Mon, 11 Mar 2024 08:00:00 +0000"
            keywords = ["SIZE 52428800", "8BITMIME", "PIPELINING", "STARTTLS", "HELP"]
            self.ok_from, self.ok_rcpt = "250 OK", "250 Accepted"
            self.bye = f"221 {host} closing connection"
            self.tls_ready = "220 TLS go ahead"
        elif software == "postfix":
            banner = f"220 {host} ESMTP Postfix"
            keywords = [
                "PIPELINING", "SIZE 52428800", "STARTTLS", "ENHANCEDSTATUSCODES", "8BITMIME",
                "DSN", "CHUNKING",
            ]  # fmt: skip
            self.ok_from, self.ok_rcpt = "250 2.1.0 Ok", "250 2.1.5 Ok"
            self.bye = "221 2.0.0 Bye"
            self.tls_ready = "220 2.0.0 Ready to start TLS"
        else:
            banner = f"220 {host} ESMTP ready, unsolicited bulk mail prohibited"
            keywords = ["SIZE 35882577", "8BITMIME", "STARTTLS", "PIPELINING"]
            self.ok_from, self.ok_rcpt = "250 2.1.0 Sender ok", "250 2.1.5 Recipient ok"
            self.bye = "221 2.0.0 closing connection"
            self.tls_ready = "220 2.0.0 Ready to start TLS"
        if not self.starttls:
            keywords = [k for k in keywords if k != "STARTTLS"]
        self.banner = row("<", banner)
        hello = f"250-{host} Hello [%s]" if software == "exchange" else f"250-{host}"
        self.ehlo_lines = [hello, *(f"250-{k}" for k in keywords[:-1]), f"250 {keywords[-1]}"]
        after = [k for k in keywords if k not in ("STARTTLS", "X-ANONYMOUSTLS")]
        self.ehlo_lines_tls = [hello, *(f"250-{k}" for k in after[:-1]), f"250 {after[-1]}"]


class Pool:
    """Certificates, internet peers and servers shared by every stream of a corpus."""

    def __init__(self, seed: int, servers: int) -> None:
        rng = random.Random(f"pool:{seed}")
        self.servers = [f"EX{i:02d}" for i in range(1, servers + 1)]
        self.server_ip = {s: f"10.1.{i // 200}.{11 + i % 200}" for i, s in enumerate(self.servers)}
        sans = ";".join(["mail.example.com", "autodiscover.example.com", *self.servers[:8]])
        self.public_cert = Cert(
            rng,
            "CN=mail.example.com, OU=Messaging, O=Example Corp, L=Springfield, S=Illinois, C=US",
            ISSUERS[0],
            sans,
        )
        self.internal_cert = {
            s: Cert(rng, f"CN={s}", f"CN={s}", f"{s};{s}.{ORG}") for s in self.servers
        }
        # Internet peers: a few dozen hosts in the three documentation ranges.
        nets = ("192.0.2", "198.51.100", "203.0.113")
        hosts = rng.sample(range(1, 255), 48)
        self.peers: list[Peer] = []
        for i, last in enumerate(hosts):
            word = ORG_WORDS[i % len(ORG_WORDS)]
            domain = f"{word}.example.{('net', 'org', 'com')[i % 3]}"
            if domain == ORG:
                domain = f"{word}.example.net"
            host = f"{rng.choice(('mx', 'mail', 'smtp', 'mx1', 'mx2'))}.{domain}"
            peer = Peer(rng, f"{nets[i % 3]}.{last}", host, domain, rng.choice(SOFTWARE))
            if rng.random() < 0.3:
                subject = f"CN={host}"
            else:
                subject = f"CN={host}, O={word.capitalize()} Ltd, L=Example City, C=DE"
            peer.cert = Cert(rng, subject, rng.choice(ISSUERS), f"{host};{domain}")
            self.peers.append(peer)
        # A few peers whose handshakes always fail: their sessions fail TLS, then are retried
        # in plaintext a minute later (the fallback pattern). They are picked less often.
        candidates = [p for p in self.peers if p.starttls]
        for peer, error in zip(rng.sample(candidates, len(TLS_ERRORS)), TLS_ERRORS, strict=True):
            peer.tls_error = error
        self.peer_weights = list(
            itertools.accumulate(0.5 if p.tls_error else 1.0 for p in self.peers)
        )
        self.relays = [
            Peer(rng, f"10.2.0.{20 + i}", f"app{i:02d}.{ORG}", ORG, "other") for i in range(1, 4)
        ]
        self._internal: dict[str, Peer] = {}

    def internal_peer(self, name: str) -> Peer:
        """Another Exchange server of the organisation (X-ANONYMOUSTLS, multi-row EHLO)."""
        peer = self._internal.get(name)
        if peer is None:
            ip = self.server_ip.get(name, "10.1.0.99")
            peer = Peer(random.Random(f"internal:{name}"), ip, f"{name}.{ORG}", ORG, "exchange")
            peer.starttls = True
            hello = f"250-{name}.{ORG} Hello [%s]"
            keywords = list(EXCHANGE_KEYWORDS)
            peer.ehlo_lines = [hello, *(f"250-{k}" for k in keywords[:-1]), f"250 {keywords[-1]}"]
            after = [
                k.replace("AUTH NTLM", "AUTH NTLM LOGIN")
                for k in keywords
                if k not in ("STARTTLS", "X-ANONYMOUSTLS")
            ]
            peer.ehlo_lines_tls = [hello, *(f"250-{k}" for k in after[:-1]), f"250 {after[-1]}"]
            peer.cert = self.internal_cert.get(name) or Cert(
                random.Random(f"cert:{name}"), f"CN={name}", f"CN={name}", f"{name};{name}.{ORG}"
            )
            self._internal[name] = peer
        return peer


class Stream:
    """One log set: one server's SmtpReceive or SmtpSend files, written in time order."""

    def __init__(
        self,
        pool: Pool,
        server: int,
        send: bool,
        seed: int,
        out_dir: Path,
        target: int,
        file_size: int,
        gzip: bool,
    ) -> None:
        self.pool = pool
        self.name = pool.servers[server]
        self.index = server * 2 + send
        self.send = send
        self.rng = random.Random(f"stream:{seed}:{self.name}:{'send' if send else 'recv'}")
        self.fqdn = f"{self.name}.{ORG}"
        self.ip = pool.server_ip[self.name]
        self.dir = out_dir.joinpath(self.name, *(SEND_DIR if send else RECEIVE_DIR))
        self.prefix = "SEND" if send else "RECV"
        self.log_type = "SMTP Send Protocol Log" if send else "SMTP Receive Protocol Log"
        self.target = target
        self.file_size = file_size
        self.gzip = gzip
        self.others = [s for s in pool.servers if s != self.name] or ["EX99"]
        self.counter = 0
        self.planned = 0  # bytes of every session begun so far, written or not
        self.internal_id = 4_294_967_296 * (server + 1)
        self.pending: list[tuple[int, int, Peer, bool]] = []
        self.stats = {"files": 0, "bytes": 0, "raw_bytes": 0, "rows": 0, "sessions": 0}
        self.tls = dict.fromkeys(TLS_VERSIONS, 0)
        self.tls_failed = 0
        self.iso_minute = ""
        self.rfc_minute = ""
        tls_rows: dict[tuple[str, str], list[str]] = {}
        for version, suites in CIPHERS.items():
            for role in ("SERVER", "CLIENT"):
                tls_rows[version, role] = [
                    row(
                        "*",
                        "",
                        f"TLS protocol SP_PROT_{version}_{role} negotiation succeeded using bulk "
                        f"encryption algorithm {b} with strength {bb} bits, MAC hash algorithm "
                        f"{m} with strength {mb} bits and key exchange algorithm {k} with "
                        f"strength {kb} bits",
                    )
                    for b, bb, m, mb, k, kb in suites
                ]
        self.tls_rows = tls_rows
        keywords = " ".join(k for k in EXCHANGE_KEYWORDS if k not in ("XEXCH50", "XSHADOWREQUEST"))
        self.ehlo_reply = f"250  {self.fqdn} Hello [%s] {keywords}"
        self.ehlo_reply_tls = self.ehlo_reply.replace(" STARTTLS X-ANONYMOUSTLS", "").replace(
            "AUTH NTLM", "AUTH NTLM LOGIN"
        )

    # -- helpers -----------------------------------------------------------------------------

    def _sid(self, ms: int) -> int:
        """A new session id: time-based, increasing, odd (``sid - 1`` is never drawn)."""
        self.counter += 1
        ticks = (SID_BASE + ms) << 16
        return (0x08DC << 48) | ticks | (self.index << 8) | ((self.counter & 0x7F) << 1) | 1

    def _address(self, domain: str) -> str:
        rng = self.rng
        r = rng.random()
        local = LOCAL_PARTS[int(rng.random() * len(LOCAL_PARTS))]
        if r < 0.0004:
            return f"sales#eu@{domain}"
        if r < 0.0008:
            return f'"{local} smith"@{domain}'
        if r < 0.3:
            return f"{local}{int(rng.random() * 100)}@{domain}"
        return f"{local}@{domain}"

    def _tls_version(self) -> str:
        return self.rng.choices(TLS_VERSIONS, TLS_WEIGHTS)[0]

    def _queued(self, msgid: str, size: int) -> str:
        self.internal_id += 1
        secs = 0.02 + self.rng.random() * 0.4
        return row(
            ">",
            f"250 2.6.0 <{msgid}> [InternalId={self.internal_id}, Hostname={self.fqdn}] "
            f"{size} bytes in {secs:.3f}, {size / 1024 / secs:.3f} KB/sec Queued mail for delivery",
        )

    # -- receive sessions ------------------------------------------------------------------

    def _recv_messages(self, b: list[str], peer: Peer, sid: str, ms: int) -> None:
        rng = self.rng
        for number in range(1, 2 + (rng.random() < 0.06)):
            size = int(2000 + rng.random() ** 3 * 2_000_000)
            sender = "<>" if rng.random() < 0.03 else f"<{self._address(peer.domain)}>"
            b.append(row("<", f"MAIL FROM:{sender} SIZE={size}"))
            b.append(
                row(
                    "*", f"{sid};{self.iso_minute}{SECMS[ms % 60000]};{number}", "receiving message"
                )
            )
            b.append(row(">", "250 2.1.0 Sender OK"))
            accepted = 0
            for _ in range(1 + int(rng.random() ** 3 * 5)):
                b.append(row("<", f"RCPT TO:<{self._address(ORG)}>"))
                r = rng.random()
                if r < 0.04:
                    b.append(
                        row(
                            ">",
                            "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found "
                            "by SMTP address lookup",
                        )
                    )
                elif r < 0.05:
                    b.append(row(">", "452 4.5.3 Too many recipients"))
                else:
                    b.append(row(">", "250 2.1.5 Recipient OK"))
                    accepted += 1
            if not accepted:
                b.append(row("<", "RSET"))
                b.append(row(">", "250 2.0.0 Resetting"))
                continue
            if rng.random() < 0.7:
                b.append(row("<", f"BDAT {size} LAST"))
            else:
                b.append(row("<", "DATA"))
                b.append(row(">", "354 Start sending mail data"))
            if rng.random() < 0.01:
                b.append(row(">", "451 4.7.0 Temporary server error. Please try again later. PRX3"))
            else:
                b.append(self._queued(f"{rng.getrandbits(64):016x}@{peer.host}", size + 1200))

    def _recv_session(self, peer: Peer, mode: str, sid: str, ms: int) -> tuple[list[str], str]:
        """Receive session from ``peer``; ``mode`` is tls, fail, plain, drop or reject."""
        rng = self.rng
        internal = peer.ip.startswith("10.1.")
        b = [
            row("+"),
            row(
                "*", RECV_PERMS_INTERNAL if internal else RECV_PERMS_ANON, "Set Session Permissions"
            ),
        ]
        minute = self.rfc_minute
        b.append(
            row(
                ">",
                f"220 {self.fqdn} Microsoft ESMTP MAIL Service ready at {minute}"
                f"{SECMS[ms % 60000][:2]} +0000",
            )
        )
        if mode == "reject":
            b.append(row(">", "421 4.3.2 Service not available, closing transmission channel"))
            b.append(row("-", "", "Local"))
            return b, ""
        if mode == "drop":
            b.append(row("-", "", rng.choice(("Remote(SocketError)", "Timeout", "Remote"))))
            return b, ""
        helo = row("<", f"EHLO {peer.host}")
        b.append(helo)
        b.append(row(">", self.ehlo_reply % peer.ip))
        version = ""
        if mode in ("tls", "fail"):
            b.append(row("<", "X-ANONYMOUSTLS" if internal else "STARTTLS"))
            b.append(row(">", "220 2.0.0 SMTP server ready"))
            cert = self.pool.internal_cert[self.name] if internal else self.pool.public_cert
            b.append(cert.one_row("Sending certificate"))
            if mode == "fail":
                error = peer.tls_error or rng.choice(TLS_ERRORS)
                b.append(row("*", "", f"TLS negotiation failed with error {error}"))
                b.append(row("-", "", "Remote(SocketError)" if error == "SocketError" else "Local"))
                return b, "failed"
            version = self._tls_version()
            if internal:
                other = self.pool.internal_cert.get(peer.host.split(".")[0])
                if other is not None:
                    b.append(other.one_row("Remote certificate"))
            b.append(rng.choice(self.tls_rows[version, "SERVER"]))
            b.append(helo)
            if not internal:
                b.append(
                    row("*", "", "Client certificate chain validation status: 'EmptyCertificate'")
                )
                b.append(row("*", "", "TlsDomainCapabilities='None'; Status='NoRemoteCertificate'"))
            b.append(row(">", self.ehlo_reply_tls % peer.ip))
            if internal:
                b.append(row("<", "X-EXPS GSSAPI"))
                b.append(row(">", "235 <authentication response>"))
                b.append(
                    row(
                        "*",
                        "SMTPSubmit SMTPAcceptAnyRecipient BypassAntiSpam AcceptRoutingHeaders",
                        "Set Session Permissions",
                    )
                )
        self._recv_messages(b, peer, sid, ms)
        if rng.random() < 0.9:
            b.append(row("<", "QUIT"))
            b.append(row(">", "221 2.0.0 Closing connection."))
            b.append(row("-", "", "Local"))
        else:
            b.append(row("-", "", rng.choice(("Remote", "Remote(SocketError)", "Timeout"))))
        return b, version

    # -- send sessions -----------------------------------------------------------------------

    def _send_messages(self, b: list[str], peer: Peer) -> None:
        rng = self.rng
        for _ in range(1 + (rng.random() < 0.08)):
            size = int(2000 + rng.random() ** 3 * 2_000_000)
            rcpts = [self._address(peer.domain) for _ in range(1 + int(rng.random() ** 3 * 5))]
            b.append(row(">", f"MAIL FROM:<{self._address(ORG)}> SIZE={size} BODY=8BITMIME"))
            b.extend(row(">", f"RCPT TO:<{r}>") for r in rcpts)
            b.append(row("<", peer.ok_from))
            accepted = 0
            for r in rcpts:
                x = rng.random()
                if x < 0.03:
                    b.append(row("<", f"550 5.1.1 <{r}>: Recipient address rejected: User unknown"))
                elif x < 0.045:
                    b.append(
                        row(
                            "<",
                            f"451 4.7.1 <{r}>: Recipient address rejected: Greylisted, "
                            "see https://www.example.org/greylisting",
                        )
                    )
                else:
                    b.append(row("<", peer.ok_rcpt))
                    accepted += 1
            if not accepted:
                b.append(row(">", "RSET"))
                b.append(row("<", "250 2.0.0 Ok"))
                continue
            b.append(row(">", f"BDAT {size} LAST"))
            if peer.software == "exchange":
                self.internal_id += 1
                b.append(
                    row(
                        "<",
                        f"250 2.6.0 <{rng.getrandbits(64):016x}@{self.fqdn}> [InternalId="
                        f"{self.internal_id}, Hostname={peer.host}] Queued mail for delivery",
                    )
                )
            elif peer.software == "exim":
                b.append(
                    row("<", f"250 OK id=1r{rng.getrandbits(40):010x}-000{rng.randrange(1000)}")
                )
            else:
                b.append(row("<", f"250 2.0.0 Ok: queued as 4Tq{rng.getrandbits(48):012X}"))

    def _send_session(
        self, peer: Peer, mode: str, internal: bool
    ) -> tuple[list[str], list[str], str]:
        """Send session to ``peer``; returns pre-connect rows, connected rows and TLS result."""
        rng = self.rng
        perms = "SendRoutingHeaders SendAs" if internal else "None"
        pre = [row("*", perms, "Set Session Permissions"), row("*", "", "attempting to connect")]
        if mode == "connect":
            return pre, [], ""
        b = [row("+"), peer.banner]
        if mode == "reject":
            b.append(row("<", "554 5.7.1 Service unavailable; client host blocked by policy"))
            b.append(row(">", "QUIT"))
            b.append(row("<", peer.bye))
            b.append(row("-", "", "Local"))
            return pre, b, ""
        helo = row(">", f"EHLO {self.fqdn}")
        b.append(helo)
        b.extend(row("<", line.replace("%s", self.ip)) for line in peer.ehlo_lines)
        if mode == "drop":
            b.append(row("-", "", rng.choice(("Remote(SocketError)", "Timeout", "Remote"))))
            return pre, b, ""
        version = ""
        if mode in ("tls", "fail"):
            b.append(row(">", "X-ANONYMOUSTLS" if internal else "STARTTLS"))
            b.append(row("<", peer.tls_ready))
            if internal or rng.random() < 0.25:
                own = self.pool.internal_cert[self.name] if internal else self.pool.public_cert
                b.extend(own.block("Sending certificate"))
            if mode == "fail":
                error = peer.tls_error or rng.choice(TLS_ERRORS)
                b.append(row("*", "", f"TLS negotiation failed with error {error}"))
                b.append(row("-", "", "Remote" if error == "SocketError" else "Local"))
                return pre, b, "failed"
            version = self._tls_version()
            if peer.cert is not None:
                b.extend(peer.cert.block("Remote certificate"))
            b.append(rng.choice(self.tls_rows[version, "CLIENT"]))
            if peer.cert is not None:
                b.extend(peer.cert.received())
            b.append(helo)
            b.extend(row("<", line.replace("%s", self.ip)) for line in peer.ehlo_lines_tls)
            if internal:
                b.append(row(">", "X-EXPS Kerberos"))
                b.append(row("<", "235 <authentication response>"))
        self._send_messages(b, peer)
        if rng.random() < 0.05:
            b.append(
                row(
                    "*",
                    "",
                    "successfully added connection to cache. Current cache size is "
                    f"{rng.randrange(1, 9)}",
                )
            )
        b.append(row(">", "QUIT"))
        b.append(row("<", peer.bye))
        b.append(row("-", "", "Local"))
        return pre, b, version

    # -- session scheduling ------------------------------------------------------------------

    def _pick(self) -> tuple[Peer, bool, str]:
        """Choose the peer, whether it is one of our servers, and how the session goes."""
        rng = self.rng
        pool = self.pool
        r = rng.random()
        internal = r < (0.12 if self.send else 0.1)
        if internal:
            peer = pool.internal_peer(rng.choice(self.others))
        elif not self.send and r < 0.13:
            peer = pool.relays[int(rng.random() * len(pool.relays))]
        else:
            peer = pool.peers[
                bisect.bisect(pool.peer_weights, rng.random() * pool.peer_weights[-1])
            ]
        # Cumulative shares: dropped, rejected, connect failure (send only), plaintext,
        # TLS failure, and TLS for the rest. Peers without STARTTLS always go plaintext,
        # and peers with a broken TLS stack always fail.
        drop, reject, connect, plain, fail = (
            (0.03, 0.04, 0.09, 0.105, 0.11) if self.send else (0.06, 0.07, 0.07, 0.085, 0.09)
        )
        r = rng.random()
        if r < drop:
            mode = "drop"
        elif r < reject:
            mode = "reject"
        elif r < connect:
            mode = "connect"
        elif peer.ip.startswith("10.2.") or not peer.starttls or r < plain:
            mode = "plain"
        elif peer.tls_error or r < fail:
            mode = "fail"
        else:
            mode = "tls"
        return peer, internal, mode

    def _new_session(self, ms: int, retry: tuple[Peer, bool] | None = None) -> list:
        """Build the next session; return its scheduling record ``[pre, tails, j, n, next]``."""
        rng = self.rng
        sid_value = self._sid(ms)
        sid = f"{sid_value:016X}"
        port = 1024 + int(rng.random() * 64000)
        if retry is None:
            peer, internal, mode = self._pick()
        else:
            (peer, internal), mode = retry, "plain"
        follow = None
        if self.send:
            connector = (
                "Intra-Organization SMTP Send Connector" if internal else "Outbound to Internet"
            )
            remote = f"{peer.ip}:{2525 if internal else 25}"
            pre_rows, rows_, result = self._send_session(peer, mode, internal)
            pre_ep = f",,{remote},"
            tails = [pre_ep + x for x in pre_rows]
            if mode == "connect":
                fail = row(
                    "*", "", rng.choice(CONNECT_ERRORS).format(domain=peer.domain, ip=peer.ip)
                )
                if rng.random() < 0.5:
                    tails.append(pre_ep + fail)
                else:
                    # The failure row carries another session id than the attempt rows.
                    other = f",{connector},{sid_value - 1:016X},"
                    follow = [other, [None, None, pre_ep + fail], 2, 3, None]
                    self.stats["sessions"] += 1
            else:
                ep = f",{self.ip}:{port},{remote},"
                tails.extend(ep + x for x in rows_)
        else:
            connector = f"{self.name}\\Default Frontend {self.name}"
            ep = f",{self.ip}:25,{peer.ip}:{port},"
            rows_, result = self._recv_session(peer, mode, sid, ms)
            tails = [ep + x for x in rows_]
        self.stats["sessions"] += 1
        if result == "failed":
            self.tls_failed += 1
            due = ms + 60_000 + int(rng.random() * 5000)
            heapq.heappush(self.pending, (due, self.counter, peer, internal))
        elif result:
            self.tls[result] += 1
        pre = f",{connector},{sid},"
        self.planned += sum(map(len, tails)) + len(tails) * (26 + len(pre))
        return [pre, tails, 0, len(tails), follow]

    def _set_minute(self, ms: int) -> None:
        t = START + dt.timedelta(milliseconds=ms)
        self.iso_minute = f"{t:%Y-%m-%dT%H:%M:}"
        self.rfc_minute = f"{DAYS[t.weekday()]}, {t.day} {MONTHS[t.month - 1]} {t:%Y %H:%M:}"

    # -- files -----------------------------------------------------------------------------

    def _header(self, ms: int) -> tuple[str, str]:
        """File name and header text of a new file created at ``ms``."""
        t = START + dt.timedelta(milliseconds=ms)
        hour = f"{t:%Y%m%d%H}"
        self.file_no = self.file_no + 1 if hour == self.file_hour else 1
        self.file_hour = hour
        name = f"{self.prefix}{hour}-{self.file_no}.LOG" + (".gz" if self.gzip else "")
        created = t + dt.timedelta(milliseconds=int(self.rng.random() * 1500))
        header = (
            f"#Software: Microsoft Exchange Server{CRLF}#Version: 15.0.0.0{CRLF}"
            f"#Log-type: {self.log_type}{CRLF}#Date: {created:%Y-%m-%dT%H:%M:%S}."
            f"{created.microsecond // 1000:03d}Z{CRLF}#Fields: {FIELDS}{CRLF}"
        )
        return name, header

    def _open(self, name: str):
        path = self.dir / name
        self.stats["files"] += 1
        if self.gzip:
            raw = open(path, "wb")  # noqa: SIM115 - closed in _close
            return gzip_module.GzipFile(name[:-3], "wb", 6, raw, mtime=0), raw
        return open(path, "wb"), None

    def _close(self, handle) -> None:
        fh, raw = handle
        fh.close()
        if raw is not None:
            self.stats["bytes"] += raw.tell()
            raw.close()

    def run(self) -> dict:
        """Write the stream's files; return its statistics."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.file_no, self.file_hour = 0, ""
        rng = self.rng
        rnd = rng.random
        nd = len(DELTAS)
        ms = self.index * 137
        self._set_minute(ms)
        next_minute = (ms // 60000 + 1) * 60000
        active = [self._new_session(ms + i) for i in range(CONCURRENT)]
        ms += CONCURRENT
        name, header = self._header(ms)
        out = [header]
        handle = None
        fb = 3 + len(header)  # bytes of the current file, BOM included
        flushed = 0
        limit = min(self.file_size, FLUSH_BYTES)
        total = 0  # bytes of finished files
        rows = 0
        target = self.target
        draining = False
        pending = self.pending
        while active:
            n = len(active)
            i = int(rnd() * n)
            s = active[i]
            ms += DELTAS[int(rnd() * nd)]
            if ms >= next_minute:
                self._set_minute(ms)
                next_minute = (ms // 60000 + 1) * 60000
            j = s[2]
            line = f"{self.iso_minute}{SECMS[ms % 60000]}{s[0]}{j}{s[1][j]}"
            out.append(line)
            fb += len(line)
            rows += 1
            j += 1
            if j < s[3]:
                s[2] = j
            elif s[4] is not None:
                active[i] = s[4]
            elif pending and (draining or pending[0][0] <= ms):
                due, _, peer, internal = heapq.heappop(pending)
                if due > ms:
                    ms = due
                    self._set_minute(ms)
                    next_minute = (ms // 60000 + 1) * 60000
                active[i] = self._new_session(ms, (peer, internal))
            elif not draining:
                active[i] = self._new_session(ms)
                # Stop starting sessions once the sessions begun (and the retries they owe)
                # fill the target, so the stream ends close to it with every session closed.
                owed = len(pending) * self.planned // self.stats["sessions"]
                draining = self.planned + owed >= target
            else:
                active[i] = active[-1]
                active.pop()
            if fb >= limit:
                if handle is None:
                    handle = self._open(name)
                    handle[0].write(BOM)
                handle[0].write("".join(out).encode("ascii"))
                out.clear()
                flushed = fb
                if fb >= self.file_size:
                    self._close(handle)
                    handle = None
                    total += fb
                    name, header = self._header(ms)
                    out.append(header)
                    fb = 3 + len(header)
                    flushed = 0
                limit = min(self.file_size, flushed + FLUSH_BYTES)
        if fb > 3 + len(header):
            if handle is None:
                handle = self._open(name)
                handle[0].write(BOM)
            handle[0].write("".join(out).encode("ascii"))
            total += fb
        if handle is not None:
            self._close(handle)
        self.stats["raw_bytes"] = total
        if not self.gzip:
            self.stats["bytes"] = total
        self.stats["rows"] = rows
        self.stats["tls"] = self.tls
        self.stats["tls_failed"] = self.tls_failed
        return self.stats


def _run_stream(args: tuple) -> dict:
    seed, servers, server, send, out_dir, target, file_size, gzip = args
    pool = Pool(seed, servers)
    stream = Stream(pool, server, send, seed, out_dir, target, file_size, gzip)
    return stream.run()


def generate(
    out_dir: Path,
    total_bytes: int,
    seed: int = 1,
    servers: int = 4,
    file_size: int = 10_000_000,
    gzip: bool = False,
    jobs: int = 1,
) -> dict:
    """Write a corpus of about ``total_bytes`` (uncompressed) under ``out_dir``.

    Returns totals: files, bytes (on disk), raw_bytes (uncompressed), rows, sessions
    (distinct session ids), tls (sessions per TLS version) and tls_failed.
    """
    out_dir = Path(out_dir)
    if not 1 <= servers <= 99:
        raise ValueError("servers must be between 1 and 99")
    if file_size < 1000:
        raise ValueError("file_size must be at least 1000 bytes")
    existing = [p for p in out_dir.glob("EX*/TransportRoles/Logs/*/ProtocolLog/*/*") if p.is_file()]
    if existing:
        raise FileExistsError(
            f"{out_dir} already holds log files ({existing[0]}); use a new folder"
        )
    tasks = []
    for server in range(servers):
        for send in (False, True):
            share = (1 - RECEIVE_SHARE) if send else RECEIVE_SHARE
            target = int(total_bytes * share / servers)
            tasks.append((seed, servers, server, send, out_dir, target, file_size, gzip))
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as ex:
            results = list(ex.map(_run_stream, tasks))
    else:
        results = [_run_stream(t) for t in tasks]
    totals = {"files": 0, "bytes": 0, "raw_bytes": 0, "rows": 0, "sessions": 0, "tls_failed": 0}
    tls = dict.fromkeys(TLS_VERSIONS, 0)
    for r in results:
        for key in totals:
            totals[key] += r[key]
        for key, value in r["tls"].items():
            tls[key] += value
    totals["tls"] = tls
    return totals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path, help="output folder (new or empty)")
    parser.add_argument("--size", default="1GB", help="total uncompressed size (default 1GB)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--servers", type=int, default=4)
    parser.add_argument("--file-size", default="10MB", help="roll size per file (default 10MB)")
    parser.add_argument("--gzip", action="store_true", help="write NAME.LOG.gz files")
    parser.add_argument("--jobs", type=int, default=1, help="parallel processes (same output)")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    stats = generate(
        args.out_dir,
        parse_size(args.size),
        seed=args.seed,
        servers=args.servers,
        file_size=parse_size(args.file_size),
        gzip=args.gzip,
        jobs=args.jobs,
    )
    elapsed = time.perf_counter() - t0
    stats["seconds"] = round(elapsed, 3)
    stats["mb_per_s"] = round(stats["raw_bytes"] / 1e6 / elapsed, 1)
    json.dump(stats, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Write the Postfix incident sample: ``mail.log`` beside this script (deterministic).

Story (times in the server's zone, Europe/Berlin; the file is classic syslog, so read it with
``--syslog-year 2026 --syslog-tz Europe/Berlin``): ``mx1`` (10.20.1.25) of corp.example.com
sends and receives mail from 26 Nov 2026 20:00 to 27 Nov 06:00.

- ``bank.example`` requires verified TLS (``smtp_tls_policy_maps``: ``bank.example secure``).
  Its MX certificate expires at 2026-11-27 00:00 UTC (01:00 local). Until then every delivery is
  ``Verified``; from then on every attempt ends with ``certificate has expired`` and
  ``status=deferred (Server certificate not verified)``, retried at each queue run, never in
  plaintext; other mail for it waits with ``delivery temporarily suspended``. A halt.
- ``shop.example.net`` and ``news.example.org`` are at level ``may`` and their MX hosts fail
  the TLS handshake. Fresh mail is deferred (``Cannot start TLS: handshake failure``); once the
  message is older than ``minimal_backoff_time`` the same process retries the same address in
  plaintext and delivers it. Fallbacks.
- Healthy traffic around it: verified TLS to ``example.com``, inbound TLS and plaintext.

Run ``python make_incident.py`` to rewrite ``mail.log``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

START = datetime(2026, 11, 26, 20, 0, 0)
END = datetime(2026, 11, 27, 6, 0, 0)
EXPIRY = datetime(2026, 11, 27, 1, 0, 0)  # local time of 2026-11-27T00:00Z
HOST = "mx1"
TLS13 = (
    "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 "
    "server-signature RSA-PSS (2048 bits) server-digest SHA256"
)
BANK_MX = "mx1.bank.example[198.51.100.60]:25"
BANK_CERT = (
    "subject_CN=mx1.bank.example, issuer_CN=Example Issuing CA 2, "
    "fingerprint=C4:1F:9A:37:E2:08:5B:D1:6C:93:4E:A7:20:FB:58:0D:B6:71:3C:E9:84:2A:F5:19:"
    "6E:D3:07:A8:4B:C2:95:1E, pkey_fingerprint=0B:E8:52:A4:19:7C:D6:33:F0:8E:21:5A:C7:94:"
    "6B:E0:3D:A2:57:1C:F9:84:0E:B3:6A:D5:28:71:C4:9F:E6:03"
)


class Log:
    def __init__(self) -> None:
        self.lines: list[tuple[datetime, int, str]] = []
        self.pid = 41000
        self.qid = 0x2A00000000

    def new_pid(self) -> int:
        self.pid += 7
        return self.pid

    def new_qid(self) -> str:
        self.qid += 0x10F3
        return f"{self.qid:010X}"

    def add(self, when: datetime, program: str, pid: int, message: str) -> None:
        stamp = f"{when:%b} {when.day:2d} {when:%H:%M:%S}"
        self.lines.append(
            (when, len(self.lines), f"{stamp} {HOST} postfix/{program}[{pid}]: {message}")
        )

    def write(self, path: Path) -> None:
        path.write_text("".join(line + "\n" for _, _, line in sorted(self.lines)), "utf-8")


def delivery(qid: str, rcpt: str, relay: str, delay: float, dsn: str, status: str) -> str:
    return (
        f"{qid}: to=<{rcpt}>, relay={relay}, delay={delay:g}, "
        f"delays={max(delay - 0.8, 0):.2f}/0.01/0.5/0.29, dsn={dsn}, status={status}"
    )


def verified_send(log: Log, when: datetime, mx: str, rcpt: str, peer_cert: str | None = None):
    pid, qid = log.new_pid(), log.new_qid()
    if peer_cert:
        log.add(when, "smtp", pid, f"{mx}: {peer_cert}")
    log.add(when, "smtp", pid, f"Verified TLS connection established to {mx}: {TLS13}")
    tail = "sent (250 2.0.0 Ok: queued as 7D41A)"
    log.add(when + timedelta(seconds=1), "smtp", pid, delivery(qid, rcpt, mx, 1.1, "2.0.0", tail))


def bank_attempt(log: Log, when: datetime, qid: str, rcpt: str, age: float) -> None:
    pid = log.new_pid()
    log.add(
        when,
        "smtp",
        pid,
        f"server certificate verification failed for {BANK_MX}: certificate has expired",
    )
    log.add(when, "smtp", pid, f"{BANK_MX}: {BANK_CERT}")
    log.add(when, "smtp", pid, f"Trusted TLS connection established to {BANK_MX}: {TLS13}")
    status = "deferred (Server certificate not verified)"
    log.add(
        when + timedelta(seconds=1), "smtp", pid, delivery(qid, rcpt, BANK_MX, age, "4.7.5", status)
    )


def may_fallback(log: Log, when: datetime, mx: str, name: str, rcpt: str) -> None:
    """A fresh message is deferred; the retry 6 minutes later falls back to plaintext."""
    qid = log.new_qid()
    problem = (
        "warning: TLS library problem: error:0A000410:SSL routines::sslv3 alert handshake "
        "failure:../ssl/record/rec_layer_s3.c:1599:SSL alert number 40:"
    )
    pid = log.new_pid()
    log.add(when, "smtp", pid, f"SSL_connect error to {mx}: -1")
    log.add(when, "smtp", pid, problem)
    failed = "deferred (Cannot start TLS: handshake failure)"
    log.add(when + timedelta(seconds=1), "smtp", pid, delivery(qid, rcpt, mx, 1.2, "4.7.5", failed))
    retry = when + timedelta(minutes=6)
    pid = log.new_pid()
    log.add(retry, "smtp", pid, f"SSL_connect error to {mx}: -1")
    log.add(retry, "smtp", pid, problem)
    log.add(retry, "smtp", pid, f"{qid}: Cannot start TLS: handshake failure")
    log.add(retry, "smtp", pid, f"Host offered STARTTLS: [{name}]")
    sent = "sent (250 2.0.0 Ok: queued as 5C2B9)"
    log.add(
        retry + timedelta(seconds=1), "smtp", pid, delivery(qid, rcpt, mx, 361.4, "2.0.0", sent)
    )


def inbound(log: Log, when: datetime, tls: bool) -> None:
    pid, qid = log.new_pid(), f"4Qf{log.new_qid()[-8:]}"
    peer = "mail.example.net[198.51.100.23]" if tls else "old.example.org[192.0.2.90]"
    log.add(when, "smtpd", pid, f"connect from {peer}")
    counters = "ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5"
    if tls:
        log.add(when, "smtpd", pid, f"Anonymous TLS connection established from {peer}: {TLS13}")
        counters = "ehlo=2 starttls=1 mail=1 rcpt=1 data=1 quit=1 commands=7"
    log.add(when + timedelta(seconds=1), "smtpd", pid, f"{qid}: client={peer}")
    log.add(when + timedelta(seconds=2), "smtpd", pid, f"disconnect from {peer} {counters}")


def main() -> None:
    log = Log()
    t = START
    while t < END:
        inbound(log, t + timedelta(minutes=3), tls=True)
        if t.minute == 0:
            inbound(log, t + timedelta(minutes=11), tls=False)
        verified_send(
            log, t + timedelta(minutes=7), "mx.example.com[192.0.2.25]:25", "nora@example.com"
        )
        t += timedelta(minutes=20)
    # bank.example: fine before the expiry, halted after it
    t = START + timedelta(minutes=15)
    while t < EXPIRY:
        verified_send(log, t, BANK_MX, "payments@bank.example", BANK_CERT)
        t += timedelta(minutes=30)
    waiting: list[tuple[str, datetime]] = []
    t = EXPIRY + timedelta(minutes=15)
    while t < END:
        waiting.append((log.new_qid(), t))
        for qid, queued in waiting[:2]:  # the queue manager tries the oldest, then suspends
            bank_attempt(log, t, qid, "payments@bank.example", (t - queued).total_seconds() + 0.9)
        for qid, queued in waiting[2:]:
            age = (t - queued).total_seconds() + 0.1
            reason = "deferred (delivery temporarily suspended: Server certificate not verified)"
            line = delivery(qid, "payments@bank.example", "none", age, "4.7.5", reason)
            log.add(t + timedelta(seconds=2), "error", log.new_pid(), line)
        t += timedelta(minutes=25)
    # level may destinations whose TLS is broken: deferred first, then plaintext
    shop = (
        "mx.shop.example.net[203.0.113.50]:25",
        "mx.shop.example.net",
        "orders@shop.example.net",
    )
    for when in (
        datetime(2026, 11, 26, 22, 10),
        datetime(2026, 11, 27, 2, 40),
        datetime(2026, 11, 27, 4, 20),
    ):
        may_fallback(log, when, *shop)
    news = (
        "mail.news.example.org[192.0.2.140]:25",
        "mail.news.example.org",
        "editor@news.example.org",
    )
    for when in (datetime(2026, 11, 26, 23, 5), datetime(2026, 11, 27, 3, 35)):
        may_fallback(log, when, *news)
    log.write(Path(__file__).with_name("mail.log"))


if __name__ == "__main__":
    main()

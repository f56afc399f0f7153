#!/usr/bin/env python3
# ruff: noqa: E501  (log-line templates are clearer unbroken)
"""Generate a deterministic, realistic Postfix mail log and time ``read_sessions`` on it.

Usage::

    python benchmarks/bench_postfix.py /tmp/postfix-150m --size 150MB [--file-size 32MB] [--reps 2]

The corpus (written only if the folder does not hold one of that size and seed yet) is a
rotated set ``mail.log``, ``mail.log.1``, ... in classic syslog form, oldest highest, one host:
inbound smtpd sessions (TLS 1.3 / 1.2, plaintext, handshake failures, rejects), outbound smtp
deliveries (verified TLS, deferrals, plaintext fallback after a failed handshake, connect
failures), and the qmgr/cleanup/dovecot lines around them (about a third of all lines, which
are read and dropped). Timing covers ``loganalyzer.read_sessions`` only; MB = 10^6 bytes.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from datetime import datetime, timedelta
from pathlib import Path

TLS13 = (
    "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 "
    "server-signature RSA-PSS (2048 bits) server-digest SHA256"
)
TLS12 = "TLSv1.2 with cipher ECDHE-RSA-AES256-GCM-SHA384 (256/256 bits)"


def _size(text: str) -> int:
    units = {"KB": 10**3, "MB": 10**6, "GB": 10**9}
    for unit, factor in units.items():
        if text.upper().endswith(unit):
            return int(float(text[: -len(unit)]) * factor)
    return int(text)


class Writer:
    """Produces the lines of sessions in time order, one host, increasing pids and queue ids."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.now = datetime(2026, 11, 1, 0, 0, 0)
        self.pid = 1000
        self.qid = 0x1000000000

    def _stamp(self) -> str:
        return f"{self.now:%b} {self.now.day:2d} {self.now:%H:%M:%S}"

    def _line(self, program: str, pid: int, message: str) -> str:
        return f"{self._stamp()} mx1 postfix/{program}[{pid}]: {message}\n"

    def _ids(self) -> tuple[int, str]:
        self.pid += self.rng.randint(1, 9)
        self.qid += self.rng.randint(1, 4000)
        return self.pid, f"{self.qid:010X}"

    def block(self) -> str:
        self.now += timedelta(seconds=self.rng.randint(0, 3))
        pid, qid = self._ids()
        peer = f"mail{pid % 997}.example.net[198.51.100.{pid % 250 + 1}]"
        relay = f"mx{pid % 13}.example.org[203.0.113.{pid % 250 + 1}]:25"
        kind = self.rng.random()
        out = []
        if kind < 0.45:  # inbound with TLS
            out.append(self._line("smtpd", pid, f"connect from {peer}"))
            version = TLS13 if kind < 0.35 else TLS12
            out.append(
                self._line(
                    "smtpd", pid, f"Anonymous TLS connection established from {peer}: {version}"
                )
            )
            out.append(self._line("smtpd", pid, f"{qid}: client={peer}"))
            out.append(self._line("cleanup", pid + 1, f"{qid}: message-id=<{qid}@example.net>"))
            out.append(
                self._line(
                    "qmgr", 900, f"{qid}: from=<a@example.net>, size=4211, nrcpt=1 (queue active)"
                )
            )
            out.append(
                self._line(
                    "smtpd",
                    pid,
                    f"disconnect from {peer} ehlo=2 starttls=1 mail=1 rcpt=1 data=1 quit=1 commands=7",
                )
            )
        elif kind < 0.55:  # inbound plaintext or rejected
            out.append(self._line("smtpd", pid, f"connect from {peer}"))
            if kind < 0.5:
                out.append(
                    self._line(
                        "smtpd",
                        pid,
                        f"NOQUEUE: reject: RCPT from {peer}: 554 5.7.1 <x@corp.example.com>: Relay access denied; from=<s@example.org> to=<x@corp.example.com> proto=ESMTP helo=<h{pid}.example.org>",
                    )
                )
                out.append(
                    self._line(
                        "smtpd",
                        pid,
                        f"disconnect from {peer} ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4",
                    )
                )
            else:
                out.append(self._line("smtpd", pid, f"{qid}: client={peer}"))
                out.append(
                    self._line(
                        "smtpd",
                        pid,
                        f"disconnect from {peer} ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5",
                    )
                )
        elif kind < 0.58:  # inbound handshake failure
            out.append(self._line("smtpd", pid, f"connect from {peer}"))
            out.append(self._line("smtpd", pid, f"SSL_accept error from {peer}: -1"))
            out.append(
                self._line(
                    "smtpd",
                    pid,
                    "warning: TLS library problem: error:0A000102:SSL routines::unsupported protocol:../ssl/statem/statem_srvr.c:1657:",
                )
            )
            out.append(self._line("smtpd", pid, f"lost connection after STARTTLS from {peer}"))
            out.append(
                self._line("smtpd", pid, f"disconnect from {peer} ehlo=1 starttls=0/1 commands=1/2")
            )
        elif kind < 0.9:  # outbound verified TLS
            out.append(
                self._line("smtp", pid, f"Verified TLS connection established to {relay}: {TLS13}")
            )
            for n in range(1 + (pid % 3 == 0)):
                out.append(
                    self._line(
                        "smtp",
                        pid,
                        f"{qid}: to=<r{n}@example.org>, relay={relay}, delay=0.9, delays=0.02/0/0.5/0.38, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as {pid:X})",
                    )
                )
            out.append(self._line("qmgr", 900, f"{qid}: removed"))
        elif kind < 0.95:  # outbound fallback after a failed handshake
            out.append(self._line("smtp", pid, f"SSL_connect error to {relay}: -1"))
            out.append(
                self._line(
                    "smtp",
                    pid,
                    "warning: TLS library problem: error:0A000410:SSL routines::sslv3 alert handshake failure:../ssl/record/rec_layer_s3.c:1599:SSL alert number 40:",
                )
            )
            out.append(self._line("smtp", pid, f"{qid}: Cannot start TLS: handshake failure"))
            out.append(
                self._line(
                    "smtp",
                    pid,
                    f"{qid}: to=<f@example.org>, relay={relay}, delay=601, delays=600/0.01/0.3/0.7, dsn=2.0.0, status=sent (250 Ok)",
                )
            )
        elif kind < 0.98:  # outbound deferred by a remote reply
            out.append(
                self._line("smtp", pid, f"Untrusted TLS connection established to {relay}: {TLS12}")
            )
            out.append(
                self._line(
                    "smtp",
                    pid,
                    f"{qid}: to=<g@example.org>, relay={relay}, delay=1.2, delays=0.1/0/0.6/0.5, dsn=4.2.0, status=deferred (host {relay[:-3]} said: 450 4.2.0 Greylisted (in reply to RCPT TO command))",
                )
            )
        else:  # connect failure, then other programs
            out.append(self._line("smtp", pid, f"connect to {relay}: Connection timed out"))
            out.append(
                f"{self._stamp()} mx1 dovecot: imap-login: Login: user=<u{pid}>, method=PLAIN, rip=10.20.5.{pid % 250}, TLS\n"
            )
        return "".join(out)


def generate(folder: Path, size: int, file_size: int, seed: int) -> list[Path]:
    """Write the corpus; returns its files oldest first."""
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / ".corpus.json"
    if marker.exists() and json.loads(marker.read_text()) == {
        "size": size,
        "file_size": file_size,
        "seed": seed,
    }:
        return sorted(
            folder.glob("mail.log*"),
            key=lambda p: -int(p.suffix[1:] or 0) if p.suffix[1:].isdigit() else 0,
        )
    for old in folder.glob("mail.log*"):
        old.unlink()
    writer = Writer(seed)
    chunks, written, files = [], 0, []
    buffer: list[str] = []
    buffered = 0
    while written < size:
        text = writer.block()
        buffer.append(text)
        buffered += len(text)
        written += len(text)
        if buffered >= file_size or written >= size:
            chunks.append("".join(buffer))
            buffer, buffered = [], 0
    for i, text in enumerate(chunks):
        number = len(chunks) - 1 - i
        path = folder / ("mail.log" if number == 0 else f"mail.log.{number}")
        path.write_text(text, "utf-8")
        files.append(path)
    marker.write_text(json.dumps({"size": size, "file_size": file_size, "seed": seed}))
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--size", default="150MB")
    parser.add_argument("--file-size", default="32MB")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=None)
    args = parser.parse_args()
    start = time.perf_counter()
    files = generate(args.folder, _size(args.size), _size(args.file_size), args.seed)
    generated = time.perf_counter() - start
    total = sum(f.stat().st_size for f in files)

    import loganalyzer

    times, df = [], None
    for _ in range(args.reps):
        start = time.perf_counter()
        df = loganalyzer.read_sessions(
            args.folder, syslog_year=2026, syslog_tz="Europe/Berlin", jobs=args.jobs
        )
        times.append(time.perf_counter() - start)
    best = min(times)
    stats = df.attrs["read_stats"]
    print(
        json.dumps(
            {
                "files": len(files),
                "bytes": total,
                "lines": stats["rows"],
                "sessions": len(df),
                "malformed": stats["malformed"],
                "generate_s": round(generated, 2),
                "read_s": [round(t, 2) for t in times],
                "MB_per_s": round(total / 1e6 / best, 1),
                "lines_per_s": round(stats["rows"] / best),
                "sessions_per_s": round(len(df) / best),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

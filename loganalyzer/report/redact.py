"""Redaction for reports sent to a vendor or support (``--redact``, ``--redact-internal``).

Applied once to the report's data, before anything is rendered or written, so every output
(HTML, Markdown, JSON, CSV, Parquet, charts) carries the same masked text:

- mail addresses keep their domain; the local part becomes ``user-<8 hex>`` (a keyed hash with
  a key made per run: the same address reads the same within one report, and cannot be
  looked up from a list of names);
- with ``internal=True`` also internal IPv4 addresses (``internal-ip-N``) and internal host
  names: ``server-N`` for our servers, ``host-N`` for the names of peers on internal addresses
  (names with a dot or a digit: a bare word such as ``mail`` is left, it would mask prose).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import re

import pandas as pd
import pyarrow as pa

from loganalyzer.findings.flow import is_ip
from loganalyzer.findings.model import Options
from loganalyzer.report.data import ReportData

_ADDRESS = re.compile(r"(?<![\w.+-])([\w.!#$%&'*+/=?^`{|}~-]{1,64})@((?:[\w-]+\.)+[A-Za-z]{2,})")
_IPV4 = re.compile(r"(?<![\d.])(\d{1,3}(?:\.\d{1,3}){3})(?![\d.])")


class Redactor:
    """Masks text consistently; ``text(value)`` for one string."""

    def __init__(
        self,
        *,
        internal: bool = False,
        names: dict[str, str] | None = None,
        networks: tuple[str, ...] = Options().internal_networks,
        key: bytes | None = None,
    ) -> None:
        self.internal = internal
        self.key = key or os.urandom(16)
        self.networks = [ipaddress.ip_network(n) for n in networks]
        self.names = dict(names or {})
        self._ips: dict[str, str] = {}
        words = sorted(self.names, key=len, reverse=True)
        self._names = (
            re.compile(
                r"(?<![A-Za-z0-9.])(" + "|".join(map(re.escape, words)) + r")(?![A-Za-z0-9])", re.I
            )
            if words
            else None
        )
        self._lower = {k.lower(): v for k, v in self.names.items()}

    def text(self, value: str) -> str:
        out = _ADDRESS.sub(self._address, value)
        if self.internal:
            out = _IPV4.sub(self._ip, out)
            if self._names is not None:
                out = self._names.sub(lambda m: self._lower[m.group(1).lower()], out)
        return out

    def _address(self, match: re.Match) -> str:
        digest = hmac.new(self.key, match.group(1).lower().encode(), hashlib.sha256)
        return f"user-{digest.hexdigest()[:8]}@{match.group(2)}"

    def _ip(self, match: re.Match) -> str:
        text = match.group(1)
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            return text
        if not any(ip in net for net in self.networks):
            return text
        return self._ips.setdefault(text, f"internal-ip-{len(self._ips) + 1}")

    def frame(self, df: pd.DataFrame) -> pd.DataFrame:
        """A copy with every text cell (and every text in list cells) masked."""
        out = df.copy()
        for column in out.columns:
            values = out[column]
            if not _holds_text(values.dtype):
                continue
            out[column] = pd.Series(
                [self._cell(v) for v in values], index=values.index, dtype=values.dtype
            )
        out.attrs = df.attrs
        return out

    def _cell(self, value):
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, (list, tuple)) or hasattr(value, "tolist"):
            return [self._cell(v) for v in list(value)]
        return value

    def data(self, value):
        """Plain data (dicts, lists, strings) with every string masked."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.data(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.data(v) for v in value]
        return value


def _holds_text(dtype) -> bool:
    """Text or list columns (Arrow-backed, pandas strings or Python objects)."""
    arrow = getattr(dtype, "pyarrow_dtype", None)
    if arrow is not None:
        return (
            pa.types.is_string(arrow)
            or pa.types.is_large_string(arrow)
            or (pa.types.is_list(arrow) or pa.types.is_large_list(arrow))
        )
    return pd.api.types.is_object_dtype(dtype) or isinstance(dtype, pd.StringDtype)


def internal_names(sessions: pd.DataFrame, networks: tuple[str, ...]) -> dict[str, str]:
    """Pseudonyms for our server names and for the names of peers on internal addresses."""
    nets = [ipaddress.ip_network(n) for n in networks]

    def internal(ip) -> bool:
        try:
            return any(ipaddress.ip_address(str(ip).strip("[]")) in n for n in nets)
        except ValueError:
            return False

    names: dict[str, str] = {}
    for server in sorted({str(s) for s in sessions["server"].dropna()}):
        names.setdefault(server, f"server-{len(names) + 1}")
    hosts = set()
    if not sessions.empty:
        inside = sessions[[internal(ip) for ip in sessions["remote_ip"].fillna("")]]
        for column in ("helo", "remote_host"):
            hosts |= {str(h) for h in inside[column].dropna() if str(h).strip("[]") != ""}
    count = 0
    for host in sorted(hosts):
        if host in names or _ADDRESS.search(host) or is_ip(host.strip("[]")):
            continue
        if "." in host or any(ch.isdigit() for ch in host):  # not a word like "mail"
            count += 1
            names[host] = f"host-{count}"
    return names


def redact(
    data: ReportData, *, internal: bool = False, options: Options | None = None
) -> ReportData:
    """The report data with mail addresses (and, with ``internal``, internal names) masked."""
    networks = (options or Options()).internal_networks
    names = internal_names(data.sessions, networks) if internal else {}
    r = Redactor(internal=internal, names=names, networks=networks)
    return data.with_frames(
        sessions=r.frame(data.sessions),
        findings=r.frame(data.findings),  # details are JSON text: masks keep it valid JSON
        certificates=r.frame(data.certificates),
        choices=r.frame(data.choices),
        peers=r.frame(data.peers),
        inputs=r.data(data.inputs),
        evidence={i: [r.frame(t) for t in tables] for i, tables in data.evidence.items()},
    )

"""SMTP TLS Reporting (RFC 8460) aggregate reports from send-side sessions.

One report per policy domain per UTC day. What the session facts map to (README "TLS-RPT"):

- success: a send session whose outcome is ``tls``;
- failure, by ``result-type``:

  - ``starttls-not-supported``: the receiver did not offer STARTTLS (a plaintext session, or a
    TLS-only connector that stopped because the remote does not support TLS);
  - ``certificate-expired``: the receiver's certificate was past its ``NotAfter`` at session
    time, or the error says it expired;
  - ``certificate-host-mismatch``: the error names a subject/name mismatch (``SubjectMismatch``);
  - ``certificate-not-trusted``: the error names an untrusted, partial or revoked chain;
  - ``validation-failure``: any other TLS failure, with the error as ``failure-reason-code``;

- not counted: ``connect_failed`` and ``incomplete`` sessions (no STARTTLS outcome), and
  plaintext sessions where STARTTLS was offered but not used (our side's choice, e.g. a
  fallback that follows a failure already counted).
- **local faults** are left out and returned separately: our certificate was unusable
  (``UnknownCredentials``, ``NoCredentials``) or the receiver rejected it (a 4xx/5xx
  ``Certificate validation failure`` reply). They are not the receiving domain's to fix.

Policy domain: each recipient domain of the session (``recipient_domains``); for a session
without one (most failures end before RCPT TO), the recipient domains seen that UTC day for the
same receiving IP, else for the same receiving host name, in any send session; else the address
space of the session's send connector when it names exactly one domain. Sessions with none of
these are returned as ``unattributed``. A session to several domains counts in each report.
"""

from __future__ import annotations

import fnmatch
import gzip
import hashlib
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd

from loganalyzer.inventory.records import ConnectorRecord

__all__ = ["RESULT_TYPES", "TlsRptResult", "report_filename", "tlsrpt_reports", "write_tlsrpt"]

RESULT_TYPES = (
    "starttls-not-supported",
    "certificate-host-mismatch",
    "certificate-expired",
    "certificate-not-trusted",
    "validation-failure",
    "tlsa-invalid",
    "dnssec-invalid",
    "dane-required",
    "sts-policy-fetch-error",
    "sts-policy-invalid",
    "sts-webpki-invalid",
)
_LOCAL = re.compile(r"UnknownCredentials|NoCredentials", re.IGNORECASE)
_EXPIRED = re.compile(r"expired|NotTimeValid", re.IGNORECASE)
_MISMATCH = re.compile(r"SubjectMismatch|name mismatch|does not match|host ?name", re.IGNORECASE)
_UNTRUSTED = re.compile(
    r"ChainNotTrusted|UntrustedRoot|PartialChain|Revoked|not trusted|UnknownIssuer|ChainFailure"
    r"|self-signed",
    re.IGNORECASE,
)
_NO_TLS = re.compile(r"remote doesn't support TLS|STARTTLS not (?:offered|supported)", re.I)
_REJECTED_OURS = re.compile(r"^[45]\d\d\b.*certificate", re.IGNORECASE)


@dataclass
class TlsRptResult:
    """Reports, plus the sessions left out of them (and why)."""

    reports: list[dict] = field(default_factory=list)
    local_faults: pd.DataFrame | None = None
    unattributed: pd.DataFrame | None = None


def classify(sessions: pd.DataFrame) -> pd.DataFrame:
    """Per send session: ``tlsrpt`` = success, failure, local or None, and ``result_type``."""
    out = []
    for s in sessions.to_dict("records"):
        out.append(_classify_one(s))
    verdict = pd.DataFrame(out, columns=["tlsrpt", "result_type", "reason_code"], dtype=object)
    verdict.index = sessions.index
    return verdict


def _text(value: object) -> str:
    return "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


def _classify_one(s: dict) -> tuple[str | None, str | None, str | None]:
    outcome = s.get("outcome")
    error = _text(s.get("tls_error"))
    last = _text(s.get("last_error"))
    if outcome == "tls":
        return "success", None, None
    if outcome == "plaintext":
        if s.get("starttls_offered") is False:
            return "failure", "starttls-not-supported", None
        return None, None, None
    if outcome != "tls_failed":
        return None, None, None
    if _LOCAL.search(error) or _REJECTED_OURS.search(last):
        return "local", None, error or last
    reason = error or last or None
    if _NO_TLS.search(error) or s.get("starttls_offered") is False:
        return "failure", "starttls-not-supported", reason
    not_after, start = s.get("remote_cert_not_after_utc"), s.get("start_utc")
    expired = not_after is not None and start is not None and not pd.isna(not_after)
    if (expired and not_after < start) or _EXPIRED.search(error):
        return "failure", "certificate-expired", reason
    if _MISMATCH.search(error):
        return "failure", "certificate-host-mismatch", reason
    if _UNTRUSTED.search(error):
        return "failure", "certificate-not-trusted", reason
    return "failure", "validation-failure", reason


def _a_label(domain: str) -> str:
    domain = domain.strip().rstrip(".").lower()
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return domain


def _policy_domains(send: pd.DataFrame, connectors: list[ConnectorRecord]) -> list[list[str]]:
    """Policy domains per session (see the module doc for the order of sources)."""
    day = send["start_utc"].dt.strftime("%Y-%m-%d")
    by_ip: dict[tuple, set[str]] = {}
    by_host: dict[tuple, set[str]] = {}
    for d, ip, host, domains in zip(
        day, send["remote_ip"], send["remote_host"], send["recipient_domains"], strict=True
    ):
        if domains is None or (not isinstance(domains, list | tuple) and pd.isna(domains)):
            continue
        domains = [x for x in list(domains) if x]
        if _text(ip):
            by_ip.setdefault((d, ip), set()).update(domains)
        if _text(host):
            by_host.setdefault((d, host.lower()), set()).update(domains)
    spaces = {}
    for c in connectors:
        names = [a.split(":", 1)[-1].split(";", 1)[0].strip() for a in c.address_spaces]
        names = [n for n in names if n and "*" not in n]
        if c.kind == "send" and len(names) == 1:
            spaces[c.name.lower()] = names[0]
    out = []
    for d, ip, host, domains, connector in zip(
        day, send["remote_ip"], send["remote_host"], send["recipient_domains"],
        send["connector"], strict=True,
    ):  # fmt: skip
        if isinstance(domains, list | tuple) or (domains is not None and not pd.isna(domains)):
            found = sorted({x for x in list(domains) if x})
        else:
            found = []
        if not found and _text(ip):
            found = sorted(by_ip.get((d, ip), ()))
        if not found and _text(host):
            found = sorted(by_host.get((d, host.lower()), ()))
        if not found and _text(connector) and connector.lower() in spaces:
            found = [spaces[connector.lower()]]
        out.append([_a_label(x) for x in found])
    return out


def _mx_hostname(connector: str, helo: str, connectors: list[ConnectorRecord]) -> str | None:
    """The smart host the send connector names (the one the banner names, or the only one)."""
    for c in connectors:
        if c.kind != "send" or c.name.lower() != connector.lower() or not c.smart_hosts:
            continue
        hosts = [h.strip("[] ") for h in c.smart_hosts]
        for h in hosts:
            if helo and (h.lower() == helo.lower() or fnmatch.fnmatch(helo.lower(), h.lower())):
                return h
        return hosts[0] if len(hosts) == 1 else None
    return None


def tlsrpt_reports(
    sessions: pd.DataFrame,
    *,
    organization: str,
    contact: str,
    day: date | None = None,
    connectors: Iterable[ConnectorRecord] = (),
    policies: dict[str, dict] | None = None,
) -> TlsRptResult:
    """RFC 8460 aggregate reports (dicts ready for JSON) from a session table.

    :param day: the UTC day to report (default: every day the send sessions cover).
    :param connectors: send connector settings (smart hosts, address spaces) when known.
    :param policies: ``{policy domain: {"policy-type": "sts"|"tlsa", "policy-string": [...],
        "mx-host": "pattern"}}``; domains not named get ``no-policy-found``.
    """
    connectors = list(connectors)
    policies = {_a_label(k): v for k, v in (policies or {}).items()}
    send = sessions[sessions["direction"] == "send"].reset_index(drop=True)
    send = send[send["start_utc"].notna()].reset_index(drop=True)
    result = TlsRptResult()
    if send.empty:
        result.local_faults = send
        result.unattributed = send
        return result
    verdict = classify(send)
    send = pd.concat([send, verdict], axis=1)
    send["policy_domains"] = _policy_domains(send, connectors)
    send["day"] = send["start_utc"].dt.date
    if day is not None:
        send = send[send["day"] == day]
    result.local_faults = send[send["tlsrpt"] == "local"].reset_index(drop=True)
    counted = send[send["tlsrpt"].isin(["success", "failure"])]
    no_domain = counted["policy_domains"].map(len) == 0
    result.unattributed = counted[no_domain].reset_index(drop=True)
    rows = counted[~no_domain].explode("policy_domains")
    for (report_day, domain), group in rows.groupby(["day", "policy_domains"], sort=True):
        result.reports.append(
            _report(group, report_day, domain, organization, contact, connectors, policies)
        )
    return result


def _report(group, report_day, domain, organization, contact, connectors, policies) -> dict:
    begin = datetime.combine(report_day, datetime.min.time(), UTC)
    end = begin + timedelta(days=1) - timedelta(seconds=1)
    failures = group[group["tlsrpt"] == "failure"]
    details = []
    keys = ["result_type", "local_ip", "remote_ip", "remote_host", "connector", "reason_code"]
    frame = failures[keys].astype(object).where(failures[keys].notna(), None)
    counts: dict[tuple, int] = {}
    for key in frame.itertuples(index=False, name=None):
        counts[key] = counts.get(key, 0) + 1
    for (rtype, local_ip, remote_ip, helo, connector, reason), n in sorted(
        counts.items(), key=lambda kv: tuple("" if v is None else str(v) for v in kv[0])
    ):
        detail = {"result-type": rtype}
        if local_ip:
            detail["sending-mta-ip"] = local_ip
        mx = _mx_hostname(connector or "", helo or "", connectors)
        if mx:
            detail["receiving-mx-hostname"] = mx
        if helo:
            detail["receiving-mx-helo"] = helo
        if remote_ip:
            detail["receiving-ip"] = remote_ip
        detail["failed-session-count"] = n
        if reason:
            detail["failure-reason-code"] = reason
        details.append(detail)
    policy = {"policy-type": "no-policy-found", "policy-domain": domain}
    if domain in policies:
        given = policies[domain]
        policy = {
            "policy-type": given.get("policy-type", "no-policy-found"),
            "policy-string": list(given.get("policy-string", [])),
            "policy-domain": domain,
        }
        hosts = given.get("mx-host")
        hosts = [hosts] if isinstance(hosts, str) else list(hosts or [])
        if hosts:  # RFC 8460 4.4: a string (pattern); several only as a list
            policy["mx-host"] = hosts[0] if len(hosts) == 1 else hosts
    start_text = begin.strftime("%Y-%m-%dT%H:%M:%SZ")
    report_id = hashlib.sha256(f"{organization}|{domain}|{start_text}".encode()).hexdigest()[:16]
    entry = {
        "policy": policy,
        "summary": {
            "total-successful-session-count": int((group["tlsrpt"] == "success").sum()),
            "total-failure-session-count": len(failures),
        },
    }
    if details:
        entry["failure-details"] = details
    end_text = end.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "organization-name": organization,
        "date-range": {"start-datetime": start_text, "end-datetime": end_text},
        "contact-info": contact,
        "report-id": f"{begin:%Y%m%d}.{domain}.{report_id}",
        "policies": [entry],
    }  # fmt: skip


def report_filename(report: dict, sender: str, gz: bool = False) -> str:
    """RFC 8460 §5.3 name: ``sender!policy-domain!begin-unix!end-unix!unique-id.json[.gz]``."""
    domain = report["policies"][0]["policy"]["policy-domain"]
    begin = datetime.fromisoformat(report["date-range"]["start-datetime"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(report["date-range"]["end-datetime"].replace("Z", "+00:00"))
    unique = report["report-id"].rsplit(".", 1)[-1]
    name = f"{sender}!{domain}!{int(begin.timestamp())}!{int(end.timestamp())}!{unique}.json"
    return name + (".gz" if gz else "")


def sender_domain(contact: str, organization: str) -> str:
    """The submitter's domain for file names: the contact's domain, else a slug of the name."""
    if "@" in contact:
        return _a_label(contact.rsplit("@", 1)[1].strip("> "))
    return re.sub(r"[^a-z0-9.-]+", "-", organization.lower()).strip("-") or "loganalyzer"


def write_tlsrpt(
    reports: list[dict],
    folder: str | os.PathLike[str],
    *,
    sender: str,
    gz: bool = False,
) -> list[Path]:
    """Write each report to ``folder`` under its RFC 8460 name (atomically); return the paths."""
    from loganalyzer.output import atomic_writer

    folder = Path(folder)
    written = []
    for report in reports:
        path = folder / report_filename(report, sender, gz)
        data = json.dumps(report, ensure_ascii=False, indent=None).encode()
        with atomic_writer(path, binary=True) as handle:
            handle.write(gzip.compress(data, mtime=0) if gz else data)
        written.append(path)
    return written

"""Certificate and connector findings: expired or expiring certificates, unknown, self-signed or
weak ones, a presented certificate that changed, a connector that selects no valid certificate,
and connector settings that contradict what the logs show."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from loganalyzer.certs import (
    AUTH_SUBJECT,
    certificate_keys,
    common_name,
    connector_choices,
    connector_label,
    covers,
    inventory_by_key,
    name_list,
    status_at,
)
from loganalyzer.findings.model import Context, Finding, evidence_of, session_span
from loganalyzer.findings.tls import groups, with_peer
from loganalyzer.inventory.dn import host_matches, normalise_dn
from loganalyzer.inventory.records import CertificateRecord, ConnectorRecord

WEAK_HASHES = ("sha1", "md5")
MIN_RSA_BITS = 2048


def _inventory_by_key(ctx: Context) -> dict[str, CertificateRecord]:
    return inventory_by_key(ctx.inventory)


def _local_certs(ctx: Context) -> pd.DataFrame:
    """Sessions that presented a local certificate, with its join ``key`` and known validity."""
    sessions = ctx.sessions
    rows = sessions[
        sessions["local_cert_thumbprint"].notna() | sessions["local_cert_serial"].notna()
    ]
    if rows.empty:
        return rows.assign(key=pd.Series(dtype="string"))
    columns = ("local_cert_thumbprint", "local_cert_issuer", "local_cert_serial")
    keys = certificate_keys(*(rows[c].tolist() for c in columns))
    return rows.assign(key=keys).dropna(subset=["key"])


def _not_after(row, inventory: dict[str, CertificateRecord]):
    value = row.local_cert_not_after_utc
    if not pd.isna(value):
        return pd.Timestamp(value)
    record = inventory.get(row.key)
    return pd.Timestamp(record.not_after_utc) if record and record.not_after_utc else None


def cert_expired_in_use(ctx: Context) -> list[Finding]:
    """Sessions that presented one of our certificates after it had expired."""
    inventory = _inventory_by_key(ctx)
    rows = _local_certs(ctx)
    needed = rows[["local_cert_not_after_utc", "key", "start_utc"]]  # itertuples reads these
    expired = [
        index
        for index, row in zip(rows.index, needed.itertuples(index=False), strict=True)
        if (after := _not_after(row, inventory)) is not None and pd.Timestamp(row.start_utc) > after
    ]
    found = []
    rows = rows.loc[expired]
    if rows.empty:
        return found
    for (server, direction, connector, key), group in rows.groupby(
        [rows[c].astype("string").fillna("") for c in ("server", "direction", "connector")]
        + [rows["key"]]
    ):
        first = group.iloc[0]
        after = _not_after(first, inventory)
        found.append(
            Finding(
                kind="cert_expired_in_use",
                title=f"Expired certificate {first.local_cert_subject or key} presented on "
                f"{direction} connector '{connector}' ({server or 'unknown server'})",
                cause=f"the certificate (thumbprint {key}) expired at {after.isoformat()}",
                server=server or None,
                direction=direction or None,
                connector=connector or None,
                cert_thumbprint=first.local_cert_thumbprint,
                **session_span(group),
                details={"not_after_utc": after.isoformat()},
            )
        )
    return found


def cert_expiring(ctx: Context) -> list[Finding]:
    """Inventory certificates (ours) that expire within the window of ``now``."""
    found = []
    window, urgent = ctx.options.expiring_within, ctx.options.expiring_critical_within
    for key, record in _inventory_by_key(ctx).items():
        after = record.not_after_utc
        if after is None or status_at(record.not_before_utc, after, ctx.now) != "expiring":
            continue
        left = after - ctx.now
        if left > window:
            continue
        found.append(
            Finding(
                kind="cert_expiring",
                severity="critical" if left <= urgent else "warning",
                title=f"Certificate {record.subject} expires in {left.days} days "
                f"({after:%Y-%m-%d})",
                cert_thumbprint=record.thumbprint,
                server=record.server,
                cause=f"NotAfter {after.isoformat()}",
                evidence=[record.source],
                details={"not_after_utc": after.isoformat(), "days_left": left.days, "key": key},
            )
        )
    return found


def cert_not_in_inventory(ctx: Context) -> list[Finding]:
    """Certificates our servers presented that the inventory does not know (with an inventory)."""
    if not ctx.inventory:
        return []
    inventory = _inventory_by_key(ctx)
    rows = _local_certs(ctx)
    rows = rows[~rows["key"].isin(inventory)]
    found = []
    for (key,), group in groups(rows, ["key"]):
        first = group.iloc[0]
        found.append(
            Finding(
                kind="cert_not_in_inventory",
                title=f"Presented certificate {first.local_cert_subject or key} "
                "is not in the inventory",
                cert_thumbprint=first.local_cert_thumbprint,
                server=first.server,
                **session_span(group),
                details={"key": key},
            )
        )
    return found


def self_signed_external(ctx: Context) -> list[Finding]:
    """A self-signed certificate presented to or by a peer outside the internal networks."""
    sessions = with_peer(ctx.sessions)
    found = []
    for side, verb in (("local", "presented to"), ("remote", "presented by")):
        subject, issuer = sessions[f"{side}_cert_subject"], sessions[f"{side}_cert_issuer"]
        self_signed = subject.notna() & (subject == issuer)
        self_signed = self_signed.fillna(False).astype(bool)
        rows = sessions[self_signed]
        rows = rows[ctx.external(rows["remote_ip"])]
        for (peer, subject_text), group in groups(rows, ["peer", f"{side}_cert_subject"]):
            found.append(
                Finding(
                    kind="self_signed_external",
                    title=f"Self-signed certificate {subject_text} {verb} external peer {peer}",
                    server=group.iloc[0].server,
                    direction=group.iloc[0].direction,
                    connector=group.iloc[0].connector,
                    remote=peer,
                    cert_thumbprint=group.iloc[0][f"{side}_cert_thumbprint"],
                    **session_span(group),
                    details={"side": side},
                )
            )
    return found


def weak_certificate(ctx: Context) -> list[Finding]:
    """Inventory certificates with an RSA key under 2048 bits or a SHA-1/MD5 signature."""
    found = []
    for record in _inventory_by_key(ctx).values():
        reasons = []
        if record.key_type == "RSA" and record.key_bits and record.key_bits < MIN_RSA_BITS:
            reasons.append(f"RSA {record.key_bits} bits")
        if record.signature_hash in WEAK_HASHES:
            reasons.append(f"{record.signature_hash.upper()} signature")
        if reasons:
            found.append(
                Finding(
                    kind="weak_certificate",
                    title=f"Weak certificate {record.subject}: {', '.join(reasons)}",
                    cert_thumbprint=record.thumbprint,
                    server=record.server,
                    cause=", ".join(reasons),
                    evidence=[record.source],
                )
            )
    return found


def cert_changed(ctx: Context) -> list[Finding]:
    """The certificate a connector presents changed at time T (before/after thumbprints)."""
    scope = ["server", "direction", "connector"]
    read = ["key", "local_cert_thumbprint", "local_cert_subject", "local_cert_issuer"]
    rows = _local_certs(ctx)[[*scope, *read, "start_utc", "file", "line"]]
    rows = rows.sort_values("start_utc", kind="stable")
    found = []
    for key, group in groups(rows, scope):
        previous = None
        for row in group.itertuples(index=False):
            if previous is not None and row.key != previous.key:
                found.append(
                    Finding(
                        kind="cert_changed",
                        title=f"Certificate presented on {key[1]} connector '{key[2]}' "
                        f"({key[0] or 'unknown server'}) changed",
                        server=key[0] or None,
                        direction=key[1] or None,
                        connector=key[2] or None,
                        cert_thumbprint=row.local_cert_thumbprint,
                        first_seen_utc=row.start_utc,
                        last_seen_utc=row.start_utc,
                        sessions=1,
                        evidence=[f"{previous.file}:{previous.line}", f"{row.file}:{row.line}"],
                        details={
                            "before": previous.local_cert_thumbprint,
                            "after": row.local_cert_thumbprint,
                            "before_subject": previous.local_cert_subject,
                            "after_subject": row.local_cert_subject,
                            "before_issuer": previous.local_cert_issuer,
                            "after_issuer": row.local_cert_issuer,
                        },
                    )
                )
            previous = row
    return found


def connector_cert_missing(ctx: Context) -> list[Finding]:
    """A connector whose TlsCertificateName (or FQDN) selects no valid certificate at ``now``."""
    if not ctx.connectors or not ctx.inventory:
        return []
    choices = connector_choices(ctx.connectors, ctx.inventory, now=ctx.now)
    records = {connector_label(c): c for c in ctx.connectors}
    found = []
    for connector, group in choices.groupby("connector", sort=True):
        chosen = group[group["chosen"].fillna(False)]
        first = group.iloc[0]
        names = first.tls_certificate_name if isinstance(first.tls_certificate_name, str) else None
        if chosen.empty:
            cause = (
                f"{'TlsCertificateName ' + names if names else 'its FQDN'} matches no certificate"
            )
        elif chosen.iloc[0].status in ("expired", "not_yet_valid"):
            cause = (
                f"{'TlsCertificateName' if names else 'its FQDN'} selects only "
                f"{chosen.iloc[0].thumbprint}, which is {chosen.iloc[0].status} "
                f"at {ctx.now:%Y-%m-%d %H:%M}Z"
            )
        else:
            continue
        details = {
            "tls_certificate_name": names,
            "candidates": group["thumbprint"].dropna().tolist(),
        }
        record = records.get(connector)
        replacement = _replacement(record, ctx) if record is not None else None
        if replacement is not None:
            details["replacement"] = replacement.thumbprint
            details["fix"] = _fix_command(record, replacement)
            cause += (
                f"; the valid certificate {replacement.thumbprint} (issued by "
                f"{replacement.issuer}) would do: {details['fix']}"
            )
        found.append(
            Finding(
                kind="connector_cert_missing",
                title=f"Connector {connector} has no valid certificate",
                server=first.server if isinstance(first.server, str) else None,
                direction="send" if first.kind == "send" else "receive",
                connector=first["name"],
                cause=cause,
                details=details,
            )
        )
    return found


def _replacement(connector: ConnectorRecord, ctx: Context) -> CertificateRecord | None:
    """The certificate the connector should name: valid at ``now``, with a private key, for
    SMTP, and for the same subject as the pinned one (or covering the connector's FQDN);
    the newest NotBefore first, CA-issued before self-signed."""
    subject = connector.tls_cert_subject
    name = common_name(subject) if subject else connector.fqdn
    fits = []
    for cert in ctx.inventory:
        if not (cert.thumbprint and cert.subject and cert.issuer and cert.not_after_utc):
            continue
        if cert.has_private_key is False or (
            cert.services is not None and "SMTP" not in cert.services
        ):
            continue
        if cert.subject.startswith(AUTH_SUBJECT):
            continue
        valid = (cert.not_before_utc is None or cert.not_before_utc <= ctx.now) and (
            ctx.now < cert.not_after_utc
        )
        same = (
            normalise_dn(cert.subject) == normalise_dn(subject)
            if subject
            else bool(name) and covers(name, cert.subject, cert.sans)
        )
        if valid and same:
            fits.append(cert)
    if not fits:
        return None
    oldest = datetime.min.replace(tzinfo=UTC)
    return max(fits, key=lambda c: (not c.self_signed, c.not_before_utc or oldest, c.thumbprint))


def _fix_command(connector: ConnectorRecord, cert: CertificateRecord) -> str:
    """The Exchange Management Shell line that points the connector at ``cert``."""
    if connector.kind == "receive":
        identity = f"{connector.server}\\{connector.name}" if connector.server else connector.name
        verb = "Set-ReceiveConnector"
    else:
        identity, verb = connector.name, "Set-SendConnector"
    return f'{verb} "{identity}" -TlsCertificateName "<I>{cert.issuer}<S>{cert.subject}"'


def _tenant_attribution(ctx: Context, sessions: pd.DataFrame) -> list[Finding]:
    """An Exchange Online inbound connector's TlsSenderCertificateName that the certificate our
    send sessions present does not cover (the cause of ``550 5.7.64 TenantAttribution``)."""
    found = []
    for inbound in ctx.connectors:
        domain = inbound.tls_sender_certificate_name
        if inbound.kind != "inbound" or not domain:
            continue
        sent = sessions[(sessions["direction"] == "send") & sessions["local_cert_subject"].notna()]
        for (connector, subject), group in groups(sent, ["connector", "local_cert_subject"]):
            row = group.iloc[0]
            names = [*name_list(row.local_cert_sans), *filter(None, [common_name(subject)])]
            if any(host_matches(domain, n) or host_matches(n, domain) for n in names):
                continue
            found.append(
                Finding(
                    kind="connector_tls_mismatch",
                    title=f"Exchange Online inbound connector '{inbound.name}' expects a "
                    f"certificate for {domain}; send connector '{connector}' presents {subject}",
                    direction="send",
                    connector=connector or None,
                    server=row.server if isinstance(row.server, str) else None,
                    cert_thumbprint=row.local_cert_thumbprint,
                    first_seen_utc=group["start_utc"].min(),
                    last_seen_utc=group["end_utc"].max(),
                    sessions=len(group),
                    cause="TlsSenderCertificateName is not covered by the certificate presented "
                    "(550 5.7.64 TenantAttribution)",
                    evidence=[inbound.source, *evidence_of(group)],
                    details={"setting": "TlsSenderCertificateName", "domain": domain},
                )
            )
    return found


def connector_tls_mismatch(ctx: Context) -> list[Finding]:
    """Connector settings that contradict the logs: an EXO inbound connector's
    TlsSenderCertificateName our certificate does not cover, RequireTLS towards peers that never
    offer STARTTLS, IgnoreSTARTTLS set."""
    found = []
    sessions = with_peer(ctx.sessions)
    found += _tenant_attribution(ctx, sessions)
    for connector in ctx.connectors:
        if connector.kind in ("send", "receive") and (
            (connector.protocol_logging_level or "").casefold() == "none"
        ):
            found.append(
                Finding(
                    kind="connector_tls_mismatch",
                    title=f"{connector.kind.capitalize()} connector '{connector.name}' has "
                    "protocol logging off: no evidence of its sessions can exist",
                    connector=connector.name,
                    server=connector.server,
                    direction=connector.kind,
                    evidence=[connector.source],
                    cause="ProtocolLoggingLevel None (set it to Verbose)",
                    details={"setting": "ProtocolLoggingLevel"},
                )
            )
        if connector.kind != "send":
            continue
        if connector.ignore_starttls:
            found.append(
                Finding(
                    kind="connector_tls_mismatch",
                    title=f"Send connector '{connector.name}' has IgnoreSTARTTLS set: "
                    "it never uses TLS",
                    connector=connector.name,
                    server=connector.server,
                    direction="send",
                    evidence=[connector.source],
                    details={"setting": "IgnoreSTARTTLS"},
                )
            )
        if connector.require_tls:
            rows = sessions[
                (sessions["direction"] == "send")
                & (sessions["connector"] == connector.name)
                & (sessions["starttls_offered"] == False)  # noqa: E712 - Arrow booleans
            ]
            if len(rows):
                found.append(
                    Finding(
                        kind="connector_tls_mismatch",
                        title=f"Send connector '{connector.name}' requires TLS but "
                        f"{rows['peer'].nunique()} peers do not offer STARTTLS",
                        connector=connector.name,
                        server=connector.server,
                        direction="send",
                        first_seen_utc=rows["start_utc"].min(),
                        last_seen_utc=rows["end_utc"].max(),
                        sessions=len(rows),
                        evidence=[connector.source, *evidence_of(rows)],
                        details={
                            "setting": "RequireTLS",
                            "peers": sorted(rows["peer"].unique())[:10],
                        },
                    )
                )
    return found


def _name_in_use(direction: str, record) -> tuple[str | None, str]:
    """The name a certificate must cover, and where it comes from (None: the banner host)."""
    if direction == "receive":
        return (record.fqdn if record else None), "connector FQDN"
    if record is not None and record.tls_domain:
        return record.tls_domain, "connector TlsDomain"
    if record is not None and len(record.smart_hosts) == 1:
        return record.smart_hosts[0], "connector smart host"
    return None, "remote banner host (hint)"


def cert_name_mismatch(ctx: Context) -> list[Finding]:
    """The certificate presented does not cover the name in use.

    Receive: our certificate against the connector's FQDN (needs the connector export). Send:
    the peer's certificate against the connector's TlsDomain, else its single smart host, else
    the host name of the remote banner (a hint only: ``details.basis`` says which).
    """
    sessions = with_peer(ctx.sessions)
    connectors = {(c.kind, c.name, c.server): c for c in ctx.connectors}
    found = []
    for key, group in groups(sessions, ["server", "direction", "connector"]):
        server, direction, connector = key
        record = connectors.get((direction, connector, server or None)) or connectors.get(
            (direction, connector, None)
        )
        fixed, basis = _name_in_use(direction, record)
        if direction == "receive" and fixed is None:
            continue
        side = "local" if direction == "receive" else "remote"
        bad = []
        columns = [group[f"{side}_cert_subject"], group["remote_host"], group[f"{side}_cert_sans"]]
        checked: dict[tuple, bool] = {}  # a handful of distinct (name, subject, sans)
        for index, subject, host, sans in zip(
            group.index, *(column.tolist() for column in columns), strict=True
        ):
            name = fixed or host
            named = isinstance(subject, str) and isinstance(name, str) and bool(name)
            if not named:
                continue
            memo = (name, subject, None if sans is None or sans is pd.NA else tuple(sans))
            if memo not in checked:
                checked[memo] = covers(name, subject, sans)
            if not checked[memo]:
                bad.append((index, name, subject))
        if not bad:
            continue
        marks = pd.DataFrame(bad, columns=["index", "_name", "_subject"]).set_index("index")
        rows = group.loc[marks.index].join(marks)
        for (name, subject), part in rows.groupby(["_name", "_subject"]):
            found.append(
                Finding(
                    kind="cert_name_mismatch",
                    title=f"Certificate {subject} does not cover {name} ({direction} connector "
                    f"'{connector}' on {server or 'unknown server'})",
                    server=server or None,
                    direction=direction or None,
                    connector=connector or None,
                    remote=part.iloc[0].peer,
                    cert_thumbprint=part.iloc[0][f"{side}_cert_thumbprint"],
                    first_seen_utc=part["start_utc"].min(),
                    last_seen_utc=part["end_utc"].max(),
                    sessions=len(part),
                    cause=f"the name in use is {name} ({basis})",
                    evidence=evidence_of(part),
                    details={"name": name, "basis": basis, "side": side},
                )
            )
    return found


RULES = [
    cert_name_mismatch,
    cert_expired_in_use,
    cert_expiring,
    cert_not_in_inventory,
    self_signed_external,
    weak_certificate,
    cert_changed,
    connector_cert_missing,
    connector_tls_mismatch,
]

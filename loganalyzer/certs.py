"""The certificate table: inventory, sessions and connectors joined, one row per certificate.

Join keys (docs: inventory-and-connectors.md): the thumbprint (upper-case hex SHA-1 of the DER
bytes); without one, issuer + serial (serial compared as an integer, DN normalised). A connector
selects certificates by the (issuer, subject) pair in its ``TlsCertificateName`` (names, not a
thumbprint: a renewal with other names is not picked up), or without one by its FQDN against the
certificate's CN and SANs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pandas as pd
import polars as pl
import pyarrow as pa

from loganalyzer.inventory.dn import host_matches, normalise_dn
from loganalyzer.inventory.records import CertificateRecord, ConnectorRecord, as_records
from loganalyzer.schema import CERTIFICATE_FACTS, CERTIFICATE_TABLE_SCHEMA

EXPIRING_WITHIN = timedelta(days=30)
MAX_PEERS = 5


@dataclass
class _Cert:
    """One certificate being assembled from its sources."""

    key: str
    facts: dict = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    in_inventory: bool = False
    problems: list[str] = field(default_factory=list)
    sessions: int = 0
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    directions: set[str] = field(default_factory=set)
    peers: list[str] = field(default_factory=list)
    connectors: list[str] = field(default_factory=list)
    selected_by: list[str] = field(default_factory=list)
    has_private_key: bool | None = None


_FACTS = tuple(name for name, _ in CERTIFICATE_FACTS)


def certificate_key(thumbprint: str | None, issuer: str | None, serial: str | None) -> str | None:
    """The join key: the thumbprint when it is 40 hex digits, else issuer + serial as a number."""
    if thumbprint:
        clean = thumbprint.replace(" ", "").replace(":", "").replace("\u200e", "").upper()
        if len(clean) == 40 and all(c in "0123456789ABCDEF" for c in clean):
            return clean
    if issuer and serial:
        try:
            return f"{normalise_dn(issuer)}#{int(serial, 16):X}"
        except ValueError:
            return None
    return None


def certificate_keys(thumbprints: list, issuers: list, serials: list) -> list[str | None]:
    """``certificate_key`` of each row (cells that are not text count as missing), worked
    out once per distinct (thumbprint, issuer, serial): a log holds a handful of them."""
    known: dict[tuple, str | None] = {}
    keys = []
    for cells in zip(thumbprints, issuers, serials, strict=True):
        if cells not in known:
            known[cells] = certificate_key(*(c if isinstance(c, str) else None for c in cells))
        keys.append(known[cells])
    return keys


def _merge(cert: _Cert, facts: dict, *, computed: bool) -> None:
    """Take facts; values computed from certificate bytes win over export text."""
    for name in _FACTS:
        value = facts.get(name)
        if value is None or (name != "services" and value in ((), [])):
            continue  # (no services at all is a fact: Exchange's "None")
        if computed or cert.facts.get(name) in (None, (), []):
            cert.facts[name] = value


def certificates(
    sessions: pd.DataFrame | None = None,
    inventory: list[CertificateRecord] | pd.DataFrame | None = None,
    connectors: list[ConnectorRecord] | pd.DataFrame | None = None,
    now: datetime | None = None,
) -> pd.DataFrame:
    """One row per certificate from the inventory and the sessions.

    ``sessions``: the session table; ``inventory``: certificate records (``reader.read_files``);
    ``connectors``: connector records. Columns: ``schema.CERTIFICATE_TABLE_SCHEMA``.
    ``status`` is judged at ``now`` (default: the wall clock): ``valid``, ``expiring`` (within
    30 days), ``expired``, ``not_yet_valid``.
    """
    now = now or datetime.now(UTC)
    inventory = as_records(inventory, CertificateRecord)
    connectors = as_records(connectors, ConnectorRecord)
    table: dict[str, _Cert] = {}
    for record in inventory:
        key = certificate_key(record.thumbprint, record.issuer, record.serial) or record.source
        cert = table.setdefault(key, _Cert(key))
        cert.in_inventory = True
        cert.sources.append(record.source)
        cert.problems += [p for p in record.problems if p not in cert.problems]
        if record.has_private_key is not None and cert.has_private_key is not True:
            cert.has_private_key = record.has_private_key
        _merge(cert, _record_facts(record), computed=record.der is not None)
    if sessions is not None and len(sessions):
        _add_sessions(table, sessions)
    auth = _auth_thumbprints(connectors or [])
    for connector in _unique(connectors or []):
        if connector.kind in ("send", "receive"):
            _add_connector(table, connector, auth, now)
    rows = [_row(cert, now) for cert in table.values()]
    rows.sort(
        key=lambda r: (
            r["not_after_utc"] or datetime.max.replace(tzinfo=UTC),
            r["thumbprint"] or "",
        )
    )
    frame = pa.Table.from_pylist(rows, schema=CERTIFICATE_TABLE_SCHEMA)
    return frame.to_pandas(types_mapper=pd.ArrowDtype)


def _record_facts(record: CertificateRecord) -> dict:
    return {name: getattr(record, name) for name in _FACTS}


def _add_sessions(table: dict[str, _Cert], sessions: pd.DataFrame) -> None:
    """Facts, counts, times, directions and peers of the certificates sessions presented.

    Rows are grouped rather than walked: each distinct set of facts is merged once, in the
    order rows first show it (so the first value seen still wins), and each certificate's
    counts, first/last times and first peers come from one grouped pass per side.
    """
    for side, direction_word in (("local", "presented"), ("remote", "received")):
        cols = [f"{side}_cert_{k}" for k in ("thumbprint", "subject", "issuer", "serial")]
        facts = [*cols, f"{side}_cert_not_before_utc", f"{side}_cert_not_after_utc"]
        facts.append(f"{side}_cert_sans")
        seen = sessions[sessions[cols[0]].notna() | sessions[cols[1]].notna()]
        if seen.empty:
            continue
        seen = seen[[*facts, "start_utc", "end_utc", "direction", "remote_host", "remote_ip"]]
        keys = certificate_keys(*(seen[c].tolist() for c in (cols[0], cols[2], cols[3])))
        host, ip = pl.col("remote_host"), pl.col("remote_ip")
        rows = (
            pl.from_pandas(seen.reset_index(drop=True))
            .with_row_index("i")
            .with_columns(key=pl.Series(keys, dtype=pl.String))
            .filter(pl.col("key").is_not_null())
            .with_columns(peer=pl.when(host.is_not_null() & (host != "")).then(host).otherwise(ip))
        )
        for i in rows.unique(["key", *facts], keep="first", maintain_order=True)["i"]:
            row = seen.iloc[i]
            cert = table.setdefault(keys[i], _Cert(keys[i]))
            _merge(cert, _session_facts(row, side), computed=False)
        peer = pl.col("peer")
        per_key = rows.group_by("key", maintain_order=True).agg(
            sessions=pl.len(),
            first=pl.col("i").get(pl.col("start_utc").arg_min()),
            last=pl.col("i").get(pl.col("end_utc").arg_max()),
            directions=pl.col("direction").unique(),
            peers=peer.filter(peer.is_not_null() & (peer != "")).unique(maintain_order=True),
        )
        for key, count, first, last, directions, peers in per_key.iter_rows():
            cert = table[key]
            cert.sessions += count
            start = _time(seen["start_utc"].iloc[first]) if first is not None else None
            end = _time(seen["end_utc"].iloc[last]) if last is not None else None
            cert.first_seen = min(filter(None, (cert.first_seen, start)), default=None)
            cert.last_seen = max(filter(None, (cert.last_seen, end)), default=None)
            cert.directions.update(f"{d}:{direction_word}" for d in directions)
            for name in peers:
                if name not in cert.peers and len(cert.peers) < MAX_PEERS:
                    cert.peers.append(name)


def _session_facts(row: pd.Series, side: str) -> dict:
    """A session's facts of the certificate on ``side``, as ``_merge`` takes them."""
    return {
        "thumbprint": _text(row[f"{side}_cert_thumbprint"]),
        "subject": _text(row[f"{side}_cert_subject"]),
        "issuer": _text(row[f"{side}_cert_issuer"]),
        "serial": _text(row[f"{side}_cert_serial"]),
        "not_before_utc": _time(row[f"{side}_cert_not_before_utc"]),
        "not_after_utc": _time(row[f"{side}_cert_not_after_utc"]),
        "sans": _names(row[f"{side}_cert_sans"]),
    }


def _names(value) -> tuple[str, ...]:
    """A list cell (Arrow list, list, or missing) as a tuple of strings."""
    if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
        return ()
    return tuple(str(v) for v in value)


def _text(value) -> str | None:
    return None if value is None or value is pd.NA or (isinstance(value, float)) else str(value)


def _time(value) -> datetime | None:
    if value is None or value is pd.NA or pd.isna(value):
        return None
    return pd.Timestamp(value).to_pydatetime()


def _unique(connectors: list[ConnectorRecord]) -> list[ConnectorRecord]:
    """One record per connector (the same export may be given twice)."""
    seen: dict[tuple, ConnectorRecord] = {}
    for connector in connectors:
        seen.setdefault((connector.kind, connector.server, connector.name), connector)
    return list(seen.values())


def _eligible(cert: _Cert, auth: set[str]) -> bool:
    """A STARTTLS candidate: in the store, with a private key (when known), not the Auth cert."""
    return cert.in_inventory and cert.has_private_key is not False and not _is_auth(cert, auth)


def connector_label(connector: ConnectorRecord) -> str:
    """``send:Outbound to Office 365``, ``receive:EX01\\Default Frontend EX01``."""
    server = f"{connector.server}\\" if connector.server else ""
    return f"{connector.kind}:{server}{connector.name}"


def _add_connector(
    table: dict[str, _Cert], connector: ConnectorRecord, auth: set[str], now: datetime
) -> None:
    """Mark the certificates a connector matches and the one Exchange would pick."""
    label = connector_label(connector)
    candidates = [c for c in table.values() if _eligible(c, auth)]
    matches = [cert for cert in candidates if _selects(connector, cert)]
    for cert in matches:
        cert.connectors.append(label)
    chosen = choose_certificate(matches)
    if chosen is not None:
        chosen.selected_by.append(label)


AUTH_SUBJECT = "CN=Microsoft Exchange Server Auth Certificate"


def _auth_thumbprints(connectors: list[ConnectorRecord]) -> set[str]:
    """Thumbprints named by Get-AuthConfig (never a STARTTLS candidate)."""
    return {
        t.upper()
        for c in connectors
        if c.kind == "authconfig"
        for t in c.auth_thumbprints.values()
        if t
    }


def _is_auth(cert: _Cert, auth: set[str]) -> bool:
    subject = cert.facts.get("subject") or ""
    return cert.key in auth or subject.startswith(AUTH_SUBJECT)


def _selects(connector: ConnectorRecord, cert: _Cert) -> bool:
    """Does the connector's TlsCertificateName (issuer + subject), or without one its FQDN
    against the certificate's CN and SANs, match this certificate?"""
    facts = cert.facts
    if connector.tls_cert_subject or connector.tls_cert_issuer:
        subject, issuer = facts.get("subject"), facts.get("issuer")
        if not subject or not issuer:
            return False
        return normalise_dn(subject) == normalise_dn(connector.tls_cert_subject or "") and (
            normalise_dn(issuer) == normalise_dn(connector.tls_cert_issuer or "")
        )
    if not connector.fqdn:
        return False
    services = facts.get("services")
    if services is not None and "SMTP" not in services:
        return False  # found by FQDN only among certificates enabled for SMTP
    return covers(connector.fqdn, facts.get("subject"), facts.get("sans"))


def common_name(subject: str | None) -> str | None:
    """The CN of a Windows-style DN (``CN=mail.example.com, O=...``), or None."""
    if not isinstance(subject, str):
        return None
    for part in subject.split(","):
        key, _, value = part.strip().partition("=")
        if key.upper() == "CN":
            return value.strip().strip('"')
    return None


def name_list(value) -> list[str]:
    """A SAN cell (tuple, list, Arrow list or missing) as a list of names."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return []
    return [str(v) for v in value]


def covers(name: str, subject: str | None, sans) -> bool:
    """Does a certificate (its CN and SAN names; wildcards allowed) cover the host ``name``?"""
    names = [*name_list(sans), *filter(None, [common_name(subject)])]
    return any(host_matches(n, name) for n in names)


def choose_certificate(candidates: list[_Cert]) -> _Cert | None:
    """Exchange's pick among matching certificates: the newest NotBefore, CA-issued first.

    Neither an expired certificate nor one without the SMTP service is skipped: Exchange picks
    it all the same, and TLS then fails (inventory doc, section 4).
    """
    if not candidates:
        return None
    return _ordered(candidates)[0]


def _ordered(candidates: list[_Cert]) -> list[_Cert]:
    oldest = datetime.min.replace(tzinfo=UTC)
    ordered = sorted(
        candidates, key=lambda c: c.facts.get("not_before_utc") or oldest, reverse=True
    )
    issued = [c for c in ordered if c.facts.get("self_signed") is not True]
    return issued + [c for c in ordered if c not in issued]


def connector_choices(
    connectors: list[ConnectorRecord] | pd.DataFrame,
    inventory: list[CertificateRecord] | pd.DataFrame,
    now: datetime | None = None,
) -> pd.DataFrame:
    """One row per (connector, matching certificate), and why Exchange would pick it or not.

    Columns: ``connector, kind, server, name, tls_certificate_name, fqdn, thumbprint, subject,
    issuer, not_before_utc, not_after_utc, services, status, chosen, reason``. A connector whose
    TlsCertificateName or FQDN matches nothing gets one row with a null thumbprint.
    """
    connectors = as_records(connectors, ConnectorRecord)
    inventory = as_records(inventory, CertificateRecord)
    now = now or datetime.now(UTC)
    certs = certificates(None, inventory, [], now=now)  # merged inventory, one row each
    table = {}
    for row in certs.itertuples(index=False):
        cert = _Cert(row.thumbprint or row.serial or "")
        cert.in_inventory = True
        cert.has_private_key = _cell(row.has_private_key)
        cert.facts = {name: _cell(getattr(row, name)) for name in _FACTS}
        table[cert.key] = cert
    auth = _auth_thumbprints(connectors)
    rows = []
    for connector in _unique(connectors):
        if connector.kind not in ("send", "receive"):
            continue
        candidates = [c for c in table.values() if _eligible(c, auth)]
        matches = _ordered([c for c in candidates if _selects(connector, c)])
        base = {
            "connector": connector_label(connector),
            "kind": connector.kind,
            "server": connector.server,
            "name": connector.name,
            "tls_certificate_name": connector.tls_certificate_name,
            "fqdn": connector.fqdn,
        }
        if not matches:
            what = "TlsCertificateName" if connector.tls_certificate_name else "FQDN"
            rows.append({**base, "chosen": False, "reason": f"its {what} matches no certificate"})
        for rank, cert in enumerate(matches):
            rows.append({**base, **_choice(cert, matches[0], rank, now)})
    return pd.DataFrame(rows, columns=_CHOICE_COLUMNS).convert_dtypes(dtype_backend="pyarrow")


_CHOICE_COLUMNS = [
    "connector", "kind", "server", "name", "tls_certificate_name", "fqdn", "thumbprint",
    "subject", "issuer", "not_before_utc", "not_after_utc", "services", "status", "chosen",
    "reason",
]  # fmt: skip


def _cell(value):
    if value is None or value is pd.NA:
        return None
    if hasattr(value, "tolist"):
        return tuple(value.tolist())
    if isinstance(value, list):
        return tuple(value)
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value


def _choice(cert: _Cert, chosen: _Cert, rank: int, now: datetime) -> dict:
    facts = cert.facts
    status = status_at(facts.get("not_before_utc"), facts.get("not_after_utc"), now)
    if rank == 0:
        notes = ["newest NotBefore among the matches"]
        if status == "expired":
            notes.append("expired: Exchange still presents it (event 12016) and peers reject it")
        if facts.get("services") is not None and "SMTP" not in facts["services"]:
            notes.append("not enabled for SMTP: chosen anyway, and TLS then fails")
        reason = "; ".join(notes)
    elif facts.get("self_signed") is True and chosen.facts.get("self_signed") is not True:
        reason = f"self-signed: the CA-issued {chosen.key[:8]}... wins"
    else:
        reason = f"older NotBefore than {chosen.key[:8]}..."
    return {
        "thumbprint": facts.get("thumbprint"),
        "subject": facts.get("subject"),
        "issuer": facts.get("issuer"),
        "not_before_utc": facts.get("not_before_utc"),
        "not_after_utc": facts.get("not_after_utc"),
        "services": ", ".join(facts["services"]) if facts.get("services") is not None else None,
        "status": status,
        "chosen": rank == 0,
        "reason": reason,
    }


def status_at(not_before: datetime | None, not_after: datetime | None, now: datetime) -> str | None:
    """``valid``, ``expiring`` (within 30 days), ``expired``, ``not_yet_valid``; None unknown."""
    if not_after is None:
        return None
    if now > not_after:
        return "expired"
    if not_before is not None and now < not_before:
        return "not_yet_valid"
    return "expiring" if not_after - now <= EXPIRING_WITHIN else "valid"


def _row(cert: _Cert, now: datetime) -> dict:
    facts = cert.facts
    problems = list(cert.problems)
    if facts.get("services") is not None and cert.selected_by and "SMTP" not in facts["services"]:
        problems.append("selected by a connector but not enabled for SMTP")
    return {
        **{name: facts.get(name) for name in _FACTS},
        "thumbprint": facts.get("thumbprint") or (cert.key if len(cert.key) == 40 else None),
        "sans": list(facts.get("sans") or ()),
        "services": list(facts["services"]) if facts.get("services") is not None else None,
        "sources": cert.sources,
        "in_inventory": cert.in_inventory,
        "has_private_key": cert.has_private_key,
        "connectors": cert.connectors,
        "selected_by": cert.selected_by,
        "sessions": cert.sessions,
        "first_seen_utc": cert.first_seen,
        "last_seen_utc": cert.last_seen,
        "directions": sorted(cert.directions),
        "peers": cert.peers,
        "status": status_at(facts.get("not_before_utc"), facts.get("not_after_utc"), now),
        "problems": problems,
    }


def inventory_by_key(records: list[CertificateRecord]) -> dict[str, CertificateRecord]:
    """Inventory records by join key; a record computed from the certificate bytes wins."""
    by_key: dict[str, CertificateRecord] = {}
    for record in records:
        key = certificate_key(record.thumbprint, record.issuer, record.serial)
        if key and (key not in by_key or record.der is not None):
            by_key[key] = record
    return by_key


def session_certificate_facts(
    sessions: pd.DataFrame, inventory: list[CertificateRecord]
) -> pd.DataFrame:
    """Sessions with ``local_cert_in_inventory`` and validity of each side's certificate at the
    session's time (``*_cert_valid_at_session``), filling dates the log lacks from the inventory.
    """
    by_key = inventory_by_key(inventory)
    out = sessions.copy()
    for side in ("local", "remote"):
        columns = [out[f"{side}_cert_{k}"] for k in ("thumbprint", "issuer", "serial")]
        keys = [
            certificate_key(_text(t), _text(i), _text(s)) for t, i, s in zip(*columns, strict=True)
        ]
        known = [by_key.get(k) if k else None for k in keys]
        if side == "local":
            out["local_cert_in_inventory"] = pd.array(
                [None if k is None else r is not None for k, r in zip(keys, known, strict=True)],
                dtype=pd.ArrowDtype(pa.bool_()),
            )
        for column in ("not_before_utc", "not_after_utc"):
            name = f"{side}_cert_{column}"
            filled = [
                _time(v) if not pd.isna(v) else (getattr(r, column) if r else None)
                for v, r in zip(out[name], known, strict=True)
            ]
            out[name] = pd.array(filled, dtype=out[name].dtype)
        valid = []
        for start, before, after in zip(
            out["start_utc"], out[f"{side}_cert_not_before_utc"], out[f"{side}_cert_not_after_utc"],
            strict=True,
        ):  # fmt: skip
            if pd.isna(after) or pd.isna(start):
                valid.append(None)
            else:
                valid.append(bool((pd.isna(before) or before <= start) and start <= after))
        out[f"{side}_cert_valid_at_session"] = pd.array(valid, dtype=pd.ArrowDtype(pa.bool_()))
    return out

"""Connector exports -> ConnectorRecord (inventory.connectors).

The real sample is the CSS-Exchange Clixml send-connector excerpt in
../shared/fixtures/inventory/ (read in place, never copied). No real connector export in the other
shapes was found, so the samples in tests/data/connectors/ are SYNTHETIC, written by hand per
documented PowerShell behaviour (docs/inventory-and-connectors.md and PowerShell's source):

- ``*.fl.txt``: Format-List as PowerShell's ListWriter lays it out: labels padded to the longest
  label, `` : ``, collections as ``{a, b}``, long values word-wrapped onto lines indented to the
  value column (en-US word wrap keeps the space at the end of the broken line; the send
  connector sample has it trimmed, as copy/paste does, the Get-AuthConfig sample keeps it),
  CRLF, an EMS ``[PS] C:\\...>`` prompt pasted along.
- ``receive-frontend-ex01.csv``: Windows PowerShell 5.1 Export-Csv through remote EMS:
  ``#TYPE Deserialized.…ReceiveConnector``, all fields quoted, values are ``ToString()``, so
  collections such as ``Bindings`` come out as ``System.Collections.ArrayList`` [inferred].
- ``exo-*.json``: PowerShell 7 ConvertTo-Json of Exchange Online (REST) objects: 2-space indent,
  enums as strings; ``-AsArray`` for the outbound one.
- ``send-receive-ps51-snapin.json``: Windows PowerShell 5.1 ConvertTo-Json of live objects
  (snap-in): numeric enums, ``\\/Date(ms)\\/`` dates, nested objects as members [inferred].
- ``receive-ex01.clixml.xml``: Export-Clixml structure as in the CSS-Exchange samples (TN/TNRef,
  LST, Ref, Nil, ``_x000D__x000A_``) with ``Deserialized.`` type names, stored as UTF-8.

Goldens: tests/golden/connectors/{real,synthetic}/ (``pytest --update-golden`` rewrites them).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loganalyzer.errors import InventoryError
from loganalyzer.inventory.connectors import read_connectors, sniff
from loganalyzer.inventory.dn import normalise_dn
from tests.conftest import GOLDEN, check_golden

INVENTORY = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "inventory"
CLIXML = "get-sendconnector-export-clixml-excerpt-tlscertificatename.xml"
DATA = Path(__file__).resolve().parent / "data" / "connectors"
SAMPLES = sorted(p.name for p in DATA.iterdir())
ISSUER = "CN=Example Issuing CA 2, O=Example Trust, C=US"
SUBJECT = "CN=mail.corp.example.com, O=Example Corp, L=Springfield, S=Example State, C=US"


def _fixture(name: str) -> Path:
    path = INVENTORY / name
    if not path.is_file():
        pytest.skip(f"shared fixture {path} not found (it lives beside the project)")
    return path


def _read(name: str) -> list:
    path = DATA / name
    return read_connectors(path.read_text(encoding="utf-8"), path.name)


def _plain(records: list) -> list[dict]:
    return [json.loads(json.dumps(dataclasses.asdict(r))) for r in records]


def _one(text: str, **kwargs):
    (record,) = read_connectors(text, "t.txt", **kwargs)
    return record


# --------------------------------------------------------------------------- real sample


def test_real_clixml_excerpt(update_golden):
    path = _fixture(CLIXML)
    text = path.read_text(encoding="utf-8")
    assert sniff(text)
    records = read_connectors(text, path.name)
    check_golden(
        _plain(records), GOLDEN / "connectors" / "real" / f"{path.stem}.jsonl", update_golden
    )
    (send,) = records
    assert send.source == f"{CLIXML}:3"
    assert (send.kind, send.name, send.server, send.fqdn) == ("send", "Mail to O365", None, None)
    assert send.tls_certificate_name == "<I>CN=localhost<S>CN=localhost"
    assert (send.tls_cert_issuer, send.tls_cert_subject) == ("CN=localhost", "CN=localhost")
    assert send.cloud_services_mail_enabled is True
    assert (send.require_tls, send.ignore_starttls, send.enabled) == (False, False, True)
    assert send.tls_auth_level is None and send.tls_domain is None
    assert send.smart_hosts == ("microsoft-com.mail.protection.outlook.com",)  # SmartHostsString
    assert send.address_spaces == ("SMTP:*;1",)
    assert send.auth_mechanism == "None"
    assert any("not well-formed" in p for p in send.problems)
    assert any("AddressSpaces recovered" in p for p in send.problems)
    assert "1 unnamed Clixml fragment(s) ignored" in send.problems


@pytest.mark.parametrize(
    "name",
    [
        "event-12014-msexchangetransport-edge.txt",
        "get-exchangecertificate-fl-subset-and-table-ex2016.txt",
        "get-exchangecertificate-table-before-after-renewal.txt",
    ],
)
def test_other_real_samples_are_not_connector_exports(name):
    text = _fixture(name).read_text(encoding="utf-8")
    assert not sniff(text)
    with pytest.raises(InventoryError, match=name):
        read_connectors(text, name)


# --------------------------------------------------------------------------- synthetic samples


@pytest.mark.parametrize("name", SAMPLES)
def test_synthetic_goldens(name, update_golden):
    text = (DATA / name).read_text(encoding="utf-8")
    assert sniff(text)
    golden = GOLDEN / "connectors" / "synthetic" / f"{name}.jsonl"
    check_golden(_plain(_read(name)), golden, update_golden)


def test_send_connector_format_list():
    (send,) = _read("send-outbound-to-office365.fl.txt")
    assert send.source == "send-outbound-to-office365.fl.txt:4"  # after the prompt and 2 blanks
    assert (send.kind, send.name, send.server) == ("send", "Outbound to Office 365", "EX01")
    assert send.fqdn == "mail.corp.example.com"
    assert send.tls_certificate_name == f"<I>{ISSUER}<S>{SUBJECT}"  # re-joined after wrapping
    assert (send.tls_cert_issuer, send.tls_cert_subject) == (ISSUER, SUBJECT)
    assert (send.require_tls, send.tls_auth_level) == (True, "DomainValidation")
    assert send.tls_domain == "mail.protection.outlook.com"
    assert (send.cloud_services_mail_enabled, send.ignore_starttls) == (True, False)
    assert send.smart_hosts == ("contoso-example.mail.protection.example.net",)
    assert send.address_spaces == ("smtp:contoso-example.mail.onmicrosoft.com;1",)
    assert (send.auth_mechanism, send.enabled) == ("None", True)
    assert send.problems == (
        "SourceTransportServers has 2 servers (EX01, EX02); server is the first",
    )
    rfc = "C=US,ST=Example State,L=Springfield,O=Example Corp,CN=mail.corp.example.com"
    assert normalise_dn(send.tls_cert_subject) == normalise_dn(rfc)


def test_receive_connectors_csv():
    default, client = _read("receive-frontend-ex01.csv")
    assert default.source == "receive-frontend-ex01.csv:3"
    assert (default.kind, default.name, default.server) == (
        "receive",
        "Default Frontend EX01",
        "EX01",
    )
    assert default.fqdn == "mail.corp.example.com"
    assert (default.tls_cert_issuer, default.tls_cert_subject) == (ISSUER, SUBJECT)
    assert (
        default.auth_mechanism == "Tls, Integrated, BasicAuth, BasicAuthRequireTLS, ExchangeServer"
    )
    assert (default.require_tls, default.enabled) == (False, True)
    assert default.bindings == ()  # Export-Csv wrote the collection type name
    assert default.problems == (
        "Bindings: the export holds the collection's type name, not its items",
    )
    assert (client.name, client.fqdn, client.tls_certificate_name) == (
        "Client Frontend EX01",
        "EX01.corp.example.com",
        None,
    )
    assert client.source == "receive-frontend-ex01.csv:4"


def test_receive_connectors_clixml():
    default, proxy = _read("receive-ex01.clixml.xml")
    assert default.source == "receive-ex01.clixml.xml:2"
    assert (default.kind, default.name, default.server) == (
        "receive",
        "Default Frontend EX01",
        "EX01",
    )
    assert default.bindings == ("[::]:25", "0.0.0.0:25")
    assert (default.tls_cert_issuer, default.tls_cert_subject) == (ISSUER, SUBJECT)
    assert default.problems == ()
    assert (proxy.name, proxy.server, proxy.tls_certificate_name) == (
        "Client Proxy EX01",
        "EX01",  # <Ref> to the first object's Server
        None,
    )
    assert proxy.bindings == ("[::]:465", "0.0.0.0:465")
    assert proxy.auth_mechanism.startswith("Tls, ")


def test_exo_inbound_json():
    (inbound,) = _read("exo-inbound-connector.json")
    assert inbound.source == "exo-inbound-connector.json:1"
    assert inbound.kind == "inbound"
    assert inbound.name == "Inbound from 4d1c5e6f-0a9b-4c8d-b7e6-f5a4b3c2d1e0"
    assert inbound.tls_sender_certificate_name == "mail.corp.example.com"
    assert (inbound.require_tls, inbound.cloud_services_mail_enabled) == (True, True)
    assert inbound.address_spaces == ("smtp:*;1",)  # SenderDomains
    assert inbound.tls_certificate_name is None and inbound.server is None


def test_exo_outbound_json():
    (outbound,) = _read("exo-outbound-connector.json")
    assert outbound.source == "exo-outbound-connector.json:2"
    assert outbound.kind == "outbound"
    assert (outbound.tls_auth_level, outbound.tls_domain) == (
        "DomainValidation",
        "mail.corp.example.com",
    )
    assert outbound.smart_hosts == ("mail.corp.example.com",)
    assert outbound.address_spaces == ("corp.example.com",)  # RecipientDomains


def test_ps51_json_numeric_enums_and_nested_objects():
    send, receive = _read("send-receive-ps51-snapin.json")
    assert (send.kind, send.name, send.server) == ("send", "Relay to partner", "EX02")
    assert send.tls_auth_level == "DomainValidation"  # 4
    assert send.auth_mechanism == "None"  # 0
    assert send.fqdn == "relay.corp.example.com"  # {"Domain": ...}
    assert send.tls_certificate_name == (
        "<I>CN=Example Issuing CA 2, O=Example Trust, C=US"
        "<S>CN=relay.corp.example.com, O=Example Corp, L=Springfield, S=Example State, C=US"
    )
    assert send.smart_hosts == ("relay.partner.example.net",)
    assert send.address_spaces == ("smtp:partner.example.net;1",)
    assert (receive.kind, receive.name, receive.server) == ("receive", "Default EX02", "EX02")
    assert (
        receive.auth_mechanism == "Tls, Integrated, BasicAuth, BasicAuthRequireTLS, ExchangeServer"
    )
    assert receive.bindings == ("0.0.0.0:25", "[::]:25")
    assert receive.source == "send-receive-ps51-snapin.json:92"


def test_authconfig_format_list():
    (auth,) = _read("authconfig.fl.txt")
    assert (auth.kind, auth.name, auth.source) == (
        "authconfig",
        "Auth Configuration",
        "authconfig.fl.txt:3",
    )
    assert auth.auth_thumbprints == {
        "current": "3C4E5A6B7C8D9E0F1A2B3C4D5E6F708192A3B4C5",
        "next": "9F8E7D6C5B4A39281706F5E4D3C2B1A098765432",
    }
    assert auth.problems == ()


# --------------------------------------------------------------------------- details


def test_kind_from_type_name_and_hint():
    subset = "\nName               : Outbound to Office 365\nTlsCertificateName : <S>CN=x\n"
    with pytest.raises(InventoryError, match=r"t\.txt:2: cannot tell which cmdlet"):
        read_connectors(subset, "t.txt")
    assert _one(subset, kind="send").kind == "send"
    identity = "Identity           : EX01\\Default Frontend EX01\nTlsCertificateName : <S>CN=x\n"
    assert (_one(identity).kind, _one(identity).server) == ("receive", "EX01")
    csv_text = (
        "#TYPE Selected.Microsoft.Exchange.Data.Directory.SystemConfiguration.AuthConfig\n"
        '"Name"\n"Auth Configuration"\n'
    )
    assert _one(csv_text).kind == "authconfig"
    with pytest.raises(ValueError):
        read_connectors(subset, "t.txt", kind="smtp")


def test_csv_without_type_line_and_joined_lists():
    text = (
        "Name;Identity;Bindings;AuthMechanism;TlsCertificateName\r\n"
        'Default EX01;EX01\\Default EX01;"[::]:2525;0.0.0.0:2525";Tls;\r\n'
    )
    record = _one(text)
    assert (record.kind, record.server) == ("receive", "EX01")
    assert record.bindings == ("[::]:2525", "0.0.0.0:2525")
    assert record.tls_certificate_name is None


def test_format_list_long_word_cut_and_truncated_list():
    # a 59-column console: 19-column labels, 40 columns of value. A word longer than 40 is cut
    # at the full width; other breaks fall after a space (trimmed here).
    long_host = "a" * 50 + ".mail.protection.example.net"
    text = (
        "Name             : Outbound\n"
        f"SmartHostsString : {long_host[:40]}\n"
        f"                   {long_host[40:]}\n"
        "AddressSpaces    : {smtp:a;1, smtp:b;1, smtp:c;1,\n"
        "                   smtp:d;1...}\n"
    )
    assert max(len(line) for line in text.splitlines()) == 59
    record = _one(text)
    assert record.smart_hosts == (long_host,)
    assert record.address_spaces == tuple(f"smtp:{c};1" for c in "abcd")
    assert record.problems == ("AddressSpaces: list cut short by $FormatEnumerationLimit",)


def test_format_list_several_records_and_noise():
    text = (
        "PS C:\\> Get-ReceiveConnector | fl Name,Bindings,AuthMechanism\n\n"
        "Name          : Default EX01\n"
        "Bindings      : {0.0.0.0:25, [::]:25, 10.0.0.5:2525,\n"
        "                [fe80::1]:2525, 192.168.10.20:587}\n"
        "AuthMechanism : Tls\n"
        "Name          : Client EX01\nBindings      : {}\nAuthMechanism : None\n"
        "stray text\n"
    )
    first, second = read_connectors(text, "t.txt")
    assert first.bindings == (
        "0.0.0.0:25",
        "[::]:25",
        "10.0.0.5:2525",
        "[fe80::1]:2525",
        "192.168.10.20:587",
    )
    assert (first.source, second.source) == ("t.txt:3", "t.txt:7")
    assert second.bindings == () and second.auth_mechanism == "None"
    assert second.problems == ("line 10: not 'Label : value', ignored",)


def test_values_and_problems():
    record = _one(
        "Name : x\nRequireTLS : $true\nEnabled : maybe\nSmartHosts : {}\n"
        "TlsCertificateName : CN=mail.contoso.com\nAuthMechanism : 64\n"
    )
    assert (record.require_tls, record.enabled) == (True, None)
    assert record.auth_mechanism == "64"
    assert record.problems == (
        "Enabled: 'maybe' is not True/False",
        "TlsCertificateNameSyntaxInvalid: no <I>/<S> markers",
        "AuthMechanism: numeric value 64 has unknown flag bits",
    )
    outbound = _one('{"Name": "o", "TlsSettings": 4, "RecipientDomains": ["contoso.com"]}')
    assert outbound.tls_auth_level == "4"
    assert outbound.problems == ("TlsSettings: numeric value 4 not mapped to a name",)
    send = _one('{"Name": "s", "TlsAuthLevel": 3, "SmartHostAuthMechanism": 8}')
    assert (send.tls_auth_level, send.auth_mechanism) == ("3", "ExchangeServer")
    issuer_only = _one('{"Name": "s", "SmartHosts": [], "TlsCertificateName": "<I>CN=a"}')
    assert issuer_only.problems == ("TlsCertificateNameSyntaxInvalid: no <S> subject",)


def test_authconfig_thumbprints_normalised():
    record = _one(
        '[{"CurrentCertificateThumbprint":'
        ' "3c 4e 5a 6b 7c 8d 9e 0f 1a 2b 3c 4d 5e 6f 70 81 92 a3 b4 c5",'
        ' "NextCertificateThumbprint": "", "PreviousCertificateThumbprint": "not-hex",'
        ' "Name": "Auth Configuration"}]'
    )
    assert record.auth_thumbprints == {
        "current": "3C4E5A6B7C8D9E0F1A2B3C4D5E6F708192A3B4C5",
        "previous": "not-hex",
    }
    assert record.problems == ("PreviousCertificateThumbprint: 'not-hex' is not 40 hex digits",)


def test_json_array_wrapper_and_locations():
    text = (
        '{"value": [{"Name": "a", "SenderDomains": []}, {"Name": "b", "SenderDomains": []}],'
        ' "Count": 2}'
    )
    assert [r.source for r in read_connectors(text, "w.json")] == ["w.json#1", "w.json#2"]
    assert read_connectors("[]", "e.json") == []
    assert read_connectors("  \n", "e.txt") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[{"Name": "a",}]', r"^bad\.json:1: not valid JSON"),
        ('[{"Name": "a"}', r"^bad\.json:1: not valid JSON"),
        ("[1, 2]", r"^bad\.json:1: expected a JSON object"),
        ('{"Name": "a"}', r"^bad\.json: no connector"),
        ("<!DOCTYPE x [<!ENTITY e 'x'>]><Objs/>", r"^bad\.json: bad Clixml .*DTD"),
        (
            "<Objs><Obj RefId='0'><Props><S N='TlsCertificateName'>x</S><x y=></Props></Obj>",
            "malformed tag",
        ),
        ("hello", r"^bad\.json: not a connector export"),
        ("Thumbprint : ABC\nSubject : CN=x\n", r"^bad\.json: no connector"),
        ('"Name","Subject"\n"a","CN=x"\n', r"^bad\.json: no connector"),
    ],
)
def test_errors(text, message):
    with pytest.raises(InventoryError, match=message):
        read_connectors(text, "bad.json")


def test_sniff():
    assert not sniff("")
    assert not sniff("hello world")
    assert not sniff('[{"bindings": "*:80:"}]')  # IIS, not Exchange
    assert sniff('[{"Name": "x", "SmartHosts": []}]')
    assert sniff('"Name","AuthMechanism"\n')
    assert sniff('<Objs><Obj><Props><S N="TlsSenderCertificateName">a</S></Props></Obj></Objs>')


_TEXTS = [(DATA / name).read_text(encoding="utf-8") for name in SAMPLES]


@given(st.text(max_size=400))
def test_fuzz_arbitrary_text(text):
    assert isinstance(sniff(text), bool)
    try:
        assert isinstance(read_connectors(text, "fuzz"), list)
    except InventoryError as error:
        assert str(error).startswith("fuzz")


@given(
    sample=st.sampled_from(_TEXTS),
    cut=st.integers(min_value=0, max_value=20_000),
    junk=st.text(max_size=30),
)
def test_fuzz_damaged_samples(sample, cut, junk):
    text = sample[: cut % (len(sample) + 1)] + junk + sample[cut % (len(sample) + 1) :][::2]
    assert isinstance(sniff(text), bool)
    try:
        assert isinstance(read_connectors(text, "fuzz"), list)
    except InventoryError as error:
        assert str(error).startswith("fuzz")

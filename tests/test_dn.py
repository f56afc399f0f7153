"""DN comparison keys, TlsCertificateName halves and host-name matching (inventory.dn).

The RFC 4514 side comes from ``cryptography``'s own ``Name.rfc4514_string()``; the Windows side
is written per the .NET ``X500DistinguishedName`` rules in docs/inventory-and-connectors.md
section 5 (``, `` separators, ``S=``/``E=`` keys, ``OID.`` prefix, double-quoted values).
"""

from __future__ import annotations

import re

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from loganalyzer.inventory.dn import host_matches, normalise_dn, parse_tls_certificate_name

WINDOWS = "CN=mail.corp.example.com, O=Example Corp, L=Springfield, S=Example State, C=US"
SUBJECT = x509.Name(
    [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "Example State"),
        x509.NameAttribute(NameOID.LOCALITY_NAME, "Springfield"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example Corp"),
        x509.NameAttribute(NameOID.COMMON_NAME, "mail.corp.example.com"),
    ]
)


def test_key_format():
    assert normalise_dn(WINDOWS) == (
        "c=us,cn=mail.corp.example.com,l=springfield,o=example corp,st=example state"
    )
    assert normalise_dn("") == ""
    assert normalise_dn("  ") == ""


def test_windows_equals_cryptography_rfc4514():
    rfc = SUBJECT.rfc4514_string()
    assert rfc == "CN=mail.corp.example.com,O=Example Corp,L=Springfield,ST=Example State,C=US"
    assert normalise_dn(WINDOWS) == normalise_dn(rfc)


@pytest.mark.parametrize(
    "other",
    [
        # RFC 4514 in the opposite (DER) order, no spaces, ST for S
        "C=US,ST=Example State,L=Springfield,O=Example Corp,CN=mail.corp.example.com",
        # case of keys and values, extra whitespace, ';' separators (RFC 2253)
        "cn=MAIL.corp.example.com ;  o=example   corp; l=SPRINGFIELD; st=Example State; c=us",
        # OIDs instead of names, with and without the Windows OID. prefix
        "2.5.4.3=mail.corp.example.com, OID.2.5.4.10=Example Corp, 2.5.4.7=Springfield, "
        "OID.2.5.4.8=Example State, 2.5.4.6=US",
        # long attribute names
        "commonName=mail.corp.example.com, organizationName=Example Corp, "
        "localityName=Springfield, stateOrProvinceName=Example State, countryName=US",
        # values in quotes (Windows quotes more than it must; both are fine)
        'CN="mail.corp.example.com", O="Example Corp", L=Springfield, S=Example State, C=US',
    ],
)
def test_equivalent_forms(other):
    assert normalise_dn(other) == normalise_dn(WINDOWS)


def test_quoted_comma_equals_escaped_comma():
    windows = 'CN=mail.contoso.com, O="Contoso, Inc.", L=Redmond, S=WA, C=US'
    rfc = "C=US,ST=WA,L=Redmond,O=Contoso\\, Inc.,CN=mail.contoso.com"
    assert normalise_dn(windows) == normalise_dn(rfc)
    assert "o=contoso\\, inc." in normalise_dn(windows)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Contoso, Inc."),
            x509.NameAttribute(NameOID.COMMON_NAME, "mail.contoso.com"),
        ]
    )
    assert name.rfc4514_string() == "CN=mail.contoso.com,O=Contoso\\, Inc."
    assert normalise_dn(name.rfc4514_string()) == normalise_dn(
        'CN=mail.contoso.com, O="Contoso, Inc."'
    )


def test_hand_typed_unquoted_comma_is_kept_in_the_value():
    assert normalise_dn("CN=x, O=Contoso, Inc.") == normalise_dn('CN=x, O="Contoso, Inc."')


def test_email_aliases():
    keys = {
        normalise_dn(dn)
        for dn in (
            "E=admin@contoso.com, CN=Contoso Root",
            "EMAIL=admin@contoso.com, CN=Contoso Root",
            "emailAddress=admin@contoso.com,CN=Contoso Root",
            "CN=Contoso Root,1.2.840.113549.1.9.1=admin@contoso.com",
            "OID.1.2.840.113549.1.9.1=admin@contoso.com, CN=Contoso Root",
        )
    }
    assert keys == {"cn=contoso root,emailaddress=admin@contoso.com"}
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "Contoso Root"),
            x509.NameAttribute(NameOID.EMAIL_ADDRESS, "admin@contoso.com"),
        ]
    )
    assert normalise_dn(name.rfc4514_string()) in keys


def test_windows_key_overrides_from_cryptography():
    overrides = {NameOID.STATE_OR_PROVINCE_NAME: "S", NameOID.EMAIL_ADDRESS: "E"}
    assert normalise_dn(SUBJECT.rfc4514_string(overrides)) == normalise_dn(WINDOWS)


def test_unnamed_oids():
    ev = "OID.1.3.6.1.4.1.311.60.2.1.3=US, OID.2.5.4.97=VATDE-123, SERIALNUMBER=HRB 1, CN=x"
    rfc = "CN=x,2.5.4.5=HRB 1,organizationIdentifier=VATDE-123,1.3.6.1.4.1.311.60.2.1.3=US"
    assert normalise_dn(ev) == normalise_dn(rfc)
    assert "1.3.6.1.4.1.311.60.2.1.3=us" in normalise_dn(ev)


def test_escapes_quotes_hex_and_ber():
    assert normalise_dn('CN="say ""hi"""') == normalise_dn('CN=say \\"hi\\"')
    assert normalise_dn("CN=Caf\\C3\\A9") == normalise_dn("CN=Café")
    assert normalise_dn("CN=#0c0b6578616d706c652e636f6d") == normalise_dn("CN=example.com")
    assert normalise_dn("CN=#zz") != normalise_dn("CN=zz")
    assert normalise_dn("CN=a\\,b\\+c") == "cn=a\\,b\\+c"
    assert normalise_dn("CN=trailing\\ ") == "cn=trailing"  # whitespace collapses anyway


def test_backslashes():
    # .NET writes backslashes as they are (inside quotes too); RFC 4514 doubles them
    assert normalise_dn('CN="CORP\\svc, x"') == normalise_dn("CN=CORP\\\\svc\\, x")
    assert normalise_dn("CN=CORP\\svc") == normalise_dn("CN=CORP\\\\svc") == "cn=corp\\\\svc"
    assert normalise_dn("CN=a\\") == "cn=a\\\\"


def test_multi_valued_rdn():
    assert normalise_dn("CN=a + OU=b, O=c") == normalise_dn("O=c,OU=b+CN=a")


def test_different_dns_differ():
    base = normalise_dn(WINDOWS)
    assert normalise_dn(WINDOWS.replace("Example Corp", "Example Corporation")) != base
    assert normalise_dn("OU=Domain Control Validated, " + WINDOWS) != base
    assert normalise_dn("CN=mail.corp.example.com") != base
    assert normalise_dn("OU=a, OU=b, CN=x") != normalise_dn("OU=a, CN=x")  # a multiset


@pytest.mark.parametrize("bad", ["CN", "=x", "CN=a,", 'CN="open', 'CN="a" b', "1=x", "CN=a;"])
def test_not_a_dn_gets_a_marked_key(bad):
    key = normalise_dn(bad)
    assert key.startswith("?")
    assert normalise_dn(f"  {bad.upper()} ") == key  # still folded, so equal text matches
    assert key != normalise_dn("CN=a")


def test_table_truncated_subject():
    assert (
        normalise_dn('CN=mail.contoso.com, O="Contoso, In')
        == '?cn=mail.contoso.com, o="contoso, in'
    )


def _windows(attributes: list[tuple[str, str]]) -> str:
    """Render like .NET X500DistinguishedName.Format(false): quote when needed, "" for "."""

    def value(text: str) -> str:
        special = any(c in text for c in ',+="\n<>#;') or text != text.strip() or not text
        return '"' + text.replace('"', '""') + '"' if special else text

    keys = {"ST": "S"}
    return ", ".join(f"{keys.get(k, k)}={value(v)}" for k, v in reversed(attributes))


#: a literal backslash that also reads as an RFC 4514 escape (see the dn module docstring)
_AMBIGUOUS = re.compile(r'\\(?:[0-9A-Fa-f,+"\\<>;=# ]|$)')
_OIDS = {
    "CN": NameOID.COMMON_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "L": NameOID.LOCALITY_NAME,
    "ST": NameOID.STATE_OR_PROVINCE_NAME,
}


@given(
    st.lists(
        st.tuples(
            st.sampled_from(sorted(_OIDS)),
            st.text(
                alphabet=st.characters(
                    codec="utf-8", exclude_categories=("Cc", "Cs"), include_characters=',+="<>#;\\ '
                ),
                min_size=1,
                max_size=12,
            ).filter(lambda v: not _AMBIGUOUS.search(v)),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_windows_and_rfc4514_renderings_agree(attributes):
    name = x509.Name([x509.NameAttribute(_OIDS[k], v) for k, v in attributes])
    assert normalise_dn(_windows(attributes)) == normalise_dn(name.rfc4514_string())


def test_parse_tls_certificate_name():
    issuer = "CN=Example Issuing CA 2, O=Example Trust, C=US"
    assert parse_tls_certificate_name(f"<I>{issuer}<S>{WINDOWS}") == (issuer, WINDOWS)
    assert parse_tls_certificate_name(f"  <i> {issuer} <s> {WINDOWS}\r\n") == (issuer, WINDOWS)
    assert parse_tls_certificate_name("<S>CN=localhost") == (None, "CN=localhost")
    assert parse_tls_certificate_name("<I>CN=localhost") == ("CN=localhost", None)
    assert parse_tls_certificate_name("<I><S>CN=x") == (None, "CN=x")


@pytest.mark.parametrize(
    "bad", ["", "CN=mail.contoso.com", "CN=a <I>CN=b<S>CN=c", "<I>a<S>b<S>c", "<I>a<I>b"]
)
def test_parse_tls_certificate_name_errors(bad):
    with pytest.raises(ValueError):
        parse_tls_certificate_name(bad)


@pytest.mark.parametrize(
    ("pattern", "host", "expected"),
    [
        ("*.example.com", "mail.example.com", True),
        ("*.example.com", "MAIL.Example.COM", True),
        ("*.Example.com", "mail.example.com.", True),
        ("*.example.com", "example.com", False),
        ("*.example.com", "a.b.example.com", False),
        ("*.example.com", "mail.example.org", False),
        ("mail.example.com", "Mail.Example.Com", True),
        ("mail.example.com", "mail2.example.com", False),
        ("m*.example.com", "mail.example.com", False),
        ("*.*.example.com", "a.b.example.com", False),
        ("mail.*.com", "mail.example.com", False),
        ("*", "localhost", False),
        ("", "", False),
        ("*.example.com", "*.example.com", False),
        ("example..com", "example..com", False),
    ],
)
def test_host_matches(pattern, host, expected):
    assert host_matches(pattern, host) is expected

"""``loganalyzer report``: the sample incident's story, golden outputs, exit codes, --tz,
--redact, hostile log text, and the packaged demo.

Regenerate the goldens after an intended change with
``pytest tests/test_report.py --update-golden`` and review the diff.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from loganalyzer.cli import app
from loganalyzer.report import REPORT_FILES
from tests.conftest import GOLDEN, ROOT, check_golden_text
from tests.helpers import Session, write_log

NOW = "2026-11-27T07:00Z"
INCIDENT = "sample_logs/incident"
runner = CliRunner()


def _report(tmp: Path, *args: str) -> tuple[int, str]:
    """Exit code and standard output (stderr's read summary is checked elsewhere)."""
    result = runner.invoke(app, ["report", *args, "--out", str(tmp), "--quiet"])
    return result.exit_code, result.stdout if result.exit_code != 2 else result.output


@pytest.fixture(scope="module")
def incident(tmp_path_factory) -> Path:
    """The demo (no LOGS) run from the project folder, so paths in the report are relative."""
    out = tmp_path_factory.mktemp("incident")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(ROOT)
        code, output = _report(out)
    assert code == 0, output
    (out / "terminal.txt").write_text(output, encoding="utf-8")
    return out


def test_every_output_is_written(incident):
    for name in REPORT_FILES:
        assert (incident / name).stat().st_size > 0, name
    charts = sorted(p.name for p in (incident / "charts").glob("*.png"))
    assert charts == [
        "certificate_timeline.png", "failures_over_time.png", "tls_over_time.png",
        "tls_versions.png",
    ]  # fmt: skip
    for chart in charts:
        assert (incident / "charts" / chart).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.parametrize("name", ["report.md", "findings.json", "summary.json", "peers.csv"])
def test_golden_outputs(incident, name, update_golden):
    check_golden_text(
        (incident / name).read_text(encoding="utf-8"), GOLDEN / "report" / name, update_golden
    )


def test_the_terminal_tells_the_story(incident):
    text = (incident / "terminal.txt").read_text(encoding="utf-8")
    first = text.splitlines()[0]
    assert first.startswith("MAIL FLOW HALTED: ")
    assert "'Outbound to Office 365'" in first and "EX01" in first and "EX02" in first
    assert "BB7B03FEE79AC1F4DC277E947B30E09B8E55C233" in first and "expired" in first
    assert "findings: 5 critical, 9 warning, 0 info" in text
    assert str(incident / "report.html") in text


def test_the_page_tells_the_story(incident):
    page = (incident / "report.html").read_text(encoding="utf-8")
    halts = page[page.index('<section id="halts">') : page.index('<section id="fallback">')]
    assert halts.count("Mail flow halted: send connector &#x27;Outbound to Office 365&#x27;") == 2
    assert "Most likely cause: the certificate presented (thumbprint BB7B03FE" in halts
    assert "ongoing at the end of the logs" in halts
    # the fallback peer, the TLS 1.0 partners and the name mismatch
    assert (
        "mx.tailwind.example" in page[page.index('id="fallback"') : page.index('id="certificates"')]
    )
    legacy = page[page.index('id="legacy"') : page.index('id="tls-failures"')]
    assert "relay.partner-a.example" in legacy and "smtp.legacy.example" in legacy
    assert "does not cover mx.fabrikam-mail.example" in page
    # the old certificate was presented after its expiry; the renewal never was outbound
    certificates = page[page.index('id="certificates"') : page.index('id="legacy"')]
    assert re.search(
        r"BB7B03FEE79AC1F4DC277E947B30E09B8E55C233.*?\d+ outside validity", certificates
    )
    # self-contained: no external resource, no script
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "<script" not in page.lower()
    assert page.count('src="data:image/png;base64,') == 4


def test_findings_json_is_the_findings_contract(incident):
    records = json.loads((incident / "findings.json").read_text(encoding="utf-8"))
    assert [r["kind"] for r in records if r["severity"] == "critical"] == [
        "cert_expired_in_use", "mail_flow_halt", "cert_expired_in_use", "mail_flow_halt",
        "connector_cert_missing",
    ]  # fmt: skip
    halt = next(r for r in records if r["kind"] == "mail_flow_halt")
    assert halt["details"]["ongoing"] is True  # details are an object, not text
    assert halt["first_seen_utc"].endswith("Z")


def test_sessions_parquet_round_trips(incident):
    table = pq.read_table(incident / "sessions.parquet")
    assert table.num_rows == 367
    assert str(table.schema.field("start_utc").type) == "timestamp[us, tz=UTC]"


def test_peers_table_counts(incident):
    peers = pd.read_csv(incident / "peers.csv")
    tailwind = peers[peers["host"] == "mx.tailwind.example"].iloc[0]
    assert (tailwind["fallback_sessions"], tailwind["plaintext_sessions"]) == (2, 2)
    assert tailwind["tls_failed_sessions"] == 2
    legacy = peers[peers["host"] == "smtp.legacy.example"].iloc[0]
    assert legacy["tls_versions"] == "TLS1.0 (9)"
    assert peers["sessions"].sum() == 367


def test_display_time_zone(tmp_path):
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(ROOT)
        code, output = _report(tmp_path, "--tz", "Europe/Berlin")
    assert code == 0, output
    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "times in Europe/Berlin" in md
    # the EX02 halt began 03:03:10 UTC = 04:03:10 in Berlin (CET, UTC+1)
    assert "since 2026-11-27 04:03:10" in md and "since 2026-11-27 03:03:10" not in md
    # files for machines stay in UTC
    findings = json.loads((tmp_path / "findings.json").read_text(encoding="utf-8"))
    assert findings[1]["first_seen_utc"] == "2026-11-27T03:03:10.554000Z"


def test_exit_codes(tmp_path):
    logs = str(_hostile_logs(tmp_path / "logs").parent)
    assert _report(tmp_path / "a", logs, "--now", NOW, "--fail-on", "critical")[0] == 1
    assert _report(tmp_path / "b", logs, "--now", NOW)[0] == 0
    assert _report(tmp_path / "c", logs, "--tz", "Mars/Olympus")[0] == 2
    code, output = _report(tmp_path / "d", str(tmp_path / "missing"))
    assert code == 2 and "nothing readable" in output
    assert not (tmp_path / "d").exists()


TLS12_OK = (
    "TLS protocol SP_PROT_TLS1_2_SERVER negotiation succeeded using bulk encryption algorithm "
    "CALG_AES_256 with strength 256 bits, MAC hash algorithm CALG_SHA_384 with strength 384 "
    "bits and key exchange algorithm CALG_ECDHE with strength 384 bits"
)


def test_a_clean_log_passes_fail_on(tmp_path):
    folder = tmp_path / "EX09" / "SmtpReceive"
    s = Session("EX09\\Default Frontend EX09", "08DF000000000001", "10.0.0.5:25",
                "192.0.2.7:40000", "06:00:00")  # fmt: skip
    s.add("+").add(">", "220 ex09.corp.example.com Microsoft ESMTP MAIL Service ready")
    s.add("<", "EHLO mail.example.org").add(">", "250-ex09.corp.example.com Hello").add(
        ">", "250-STARTTLS"
    )
    s.add("<", "STARTTLS").add(">", "220 2.0.0 SMTP server ready")
    s.add("*", "", TLS12_OK)
    s.add("<", "MAIL FROM:<a@example.org>").add("<", "RCPT TO:<b@corp.example.com>")
    s.add(">", "250 2.6.0 <id@example.org> [InternalId=1] Queued mail for delivery").add(
        "-", "", "Local"
    )
    write_log(folder / "RECV2026112606-1.LOG", s.rows)
    code, output = _report(
        tmp_path / "out", str(tmp_path / "EX09"), "--now", NOW, "--fail-on", "warning"
    )
    assert code == 0, output
    assert output.startswith("Mail flows: no critical or warning findings.")


HOSTILE_EHLO = "<script>alert('x')</script>\"onmouseover=\"x"
HOSTILE_CONNECTOR = '<img src=x onerror=alert(1)>"Frontend'


def _hostile_logs(folder: Path) -> Path:
    """A receive log whose peer picks hostile names and addresses; its mail is rejected
    (550) four times in 20 minutes (a halt), and an internal client delivers once."""
    rows = []
    for i, start in enumerate(("06:00:00", "06:05:00", "06:10:00", "06:20:00")):
        s = Session(f"EX07\\{HOSTILE_CONNECTOR}", f"08DF00000000010{i}", "10.0.0.7:25",
                    "192.0.2.99:40000", start)  # fmt: skip
        s.add("+").add(">", "220 ex07.corp.example.com Microsoft ESMTP MAIL Service ready")
        s.add("<", f"EHLO {HOSTILE_EHLO}").add(">", "250-ex07.corp.example.com Hello")
        s.add(">", "250-STARTTLS")
        s.add("<", "MAIL FROM:<=cmd|'/c calc'!A0@example.org>")
        s.add("<", "RCPT TO:<j.doe.secret@corp.example.com>")
        s.add(">", "550 5.7.1 <j.doe.secret@corp.example.com> rejected: <b>no</b>")
        s.add("-", "", "Local")
        rows += s.rows
    s = Session(f"EX07\\{HOSTILE_CONNECTOR}", "08DF000000000200", "10.0.0.7:25",
                "10.0.0.50:40000", "06:30:00")  # fmt: skip
    s.add("+").add("<", "EHLO pc17.corp.example.com").add(">", "250-ex07.corp.example.com Hello")
    s.add("<", "MAIL FROM:<a.smith@corp.example.com>").add("<", "RCPT TO:<b@example.org>")
    s.add(">", "250 2.6.0 <id@ex07> [InternalId=1] Queued mail for delivery").add("-", "", "Local")
    rows += s.rows
    return write_log(folder / "EX07" / "SmtpReceive" / "RECV2026112606-1.LOG", rows)


def test_log_text_is_escaped_everywhere(tmp_path):
    _hostile_logs(tmp_path / "logs")
    code, output = _report(tmp_path / "out", str(tmp_path / "logs"), "--now", NOW)
    assert code == 0, output
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&quot;onmouseover=&quot;x" in page
    assert "&lt;img src=x onerror=alert(1)&gt;&quot;Frontend" in page
    assert "<script" not in page and "<img src=x" not in page and "<b>no</b>" not in page
    md = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert "<script" not in md and "<img" not in md and "&lt;script&gt;" in md
    for name in ("peers.csv", "certificates.csv"):
        text = (tmp_path / "out" / name).read_text(encoding="utf-8")
        for line in text.splitlines():
            for cell in line.split(","):
                assert not cell.lstrip('"').startswith(("=", "+", "@")), (name, cell)
    peers = (tmp_path / "out" / "peers.csv").read_text(encoding="utf-8")
    assert "'<script>" in peers or "<script>" in peers  # kept as data, not dropped


def _texts(out: Path) -> dict[str, str]:
    texts = {
        p.name: p.read_text(encoding="utf-8")
        for p in out.iterdir()
        if p.suffix in (".html", ".md", ".json", ".csv")
    }
    texts["sessions.parquet"] = str(pq.read_table(out / "sessions.parquet").to_pylist())
    return texts


def test_redact_masks_every_address_local_part(tmp_path):
    logs = str(_hostile_logs(tmp_path / "logs").parent)
    code, output = _report(tmp_path / "plain", logs, "--now", NOW)
    assert code == 0, output
    plain = "\n".join(_texts(tmp_path / "plain").values())
    assert "j.doe.secret@" in plain  # so the test can fail
    code, output = _report(tmp_path / "red", logs, "--now", NOW, "--redact")
    assert code == 0, output
    for name, text in _texts(tmp_path / "red").items():
        for address in re.findall(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+", text):
            assert address.startswith("user-"), (name, address)
        assert "j.doe.secret" not in text and "a.smith" not in text, name
    red = "\n".join(_texts(tmp_path / "red").values())
    assert "@corp.example.com" in red  # domains stay
    assert "10.0.0.50" in red and "EX07" in red  # internal names stay without --redact-internal


def test_redact_internal_masks_our_hosts_and_addresses(tmp_path):
    logs = str(_hostile_logs(tmp_path / "logs").parent)
    code, output = _report(tmp_path / "red", logs, "--now", NOW, "--redact-internal")
    assert code == 0, output
    texts = _texts(tmp_path / "red")
    for name, text in texts.items():
        assert "10.0.0.50" not in text and "10.0.0.7" not in text, name
        assert not re.search(r"(?i)\bex07\b", text), name
        assert "pc17" not in text and "a.smith" not in text, name
    assert "server-1" in texts["report.md"] and "host-1" in texts["peers.csv"]
    assert "internal-ip-" in texts["sessions.parquet"]
    assert "192.0.2.99" in texts["sessions.parquet"]  # internet peers stay


def test_packaged_demo_matches_sample_logs():
    """loganalyzer/demo/incident.zip is the sample incident (make_incident.py rebuilds it)."""
    folder = ROOT / INCIDENT
    with zipfile.ZipFile(ROOT / "loganalyzer" / "demo" / "incident.zip") as bundle:
        packed = {info.filename: bundle.read(info) for info in bundle.infolist()}
    on_disk = {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in (".log", ".pem", ".txt")
    }
    assert packed.keys() == on_disk.keys()
    assert all(packed[name] == on_disk[name] for name in packed), "run make_incident.py"


def test_demo_runs_from_any_folder(tmp_path):
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path)
        code, output = _report(tmp_path / "out")
    assert code == 0, output
    assert output.splitlines()[-1].startswith("report:") or "report:" in output
    assert "MAIL FLOW HALTED" in output


def test_every_sample_log_at_once(tmp_path):
    """All samples together: every Exchange row form and quirk (halts without a server name)
    and the Postfix samples, in one report."""
    code, output = _report(
        tmp_path, str(ROOT / "sample_logs"), "--now", NOW, "--syslog-year", "2026",
        "--syslog-tz", "Europe/Berlin",
    )  # fmt: skip
    assert code == 0, output
    verdict = output.splitlines()[0]
    assert verdict.startswith("MAIL FLOW HALTED: ")
    assert "'Outbound to Office 365'" in verdict  # Exchange
    assert "to bank.example" in verdict  # the Postfix incident
    assert (tmp_path / "report.html").stat().st_size > 0


def test_dated_folders_and_latest(tmp_path):
    logs = str(_hostile_logs(tmp_path / "logs").parent)
    for now in ("2026-11-26T07:00Z", "2026-11-27T07:00Z"):
        code, output = _report(tmp_path / "daily", logs, "--now", now, "--dated")
        assert code == 0, output
    folders = sorted(p.name for p in (tmp_path / "daily").iterdir())
    assert folders == ["2026-11-26", "2026-11-27", "latest"]
    latest = json.loads((tmp_path / "daily" / "latest" / "summary.json").read_text("utf-8"))
    assert latest["now_utc"] == "2026-11-27T07:00:00Z"
    assert latest["status"] == "halted" and latest["findings"]["critical"] >= 1


def test_report_on_a_postfix_mail_log(tmp_path):
    """The Postfix incident: verified TLS to bank.example halts after its certificate
    expired (deferred, never plaintext); the 'may' destinations fall back."""
    code, output = _report(
        tmp_path, str(ROOT / "sample_logs" / "postfix" / "incident"), "--now",
        "2026-11-27T06:00Z", "--syslog-year", "2026", "--syslog-tz", "Europe/Berlin",
    )  # fmt: skip
    assert code == 0, output
    verdict = output.splitlines()[0]
    assert verdict.startswith("MAIL FLOW HALTED: mx1 send 'smtp' to bank.example")
    assert "certificate has expired" in verdict
    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    fallback = md[md.index('<a id="fallback">') : md.index('<a id="certificates">')]
    assert "mx.shop.example.net" in fallback and "mail.news.example.org" in fallback
    assert "bank.example" not in fallback  # never plaintext
    evidence = md[md.index('<a id="evidence">') :]
    assert "certificate verification failed for mx1.bank.example" in evidence  # the raw line


def test_scheduled_report_from_a_store(tmp_path):
    """The scheduled run of the README: ingest, report the last hours from the store with
    --dated, --fail-on, an allowlist and --new-only (a second run finds nothing new)."""
    store = tmp_path / "store"
    ingest = runner.invoke(app, ["ingest", str(ROOT / INCIDENT), "--store", str(store), "-q"])
    assert ingest.exit_code == 0, ingest.output
    allowlist = tmp_path / "accepted.toml"
    allowlist.write_text(
        '[[accept]]\nkind = "legacy_tls"\nremote = "*.legacy.example"\n'
        'reason = "Partner upgrades in Q1 (ticket 4711)"\nexpires = 2027-03-31\n',
        encoding="utf-8",
    )
    args = [
        "--store", str(store), "--since", "12h", "--now", NOW, "--dated", "--fail-on",
        "critical", "--allowlist", str(allowlist), "--new-only",
    ]  # fmt: skip
    code, output = _report(tmp_path / "daily", *args)
    assert code == 1, output
    assert output.startswith("MAIL FLOW HALTED")
    latest = tmp_path / "daily" / "latest"
    records = json.loads((latest / "findings.json").read_text(encoding="utf-8"))
    kinds = {(r["kind"], r["remote"]) for r in records}
    assert ("mail_flow_halt", "example.net") in kinds
    assert ("legacy_tls", "smtp.legacy.example") not in kinds  # accepted
    assert ("legacy_tls", "relay.partner-a.example") in kinds
    code, output = _report(tmp_path / "daily", *args)
    assert code == 0, output  # the same halt and facts again: nothing new to alert on
    summary = json.loads((latest / "summary.json").read_text(encoding="utf-8"))
    assert summary["findings"] == {"critical": 0, "warning": 0, "info": 0}

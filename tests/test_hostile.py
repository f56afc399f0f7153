"""Hostile and broken input: every case is built at test time (no bombs are committed).

Each case checks the exit code, the message naming the bad part, that the good parts are still
read, and that nothing is written outside the output file. The heavy cases run the real CLI in
a subprocess and check its peak memory (a process's peak is a high-water mark, so one
subprocess per case).
"""

from __future__ import annotations

import bz2
import gzip
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

import loganalyzer
from loganalyzer.cli import app
from tests.helpers import HEADER, Session, write_log

runner = CliRunner()
GIB = 1 << 30


def _good(folder: Path, sid: str = "08DE2D5A00000301", name: str = "RECV2026112606-1.LOG"):
    s = Session(r"EX01\Default Frontend EX01", sid, "10.0.0.5:25", "203.0.113.9:1", "06:00:00")
    s.add("+").add("<", "EHLO mail.example.net").add("<", "MAIL FROM:<a@example.net>")
    s.add("-", "", "Local")
    return write_log(folder / name, s.rows)


def _header() -> bytes:
    return ("\ufeff" + HEADER.format(kind="Receive")).encode()


def _run_cli_measured(args: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess, int]:
    """Run the CLI in a fresh process; return its result and the peak RSS (bytes) of the run."""
    probe = (
        "import resource, subprocess, sys\n"
        "r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "sys.stdout.write(r.stdout)\n"
        "sys.stderr.write(r.stderr)\n"
        "print('PEAK', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
        "sys.exit(r.returncode)\n"
    )
    command = [sys.executable, "-c", probe, sys.executable, "-m", "loganalyzer", *args]
    result = subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=300)
    peak_kib = int(result.stderr.rsplit("PEAK", 1)[1].split()[0])
    return result, peak_kib * 1024


def _listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


# --- archives ---------------------------------------------------------------------------------


def test_zip_bomb_is_stopped_and_the_rest_is_read(tmp_path):
    logs = tmp_path / "logs"
    _good(logs)
    bomb = logs / "bundle.zip"
    with (
        zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive,
        archive.open("EX01/SmtpReceive/RECV2026112607-1.LOG", "w") as member,
    ):
        member.write(_header())
        for _ in range(50):  # 500 MB of zeros: deflate's best, about 1030:1
            member.write(bytes(10_000_000))
    with zipfile.ZipFile(bomb, "a", compression=zipfile.ZIP_BZIP2) as archive:
        archive.writestr("EX01/SmtpSend/SEND2026112607-1.LOG", _header() + bytes(50_000_000))
    assert bomb.stat().st_size < 1_000_000
    before = _listing(tmp_path)
    out = tmp_path / "out.jsonl"
    result, peak = _run_cli_measured(
        ["sessions", str(logs), "-f", "jsonl", "-o", str(out)], tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "bundle.zip!EX01/SmtpReceive/RECV2026112607-1.LOG" in result.stderr
    assert "decompression bomb?" in result.stderr
    assert "SEND2026112607-1.LOG: compression method 12 is not read" in result.stderr
    assert [json.loads(x)["session_id"] for x in out.read_text().splitlines()] == [
        "08DE2D5A00000301"
    ]
    assert peak < GIB
    assert _listing(tmp_path) - before == {"out.jsonl"}


def test_inflation_limits_are_options(tmp_path):
    logs = tmp_path / "logs"
    path = _good(logs)
    data = path.read_bytes() + b"# padding\r\n" * 2_000_000  # ~22 MB, very compressible
    (logs / "big.LOG.gz").write_bytes(gzip.compress(data))
    path.unlink()
    result = runner.invoke(app, ["sessions", str(logs), "--max-inflate-ratio", "20", "-q"])
    assert result.exit_code == 0
    assert "big.LOG.gz: stopped after" in result.stderr and "decompression bomb?" in result.stderr
    strict = ["sessions", str(logs), "--max-inflate-bytes", "5000000", "--strict", "-q"]
    result = runner.invoke(app, strict)
    assert result.exit_code == 2 and "beyond the limits" in result.stderr
    result = runner.invoke(app, ["sessions", str(logs), "-f", "jsonl", "-q"])
    assert result.exit_code == 0 and "08DE2D5A00000301" in result.stdout


def test_truncated_gzip_uses_the_readable_part(tmp_path):
    logs = tmp_path / "logs"
    rows = []
    for i in range(400):
        s = Session(
            r"EX01\Default Frontend EX01",
            f"08DE2D5A{i:08X}",
            "10.0.0.5:25",
            "203.0.113.9:1",
            "06:00:00",
        )
        s.add("+").add("<", "EHLO mail.example.net").add("-", "", "Local")
        rows += s.rows
    path = write_log(logs / "RECV2026112606-1.LOG", rows, gz=True)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    _good(logs, "08DE2D5AFFFF0001", "RECV2026112607-1.LOG")
    result = runner.invoke(app, ["sessions", str(logs), "-f", "jsonl", "-q", "--jobs", "1"])
    assert result.exit_code == 0
    assert "RECV2026112606-1.LOG.gz: damaged, read up to the damage" in result.stderr
    ids = [json.loads(x)["session_id"] for x in result.stdout.splitlines()]
    assert "08DE2D5AFFFF0001" in ids and 10 < len(ids) < 401
    strict = runner.invoke(app, ["sessions", str(logs), "--strict", "-q"])
    assert strict.exit_code == 2 and "damaged" in strict.stderr


def test_corrupt_zip_member_and_hostile_member_names(tmp_path):
    good = _good(tmp_path / "src").read_bytes()
    bundle = tmp_path / "bundle.zip"
    with zipfile.ZipFile(bundle, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("../../etc/RECV2026112606-1.LOG", good)
        archive.writestr("/abs/C:/RECV2026112607-1.LOG", good.replace(b"0301", b"0302"))
        archive.writestr("broken/RECV2026112608-1.LOG", good.replace(b"0301", b"0303") * 50)
    raw = bytearray(bundle.read_bytes())
    start = raw.find(b"broken/RECV2026112608-1.LOG") + 60  # inside that member's data
    raw[start : start + 200] = bytes(200)
    bundle.write_bytes(bytes(raw))
    before = _listing(tmp_path)
    result = runner.invoke(app, ["sessions", str(bundle), "-f", "jsonl", "-q", "--jobs", "1"])
    assert result.exit_code == 0
    assert "broken/RECV2026112608-1.LOG: cannot read: corrupt compressed data" in result.stderr
    ids = {json.loads(x)["session_id"] for x in result.stdout.splitlines()}
    assert {"08DE2D5A00000301", "08DE2D5A00000302"} <= ids
    assert _listing(tmp_path) == before  # member names are never used as paths


# --- folders ----------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs and symlinks (POSIX)")
def test_symlink_loops_fifos_and_hidden_files(tmp_path):
    logs = tmp_path / "logs"
    _good(logs)
    (logs / "loop").symlink_to(logs, target_is_directory=True)
    os.mkfifo(logs / "pipe.LOG")
    (logs / ".hidden.LOG").write_bytes(b"junk")
    (logs / "~$lock.LOG").write_bytes(b"junk")
    result = runner.invoke(app, ["sessions", str(logs), "-f", "jsonl", "-q"])
    assert result.exit_code == 0
    assert "loop: symbolic link to a folder: not followed" in result.stderr
    assert "pipe.LOG: not a regular file" in result.stderr
    assert "hidden" not in result.stderr and "lock" not in result.stderr
    assert len(result.stdout.splitlines()) == 1


# --- rows -------------------------------------------------------------------------------------


def test_hostile_rows_are_bounded_and_reported(tmp_path):
    logs = tmp_path / "logs"
    s = Session(
        r"EX01\Empfang \xff", "08DE2D5A00000401", "10.0.0.5:25", "203.0.113.9:1", "06:00:00"
    )
    s.add("+").add("<", "EHLO evil\x1b[2J\x1b[31mred\x07").add(
        "<", "MAIL FROM:<a\x00b@example.net>"
    )
    s.add("*", "CN=caf\xe9, O=Latin-1", "Certificate subject")
    s.add("-", "", "Local")
    rows = list(s.rows)
    rows.insert(2, "2026-11-26T06:00:00.150Z,x," + "A" * 10_000_000)  # a 10 MB line
    rows.insert(3, "2026-11-26T06:00:00.160Z," + ",".join(["x"] * 100_000))  # 100,000 commas
    data = ("\ufeff" + HEADER.format(kind="Receive")).encode() + b"".join(
        r.encode("utf-8") + b"\r\n" for r in rows
    )
    data = data.replace("caf\xe9".encode(), b"caf\xe9").replace(b"\\xff", b"\xff")
    logs.mkdir()
    (logs / "RECV2026112606-1.LOG").write_bytes(data)
    before = _listing(tmp_path)
    out = tmp_path / "out.csv"
    result, peak = _run_cli_measured(["sessions", str(logs), "-f", "csv", "-o", str(out)], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "2 malformed rows" in result.stderr
    assert ":8: " in result.stderr and ":9: " in result.stderr  # the 10 MB line and the commas
    assert peak < GIB
    assert _listing(tmp_path) - before == {"out.csv"}
    table = runner.invoke(app, ["sessions", str(logs), "-q"])
    assert "\x1b" not in table.stdout and "\x07" not in table.stdout
    assert "\\x1b[31mred" in table.stdout
    df = loganalyzer.read_sessions(logs)
    assert df.iloc[0].helo == "evil\x1b[2J\x1b[31mred\x07"  # kept as logged in the data
    assert df.iloc[0].connector == "Empfang \ufffd" and df.iloc[0].messages == 1


def test_over_long_line_in_a_compressed_log(tmp_path):
    logs = tmp_path / "logs"
    path = _good(logs)
    lines = path.read_bytes().split(b"\r\n")
    lines.insert(6, b"2026-11-26T06:00:00.150Z," + b"B" * 3_000_000)
    (logs / "RECV2026112606-1.LOG.gz").write_bytes(gzip.compress(b"\r\n".join(lines)))
    path.unlink()
    df = loganalyzer.read_sessions(logs)
    stats = df.attrs["read_stats"]
    assert len(df) == 1 and stats["malformed"] == 1
    assert "line longer than 1,048,576 bytes: skipped" in stats["malformed_examples"][0]
    assert ".gz:7:" in stats["malformed_examples"][0]


def test_file_names_with_control_characters_are_escaped(tmp_path):
    logs = tmp_path / "logs"
    _good(logs)
    (logs / "evil\x1b[31m.LOG").write_bytes(b"not a log")
    result = runner.invoke(app, ["sessions", str(logs), "-q"])
    assert result.exit_code == 0
    assert "\x1b" not in result.stderr and "evil\\x1b[31m.LOG" in result.stderr


def test_a_bz2_file_is_not_mistaken_for_a_log(tmp_path):
    (tmp_path / "x.LOG").write_bytes(bz2.compress(b"hello"))
    result = runner.invoke(app, ["sessions", str(tmp_path)])
    assert result.exit_code == 2 and "not an Exchange SMTP protocol log" in result.stderr

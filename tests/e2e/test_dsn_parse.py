"""Delivery status notifications as another mail program reads them.

The unit test program for msg/msg_dsn.c (tests/unit/test_msg_dsn.c) writes
some of the notifications it builds to $DSN_OUT_DIR/NAME.eml. This test runs
it into a temporary directory and reads each file with Python's email
package (policy=email.policy.default): the multipart/report structure, the
parts' types and encodings, and the delivery-status fields block by block
(a message/delivery-status part parses as a list of header blocks; a
message/global-delivery-status part is read the same way by hand). The
values expected here are those of the fixtures in test_msg_dsn.c.

The program is BUILD/tests/test_msg_dsn, BUILD from $TERN_BUILD (a directory,
relative to the repository or absolute), else the directory of $TERN_BIN,
else build/.
"""

import email
import email.policy
import email.utils
import os
import subprocess

import pytest
from email.parser import BytesHeaderParser, BytesParser

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

REPORTING_MTA = "mx.example.org"
NOW = 1700000200  # the fixtures' times, in seconds
ARRIVAL = 1700000000
ATTEMPT = 1700000100
RETRY = 1700400000
SUBJECT_FAILED = "Undelivered Mail Returned to Sender"
SUBJECT_DELAYED = "Delayed Mail (still being retried)"
SUBJECT_SUCCESS = "Successful Mail Delivery Report"
BOB_FIELDS = {
    "Original-Recipient": "rfc822; Bob+work@Example.COM",
    "Final-Recipient": "rfc822; bob@example.com",
    "Action": "failed",
    "Status": "5.1.1",
    "Remote-MTA": "dns; mx.example.com",
    "Diagnostic-Code": "smtp; 550 5.1.1 <bob@example.com>: user unknown",
}


def unit_binary():
    build = os.environ.get("TERN_BUILD")
    if build:
        build = build if os.path.isabs(build) else os.path.join(REPO, build)
    elif os.environ.get("TERN_BIN"):
        build = os.path.dirname(os.path.abspath(os.environ["TERN_BIN"]))
    else:
        build = os.path.join(REPO, "build")
    return os.path.join(build, "tests", "test_msg_dsn")


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory):
    binary = unit_binary()
    if not os.access(binary, os.X_OK):
        pytest.fail("%s not found: build it (make unit, or make BUILD=DIR DIR/tests/test_msg_dsn)" % binary)
    out = tmp_path_factory.mktemp("dsn")
    env = dict(os.environ, DSN_OUT_DIR=str(out))
    r = subprocess.run([binary], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    assert r.returncode == 0, r.stdout.decode(errors="replace")
    return out


def load(out_dir, name):
    """(raw bytes, parsed message) of NAME.eml, after the checks every notification must pass."""
    raw = (out_dir / (name + ".eml")).read_bytes()
    lines = raw.split(b"\r\n")
    assert lines[-1] == b"", "%s does not end in CRLF" % name
    for line in lines:
        assert b"\r" not in line and b"\n" not in line, "%s: bare CR or LF in %r" % (name, line[:80])
        assert len(line) <= 998, "%s: a line of %d octets" % (name, len(line))
    msg = BytesParser(policy=email.policy.default).parsebytes(raw)
    assert msg.get_content_type() == "multipart/report"
    assert not msg.defects, msg.defects
    for field in ("From", "To", "Subject", "Date", "Message-ID", "Auto-Submitted", "MIME-Version", "Content-Type"):
        assert len(msg.get_all(field, [])) == 1, "%s: %s is not there once" % (name, field)
    assert msg["From"] == "Mail Delivery System <MAILER-DAEMON@%s>" % REPORTING_MTA
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["MIME-Version"] == "1.0"
    assert email.utils.parsedate_to_datetime(msg["Date"]).timestamp() == NOW
    assert msg["Message-ID"].startswith("<0NEWQUEUEID1") and msg["Message-ID"].endswith("@%s>" % REPORTING_MTA)
    parts = msg.get_payload()
    assert len(parts) in (2, 3)
    for part in parts:
        assert not part.defects, (name, part.get_content_type(), part.defects)
    # the boundary: in Content-Type and in each delimiter line, nowhere else
    boundary = msg.get_boundary().encode()
    assert raw.count(boundary) == len(parts) + 2, name
    assert parts[0].get_content_type() == "text/plain"
    assert parts[0].get_content_charset() == "us-ascii"
    assert all(32 <= b < 127 or b in (10, 13) for b in parts[0].get_payload(decode=True))
    return raw, msg


def status_blocks(part):
    """The header blocks of a delivery-status part: per-message, then one per recipient."""
    if part.get_content_type() == "message/delivery-status":
        blocks = part.get_payload()
    else:
        # message/global-delivery-status: Python reads the first block as a message's
        # header and the rest as its body.
        assert part.get_content_type() == "message/global-delivery-status"
        first = part.get_payload()[0]
        rest = first.get_payload(decode=True) or b""
        parser = BytesHeaderParser(policy=email.policy.default)
        blocks = [first] + [parser.parsebytes(b) for b in rest.split(b"\r\n\r\n") if b.strip()]
    assert len(blocks) >= 2
    assert blocks[0]["Reporting-MTA"] == "dns; " + REPORTING_MTA
    for block in blocks[1:]:
        for field in ("Final-Recipient", "Action", "Status"):  # RFC 3464 2.3: required
            assert len(block.get_all(field, [])) == 1, (field, list(block.items()))
    return blocks


def check_fields(block, want):
    for field, value in want.items():
        assert block.get_all(field) == [value], (field, block.get_all(field), value)


def same_time(value, seconds):
    return email.utils.parsedate_to_datetime(value).timestamp() == seconds


def test_failed_with_the_original(out_dir):
    raw, msg = load(out_dir, "failed")
    assert msg["Subject"] == SUBJECT_FAILED
    assert msg["To"] == "alice@example.org"
    assert msg.get_param("report-type") == "delivery-status"
    assert "Content-Transfer-Encoding" not in msg
    assert all(b < 128 for b in raw)
    text, status, original = msg.get_payload()
    assert "bob@example.com" in text.get_content()
    blocks = status_blocks(status)
    assert len(blocks) == 2
    check_fields(blocks[0], {"Original-Envelope-Id": "QQ+314159"})
    assert same_time(blocks[0]["Arrival-Date"], ARRIVAL)
    check_fields(blocks[1], BOB_FIELDS)
    assert same_time(blocks[1]["Last-Attempt-Date"], ATTEMPT)
    assert "Will-Retry-Until" not in blocks[1]
    assert original.get_content_type() == "message/rfc822"
    inner = original.get_payload()[0]
    assert inner["Subject"] == "lunch"
    assert inner["Message-ID"] == "<m1@example.org>"
    assert "Shall we meet at noon?" in inner.get_content()


def test_headers_only(out_dir):
    _, msg = load(out_dir, "headers-only")
    original = msg.get_payload()[2]
    assert original.get_content_type() == "text/rfc822-headers"
    headers = original.get_content()
    assert "Subject: lunch" in headers and "Message-ID: <m1@example.org>" in headers
    assert "noon" not in headers


def test_no_original(out_dir):
    _, msg = load(out_dir, "no-original")
    assert [p.get_content_type() for p in msg.get_payload()] == ["text/plain", "message/delivery-status"]


def test_eight_bit_original(out_dir):
    _, msg = load(out_dir, "eight-bit")
    assert msg["Content-Transfer-Encoding"] == "8bit"
    original = msg.get_payload()[2]
    assert original.get_content_type() == "message/rfc822"
    assert original["Content-Transfer-Encoding"] == "8bit"
    inner = original.get_payload()[0]
    assert inner.get_payload(decode=True) == b"Un caf\xc3\xa9?\r\n"


def test_eight_bit_header_in_quoted_printable(out_dir):
    raw, msg = load(out_dir, "eight-bit-headers")
    assert all(b < 128 for b in raw)
    assert "Content-Transfer-Encoding" not in msg
    original = msg.get_payload()[2]
    assert original.get_content_type() == "text/rfc822-headers"
    assert original["Content-Transfer-Encoding"] == "quoted-printable"
    assert original.get_payload(decode=True) == (b"From: =?utf-8?q?Ren=C3=A9?= <rene@example.org>\r\n"
                                                 b"Subject: caf\xc3\xa9 \xff raw\r\n")


def test_smtputf8(out_dir):
    _, msg = load(out_dir, "smtputf8")
    assert msg.get_param("report-type") == "global-delivery-status"
    assert msg["To"] == "用户@例子.test"
    assert msg["Content-Transfer-Encoding"] == "8bit"
    text, status, original = msg.get_payload()
    assert status.get_content_type() == "message/global-delivery-status"
    assert status["Content-Transfer-Encoding"] == "8bit"
    blocks = status_blocks(status)
    assert len(blocks) == 3
    check_fields(blocks[1], {"Final-Recipient": "utf-8; δοκιμή@παράδειγμα.test",
                             "Original-Recipient": "utf-8; \\x{3B4}\\x{3BF}k@example.test",
                             "Action": "failed", "Status": "5.1.1"})
    check_fields(blocks[2], BOB_FIELDS)
    assert original.get_content_type() == "message/global"
    assert original.get_payload()[0]["Subject"] == "你好"
    # the text part stays US-ASCII
    assert "<\\x{3B4}\\x{3BF}\\x{3BA}\\x{3B9}\\x{3BC}\\x{3AE}@" in text.get_content()


def test_smtputf8_headers_only(out_dir):
    _, msg = load(out_dir, "smtputf8-headers")
    original = msg.get_payload()[2]
    assert original.get_content_type() == "message/global-headers"
    assert original["Content-Transfer-Encoding"] == "8bit"
    assert original.get_payload()[0]["Subject"] == "你好"


def test_hostile_values_stay_in_their_fields(out_dir):
    raw, msg = load(out_dir, "hostile")
    assert all(b < 128 for b in raw)
    assert set(msg.keys()) == {"From", "To", "Subject", "Date", "Message-ID", "Auto-Submitted", "MIME-Version",
                               "Content-Type"}
    text, status, _ = msg.get_payload()
    blocks = status_blocks(status)
    assert len(blocks) == 2
    assert set(blocks[0].keys()) == {"Original-Envelope-Id", "Reporting-MTA", "Arrival-Date"}
    assert set(blocks[1].keys()) == {"Original-Recipient", "Final-Recipient", "Action", "Status", "Remote-MTA",
                                     "Diagnostic-Code", "Last-Attempt-Date"}
    check_fields(blocks[1], {"Final-Recipient": "rfc822; bob X-Evil-Address: 1@example.com",
                             "Remote-MTA": "dns; mx.example.com X-Evil-Remote: 1"})
    diagnostic = blocks[1]["Diagnostic-Code"]
    assert diagnostic.startswith("smtp; 550 5.1.1 bad Injected: yes --=_0NEWQUEUEID1_x X-Bare-LF: 1 X-Bare-CR: 1 "
                                 "\\x{01}\\x{1B}[31mred\\x{7F} \\x{FF}\\x{FE} \\x{E9}t\\x{E9}")
    assert "TAILMARK" not in diagnostic
    content = text.get_content()
    assert "\n      Injected: yes\r\n" in content
    assert "\\x{1B}[31mred" in content
    assert max(len(line) for line in content.split("\r\n")) <= 78


def test_boundary_collision(out_dir):
    raw, msg = load(out_dir, "collision")
    original = msg.get_payload()[2]
    assert original.get_content_type() == "message/rfc822"
    inner = original.get_payload()[0]
    trap = inner["X-Trap"]
    assert trap.startswith("=_0NEWQUEUEID1_") and trap != msg.get_boundary()
    assert inner["Subject"] == "--" + trap
    assert "fake" in inner.as_string()


def test_delayed(out_dir):
    _, msg = load(out_dir, "delayed")
    assert msg["Subject"] == SUBJECT_DELAYED
    blocks = status_blocks(msg.get_payload()[1])
    check_fields(blocks[1], {"Action": "delayed", "Status": "4.4.1",
                             "Diagnostic-Code": "smtp; 421 4.4.1 try again later"})
    assert same_time(blocks[1]["Will-Retry-Until"], RETRY)
    assert same_time(blocks[1]["Last-Attempt-Date"], ATTEMPT)


def test_success(out_dir):
    _, msg = load(out_dir, "success")
    assert msg["Subject"] == SUBJECT_SUCCESS
    blocks = status_blocks(msg.get_payload()[1])
    assert [b["Action"] for b in blocks[1:]] == ["delivered", "relayed", "expanded"]
    assert {b["Status"] for b in blocks[1:]} == {"2.0.0"}
    assert msg.get_payload()[2].get_content_type() == "text/rfc822-headers"


def test_many_recipients(out_dir):
    _, msg = load(out_dir, "many")
    assert msg["Message-ID"] == "<0NEWQUEUEID1@%s>" % REPORTING_MTA
    blocks = status_blocks(msg.get_payload()[1])
    assert len(blocks) == 4
    assert "Original-Envelope-Id" not in blocks[0] and "Arrival-Date" not in blocks[0]
    assert [b["Final-Recipient"] for b in blocks[1:]] == ["rfc822; bob@example.com", "rfc822; carol@example.net",
                                                         "rfc822; dave@example.com"]
    assert [b["Status"] for b in blocks[1:]] == ["5.1.1", "5.4.7", "5.2.2"]
    assert "Original-Recipient" not in blocks[1]
    assert blocks[2]["Original-Recipient"] == "rfc822; carol@example.net"
    assert "Remote-MTA" not in blocks[2] and "Diagnostic-Code" not in blocks[2]
    assert blocks[3]["Original-Recipient"] == "unknown; bogus"


def test_long_values_are_bounded(out_dir):
    _, msg = load(out_dir, "long")
    blocks = status_blocks(msg.get_payload()[1])
    final = blocks[1]["Final-Recipient"]
    assert final.startswith("rfc822; aaaa") and final.endswith("...") and len(final) < 900
    assert blocks[1]["Diagnostic-Code"].endswith("...")

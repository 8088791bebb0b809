"""End to end with swaks, a real SMTP client written independently of tern."""

import shutil
import subprocess

import pytest

import tern_harness as th

pytestmark = pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks is not installed (apt-get install swaks)")


def swaks(srv, *args, timeout=120):
    cmd = ["swaks", "--server", "127.0.0.1:%d" % srv.port, "--helo", "client.test",
           "--from", "sender@localhost", "--timeout", "60"] + list(args)
    r = subprocess.run(cmd, capture_output=True, timeout=timeout * th.SLOW, stdin=subprocess.DEVNULL)
    return r.returncode, (r.stdout + r.stderr).decode("utf-8", "replace")


def test_swaks_default_message(tern_server):
    srv = tern_server()
    rc, out = swaks(srv, "--to", "postmaster@localhost")
    assert rc == 0, out
    assert "250 2.0.0" in out and "queued as" in out, out
    stored = srv.expect_mail("postmaster@localhost", 1)
    trace, rest = th.split_trace(stored[0])
    assert trace[0] == b"Return-Path: <sender@localhost>"
    assert b"\nThis is a test mailing\n" in rest
    assert b"\r" not in stored[0]


def test_swaks_pipelining(tern_server):
    srv = tern_server(users=["alice@localhost", "bob@localhost"])
    rc, out = swaks(srv, "--pipeline", "--to", "alice@localhost,bob@localhost,nobody@localhost")
    # swaks reports the refused recipient but the message goes to the others.
    assert "550 5.1.1" in out, out
    assert "queued as" in out, out
    for u in ("alice@localhost", "bob@localhost"):
        srv.expect_mail(u, 1)


def test_swaks_data_file_byte_for_byte(tern_server, tmp_path):
    srv = tern_server(users=["alice@localhost"])
    data = (b"From: Sender <sender@localhost>\n"
            b"To: <alice@localhost>\n"
            b"Subject: from a data file\n"
            b"Message-ID: <swaks-data-1@client.test>\n"
            b"\n"
            b"first line\n"
            b".a line with a leading dot\n"
            b"..two dots\n"
            b"\n"
            b"last line")
    # swaks ends the content with CRLF itself (it sends an extra one after a
    # file that ends in a newline), so the file has no final newline.
    path = tmp_path / "message.eml"
    path.write_bytes(data)
    data += b"\n"
    rc, out = swaks(srv, "--to", "alice@localhost", "--data", "@%s" % path)
    assert rc == 0, out
    stored = srv.expect_mail("alice@localhost", 1)
    _, rest = th.split_trace(stored[0])
    assert rest == data, "got %r\nwant %r" % (rest, data)


def test_swaks_body_of_several_megabytes(tern_server, tmp_path):
    srv = tern_server(users=["alice@localhost"])
    line = b"The quick brown fox jumps over the lazy dog 0123456789\n"
    body = b"".join(b"%07d " % i + line for i in range(3 * 1024 * 1024 // (len(line) + 8)))
    path = tmp_path / "body.txt"
    path.write_bytes(body)
    rc, out = swaks(srv, "--pipeline", "--to", "alice@localhost", "--body", "@%s" % path,
                    "--suppress-data")
    assert rc == 0, out
    stored = srv.expect_mail("alice@localhost", 1)
    _, rest = th.split_trace(stored[0])
    assert body in rest, "the %d-byte body is not in the delivered message (%d bytes)" % (len(body), len(rest))
    assert len(rest) < len(body) + 2000


def test_swaks_helo_only(tern_server):
    srv = tern_server(users=["alice@localhost"])
    rc, out = swaks(srv, "--protocol", "SMTP", "--to", "alice@localhost")
    assert rc == 0, out
    stored = srv.expect_mail("alice@localhost", 1)
    trace, _ = th.split_trace(stored[0])
    received = b" ".join(trace[2].split()).decode()
    # RFC 3848: HELO sessions are "with SMTP", EHLO sessions "with ESMTP".
    assert "with SMTP" in received, received


def test_swaks_refused_recipient_fails(tern_server):
    srv = tern_server()
    rc, out = swaks(srv, "--to", "nobody@localhost")
    assert rc != 0, out
    assert "550 5.1.1" in out, out
    rc, out = swaks(srv, "--to", "someone@example.com")
    assert rc != 0, out
    assert "554 5.7.1" in out, out
    srv.wait_queue_empty()
    assert srv.new_files("postmaster@localhost") == []

"""End to end with Python's smtplib as the client: what is sent arrives in the
Maildir byte for byte, after the trace fields tern adds."""

import copy
import email
import email.utils
import io
import smtplib
from email.generator import BytesGenerator
from email.message import EmailMessage


import tern_harness as th


def smtp(srv):
    return smtplib.SMTP("127.0.0.1", srv.port, local_hostname="client.test", timeout=th.REPLY_TIMEOUT)


def check_delivered(stored, sent, sender, rcpt):
    """stored is a file from new/; sent the message as sent (CRLF)."""
    trace, rest = th.split_trace(stored)
    assert trace[0] == b"Return-Path: <" + sender.encode() + b">", trace
    assert trace[1] == b"Delivered-To: " + rcpt.encode(), trace
    assert rest == th.as_stored(sent), "delivered content differs:\n got %r\nwant %r" % (
        rest[:2000], th.as_stored(sent)[:2000])
    return trace


def flatten_like_smtplib(msg, international=False):
    """The bytes smtplib.send_message puts on the wire (before dot-stuffing)."""
    msg_copy = copy.copy(msg)
    del msg_copy["Bcc"]
    del msg_copy["Resent-Bcc"]
    out = io.BytesIO()
    if international:
        g = BytesGenerator(out, policy=msg.policy.clone(utf8=True))
    else:
        g = BytesGenerator(out)
    g.flatten(msg_copy, linesep="\r\n")
    data = out.getvalue()
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data


RAW = (b"From: Sender <sender@localhost>\r\n"
       b"To: alice@localhost\r\n"
       b"Subject: byte for byte\r\n"
       b"Message-ID: <bytes-1@client.test>\r\n"
       b"X-Folded: first part\r\n"
       b"\tsecond part\r\n"
       b"\r\n"
       b"first line\r\n"
       b".leading dot\r\n"
       b"..two leading dots\r\n"
       b".\r\n"
       b" . space then dot\r\n"
       b"trailing spaces   \r\n"
       b"\ttab first\r\n"
       b"caf\xc3\xa9 8-bit\r\n"
       b"\r\n"
       b"\r\n"
       + b"x" * 998 + b"\r\n"
       b"last line\r\n")


def test_sendmail_arrives_byte_for_byte(tern_server):
    srv = tern_server(users=["alice@localhost"])
    with smtp(srv) as s:
        refused = s.sendmail("sender@localhost", ["alice@localhost"], RAW, mail_options=["BODY=8BITMIME"])
        assert refused == {}
    stored = srv.expect_mail("alice@localhost", 1)
    check_delivered(stored[0], RAW, "sender@localhost", "alice@localhost")


def test_received_field(tern_server):
    """tern's Received: (RFC 5321 4.4): from the EHLO name and the client IP,
    by its host name, with ESMTP, and a parseable date after the ';'."""
    srv = tern_server(users=["alice@localhost"])
    with smtp(srv) as s:
        s.sendmail("sender@localhost", ["alice@localhost"], RAW)
    stored = srv.expect_mail("alice@localhost", 1)
    trace, _ = th.split_trace(stored[0])
    received = b" ".join(trace[2].split()).decode()
    assert received.startswith("Received: from client.test"), received
    assert "127.0.0.1" in received, received
    assert "by tern.test" in received, received
    assert "with ESMTP" in received, received
    date = received.rsplit(";", 1)[1].strip()
    assert email.utils.parsedate_to_datetime(date) is not None, received


def test_send_message_to_several_recipients(tern_server):
    users = ["alice@localhost", "bob@localhost", "carol@localhost", "dave@localhost"]
    srv = tern_server(users=users)
    msg = EmailMessage()
    msg["From"] = "Sender <sender@localhost>"
    msg["To"] = "alice@localhost, bob@localhost"
    msg["Cc"] = "carol@localhost"
    msg["Bcc"] = "dave@localhost"
    msg["Subject"] = "several recipients"
    msg["Message-ID"] = "<several-1@client.test>"
    msg.set_content("Hello all.\n\n.line with a dot\nbye\n")
    with smtp(srv) as s:
        assert s.send_message(msg) == {}
    sent = flatten_like_smtplib(msg)
    assert b"Bcc" not in sent
    for u in users:
        stored = srv.expect_mail(u, 1)
        check_delivered(stored[0], sent, "sender@localhost", u)


def test_sendmail_some_recipients_refused(tern_server):
    srv = tern_server(users=["alice@localhost", "bob@localhost"])
    with smtp(srv) as s:
        refused = s.sendmail("sender@localhost",
                             ["alice@localhost", "nobody@localhost", "x@example.com", "bob@localhost"], RAW)
    assert set(refused) == {"nobody@localhost", "x@example.com"}, refused
    assert refused["nobody@localhost"][0] == 550 and refused["nobody@localhost"][1].startswith(b"5.1.1")
    assert refused["x@example.com"][0] == 554 and refused["x@example.com"][1].startswith(b"5.7.1")
    for u in ("alice@localhost", "bob@localhost"):
        check_delivered(srv.expect_mail(u, 1)[0], RAW, "sender@localhost", u)


def test_esmtp_features_and_options(tern_server):
    srv = tern_server(users=["alice@localhost"], config={"max_message_size": "10M"})
    with smtp(srv) as s:
        code, _ = s.ehlo()
        assert code == 250
        for ext in ("pipelining", "8bitmime", "smtputf8", "enhancedstatuscodes", "chunking"):
            assert s.has_extn(ext), (ext, s.esmtp_features)
        assert s.esmtp_features["size"] == str(10 * 1024 * 1024)
        # smtplib adds SIZE=<length> itself when the server offers SIZE.
        refused = s.sendmail("sender@localhost", ["alice@localhost"], RAW, mail_options=["BODY=8BITMIME"])
        assert refused == {}
        code, resp = s.mail("sender@localhost", ["SIZE=%d" % (11 * 1024 * 1024)])
        assert code == 552 and resp.startswith(b"5.3.4"), (code, resp)
        s.rset()
        code, text = s.noop()
        assert code == 250
    check_delivered(srv.expect_mail("alice@localhost", 1)[0], RAW, "sender@localhost", "alice@localhost")


def test_smtputf8_message(tern_server):
    # A UTF-8 sender makes smtplib use SMTPUTF8 (and BODY=8BITMIME).
    srv = tern_server(users=["bob@localhost", "alice@localhost"])
    msg = EmailMessage()
    msg["From"] = "Jörg <jörg@localhost>"
    msg["To"] = "bob@localhost, alice@localhost"
    msg["Subject"] = "Grüße aus Köln"
    msg["Message-ID"] = "<utf8-1@client.test>"
    msg.set_content("Schöne Grüße\n")
    with smtp(srv) as s:
        assert s.send_message(msg) == {}
    sent = flatten_like_smtplib(msg, international=True)
    for u in ("bob@localhost", "alice@localhost"):
        stored = srv.expect_mail(u, 1)
        check_delivered(stored[0], sent, "jörg@localhost", u)


def test_smtputf8_received_with_protocol(tern_server):
    """RFC 6531 4.3: a transaction that used SMTPUTF8 is recorded as
    'with UTF8SMTP' in the Received: field."""
    srv = tern_server(users=["alice@localhost"])
    with smtp(srv) as s:
        s.ehlo()
        s.sendmail("jörg@localhost", ["alice@localhost"], RAW, mail_options=["SMTPUTF8"])
    trace, _ = th.split_trace(srv.expect_mail("alice@localhost", 1)[0])
    received = b" ".join(trace[2].split()).decode("utf-8")
    assert "with UTF8SMTP" in received, received


def test_many_messages_on_one_connection(tern_server):
    srv = tern_server(users=["alice@localhost", "bob@localhost"])
    sent = {}
    with smtp(srv) as s:
        for i in range(30):
            body = (b"From: sender@localhost\r\nSubject: number %d\r\nMessage-ID: <many-%d@client.test>\r\n\r\n"
                    b"message %d\r\n" % (i, i, i)) + b"line\r\n" * i
            sent[i] = body
            s.sendmail("sender@localhost", ["alice@localhost"] if i % 2 else ["bob@localhost"], body)
    got = srv.expect_mail("alice@localhost", 15) + srv.expect_mail("bob@localhost", 15)
    seen = set()
    for stored in got:
        _, rest = th.split_trace(stored)
        i = int(rest.split(b"Subject: number ", 1)[1].split(b"\n", 1)[0])
        assert rest == th.as_stored(sent[i])
        seen.add(i)
    assert seen == set(range(30))


def test_null_sender(tern_server):
    srv = tern_server(users=["alice@localhost"])
    with smtp(srv) as s:
        s.sendmail("", ["alice@localhost"], RAW)
    stored = srv.expect_mail("alice@localhost", 1)
    trace = check_delivered(stored[0], RAW, "", "alice@localhost")
    assert trace[0] == b"Return-Path: <>"


def test_large_message(tern_server):
    srv = tern_server(users=["alice@localhost"])
    line = b"0123456789abcdefghijklmnopqrstuvwxyz" * 2 + b"\r\n"
    big = b"From: sender@localhost\r\nSubject: large\r\n\r\n" + line * (4 * 1024 * 1024 // len(line))
    with smtp(srv) as s:
        assert s.sendmail("sender@localhost", ["alice@localhost"], big) == {}
    check_delivered(srv.expect_mail("alice@localhost", 1)[0], big, "sender@localhost", "alice@localhost")


def test_plus_address_and_alias_delivery(tern_server):
    srv = tern_server(users=["alice@localhost", "bob@localhost"],
                      aliases=[("team@localhost", "alice@localhost", "bob@localhost")])
    with smtp(srv) as s:
        assert s.sendmail("sender@localhost", ["team@localhost"], RAW) == {}
        assert s.sendmail("sender@localhost", ["alice+news@localhost"], RAW) == {}
    alice = srv.expect_mail("alice@localhost", 2)
    bob = srv.expect_mail("bob@localhost", 1)
    for stored in alice + bob:
        _, rest = th.split_trace(stored)
        assert rest == th.as_stored(RAW)


def raw_session(srv):
    c = srv.connect()
    c.expect(220)
    assert c.cmd("EHLO client.test").code == 250
    return c


def test_data_dot_unstuffing_stored(tern_server):
    """DATA content is unstuffed (RFC 5321 4.5.2): a leading '..' is stored
    as '.', and a line that is only '..' as '.'."""
    srv = tern_server(users=["alice@localhost"])
    with raw_session(srv) as c:
        assert c.cmd("MAIL FROM:<sender@localhost>").code == 250
        assert c.cmd("RCPT TO:<alice@localhost>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: dots\r\n\r\n..\r\n..x\r\n...y\r\nz.\r\n.\r\n")
        assert c.reply().code == 250
    _, rest = th.split_trace(srv.expect_mail("alice@localhost", 1)[0])
    assert rest == b"Subject: dots\n\n.\n.x\n..y\nz.\n", rest


def test_bdat_content_stored_verbatim(tern_server):
    """BDAT content is not unstuffed (RFC 3030): dots stay as sent; chunks
    are joined exactly; content not ending in CRLF gets a line end."""
    srv = tern_server(users=["alice@localhost"])
    chunks = [b"Subject: bdat\r\n\r\n..two dots\r", b"\n.\r\n", b"last line without end"]
    with raw_session(srv) as c:
        assert c.cmd("MAIL FROM:<sender@localhost>").code == 250
        assert c.cmd("RCPT TO:<alice@localhost>").code == 250
        for i, chunk in enumerate(chunks):
            last = i == len(chunks) - 1
            c.send(b"BDAT %d%s\r\n" % (len(chunk), b" LAST" if last else b"") + chunk)
            r = c.reply()
            assert r.code == 250, r
    _, rest = th.split_trace(srv.expect_mail("alice@localhost", 1)[0])
    assert rest == b"Subject: bdat\n\n..two dots\n.\nlast line without end\n", rest


def test_many_idle_connections(tern_server):
    """Hundreds of open sessions do not stop the server from serving."""
    srv = tern_server(users=["alice@localhost"], config={"max_connections_per_ip": "1000"})
    held = []
    try:
        for i in range(300):
            held.append(srv.connect())
        for i, c in enumerate(held):
            assert c.reply().code == 220
            c.send(b"EHLO idle%d.test\r\n" % i)
        for c in held:
            assert c.reply().code == 250
        c = held[-1]
        r = th.send_message(c, "sender@localhost", ["alice@localhost"], b"Subject: busy\r\n\r\nbody\r\n")
        assert r.code == 250, r
    finally:
        for c in held:
            c.close()
    srv.expect_mail("alice@localhost", 1)

"""Routes against the real servers they are meant for, each a private instance
on loopback started by the test: local delivery over LMTP to Dovecot (its
Unix socket, then TCP on 127.0.0.N:24), and a smarthost that is Postfix on a
submission port (STARTTLS, then AUTH, Dovecot checking the password).

Covered: mail for local users (aliases resolved) stored by Dovecot in its
own Maildirs, with the content intact and nothing in tern's own; a user tern
knows but Dovecot does not (550 at RCPT) bounced (RFC 3464) to a local sender,
the bounce itself going over LMTP; relayed mail reaching the smarthost's
Maildir over TLS, authenticated with AUTH PLAIN as Postfix logs it; and a
wrong password deferred with the relay's 535 and no bounce.

The test_routes.py tests check the same routes against programmable peers,
where every command can be seen; these check that tern and the servers
people run agree.
"""

import os
import re

import tern_harness as th
from outbound import (BASE_CONFIG, SENDER, check_failed, inject, make_message, original_subject,
                      parse_report, wait_rcpts, wait_settled)
from smtp_peers import wait_for

RELAY_USER = "relay-account"
RELAY_PASSWORD = "s3cret pass-phrase"
WAIT = th.DELIVERY_TIMEOUT

# A line that begins with a dot goes through two rounds of dot-stuffing
# (the client to tern, tern to Dovecot); a long line is stored as it came.
BODY = (b"Hello Bob,\r\n"
        b".a line that begins with a dot\r\n"
        b"..and one with two\r\n"
        + b"x" * 900 + b"\r\n"
        b"Regards.\r\n")


# ---- helpers ----

def lmtp_tern(tern_server, route):
    """A started tern delivering its local users' mail by route; alice and
    bob are users, info an alias of bob."""
    srv = tern_server(config=dict(BASE_CONFIG, local_delivery=route))
    srv.add_user(SENDER)
    srv.add_user("bob@localhost")
    srv.add_alias("info@localhost", "bob@localhost")
    return srv


def header_fields(data, count):
    """The first count header fields of a stored message (LF line ends),
    each unfolded to one str, and the bytes after them."""
    lines = data.split(b"\n")
    fields, i = [], 0
    for _ in range(count):
        assert i < len(lines) and lines[i] and lines[i][:1] not in (b" ", b"\t"), data[:400]
        field = lines[i]
        i += 1
        while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
            field += b" " + lines[i].strip()
            i += 1
        fields.append(field.decode("utf-8", "replace"))
    return fields, b"\n".join(lines[i:])


def dovecot_trace(stored, rcpt):
    """Dovecot's own fields at the top of a message it stored for rcpt:
    Return-Path:, Delivered-To: naming rcpt, and its Received: field of the
    LMTP delivery. Returns (those three, the rest)."""
    fields, rest = header_fields(stored, 3)
    assert fields[0].startswith("Return-Path: "), fields
    assert fields[1] == "Delivered-To: %s" % rcpt, fields
    assert fields[2].startswith("Received: ") and " with LMTP " in fields[2], fields
    return fields, rest


def check_delivered(stored, rcpt, content):
    """stored is content as tern got it, with tern's Received: field and
    Dovecot's trace on top; returns Dovecot's fields."""
    fields, rest = dovecot_trace(stored, rcpt)
    assert fields[0] == "Return-Path: <%s>" % SENDER, fields
    received, original = header_fields(rest, 1)
    assert received[0].startswith("Received: ") and "by %s" % th.HOSTNAME in received[0], received
    assert original == th.as_stored(content), original[:600]
    return fields


def credentials_file(tmp_path, user=RELAY_USER, password=RELAY_PASSWORD):
    path = tmp_path / "relay.auth"
    path.write_text("# smarthost account\n%s %s\n" % (user, password))
    os.chmod(path, 0o600)
    return str(path)


def submission_relay(dovecot_lmtp, postfix_peer, password=RELAY_PASSWORD):
    """Postfix on 127.0.0.N:587 taking mail for example.test from clients
    that authenticated after STARTTLS, as RELAY_USER with password (Dovecot
    checks it)."""
    sasl = dovecot_lmtp(users={RELAY_USER: password}, name="sasl")
    return postfix_peer(domains=["example.test"], tls=True, port=587, name="submission",
                        sasl_path=sasl.auth_socket_path)


def postfix_log_match(pf, pattern, timeout=WAIT):
    """Wait until Postfix's log (written by its postlogd) matches pattern."""
    rx = re.compile(pattern)

    def found():
        try:
            with open(pf.logfile, "rb") as f:
                return rx.search(f.read().decode("utf-8", "replace"))
        except FileNotFoundError:
            return None
    return wait_for(found, timeout, "Postfix log line matching %r" % pattern, pf.log_tail)


# ---- local delivery to Dovecot over LMTP ----

def test_local_delivery_to_dovecot_over_its_socket(dovecot_lmtp, tern_server):
    dovecot = dovecot_lmtp(users=[SENDER, "bob@localhost"])
    srv = lmtp_tern(tern_server, "lmtp:unix:%s" % dovecot.socket_path)
    direct = make_message("to bob over lmtp", body=BODY)
    aliased = make_message("to info over lmtp", body=b"For the info alias.\r\n")
    inject(srv, ["bob@localhost"], direct)
    inject(srv, ["info@localhost"], aliased)
    got = dovecot.wait_messages("bob@localhost", 2)
    srv.wait_queue_empty()
    assert len(dovecot.messages("bob@localhost")) == 2
    # The alias was resolved by tern: Dovecot got bob's address.
    by_subject = {}
    for stored in got:
        m = re.search(rb"\nSubject: ([^\n]*)\n", stored)
        assert m, stored[:400]
        by_subject[m.group(1)] = stored
    assert sorted(by_subject) == [b"to bob over lmtp", b"to info over lmtp"], sorted(by_subject)
    fields = check_delivered(by_subject[b"to bob over lmtp"], "bob@localhost", direct)
    check_delivered(by_subject[b"to info over lmtp"], "bob@localhost", aliased)
    # LHLO named tern; the socket has no peer address.
    assert fields[2].startswith("Received: from %s " % th.HOSTNAME), fields
    # Nothing for anyone else, nothing in tern's own Maildirs.
    assert [d for d, _ in dovecot.all_messages()] == ["localhost/bob"] * 2
    for user in (SENDER, "bob@localhost", "info@localhost"):
        assert srv.new_files(user) == [], user


def test_local_delivery_to_dovecot_over_tcp(dovecot_lmtp, tern_server):
    dovecot = dovecot_lmtp(users=[SENDER, "bob@localhost"], inet=True)
    srv = lmtp_tern(tern_server, "lmtp:[%s]:24" % dovecot.host)
    content = make_message("to bob over lmtp tcp", body=BODY)
    # bob directly and through his alias: one copy (one mailbox), over TCP.
    inject(srv, ["bob@localhost", "info@localhost"], content)
    dovecot.wait_messages("bob@localhost", 1)
    srv.wait_queue_empty()
    (stored,) = dovecot.messages("bob@localhost")
    fields = check_delivered(stored, "bob@localhost", content)
    # Over TCP, from loopback, to the listener on its own address.
    assert fields[2].startswith("Received: from %s (" % th.HOSTNAME), fields
    assert "[127.0.0.1]" in fields[2], fields
    log = dovecot.log_text()
    assert "Connect from 127.0.0.1" in log, dovecot.log_tail()
    for user in (SENDER, "bob@localhost"):
        assert srv.new_files(user) == [], user


def test_user_unknown_to_dovecot_is_bounced_over_lmtp(dovecot_lmtp, tern_server):
    # carol is tern's user, but Dovecot has never heard of her.
    dovecot = dovecot_lmtp(users=[SENDER, "bob@localhost"])
    srv = lmtp_tern(tern_server, "lmtp:unix:%s" % dovecot.socket_path)
    srv.add_user("carol@localhost")
    inject(srv, ["bob@localhost", "carol@localhost"], make_message("carol is unknown there"))
    dovecot.wait_messages("bob@localhost", 1)
    (stored,) = dovecot.wait_messages(SENDER, 1)
    wait_settled(srv, bounced=["carol@localhost"])
    # The bounce is from <> and went to alice over LMTP, so Dovecot stored it.
    fields, rest = dovecot_trace(stored, SENDER)
    assert fields[0] == "Return-Path: <>", fields
    msg, _, rcpts, original = parse_report(rest)
    assert msg["To"] is not None and SENDER in msg["To"], msg["To"]
    assert list(rcpts) == ["carol@localhost"], list(rcpts)
    check_failed(rcpts["carol@localhost"], "5.1.1", diagnostic="User doesn't exist")
    assert original is not None and original_subject(original) == "carol is unknown there"
    # bob got his copy; nothing for carol anywhere, and no second bounce.
    assert len(dovecot.messages("bob@localhost")) == 1
    assert dovecot.messages("carol@localhost") == []
    assert len(dovecot.messages(SENDER)) == 1
    for user in (SENDER, "bob@localhost", "carol@localhost"):
        assert srv.new_files(user) == [], user
    assert "carol@localhost): unknown user" in dovecot.log_text(), dovecot.log_tail()


# ---- a smarthost: Postfix with Dovecot SASL ----

def test_smarthost_postfix_with_dovecot_sasl(dovecot_lmtp, postfix_peer, peer_ca, tern_server, tmp_path):
    pf = submission_relay(dovecot_lmtp, postfix_peer)
    srv = tern_server(config=dict(BASE_CONFIG, smarthost="[%s]:587 auth=%s ca=%s" % (
        pf.host, credentials_file(tmp_path), peer_ca.cert)))
    srv.add_user(SENDER)
    # With a Date: field of its own: Postfix adds one to mail without.
    content = make_message("through the smarthost", body=BODY,
                           extra=b"Date: Thu, 01 Jan 2026 00:00:00 +0000\r\n")
    inject(srv, ["bob@example.test"], content)
    (stored,) = pf.wait_messages(1, "bob@example.test")
    srv.wait_queue_empty()
    # Postfix's trace first (virtual(8)'s X-Original-To: and Delivered-To:,
    # smtpd's Received: naming TLS and AUTH), then tern's Received:, then
    # the message as it was.
    fields, rest = header_fields(stored, 4)
    assert fields[0] == "Return-Path: <%s>" % SENDER, fields
    assert fields[1:3] == ["X-Original-To: bob@example.test", "Delivered-To: bob@example.test"], fields
    assert fields[3].startswith("Received: from %s " % th.HOSTNAME), fields
    assert "(using TLS" in fields[3] and "with ESMTPSA" in fields[3], fields
    received, original = header_fields(rest, 1)
    assert received[0].startswith("Received: ") and "by %s" % th.HOSTNAME in received[0], received
    assert original == th.as_stored(content), original[:600]
    postfix_log_match(pf, r"postfix/smtpd\[\d+\]: \w+: client=\S+\[127\.0\.0\.1\], "
                          r"sasl_method=PLAIN, sasl_username=%s\b" % re.escape(RELAY_USER))
    assert RELAY_PASSWORD not in srv.log_text()
    assert srv.new_files(SENDER) == []


def test_smarthost_postfix_wrong_password_defers(dovecot_lmtp, postfix_peer, peer_ca, tern_server, tmp_path):
    pf = submission_relay(dovecot_lmtp, postfix_peer, password="another password")
    srv = tern_server(config=dict(BASE_CONFIG, smarthost="[%s]:587 auth=%s ca=%s" % (
        pf.host, credentials_file(tmp_path), peer_ca.cert)))
    srv.add_user(SENDER)
    inject(srv, ["bob@example.test"], make_message("wrong password"))
    rows = wait_rcpts(srv, {"bob@example.test": "deferred"})
    error = rows["bob@example.test"]["last_error"] or ""
    assert "4.7.8" in error and "535" in error, rows
    # Postfix saw the failure, and took no mail.
    postfix_log_match(pf, r"SASL (PLAIN|LOGIN) authentication failed")
    assert pf.messages() == [] and pf.queued() == 0
    # An operator's mistake is not the sender's: no bounce.
    assert srv.new_files(SENDER) == []
    assert RELAY_PASSWORD not in srv.log_text()

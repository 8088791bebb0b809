"""Submission policy for authenticated sessions: which envelope senders and
From: addresses a user may use, the Date: and Message-ID: fields added to
submitted messages, relaying after AUTH (queued for remote delivery), and the
per-user and per-address rate limits."""

import email.utils
import json
import re

import pytest

import tern_harness as th
import tern_sasl as sasl

LISTENERS = ("submission", "submissions")
ALICE = "alice@localhost"
ALICE_PW = "alice's Pass 1"
BOB = "bob@localhost"
BOB_PW = "bob's Pass 2"
CAROL = "carol@example.test"
CAROL_PW = "carol's Pass 3"


def sub_server(tern_server, config=None):
    cfg = {"local_domains": "localhost, example.test", "auth_fail_delay": "1s", "auth_fail_limit": "1000"}
    cfg.update(config or {})
    srv = tern_server(config=cfg, listeners=LISTENERS)
    srv.add_user(ALICE, ALICE_PW)
    srv.add_user(BOB, BOB_PW)
    srv.add_user(CAROL, CAROL_PW)
    srv.add_alias("team@localhost", ALICE, BOB)
    srv.add_alias("sales@example.test", CAROL)
    return srv


def login(srv, user=ALICE, password=ALICE_PW, kind="submissions", source=None):
    """An authenticated TLS session after EHLO."""
    if kind == "submissions":
        c = srv.connect(kind, tls=True, source=source)
        c.expect(220)
    else:
        c = srv.connect(kind, source=source)
        c.expect(220)
        c.cmd("EHLO client.test")
        assert c.cmd("STARTTLS").code == 220
        c.starttls(srv.tls_context())
    assert c.cmd("EHLO client.test").code == 250
    r = sasl.auth_plain(c, user, password)
    assert r.code == 235, r
    return c


def mail_from(c, sender):
    r = c.cmd("MAIL FROM:<%s>" % sender)
    if r.code == 250:
        assert c.cmd("RSET").code == 250
    return r


def transaction(c, sender, rcpts, content):
    """MAIL, RCPTs, DATA; returns (MAIL reply, [RCPT replies], final reply or None)."""
    rm = c.cmd("MAIL FROM:<%s>" % sender)
    if rm.code != 250:
        return rm, [], None
    rr = [c.cmd("RCPT TO:<%s>" % r) for r in rcpts]
    if not any(r.code == 250 for r in rr):
        c.cmd("RSET")
        return rm, rr, None
    r = c.cmd("DATA")
    assert r.code == 354, r
    c.send(re.sub(rb"(?m)^\.", b"..", content) + b".\r\n")
    return rm, rr, c.reply()


def assert_code(r, code, enhanced, text=None):
    assert r is not None and r.code == code and r.enhanced() == enhanced, "want %d %s, got %r" % (
        code, enhanced, r)
    if text:
        assert text.lower() in r.text.lower(), "want %r in %r" % (text, r)


# ---------------------------------------------------------------- envelope sender

def test_envelope_sender_ownership(tern_server):
    srv = sub_server(tern_server, config={"max_errors": "100"})
    srv.set_senders(ALICE, "alice@elsewhere.example", "@shared.example")
    allowed = [ALICE, "alice+news@localhost", "alice+a.b@localhost", "team@localhost",
               "alice@elsewhere.example", "anyone@shared.example", "other.person@shared.example", ""]
    denied = [BOB, "bob+alice@localhost", "sales@example.test", CAROL, "alice@example.test",
              "alice@other.example", "someone@elsewhere.example", "anyone@shared.example.evil",
              "alice@localhost.evil", "postmaster@localhost", "alicex@localhost"]
    with login(srv) as c:
        for sender in allowed:
            r = mail_from(c, sender)
            assert r.code == 250, "%r refused: %r" % (sender, r)
        for sender in denied:
            r = mail_from(c, sender)
            assert_code(r, 553, "5.7.1", "Sender address not owned by")
        # A refused MAIL leaves no transaction behind.
        assert c.cmd("RCPT TO:<%s>" % BOB).code == 503
    # bob, also a target of team@localhost, may use the alias but not alice's patterns.
    with login(srv, BOB, BOB_PW, kind="submission") as c:
        assert mail_from(c, "team@localhost").code == 250
        assert mail_from(c, "bob+x@localhost").code == 250
        assert_code(mail_from(c, "anyone@shared.example"), 553, "5.7.1")
        assert_code(mail_from(c, ALICE), 553, "5.7.1")
    # Clearing the list takes the patterns away.
    srv.set_senders(ALICE)
    with login(srv) as c:
        assert_code(mail_from(c, "alice@elsewhere.example"), 553, "5.7.1")
        assert_code(mail_from(c, "anyone@shared.example"), 553, "5.7.1")
        assert mail_from(c, "alice+still@localhost").code == 250


def test_user_list_shows_senders(tern_server):
    srv = sub_server(tern_server)
    srv.set_senders(CAROL, "carol@elsewhere.example", "@shared.example")
    out = srv.cli("user", "list").stdout.decode()
    line = [l for l in out.splitlines() if CAROL in l]
    assert line, out
    assert "carol@elsewhere.example" in line[0] and "@shared.example" in line[0], out


# ---------------------------------------------------------------- From: header

FROM_CASES = [
    # (From: field(s), accepted?)
    (b"From: alice@localhost\r\n", True),
    (b"From: Alice Example <alice+lists@localhost>\r\n", True),
    (b"From: \"Team\" <team@localhost>\r\n", True),
    (b"From: \"bob@localhost\" <alice@localhost>\r\n", True),
    (b"From: bob@localhost\r\n", False),
    (b"From: \"alice@localhost\" <bob@localhost>\r\n", False),
    (b"From: alice@localhost, bob@localhost\r\n", False),
    (b"From: Alice\r\n <carol@example.test>\r\n", False),
    (b"From: alice@localhost\r\nFrom: bob@localhost\r\n", False),
    (b"FROM: sales@example.test\r\n", False),
    (b"From: Somebody <somebody@elsewhere.example>\r\n", False),
]


@pytest.mark.parametrize("index", range(len(FROM_CASES)))
def test_from_header_ownership(tern_server, index):
    field, accepted = FROM_CASES[index]
    srv = sub_server(tern_server)
    content = field + b"To: bob@localhost\r\nSubject: from case %d\r\n\r\nbody\r\n" % index
    with login(srv) as c:
        rm, rr, final = transaction(c, ALICE, [BOB], content)
        assert rm.code == 250 and rr[0].code == 250, (rm, rr)
        if accepted:
            assert final.code == 250, "From: %r refused: %r" % (field, final)
        else:
            assert_code(final, 550, "5.7.1", "not owned by")
            assert final.text.startswith("5.7.1 From: header"), final
        # The session goes on after a refused message.
        assert c.cmd("NOOP").code == 250
    srv.expect_mail(BOB, 1 if accepted else 0)


def test_null_sender_from_header_still_checked(tern_server):
    srv = sub_server(tern_server)
    with login(srv) as c:
        _, _, final = transaction(c, "", [BOB], b"From: alice@localhost\r\nSubject: bounce-ish\r\n\r\nx\r\n")
        assert final.code == 250, final
        _, _, final = transaction(c, "", [BOB], b"From: carol@example.test\r\nSubject: forged\r\n\r\nx\r\n")
        assert_code(final, 550, "5.7.1")
    srv.expect_mail(BOB, 1)


def test_sender_pattern_covers_from_header(tern_server):
    srv = sub_server(tern_server)
    srv.set_senders(ALICE, "@shared.example")
    with login(srv) as c:
        _, _, final = transaction(c, "news@shared.example", [BOB],
                                  b"From: News <news@shared.example>\r\nSubject: p\r\n\r\nx\r\n")
        assert final.code == 250, final
    srv.expect_mail(BOB, 1)


# ---------------------------------------------------------------- Date: and Message-ID:

def header_values(rest, name):
    """Values of every field called name in the header of a stored message."""
    head = rest.split(b"\n\n", 1)[0]
    unfolded = re.sub(rb"\n[ \t]", b" ", head)
    return [l.split(b":", 1)[1].strip() for l in unfolded.split(b"\n")
            if l.split(b":", 1)[0].strip().lower() == name.lower()]


def test_date_and_message_id_added_when_missing(tern_server):
    srv = sub_server(tern_server)
    sent = b"From: alice@localhost\r\nTo: bob@localhost\r\nSubject: bare\r\n\r\nbody line\r\n"
    with login(srv) as c:
        _, _, final = transaction(c, ALICE, [BOB], sent)
        assert final.code == 250, final
    _, rest = th.split_trace(srv.expect_mail(BOB, 1)[0])
    dates = header_values(rest, b"Date")
    ids = header_values(rest, b"Message-ID")
    assert len(dates) == 1 and len(ids) == 1, rest
    assert email.utils.parsedate_to_datetime(dates[0].decode()) is not None, dates
    assert re.fullmatch(rb"<[^<>@\s]+@[^<>@\s]+>", ids[0]), ids
    # Everything that was sent is still there, unchanged and in order.
    for line in th.as_stored(sent).split(b"\n"):
        assert line in rest.split(b"\n"), (line, rest)
    assert rest.endswith(b"\n\nbody line\n"), rest


def test_message_ids_are_unique(tern_server):
    srv = sub_server(tern_server)
    with login(srv) as c:
        for i in range(3):
            _, _, final = transaction(c, ALICE, [BOB], b"Subject: %d\r\n\r\nx\r\n" % i)
            assert final.code == 250, final
    ids = [header_values(th.split_trace(m)[1], b"Message-ID")[0] for m in srv.expect_mail(BOB, 3)]
    assert len(set(ids)) == 3, ids


def test_date_and_message_id_left_alone(tern_server):
    srv = sub_server(tern_server)
    sent = (b"Date: Tue, 01 Feb 2022 10:00:00 +0100\r\n"
            b"From: alice@localhost\r\nTo: bob@localhost\r\n"
            b"Message-ID: <kept-1@client.test>\r\nSubject: complete\r\n\r\nbody\r\n")
    only_id = b"From: alice@localhost\r\nMessage-Id: <kept-2@client.test>\r\nSubject: id only\r\n\r\nbody\r\n"
    with login(srv) as c:
        for content in (sent, only_id):
            _, _, final = transaction(c, ALICE, [BOB], content)
            assert final.code == 250, final
    stored = srv.expect_mail(BOB, 2)
    rests = sorted((th.split_trace(m)[1] for m in stored), key=lambda r: b"id only" in r)
    assert rests[0] == th.as_stored(sent), rests[0]
    assert header_values(rests[1], b"Message-ID") == [b"<kept-2@client.test>"], rests[1]
    assert len(header_values(rests[1], b"Date")) == 1, rests[1]


# ---------------------------------------------------------------- relay after AUTH

def test_relay_after_auth_is_queued(tern_server):
    srv = sub_server(tern_server)
    with login(srv, kind="submission") as c:
        rm, rr, final = transaction(c, ALICE, ["friend@remote.example", BOB],
                                    b"From: alice@localhost\r\nSubject: out\r\n\r\nto the world\r\n")
        assert [r.code for r in rr] == [250, 250], rr
        assert final.code == 250, final
        qid = final.text.rsplit(" ", 1)[-1]
    srv.wait_mail(BOB, 1)

    def remote_entry():
        for entry in srv.queue():
            if "friend@remote.example" in json.dumps(entry):
                return entry
        return None
    entry = th.wait_until(remote_entry, 10 * th.SLOW, "the remote recipient in the queue", srv.log_tail)
    assert entry.get("sender") == ALICE, entry
    assert entry.get("qid") == qid or qid in json.dumps(entry), (qid, entry)
    text = srv.cli("queue", "list").stdout.decode()
    assert "friend@remote.example" in text, text


def test_relay_networks_relay_without_auth(tern_server):
    srv = sub_server(tern_server, config={"relay_networks": "127.0.0.0/8 ::1/128"})
    with srv.connect("mx") as c:
        c.expect(220)
        assert c.cmd("EHLO client.test").code == 250
        rm, rr, final = transaction(c, "someone@localhost", ["far@remote.example"],
                                    b"From: someone@localhost\r\nSubject: relayed\r\n\r\nbody\r\n")
        assert rm.code == 250 and rr[0].code == 250, (rm, rr)
        assert final.code == 250, final
    queued = th.wait_until(lambda: [e for e in srv.queue() if "far@remote.example" in json.dumps(e)],
                           10 * th.SLOW, "the relayed message in the queue", srv.log_tail)
    assert queued[0].get("sender") == "someone@localhost", queued


def test_relay_without_auth_refused_on_submission_and_mx(tern_server):
    srv = sub_server(tern_server, config={"auth_without_tls": "loopback"})
    with srv.connect("mx") as c:
        c.expect(220)
        c.cmd("EHLO client.test")
        assert c.cmd("MAIL FROM:<%s>" % ALICE).code == 250
        assert_code(c.cmd("RCPT TO:<friend@remote.example>"), 554, "5.7.1")
    with srv.connect("submission") as c:
        c.expect(220)
        c.cmd("EHLO client.test")
        assert_code(c.cmd("MAIL FROM:<%s>" % ALICE), 530, "5.7.0", "Authentication required")
    # TLS alone grants nothing.
    with srv.connect("mx") as c:
        c.expect(220)
        c.cmd("EHLO client.test")
        assert c.cmd("STARTTLS").code == 220
        c.starttls(srv.tls_context())
        assert c.cmd("EHLO client.test").code == 250
        assert c.cmd("MAIL FROM:<%s>" % ALICE).code == 250
        assert_code(c.cmd("RCPT TO:<friend@remote.example>"), 554, "5.7.1")


# ---------------------------------------------------------------- rate limits

MSG = b"From: %s\r\nSubject: rate\r\n\r\nx\r\n"


def test_user_message_rate(tern_server):
    srv = sub_server(tern_server, config={"user_message_rate": "2", "user_recipient_rate": "0"})
    with login(srv) as c:
        for i in range(2):
            _, _, final = transaction(c, ALICE, [BOB], MSG % ALICE.encode())
            assert final.code == 250, (i, final)
        assert_code(c.cmd("MAIL FROM:<%s>" % ALICE), 450, "4.7.1")
    # Counted per user, not per session.
    with login(srv, kind="submission") as c:
        assert_code(c.cmd("MAIL FROM:<%s>" % ALICE), 450, "4.7.1")
    # Another user from the same address has a budget of their own.
    with login(srv, BOB, BOB_PW) as c:
        _, _, final = transaction(c, BOB, [ALICE], MSG % BOB.encode())
        assert final.code == 250, final
    srv.expect_mail(BOB, 2)


def test_user_recipient_rate_across_messages(tern_server):
    srv = sub_server(tern_server, config={"user_message_rate": "0", "user_recipient_rate": "3"})
    with login(srv) as c:
        for i in range(3):
            _, rr, final = transaction(c, ALICE, [BOB], MSG % ALICE.encode())
            assert final.code == 250, (i, rr, final)
        assert c.cmd("MAIL FROM:<%s>" % ALICE).code == 250
        assert_code(c.cmd("RCPT TO:<%s>" % BOB), 452, "4.7.1")
    srv.expect_mail(BOB, 3)


def test_user_recipient_rate_within_one_message(tern_server):
    srv = sub_server(tern_server, config={"user_recipient_rate": "3"})
    srv.add_user("dave@localhost")
    srv.add_user("erin@localhost")
    rcpts = [BOB, CAROL, "dave@localhost", "erin@localhost", ALICE]
    with login(srv) as c:
        _, rr, final = transaction(c, ALICE, rcpts, MSG % ALICE.encode())
        assert [r.code for r in rr[:3]] == [250, 250, 250], rr
        for r in rr[3:]:
            assert_code(r, 452, "4.7.1")
        assert final.code == 250, final
    for u in rcpts[:3]:
        srv.expect_mail(u, 1)
    for u in rcpts[3:]:
        assert srv.new_files(u) == []


def test_ip_message_rate_on_mx(tern_server):
    srv = sub_server(tern_server, config={"ip_message_rate": "2"})
    with srv.connect("mx") as c:
        c.expect(220)
        c.cmd("EHLO client.test")
        for i in range(2):
            _, _, final = transaction(c, "someone@remote.example", [BOB], b"Subject: %d\r\n\r\nx\r\n" % i)
            assert final.code == 250, final
        assert_code(c.cmd("MAIL FROM:<someone@remote.example>"), 450, "4.7.1")
    # Every listener: the same address after AUTH on submissions.
    with login(srv) as c:
        assert_code(c.cmd("MAIL FROM:<%s>" % ALICE), 450, "4.7.1")
    # Another client address is not limited.
    with srv.connect("mx", source="127.0.0.2") as c:
        c.expect(220)
        c.cmd("EHLO client.test")
        _, _, final = transaction(c, "someone@remote.example", [BOB], b"Subject: other\r\n\r\nx\r\n")
        assert final.code == 250, final
    srv.expect_mail(BOB, 3)


def test_ip_recipient_rate_on_mx(tern_server):
    srv = sub_server(tern_server, config={"ip_recipient_rate": "2"})
    with srv.connect("mx") as c:
        c.expect(220)
        c.cmd("EHLO client.test")
        _, rr, final = transaction(c, "someone@remote.example", [BOB, ALICE, CAROL], b"Subject: r\r\n\r\nx\r\n")
        assert [r.code for r in rr[:2]] == [250, 250], rr
        assert_code(rr[2], 452, "4.7.1")
        assert final.code == 250, final
        assert c.cmd("MAIL FROM:<someone@remote.example>").code == 250
        assert_code(c.cmd("RCPT TO:<%s>" % CAROL), 452, "4.7.1")
    srv.expect_mail(BOB, 1)
    srv.expect_mail(ALICE, 1)
    assert srv.new_files(CAROL) == []

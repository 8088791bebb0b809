"""SMTP AUTH (RFC 4954) on submission and submissions listeners: every
mechanism tern offers (PLAIN, LOGIN, CRAM-MD5, SCRAM-SHA-256), right and
wrong, in initial-response and challenge forms; the error replies; AUTH only
under TLS unless auth_without_tls = loopback; credentials never logged; the
failed-AUTH delay and the lockout per address and user, and per address; the
SCRAM-SHA-256 secret made at a password login for users without one; and
real clients (smtplib, swaks, msmtp)."""

import base64
import os
import re
import shutil
import smtplib
import subprocess
import time

import pytest

import tern_harness as th
import tern_sasl as sasl

LISTENERS = ("submission", "submissions")
MECHS = {"PLAIN", "LOGIN", "SCRAM-SHA-256", "CRAM-MD5"}
ALICE = "alice@localhost"
ALICE_PW = "Corr3ct horse: battery staple"
BOB = "bob@localhost"
BOB_PW = "bobs-own-Secret-42"
# The failed-AUTH delay is at its smallest; no lockout unless a test asks.
BASE_CONFIG = {"auth_fail_delay": "1s", "auth_fail_limit": "1000",
               "auth_mechanisms": "plain login scram-sha-256 cram-md5"}


def auth_server(tern_server, config=None, listeners=LISTENERS):
    cfg = dict(BASE_CONFIG)
    cfg.update(config or {})
    srv = tern_server(config=cfg, listeners=listeners)
    srv.add_user(ALICE, ALICE_PW, cram_md5=True)
    srv.add_user(BOB, BOB_PW)  # as the README does it: a crypt(3) hash and a SCRAM secret, no CRAM-MD5
    return srv


def keywords(reply):
    """EHLO keyword -> its parameters (upper case)."""
    out = {}
    for line in reply.lines[1:]:
        words = line.upper().split()
        if words:
            out[words[0]] = words[1:]
    return out


def session(srv, kind="submissions", source=None):
    """A TLS session after EHLO: implicit TLS, or STARTTLS on submission/mx."""
    if kind == "submissions":
        c = srv.connect(kind, tls=True, source=source)
        c.expect(220)
    else:
        c = srv.connect(kind, source=source)
        c.expect(220)
        assert c.cmd("EHLO client.test").code == 250
        r = c.cmd("STARTTLS")
        assert r.code == 220, r
        c.starttls(srv.tls_context())
    r = c.cmd("EHLO client.test")
    assert r.code == 250, r
    c.ehlo = r
    return c


def ok(r):
    return r.code == 235 and r.enhanced() == "2.7.0" and "Authentication successful" in r.text


def assert_code(r, code, enhanced, text=None):
    assert r.code == code and r.enhanced() == enhanced, "want %d %s, got %r" % (code, enhanced, r)
    if text:
        assert text.lower() in r.text.lower(), "want %r in %r" % (text, r)


AUTHS = {
    "plain-initial": lambda c, u, p: sasl.auth_plain(c, u, p, initial=True),
    "plain-challenge": lambda c, u, p: sasl.auth_plain(c, u, p, initial=False),
    "login-initial": lambda c, u, p: sasl.auth_login(c, u, p, initial=True),
    "login-challenge": lambda c, u, p: sasl.auth_login(c, u, p, initial=False),
    "cram-md5": sasl.auth_cram_md5,
    "scram-initial": lambda c, u, p: sasl.auth_scram(c, u, p, initial=True),
    "scram-challenge": lambda c, u, p: sasl.auth_scram(c, u, p, initial=False),
}


def test_scram_client_matches_rfc7677_example():
    """The test's own SCRAM client against the exchange in RFC 7677 section 3."""
    s = sasl.Scram("user", "pencil", nonce="rOprNGfwEbeRWgbNEkqO")
    assert s.client_first() == b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
    final = s.client_final(b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                           b"s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
    assert final == (b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                     b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    s.check_server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
    with pytest.raises(AssertionError):
        s.check_server_final(b"v=" + base64.b64encode(b"\0" * 32))


# ---------------------------------------------------------------- what is offered where

def test_auth_offered_only_under_tls_on_submission(tern_server):
    srv = auth_server(tern_server)
    with srv.connect("submission") as c:
        c.expect(220)
        r = c.cmd("EHLO client.test")
        kw = keywords(r)
        assert "STARTTLS" in kw and "AUTH" not in kw, r
        assert_code(c.cmd("AUTH PLAIN " + sasl.b64(sasl.plain_message(ALICE, ALICE_PW))), 538, "5.7.11",
                    "Encryption required for requested authentication mechanism")
        assert_code(c.cmd("MAIL FROM:<%s>" % ALICE), 530, "5.7.0", "Must issue a STARTTLS command first")
    for kind in ("submission", "submissions"):
        with session(srv, kind) as c:
            kw = keywords(c.ehlo)
            assert "AUTH" in kw, c.ehlo
            assert set(kw["AUTH"]) == MECHS, c.ehlo
            assert "STARTTLS" not in kw, c.ehlo


def test_auth_not_on_mx(tern_server):
    srv = auth_server(tern_server)
    with srv.connect("mx") as c:
        c.expect(220)
        assert "AUTH" not in keywords(c.cmd("EHLO client.test"))
        assert_code(c.cmd("AUTH PLAIN " + sasl.b64(sasl.plain_message(ALICE, ALICE_PW))), 503, "5.5.1",
                    "Authentication not enabled")
    with session(srv, "mx") as c:
        assert "AUTH" not in keywords(c.ehlo), c.ehlo
        assert_code(sasl.auth_plain(c, ALICE, ALICE_PW), 503, "5.5.1", "Authentication not enabled")
        # Unauthenticated mail for local users is still taken on mx.
        r = th.send_message(c, "sender@localhost", [ALICE], b"Subject: mx\r\n\r\nbody\r\n")
        assert r.code == 250, r


def test_mail_before_auth_under_tls(tern_server):
    srv = auth_server(tern_server)
    for kind in ("submission", "submissions"):
        with session(srv, kind) as c:
            assert_code(c.cmd("MAIL FROM:<%s>" % ALICE), 530, "5.7.0", "Authentication required")
            assert ok(sasl.auth_plain(c, ALICE, ALICE_PW))
            assert c.cmd("MAIL FROM:<%s>" % ALICE).code == 250


def test_configured_mechanisms_only(tern_server):
    srv = auth_server(tern_server, config={"auth_mechanisms": "plain login"})
    with session(srv) as c:
        assert set(keywords(c.ehlo)["AUTH"]) == {"PLAIN", "LOGIN"}, c.ehlo
        assert_code(c.cmd("AUTH CRAM-MD5"), 504, "5.5.4", "Unrecognized authentication mechanism")
        assert_code(c.cmd("AUTH SCRAM-SHA-256 " + sasl.b64(sasl.Scram(ALICE, ALICE_PW).client_first())),
                    504, "5.5.4")
        assert ok(sasl.auth_login(c, ALICE, ALICE_PW))


# ---------------------------------------------------------------- every mechanism

@pytest.mark.parametrize("form", sorted(AUTHS))
def test_mechanism_right_password(tern_server, form):
    srv = auth_server(tern_server)
    with session(srv) as c:
        r = AUTHS[form](c, ALICE, ALICE_PW)
        assert ok(r), "%s: %r\n%s" % (form, r, c.dump())
        r = th.send_message(c, ALICE, [BOB], b"From: <alice@localhost>\r\nSubject: %s\r\n\r\nbody\r\n"
                            % form.encode())
        assert r.code == 250, r
    srv.expect_mail(BOB, 1)


@pytest.mark.parametrize("form", sorted(AUTHS))
def test_mechanism_wrong_password(tern_server, form):
    srv = auth_server(tern_server)
    with session(srv) as c:
        started = time.monotonic()
        r = AUTHS[form](c, ALICE, ALICE_PW + "x")
        elapsed = time.monotonic() - started
        assert_code(r, 535, "5.7.8", "Authentication credentials invalid")
        # auth_fail_delay = 1s, one recent failure: at least about a second.
        assert elapsed >= 0.8, "535 after %.2fs, before auth_fail_delay" % elapsed
        assert_code(c.cmd("MAIL FROM:<%s>" % ALICE), 530, "5.7.0")
        # The session may try again.
        assert ok(AUTHS[form](c, ALICE, ALICE_PW))


def test_auth_over_starttls_on_submission(tern_server):
    srv = auth_server(tern_server)
    with session(srv, "submission") as c:
        assert ok(sasl.auth_scram(c, ALICE, ALICE_PW))
        assert c.cmd("MAIL FROM:<%s>" % ALICE).code == 250


def test_unknown_user_and_login_name_case(tern_server):
    srv = auth_server(tern_server)
    with session(srv) as c:
        assert_code(sasl.auth_plain(c, "nobody@localhost", ALICE_PW), 535, "5.7.8")
        assert ok(sasl.auth_plain(c, "ALICE@LocalHost", ALICE_PW))
    with session(srv) as c:
        assert ok(sasl.auth_scram(c, "Alice@LOCALHOST", ALICE_PW))


def test_cram_needs_its_secret_scram_comes_with_every_password(tern_server):
    """bob was added without --cram-md5: CRAM-MD5 fails, SCRAM-SHA-256 works."""
    srv = auth_server(tern_server)
    with session(srv) as c:
        r = sasl.auth_cram_md5(c, BOB, BOB_PW)
        assert r.code in (535, 454) and r.code != 235, r
        assert ok(sasl.auth_scram(c, BOB, BOB_PW))
    with session(srv) as c:
        assert ok(sasl.auth_login(c, BOB, BOB_PW))


def test_user_passwd_adds_secrets(tern_server):
    srv = auth_server(tern_server)
    srv.cli("user", "passwd", BOB, "--cram-md5", input_bytes=b"a new one 9\n")
    with session(srv) as c:
        assert ok(sasl.auth_cram_md5(c, BOB, "a new one 9"))
    with session(srv) as c:
        assert ok(sasl.auth_scram(c, BOB, "a new one 9"))
    with session(srv) as c:
        assert_code(sasl.auth_plain(c, BOB, BOB_PW), 535, "5.7.8")
    listing = srv.cli("user", "list").stdout.decode()
    assert BOB in listing and ALICE in listing, listing


def test_user_list_shows_password_and_mechanisms(tern_server):
    srv = auth_server(tern_server)
    srv.add_user("carol@localhost")  # a mailbox without a password
    lines = {l.split()[0]: l.lower() for l in srv.cli("user", "list").stdout.decode().splitlines() if l.split()}
    assert "scram-sha-256" in lines[ALICE] and "cram-md5" in lines[ALICE], lines
    assert "password" in lines[ALICE] and "password" in lines[BOB], lines
    assert "scram-sha-256" in lines[BOB] and "cram-md5" not in lines[BOB], lines
    assert "password" not in lines["carol@localhost"], lines
    # No password, no login; the reply does not tell it from a wrong password.
    with session(srv) as c:
        assert_code(sasl.auth_plain(c, "carol@localhost", "anything"), 535, "5.7.8")


# ---------------------------------------------------------------- protocol errors

def test_malformed_exchanges(tern_server):
    srv = auth_server(tern_server)
    with session(srv) as c:
        assert_code(c.cmd("AUTH PLAIN %%%not-base64%%%"), 501, "5.5.2")
        assert c.cmd("AUTH PLAIN").code == 334
        assert_code(c.cmd("@@@@"), 501, "5.5.2")
        # Base64, but not a PLAIN message (no NUL separators).
        assert_code(c.cmd("AUTH PLAIN " + sasl.b64("alice@localhost " + ALICE_PW)), 501, "5.5.2")
        # Not a SCRAM client-first message.
        assert_code(c.cmd("AUTH SCRAM-SHA-256 " + sasl.b64("hello, world")), 501, "5.5.2")
        assert c.cmd("AUTH LOGIN").code == 334
        assert_code(c.cmd("!!"), 501, "5.5.2")
        assert_code(c.cmd("AUTH NTLM"), 504, "5.5.4", "Unrecognized authentication mechanism")
        assert_code(c.cmd("AUTH X-UNKNOWN-MECH " + sasl.b64("x")), 504, "5.5.4")
        # Still usable.
        assert ok(sasl.auth_plain(c, ALICE, ALICE_PW))


def test_cancel_with_star(tern_server):
    srv = auth_server(tern_server)
    with session(srv) as c:
        assert c.cmd("AUTH PLAIN").code == 334
        assert_code(c.cmd("*"), 501, "5.0.0", "Authentication cancelled")
        r = c.cmd("AUTH LOGIN")
        assert r.code == 334
        assert c.cmd(sasl.b64(ALICE)).code == 334
        assert_code(c.cmd("*"), 501, "5.0.0", "Authentication cancelled")
        assert c.cmd("AUTH CRAM-MD5").code == 334
        assert_code(c.cmd("*"), 501, "5.0.0", "Authentication cancelled")
        r = c.cmd("AUTH SCRAM-SHA-256 " + sasl.b64(sasl.Scram(ALICE, ALICE_PW).client_first()))
        assert r.code == 334
        assert_code(c.cmd("*"), 501, "5.0.0", "Authentication cancelled")
        assert_code(c.cmd("MAIL FROM:<%s>" % ALICE), 530, "5.7.0")
        assert ok(sasl.auth_cram_md5(c, ALICE, ALICE_PW))


def test_auth_twice(tern_server):
    srv = auth_server(tern_server)
    with session(srv) as c:
        assert ok(sasl.auth_plain(c, ALICE, ALICE_PW))
        assert_code(sasl.auth_plain(c, BOB, BOB_PW), 503, "5.5.1", "Already authenticated")
        assert_code(c.cmd("AUTH CRAM-MD5"), 503, "5.5.1", "Already authenticated")
        # Still alice: she may send as herself, not as bob.
        assert c.cmd("MAIL FROM:<%s>" % BOB).code == 553
        assert c.cmd("MAIL FROM:<%s>" % ALICE).code == 250


def test_overlong_response_line(tern_server):
    srv = auth_server(tern_server)
    with session(srv) as c:
        assert c.cmd("AUTH PLAIN").code == 334
        c.send(b"QUFB" * 3300 + b"\r\n")  # 13200 octets of base64
        r = c.reply()
        assert_code(r, 500, "5.5.6", "Authentication exchange line is too long")
    # The limit is 12288 octets: a response of about 10700 is read as one
    # line and judged as a SASL message (its password is longer than any
    # tern takes: refused, but not as an over-long line).
    with session(srv) as c:
        assert c.cmd("AUTH PLAIN").code == 334
        line = sasl.b64(sasl.plain_message(ALICE, "p" * 8000))
        assert 10000 < len(line) < 12288
        r = c.cmd(line)
        assert r.code in (501, 535) and r.enhanced() in ("5.5.2", "5.7.8"), r
        assert c.cmd("NOOP").code == 250


def test_auth_without_tls_loopback(tern_server):
    srv = auth_server(tern_server, config={"auth_without_tls": "loopback"})
    with srv.connect("submission") as c:
        c.expect(220)
        r = c.cmd("EHLO client.test")
        kw = keywords(r)
        assert "AUTH" in kw and "STARTTLS" in kw, r
        assert set(kw["AUTH"]) == MECHS, r
        assert ok(sasl.auth_plain(c, ALICE, ALICE_PW))
        r = th.send_message(c, ALICE, [BOB], b"From: alice@localhost\r\nSubject: no tls\r\n\r\nbody\r\n")
        assert r.code == 250, r
    trace, _ = th.split_trace(srv.expect_mail(BOB, 1)[0])
    received = " ".join(trace[2].decode().split())
    assert re.search(r"\bwith ESMTPA\b", received) and "version=" not in received, received
    # From 127.0.0.2, also loopback.
    with srv.connect("submission", source="127.0.0.2") as c:
        c.expect(220)
        assert "AUTH" in keywords(c.cmd("EHLO client.test"))
        assert ok(sasl.auth_login(c, ALICE, ALICE_PW))


def test_received_esmtpsa_without_user_name(tern_server):
    srv = auth_server(tern_server)
    with session(srv, "submission") as c:
        version, cipher = c.tls.version(), c.tls.cipher()[0]
        assert ok(sasl.auth_plain(c, ALICE, ALICE_PW))
        r = th.send_message(c, ALICE, [BOB], b"From: alice@localhost\r\nSubject: esmtpsa\r\n\r\nbody\r\n")
        assert r.code == 250, r
    trace, _ = th.split_trace(srv.expect_mail(BOB, 1)[0])
    received = " ".join(trace[2].decode().split())
    assert re.search(r"\bwith ESMTPSA\b", received), received
    assert "(version=%s cipher=%s)" % (version, cipher) in received, received
    assert "alice" not in received.lower(), "the Received: field names the user: %r" % received


# ---------------------------------------------------------------- logs

def test_auth_logged_without_credentials(tern_server):
    srv = auth_server(tern_server)
    secrets = [ALICE_PW, BOB_PW, ALICE_PW + "x", "Wrong-Pass-Word-77"]
    with session(srv) as c:
        assert ok(sasl.auth_plain(c, ALICE, ALICE_PW))
    with session(srv, "submission") as c:
        assert_code(sasl.auth_plain(c, ALICE, ALICE_PW + "x"), 535, "5.7.8")
        assert ok(sasl.auth_login(c, BOB, BOB_PW))
    with session(srv) as c:
        assert_code(sasl.auth_login(c, ALICE, "Wrong-Pass-Word-77", initial=True), 535, "5.7.8")
        assert ok(sasl.auth_cram_md5(c, ALICE, ALICE_PW))
    scram = sasl.Scram(ALICE, ALICE_PW)
    with session(srv) as c:
        assert ok(sasl.auth_scram(c, ALICE, ALICE_PW, scram=scram))
    with session(srv) as c:
        assert c.cmd("AUTH PLAIN").code == 334
        c.cmd(sasl.b64("broken " + ALICE_PW))
        c.cmd("AUTH PLAIN " + sasl.b64("\0" + ALICE + "\0" + "Wrong-Pass-Word-77"))
        c.cmd("QUIT")
    srv.stop()
    log = srv.log_text()
    forbidden = []
    for pw in secrets:
        forbidden += [pw, sasl.b64(pw)]
    forbidden += [sasl.b64(sasl.plain_message(ALICE, ALICE_PW)),
                  sasl.b64(sasl.plain_message(ALICE, ALICE_PW + "x")),
                  sasl.b64(sasl.plain_message(ALICE, "Wrong-Pass-Word-77")),
                  sasl.b64(ALICE), sasl.b64("broken " + ALICE_PW),
                  sasl.b64(scram.client_first()), scram.nonce]
    for word in forbidden:
        assert word not in log, "the log holds a credential or SASL data: %r" % word
    # Partial matches of the base64 (e.g. a truncated or differently aligned copy).
    for pw in secrets:
        for chunk in re.findall(r".{12}", sasl.b64(sasl.plain_message(ALICE, pw))[8:]):
            assert chunk not in log, "the log holds part of a PLAIN response: %r" % chunk
    auth_lines = [line for line in log.splitlines() if "event=auth" in line]
    assert any(re.search(r"\bmechanism=\"?PLAIN\b", l) and "result=ok" in l and ALICE in l for l in auth_lines), \
        auth_lines
    assert any(re.search(r"\bmechanism=\"?PLAIN\b", l) and "result=fail" in l for l in auth_lines), auth_lines
    for mech in ("LOGIN", "CRAM-MD5", "SCRAM-SHA-256"):
        assert any(re.search(r"\bmechanism=\"?%s\b" % mech, l) and "result=ok" in l for l in auth_lines), \
            (mech, auth_lines)
    for line in auth_lines:
        assert re.search(r"\bsession=\S+", line), line


# ---------------------------------------------------------------- failure delay and lockout

LOCKOUT = 8 * th.SLOW  # seconds: long enough to check it, short enough to wait out


def auth_log_lines(srv, *marks):
    return [l for l in srv.log_text().splitlines() if "event=auth " in l and all(m in l for m in marks)]


def test_failure_delay_grows_for_the_user_who_fails(tern_server):
    srv = auth_server(tern_server, config={"auth_fail_delay": "1s"})
    delays = []
    with session(srv) as c:
        for i in range(3):
            started = time.monotonic()
            assert_code(sasl.auth_plain(c, ALICE, "wrong %d" % i), 535, "5.7.8")
            delays.append(time.monotonic() - started)
        # Another user's first failure from the same address waits the least.
        started = time.monotonic()
        assert_code(sasl.auth_plain(c, BOB, "wrong"), 535, "5.7.8")
        delays.append(time.monotonic() - started)
    assert delays[0] >= 0.8 and delays[1] >= 1.8 and delays[2] >= 2.8 and delays[3] >= 0.8, delays
    assert delays[3] < delays[2], delays
    assert [int(re.search(r"\bfailures=(\d+)", l).group(1)) for l in auth_log_lines(srv, "result=fail")] == \
        [1, 2, 3, 1]
    assert [int(re.search(r"\baddress_failures=(\d+)", l).group(1))
            for l in auth_log_lines(srv, "result=fail")] == [1, 2, 3, 4]


def test_user_locked_out_from_that_address_only(tern_server):
    srv = auth_server(tern_server, config={"auth_fail_limit": "3", "auth_fail_window": "15m",
                                           "auth_lockout": "%ds" % LOCKOUT, "auth_fail_delay": "0"})
    with session(srv) as c:
        for i in range(3):
            assert_code(sasl.auth_plain(c, ALICE, "wrong %d" % i), 535, "5.7.8")
    locked_at = time.monotonic()
    assert any("event=auth_lockout" in l and "scope=user" in l for l in srv.log_text().splitlines())
    # alice is locked out from this address: the right password gets the
    # same 535 as a wrong one, with every mechanism, and is not counted.
    with session(srv) as c:
        assert_code(sasl.auth_plain(c, ALICE, ALICE_PW), 535, "5.7.8")
    with session(srv, "submission") as c:
        assert_code(sasl.auth_scram(c, ALICE, ALICE_PW), 535, "5.7.8")
    assert len(auth_log_lines(srv, "result=locked_out", "scope=user")) == 2
    assert len(auth_log_lines(srv, "result=fail")) == 3
    # Another user at the same address, and alice at another address, log in.
    with session(srv) as c:
        assert ok(sasl.auth_plain(c, BOB, BOB_PW))
    with session(srv, source="127.0.0.2") as c:
        assert ok(sasl.auth_plain(c, ALICE, ALICE_PW))
    # The lockout ends auth_lockout after the third failure; the attempts
    # during it did not prolong it.
    time.sleep(max(0.0, locked_at + LOCKOUT + 0.5 - time.monotonic()))

    def unlocked():
        with session(srv) as c:
            r = sasl.auth_plain(c, ALICE, ALICE_PW)
            if r.code == 535:
                return False
            assert ok(r), r
            return True
    th.wait_until(unlocked, 30 * th.SLOW, "the lockout to end", srv.log_tail, interval=3)


def test_success_forgets_the_users_failures(tern_server):
    srv = auth_server(tern_server, config={"auth_fail_limit": "3", "auth_fail_delay": "0"})
    for round in range(3):
        with session(srv) as c:
            for i in range(2):
                assert_code(sasl.auth_plain(c, ALICE, "wrong %d.%d" % (round, i)), 535, "5.7.8")
            assert ok(sasl.auth_plain(c, ALICE, ALICE_PW))
    assert not auth_log_lines(srv, "result=locked_out")
    assert max(int(re.search(r"\bfailures=(\d+)", l).group(1)) for l in auth_log_lines(srv, "result=fail")) == 2


def test_right_password_never_locked_out_by_others_at_the_same_address(tern_server):
    """A web server with many sites, one of them misconfigured: it keeps
    failing, and the others keep sending, ten logins each in a row."""
    srv = auth_server(tern_server, config={"auth_fail_delay": "0", "auth_fail_limit": "5"})
    for i in range(10):
        with session(srv) as c:
            assert_code(sasl.auth_login(c, BOB, "a guess %d" % i), 535, "5.7.8")
        with session(srv) as c:
            assert ok(sasl.auth_plain(c, ALICE, ALICE_PW))
    assert len(auth_log_lines(srv, "result=ok")) == 10
    assert auth_log_lines(srv, "result=locked_out", BOB)
    assert not auth_log_lines(srv, "result=locked_out", ALICE)


def test_a_stale_password_retried_counts_once(tern_server):
    """A phone still holding the old password retries it all day; its owner,
    with the new one, logs in from the same address all the while."""
    srv = auth_server(tern_server, config={"auth_fail_delay": "0", "auth_fail_limit": "3"})
    for i in range(6):
        with session(srv) as c:
            assert_code(sasl.auth_plain(c, BOB, "the old password"), 535, "5.7.8")
        with session(srv) as c:
            assert ok(sasl.auth_plain(c, BOB, BOB_PW))
    counted = [l for l in auth_log_lines(srv, "result=fail", BOB) if "repeated=yes" not in l]
    assert len(counted) == 1, counted
    assert len(auth_log_lines(srv, "result=fail", "repeated=yes")) == 5
    assert not auth_log_lines(srv, "result=locked_out")
    # A different wrong password is news, and counts.
    with session(srv) as c:
        assert_code(sasl.auth_login(c, BOB, "another guess"), 535, "5.7.8")
    assert len([l for l in auth_log_lines(srv, "result=fail", BOB) if "repeated=yes" not in l]) == 2


def test_a_password_refused_before_it_was_set_works_once_set(tern_server):
    srv = auth_server(tern_server, config={"auth_fail_delay": "0"})
    with session(srv) as c:
        assert_code(sasl.auth_plain(c, BOB, "the next password"), 535, "5.7.8")
    srv.cli("user", "passwd", BOB, input_bytes=b"the next password\n")
    with session(srv) as c:
        assert ok(sasl.auth_plain(c, BOB, "the next password"))


def test_password_spraying_locks_out_the_address(tern_server):
    srv = auth_server(tern_server, config={"auth_fail_limit_per_address": "4", "auth_fail_delay": "0",
                                           "auth_lockout": "15m"})
    for i in range(4):
        with session(srv) as c:
            # Unknown users count like known ones, and get the same reply.
            assert_code(sasl.auth_plain(c, "user%d@localhost" % i, "Winter2026!"), 535, "5.7.8")
    assert any("event=auth_lockout" in l and "scope=address" in l for l in srv.log_text().splitlines())
    with session(srv, "submission") as c:
        assert_code(sasl.auth_scram(c, BOB, BOB_PW), 535, "5.7.8")
    assert auth_log_lines(srv, "result=locked_out", "scope=address")
    with session(srv, source="127.0.0.2") as c:
        assert ok(sasl.auth_plain(c, BOB, BOB_PW))


def test_no_address_lockout_for_relay_networks_or_when_off(tern_server):
    for config in ({"relay_networks": "127.0.0.0/8"}, {"auth_fail_limit_per_address": "0"}):
        config.update({"auth_fail_delay": "0"})
        srv = auth_server(tern_server, config=config)
        for i in range(40):
            with session(srv) as c:
                assert_code(sasl.auth_plain(c, "user%d@localhost" % i, "Winter2026!"), 535, "5.7.8")
        with session(srv) as c:
            assert ok(sasl.auth_plain(c, BOB, BOB_PW))
        assert not auth_log_lines(srv, "result=locked_out"), config
        srv.stop()


def test_scram_secret_made_at_the_next_password_login(tern_server):
    """A user whose password was set before every password got a SCRAM
    secret (the column is empty) gets one at the next PLAIN/LOGIN success."""
    srv = auth_server(tern_server)
    db = os.path.join(srv.data_dir, "queue.db")
    subprocess.run(["sqlite3", "-cmd", ".timeout 10000", db,
                    "UPDATE users SET scram=NULL WHERE address='%s'" % BOB], check=True)
    listing = srv.cli("user", "list").stdout.decode().lower()
    assert "scram" not in [l for l in listing.splitlines() if l.startswith(BOB)][0], listing
    with session(srv) as c:
        assert_code(sasl.auth_scram(c, BOB, BOB_PW), 535, "5.7.8")
    with session(srv) as c:
        assert_code(sasl.auth_plain(c, BOB, "not it"), 535, "5.7.8")
    with session(srv) as c:
        assert ok(sasl.auth_plain(c, BOB, BOB_PW))
    th.wait_until(lambda: "event=scram_secret_made" in srv.log_text(), th.REPLY_TIMEOUT,
                  "the SCRAM secret to be stored", srv.log_tail)
    with session(srv) as c:
        assert ok(sasl.auth_scram(c, BOB, BOB_PW))
    listing = srv.cli("user", "list").stdout.decode().lower()
    assert "scram-sha-256" in [l for l in listing.splitlines() if l.startswith(BOB)][0], listing
    assert srv.log_text().count("event=scram_secret_made") == 1


def test_defaults_offer_only_what_a_new_user_can_complete(tern_server):
    """With the built-in auth_mechanisms, a user made as the README shows
    completes every mechanism offered."""
    srv = tern_server(listeners=LISTENERS)
    srv.add_user(BOB, BOB_PW)
    with session(srv) as c:
        offered = set(keywords(c.ehlo)["AUTH"])
    assert offered == {"PLAIN", "LOGIN", "SCRAM-SHA-256"}, offered
    for form, auth in AUTHS.items():
        if form.split("-")[0].upper() in {m.split("-")[0] for m in offered}:
            with session(srv) as c:
                assert ok(auth(c, BOB, BOB_PW)), form


# ---------------------------------------------------------------- real clients

def smtplib_ssl(srv):
    return smtplib.SMTP_SSL("127.0.0.1", srv.port_of("submissions"), local_hostname="client.test",
                            context=srv.tls_context(), timeout=th.REPLY_TIMEOUT)


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN", "CRAM-MD5"])
def test_smtplib_auth(tern_server, mech):
    srv = auth_server(tern_server)
    with smtplib_ssl(srv) as s:
        s.ehlo()
        assert set(s.esmtp_features["auth"].upper().split()) == MECHS, s.esmtp_features
        s.user, s.password = ALICE, ALICE_PW + "!"
        with pytest.raises(smtplib.SMTPAuthenticationError) as e:
            s.auth(mech, getattr(s, "auth_" + mech.lower().replace("-", "_")))
        assert e.value.smtp_code == 535, e.value
        s.user, s.password = ALICE, ALICE_PW
        code, text = s.auth(mech, getattr(s, "auth_" + mech.lower().replace("-", "_")))
        assert code == 235 and text.startswith(b"2.7.0"), (code, text)
        assert s.sendmail(ALICE, [BOB], b"From: alice@localhost\r\nSubject: smtplib %s\r\n\r\nhi\r\n"
                          % mech.encode()) == {}
    srv.expect_mail(BOB, 1)


def test_smtplib_login_starttls(tern_server):
    srv = auth_server(tern_server)
    with smtplib.SMTP("127.0.0.1", srv.port_of("submission"), local_hostname="client.test",
                      timeout=th.REPLY_TIMEOUT) as s:
        s.starttls(context=srv.tls_context())
        s.login(ALICE, ALICE_PW)  # smtplib picks CRAM-MD5 first
        assert s.sendmail(ALICE, [BOB], b"From: alice@localhost\r\nSubject: login\r\n\r\nhi\r\n") == {}
    srv.expect_mail(BOB, 1)


needs_swaks = pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks is not installed")


def swaks(srv, kind, *args):
    cmd = ["swaks", "--server", "127.0.0.1:%d" % srv.port_of(kind), "--helo", "client.test",
           "--from", ALICE, "--to", BOB, "--timeout", "60", "--tls-verify", "--tls-ca-path",
           srv.selfsigned_cert(), "--tls-sni", "localhost"] + list(args)
    r = subprocess.run(cmd, capture_output=True, timeout=120 * th.SLOW, stdin=subprocess.DEVNULL)
    return r.returncode, (r.stdout + r.stderr).decode("utf-8", "replace")


@needs_swaks
@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN", "CRAM-MD5"])
def test_swaks_starttls_auth(tern_server, mech):
    srv = auth_server(tern_server)
    rc, out = swaks(srv, "submission", "--tls", "--auth", mech, "--auth-user", ALICE,
                    "--auth-password", ALICE_PW)
    assert rc == 0, out
    assert "235 2.7.0" in out, out
    stored = srv.expect_mail(BOB, 1)
    trace, _ = th.split_trace(stored[0])
    assert b"with ESMTPSA" in trace[2], trace
    rc, out = swaks(srv, "submission", "--tls", "--auth", mech, "--auth-user", ALICE,
                    "--auth-password", "not it")
    assert rc != 0 and "535 5.7.8" in out, out


@needs_swaks
def test_swaks_tls_on_connect(tern_server):
    srv = auth_server(tern_server)
    rc, out = swaks(srv, "submissions", "--tlsc", "--auth", "PLAIN", "--auth-user", ALICE,
                    "--auth-password", ALICE_PW)
    assert rc == 0, out
    srv.expect_mail(BOB, 1)
    # Without AUTH the submission port refuses the mail.
    rc, out = swaks(srv, "submissions", "--tlsc")
    assert rc != 0 and "530 5.7.0" in out, out


needs_msmtp = pytest.mark.skipif(shutil.which("msmtp") is None, reason="msmtp is not installed")


def msmtp(srv, tmp_path, kind, password, extra=()):
    conf = tmp_path / ("msmtprc-%s" % kind)
    lines = ["defaults",
             "tls on",
             "tls_starttls %s" % ("on" if kind == "submission" else "off"),
             "tls_trust_file %s" % srv.selfsigned_cert(),
             "logfile %s" % (tmp_path / "msmtp.log"),
             "account test",
             "host 127.0.0.1",
             "port %d" % srv.port_of(kind),
             "domain client.test",
             "from %s" % ALICE,
             "auth on",
             "user %s" % ALICE,
             "password %s" % password] + list(extra) + ["account default : test"]
    conf.write_text("\n".join(lines) + "\n")
    os.chmod(conf, 0o600)
    message = (b"From: Alice <alice@localhost>\r\nTo: bob@localhost\r\nSubject: from msmtp via %s\r\n\r\n"
               b"Hello Bob.\r\n" % kind.encode())
    r = subprocess.run(["msmtp", "-C", str(conf), "-a", "test", BOB], input=message, capture_output=True,
                       timeout=120 * th.SLOW)
    return r.returncode, (r.stdout + r.stderr).decode("utf-8", "replace")


@needs_msmtp
@pytest.mark.parametrize("kind", ["submission", "submissions"])
def test_msmtp_sends(tern_server, tmp_path, kind):
    srv = auth_server(tern_server)
    rc, out = msmtp(srv, tmp_path, kind, ALICE_PW)
    assert rc == 0, out
    stored = srv.expect_mail(BOB, 1)
    _, rest = th.split_trace(stored[0])
    assert b"Subject: from msmtp via %s\n" % kind.encode() in rest and b"Hello Bob." in rest, rest
    rc, out = msmtp(srv, tmp_path, kind, "a wrong password")
    assert rc != 0, out
    srv.wait_queue_empty()
    assert len(srv.new_files(BOB)) == 1

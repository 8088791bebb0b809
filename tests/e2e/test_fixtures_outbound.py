"""The test infrastructure for outbound delivery, checked on its own (no tern
needed): the DNS server (NSD behind a relay) asked with dig for every kind of
record and failure, the programmable SMTP peers driven with smtplib and raw
sockets, a private Postfix and smtp-sink each given one message."""

import os
import smtplib
import socket
import ssl
import time

import pytest

import dns_server as dnsmod
import smtp_peers
import tern_harness as th

needs_dig = pytest.mark.skipif(dnsmod.dig_problem() is not None, reason=str(dnsmod.dig_problem()))
needs_postfix = pytest.mark.skipif(smtp_peers.postfix_problem() is not None,
                                   reason=str(smtp_peers.postfix_problem()))
needs_sink = pytest.mark.skipif(smtp_peers.sink_problem() is not None,
                                reason=str(smtp_peers.sink_problem()))

ZONES = {
    "example.test": [
        ("@", "MX", "10 mx1.example.test."),
        ("@", "MX", "20 mx2.example.test."),
        ("mx1", "A", "127.0.0.2"),
        ("mx2", "A", "127.0.0.3"),
        ("mx2", "AAAA", "::1"),
        ("@", "TXT", "v=spf1 ip4:127.0.0.0/8 -all"),
    ],
}


def smtp(peer, timeout=5):
    return smtplib.SMTP(peer.host, peer.port, local_hostname="client.test", timeout=timeout)


def raw(peer, timeout=2.0):
    s = socket.create_connection((peer.host, peer.port), timeout=timeout)
    s.settimeout(timeout)
    return s


class Reader:
    """Replies from a raw socket, buffered, each read bounded in time."""

    def __init__(self, sock, timeout=2.0):
        self.sock, self.timeout, self.buf, self.recvs = sock, timeout, b"", 0

    def line(self):
        deadline = time.monotonic() + self.timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no line within %.1fs; have %r" % (self.timeout, self.buf))
            self.sock.settimeout(left)
            chunk = self.sock.recv(4096)
            self.recvs += 1
            if not chunk:
                raise EOFError("closed; have %r" % self.buf)
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line + b"\n"

    def reply(self):
        """One whole reply (all its lines), as bytes."""
        out = self.line()
        while out.split(b"\r\n")[-2][3:4] == b"-":
            out += self.line()
        return out

    def replies(self, n):
        return [self.reply() for _ in range(n)]


def silent_for(sock, seconds):
    """True if nothing arrives (and the connection stays open) for seconds."""
    sock.settimeout(seconds)
    try:
        got = sock.recv(4096)
    except socket.timeout:
        return True
    raise AssertionError("expected silence, got %r" % got)


def closed_within(sock, seconds):
    sock.settimeout(seconds)
    try:
        return sock.recv(4096) == b""
    except ConnectionResetError:
        return True


# ---- DNS ----

@needs_dig
def test_dns_answers_every_record_kind(dns_server):
    dns = dns_server(zones=ZONES)
    dns.null_mx("null.test")
    dns.implicit_mx("implicit.test", "127.0.0.4", "::1")
    dns.ptr("127.0.0.2", "mx1.example.test")
    assert dns.address == "127.0.0.1:%d" % dns.port

    for tcp in (False, True):
        r = dns.dig("example.test", "MX", tcp=tcp)
        assert r.status == "NOERROR" and "aa" in r.flags, r.text
        assert sorted(r.data("MX")) == ["10 mx1.example.test.", "20 mx2.example.test."], r.text
        assert dns.dig("mx1.example.test", "A", tcp=tcp).data() == ["127.0.0.2"]
    assert dns.dig("mx2.example.test", "AAAA").data() == ["::1"]
    assert dns.dig("example.test", "TXT").data() == ['"v=spf1 ip4:127.0.0.0/8 -all"']
    # Null MX (RFC 7505).
    assert dns.dig("null.test", "MX").data() == ["0 ."]
    # Implicit MX: no MX, but addresses.
    r = dns.dig("implicit.test", "MX")
    assert r.status == "NOERROR" and r.answer == [], r.text
    assert dns.dig("implicit.test", "A").data() == ["127.0.0.4"]
    assert dns.dig("implicit.test", "AAAA").data() == ["::1"]
    # PTR in 127.in-addr.arpa; an address without one is NXDOMAIN.
    assert dns.dig("2.0.0.127.in-addr.arpa", "PTR").data() == ["mx1.example.test."]
    assert dns.dig("9.0.0.127.in-addr.arpa", "PTR").status == "NXDOMAIN"
    # NODATA: the name exists, the type does not.
    r = dns.dig("mx1.example.test", "AAAA")
    assert r.status == "NOERROR" and r.answer == [], r.text
    # NXDOMAIN inside a zone, in the catch-all "test." zone, and by helper.
    assert dns.dig("nope.example.test", "A").status == "NXDOMAIN"
    assert dns.dig("no-such-domain.test", "MX").status == "NXDOMAIN"
    gone = dns.nxdomain("mx2.example.test")
    for rtype in ("A", "AAAA", "MX"):
        assert dns.dig(gone, rtype).status == "NXDOMAIN"
    # Outside every zone NSD refuses.
    assert dns.dig("example.invalid", "A").status == "REFUSED"

    # The built-in client agrees with dig.
    m = dns.query("example.test", "MX")
    assert m.rcode == "NOERROR" and m.aa and sorted(m.data("MX")) == [
        "10 mx1.example.test.", "20 mx2.example.test."]
    assert dns.query("nope.example.test", "A", tcp=True).rcode == "NXDOMAIN"
    names = {(q.name, q.type) for q in dns.queries()}
    assert ("example.test", "MX") in names and ("nope.example.test", "A") in names


@needs_dig
def test_dns_long_txt_is_split_into_strings(dns_server):
    dns = dns_server()
    text = "v=spf1 " + " ".join("ip4:127.0.0.%d" % i for i in range(1, 40)) + " -all"
    assert len(text) > 255
    dns.txt("spf.test", text)
    r = dns.dig("spf.test", "TXT", tcp=True)
    assert r.status == "NOERROR" and len(r.answer) == 1, r.text
    assert r.data()[0].count('" "') == (len(text) - 1) // 255  # split into character-strings
    assert dns.query("spf.test", "TXT").data() == [text]


@needs_dig
def test_dns_servfail_from_a_zone_that_does_not_load(dns_server):
    dns = dns_server(zones=ZONES)
    dns.servfail("broken.test")
    for tcp in (False, True):
        assert dns.dig("broken.test", "MX", tcp=tcp).status == "SERVFAIL"
        assert dns.dig("host.broken.test", "A", tcp=tcp).status == "SERVFAIL"
    # A zone that served fine turns to SERVFAIL and back, without a restart.
    pid = dns.proc.pid
    dns.servfail("example.test")
    assert dns.dig("example.test", "MX").status == "SERVFAIL"
    dns.set_zone("example.test", ZONES["example.test"])
    assert dns.dig("example.test", "MX").status == "NOERROR"
    assert dns.proc.pid == pid and dns.running()
    # SERVFAIL for one type only, the others resolve.
    dns.fail("mx2.example.test", "SERVFAIL", qtypes=["AAAA"])
    assert dns.dig("mx2.example.test", "AAAA").status == "SERVFAIL"
    assert dns.dig("mx2.example.test", "A").data() == ["127.0.0.3"]
    dns.clear_rules()
    assert dns.dig("mx2.example.test", "AAAA").data() == ["::1"]


@needs_dig
def test_dns_timeouts_and_slow_answers(dns_server):
    dns = dns_server(zones=ZONES)
    dns.timeout("mx1.example.test")
    dns.timeout("example.test", qtypes=["TXT"])
    t0 = time.monotonic()
    assert dns.dig("mx1.example.test", "A", timeout=1).status == "TIMEOUT"
    assert dns.dig("mx1.example.test", "A", tcp=True, timeout=1).status == "TIMEOUT"
    assert dns.dig("example.test", "TXT", timeout=1).status == "TIMEOUT"
    assert time.monotonic() - t0 < 10
    # Other names and types still answer at once.
    assert dns.dig("example.test", "MX").status == "NOERROR"
    assert dns.dig("mx2.example.test", "A").data() == ["127.0.0.3"]
    dropped = [q for q in dns.queries("mx1.example.test") if q.action == "drop"]
    assert {q.transport for q in dropped} == {"udp", "tcp"}

    dns.slow("mx2.example.test", 1.0)
    t0 = time.monotonic()
    r = dns.dig("mx2.example.test", "A", timeout=3)
    assert r.data() == ["127.0.0.3"] and time.monotonic() - t0 >= 0.9, r.text
    dns.clear_rules()
    assert dns.dig("mx1.example.test", "A").data() == ["127.0.0.2"]


@needs_dig
def test_dns_zone_changes_without_restart(dns_server):
    dns = dns_server(zones=ZONES)
    pid = dns.proc.pid
    dns.set_zone("example.test", [("@", "MX", "5 mx9.example.test"), ("mx9", "A", "127.0.0.9")])
    assert dns.dig("example.test", "MX").data() == ["5 mx9.example.test."]
    assert dns.dig("mx1.example.test", "A").status == "NXDOMAIN"
    dns.add("mx9.example.test", "A", "127.0.0.10")
    assert sorted(dns.dig("mx9.example.test", "A").data()) == ["127.0.0.10", "127.0.0.9"]
    dns.remove("mx9.example.test", "A")
    assert dns.dig("mx9.example.test", "A").status == "NXDOMAIN"
    dns.mx("new.test", [(10, "mx.new.test", "127.0.0.5"), (20, "mx1.example.test", ["127.0.0.2", "::1"])])
    assert sorted(dns.dig("new.test", "MX").data()) == ["10 mx.new.test.", "20 mx1.example.test."]
    assert dns.dig("mx.new.test", "A").data() == ["127.0.0.5"]
    assert dns.dig("mx1.example.test", "AAAA").data() == ["::1"]
    dns.remove_zone("new.test")
    assert dns.dig("new.test", "MX").status == "NXDOMAIN"  # now in the catch-all "test."
    assert dns.proc.pid == pid and dns.running()


def test_dns_stop_leaves_nothing(dns_server):
    dns = dns_server(zones=ZONES)
    root, pid, port = dns.root, dns.proc.pid, dns.port
    tree = dns._descendants()
    assert tree, "NSD forks its server and xfrd processes"
    dns.stop()
    assert not os.path.exists(root)
    assert all(not smtp_peers._alive(p) for p in [pid] + list(tree))
    assert dnsmod.query(port, "example.test", "MX", timeout=0.3) is None


def test_dns_through_libunbound(dns_server):
    """What tern's resolver (libunbound, forwarding to dns.address) sees."""
    unbound = pytest.importorskip("unbound", reason="python3-unbound is not installed")
    dns = dns_server(zones=ZONES)
    dns.servfail("broken.test")
    dns.timeout("slow.test")

    def resolver(remove_local_zones):
        ctx = unbound.ub_ctx()
        assert ctx.set_fwd("127.0.0.1@%d" % dns.port) == 0
        if remove_local_zones:
            for z in ("test.", "127.in-addr.arpa."):
                assert ctx.zone_remove(z) == 0
        return ctx

    def ask(ctx, name, rtype):
        status, result = ctx.resolve(name, getattr(unbound, "RR_TYPE_" + rtype), unbound.RR_CLASS_IN)
        assert status == 0
        return result

    # libunbound answers "test." itself (NXDOMAIN) unless that local zone is removed.
    r = ask(resolver(False), "example.test", "MX")
    assert r.nxdomain and not dns.queries("example.test")

    ctx = resolver(True)
    r = ask(ctx, "example.test", "MX")
    assert r.rcode == 0 and r.havedata
    assert sorted(r.data.as_mx_list()) == [(10, "mx1.example.test."), (20, "mx2.example.test.")]
    assert ask(ctx, "nope.test", "MX").nxdomain
    assert ask(ctx, "broken.test", "MX").rcode == 2  # SERVFAIL
    assert ask(ctx, "example.invalid", "A").nxdomain  # another local zone of libunbound
    t0 = time.monotonic()
    assert ask(ctx, "slow.test", "MX").rcode == 2  # no answer: SERVFAIL, after a while
    waited = time.monotonic() - t0
    assert waited < 30
    # The server is still used for the other names afterwards.
    assert ask(ctx, "mx1.example.test", "A").data.as_address_list() == ["127.0.0.2"]


# ---- programmable SMTP peers ----

MESSAGE = (b"From: a@sender.test\r\n"
           b"To: ok@example.test\r\n"
           b"Subject: peer test\r\n"
           b"\r\n"
           b"line one\r\n"
           b".leading dot\r\n"
           b"..two dots\r\n"
           b"last line\r\n")
STUFFED = MESSAGE.replace(b"\r\n.", b"\r\n..")


def test_two_peers_plain_and_starttls(smtp_peer, peer_ca):
    plain = smtp_peer(rcpt_replies={"unknown@example.test": "550 5.1.1 no such user",
                                    "busy@example.test": "450 4.2.0 mailbox busy"})
    secure = smtp_peer(hostname="mx2.example.test", starttls=True, size=100000, dsn=True,
                       smtputf8=True, auth={"relay": "s3cret"}, auth_after_tls=True)
    assert plain.host != secure.host and plain.port == secure.port == 25
    assert plain.host.startswith("127.0.0.") and plain.host != "127.0.0.1"

    with smtp(plain) as s:
        code, ehlo = s.ehlo()
        assert code == 250 and b"STARTTLS" not in ehlo and b"PIPELINING" in ehlo
        refused = s.sendmail("a@sender.test", ["ok@example.test", "unknown@example.test",
                                               "busy@example.test"], MESSAGE)
        assert refused == {"unknown@example.test": (550, b"5.1.1 no such user"),
                           "busy@example.test": (450, b"4.2.0 mailbox busy")}
    (t,) = plain.wait_messages(1)
    assert t.helo == "client.test" and t.helo_verb == "EHLO" and not t.tls
    assert t.client[0] == "127.0.0.1"
    assert t.mail_from == "a@sender.test" and t.mail_params == {}  # no SIZE offered, none sent
    assert [(r.address, r.code) for r in t.rcpts] == [
        ("ok@example.test", 250), ("unknown@example.test", 550), ("busy@example.test", 450)]
    assert t.recipients == ["ok@example.test"]
    assert t.data == MESSAGE
    assert t.data_raw == STUFFED  # as sent
    assert t.data_code == 250 and t.accepted

    with smtp(secure) as s:
        code, ehlo = s.ehlo()
        assert b"STARTTLS" in ehlo and b"AUTH" not in ehlo  # AUTH only after TLS
        s.starttls(context=peer_ca.client_context())  # the certificate names the address too
        code, ehlo = s.ehlo("client.test")
        assert b"STARTTLS" not in ehlo and b"AUTH PLAIN LOGIN" in ehlo and b"SIZE 100000" in ehlo
        with pytest.raises(smtplib.SMTPAuthenticationError):
            s.login("relay", "wrong")
        s.login("relay", "s3cret")
        body = "Subject: caf\u00e9\r\n\r\nd\u00e9j\u00e0 vu\r\n".encode("utf-8")
        s.sendmail("\u00e9@sender.test", ["ok@example.test"], body,
                   mail_options=["SMTPUTF8", "BODY=8BITMIME", "RET=HDRS", "ENVID=abc"],
                   rcpt_options=["NOTIFY=FAILURE,DELAY", "ORCPT=rfc822;ok@example.test"])
    (t,) = secure.wait_messages(1)
    assert t.tls and t.tls_version in ("TLSv1.2", "TLSv1.3") and t.auth_user == "relay"
    assert t.mail_from == "\u00e9@sender.test"
    assert t.mail_params == {"SIZE": str(len(body)), "SMTPUTF8": None, "BODY": "8BITMIME",
                             "RET": "HDRS", "ENVID": "abc"}
    assert t.rcpts[0].params == {"NOTIFY": "FAILURE,DELAY", "ORCPT": "rfc822;ok@example.test"}
    assert t.data == body and t.eight_bit
    conn = t.conn
    assert conn.auth_failures >= 1 and conn.injected == b""  # smtplib tries PLAIN, then LOGIN
    assert [c.split()[0].upper() for c in conn.commands[:2]] == ["EHLO", "STARTTLS"]


def test_peer_tls_certificate_is_issued_by_the_test_ca(smtp_peer, peer_ca):
    peer = smtp_peer(hostname="mx1.example.test", starttls=True)
    ctx = peer_ca.client_context()
    with smtplib.SMTP(peer.host, peer.port, timeout=5) as s:
        s.ehlo("client.test")
        s.starttls(context=ctx)
        cert = s.sock.getpeercert()
    names = {v for k, v in cert["subjectAltName"]}
    assert {"mx1.example.test", peer.host} <= names
    # A context that trusts only the system store refuses the test CA.
    with smtplib.SMTP(peer.host, peer.port, timeout=5) as s:
        s.ehlo("client.test")
        with pytest.raises(ssl.SSLCertVerificationError):
            s.starttls(context=ssl.create_default_context())
    peer.wait_connections(2, closed=True)
    assert peer.connections[1].tls_error is not None


def test_peer_configured_replies_per_phase(smtp_peer):
    peer = smtp_peer(replies={"MAIL": ["451 4.3.0 try again later"],
                              "DOT": ["552 5.3.4 message too big", "250 2.0.0 fine"]},
                     size=1000)
    with smtp(peer) as s:
        with pytest.raises(smtplib.SMTPSenderRefused) as e:
            s.sendmail("a@sender.test", ["x@example.test"], MESSAGE)
        assert e.value.smtp_code == 451
        with pytest.raises(smtplib.SMTPDataError) as e:
            s.sendmail("a@sender.test", ["x@example.test"], MESSAGE)
        assert e.value.smtp_code == 552
        s.sendmail("a@sender.test", ["x@example.test"], MESSAGE)
        # SIZE over the limit: the default reply.
        s.ehlo_or_helo_if_needed()
        code, text = s.mail("a@sender.test", ["SIZE=5000"])
        assert code == 552 and text.startswith(b"5.3.4"), text
        s.rset()
    txns = peer.wait_transactions(4)
    assert [t.mail_code for t in txns] == [451, 250, 250, 552]
    assert [t.data_code for t in txns] == [None, 552, 250, None]
    assert [t.ended for t in txns] == ["mail-rejected", "data", "data", "mail-rejected"]
    assert len(peer.messages()) == 1


def test_peer_reply_callable_and_helo_fallback(smtp_peer):
    seen = []

    def rcpt(call):
        seen.append(call.rcpt)
        return "452 4.5.3 too many recipients" if len(seen) > 2 else None
    peer = smtp_peer(esmtp=False, replies={"RCPT": rcpt})
    with smtp(peer) as s:
        refused = s.sendmail("a@sender.test", ["r1@example.test", "r2@example.test",
                                               "r3@example.test"], MESSAGE)
        assert refused == {"r3@example.test": (452, b"4.5.3 too many recipients")}
        # Under HELO no parameter is allowed.
        code, _ = s.docmd("MAIL", "FROM:<a@sender.test> BODY=8BITMIME")
        assert code == 555
    (t,) = peer.wait_messages(1)
    assert t.helo_verb == "HELO" and t.mail_params == {}
    assert seen == ["r1@example.test", "r2@example.test", "r3@example.test"]
    assert peer.connections[0].commands[0].upper().startswith("EHLO")


def test_bad_peer_garbage_greeting_and_mismatched_multiline(smtp_peer):
    garbage = smtp_peer(replies={"greeting": b"garbage without a code\r\n"})
    with raw(garbage) as s:
        assert Reader(s).line() == b"garbage without a code\r\n"
    liar = smtp_peer(replies={"EHLO": b"250-liar.test\r\n251-PIPELINING\r\n250 8BITMIME\r\n"})
    with th.SMTPClient(liar.host, liar.port, timeout=2) as c:
        c.expect(220)
        with pytest.raises(AssertionError, match="reply code changed"):
            c.cmd("EHLO client.test")


def test_bad_peer_replies_split_across_packets(smtp_peer):
    peer = smtp_peer(split=5, split_delay=0.01)
    with raw(peer) as s:
        r = Reader(s)
        assert r.reply() == b"220 %s ESMTP tern test peer\r\n" % peer.hostname.encode()
        assert r.recvs > 2, "the greeting came in %d piece(s)" % r.recvs
        s.sendall(b"EHLO client.test\r\n")
        ehlo = r.reply()
        assert ehlo.startswith(b"250-") and b"250-PIPELINING\r\n" in ehlo, ehlo
    # smtplib reassembles them.
    with smtp(peer) as s:
        s.sendmail("a@sender.test", ["x@example.test"], MESSAGE)
    assert peer.wait_messages(1)[0].data == MESSAGE


def test_bad_peer_silent_after_greeting_and_without_greeting(smtp_peer):
    mute = smtp_peer(hang_at={"EHLO"})
    with raw(mute) as s:
        assert Reader(s).reply().startswith(b"220 ")
        s.sendall(b"EHLO client.test\r\n")
        assert silent_for(s, 0.5)
        s.sendall(b"QUIT\r\n")
        assert silent_for(s, 0.3)
    mute.wait_connections(1, closed=True)
    assert mute.connections[0].hung_at == "EHLO"
    no_greeting = smtp_peer(hang_at={"greeting"})
    with raw(no_greeting) as s:
        assert silent_for(s, 0.5)
    slow = smtp_peer(delay={"greeting": 0.5})
    with raw(slow) as s:
        t0 = time.monotonic()
        assert Reader(s).reply().startswith(b"220 ")
        assert time.monotonic() - t0 >= 0.4


def test_bad_peer_closes_mid_data_and_at_mail(smtp_peer):
    peer = smtp_peer(close_after_data_bytes=40)
    with raw(peer) as s:
        r = Reader(s)
        r.reply()
        s.sendall(b"EHLO client.test\r\n")
        r.reply()
        for cmd, want in ((b"MAIL FROM:<a@sender.test>", b"250 "), (b"RCPT TO:<x@example.test>", b"250 "),
                          (b"DATA", b"354 ")):
            s.sendall(cmd + b"\r\n")
            assert r.reply().startswith(want)
        s.sendall(MESSAGE[:60])
        assert closed_within(s, 2)
    (t,) = peer.wait_transactions(1)
    assert t.data_started and not t.accepted and t.ended == "closed"
    assert 40 <= len(t.data_raw) <= 60 and MESSAGE.startswith(t.data_raw)
    assert peer.connections[0].closed_by == "peer"

    closer = smtp_peer(close_at={"MAIL"})
    with smtp(closer) as s:
        with pytest.raises(smtplib.SMTPServerDisconnected):
            s.sendmail("a@sender.test", ["x@example.test"], MESSAGE)


def test_lmtp_peer_on_a_unix_socket(smtp_peer, tmp_path):
    path = str(tmp_path / "lmtp.sock")
    peer = smtp_peer(lmtp=True, unix_path=path,
                     lmtp_replies={"full@example.test": "452 4.2.2 mailbox full"})
    assert peer.address == path
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2)
    s.connect(path)
    with s:
        r = Reader(s)
        r.reply()
        s.sendall(b"EHLO client.test\r\n")
        assert r.reply().startswith(b"500 ")
        s.sendall(b"LHLO client.test\r\n")
        assert r.reply().startswith(b"250-")
        s.sendall(b"MAIL FROM:<a@sender.test>\r\nRCPT TO:<ok@example.test>\r\n"
                  b"RCPT TO:<full@example.test>\r\nDATA\r\n")  # pipelined
        got = r.replies(4)
        assert [x[:4] for x in got] == [b"250 ", b"250 ", b"250 ", b"354 "], got
        s.sendall(STUFFED + b".\r\n")
        got = r.replies(2)  # one reply per accepted recipient
        assert got[0].startswith(b"250 ") and got[1].startswith(b"452 4.2.2"), got
    (t,) = peer.wait_messages(1)
    assert t.helo_verb == "LHLO" and t.lmtp_codes == {"ok@example.test": 250, "full@example.test": 452}
    assert t.data == MESSAGE and peer.connections[0].batched >= 1


def test_peer_waits_are_bounded(smtp_peer):
    peer = smtp_peer()
    t0 = time.monotonic()
    with pytest.raises(smtp_peers.PeerError, match="timed out"):
        peer.wait_messages(1, timeout=0.3)
    assert time.monotonic() - t0 < 2


# ---- Postfix and smtp-sink ----

@needs_postfix
def test_postfix_peer_delivers_to_a_maildir(postfix_peer, peer_ca):
    pf = postfix_peer(domains=["example.test"], recipients=["bob@example.test"], tls=True)
    assert pf.port == 25 and pf.host.startswith("127.0.0.") and pf.host != "127.0.0.1"
    with smtp(pf, timeout=10) as s:
        code, ehlo = s.ehlo()
        assert code == 250 and b"PIPELINING" in ehlo and b"STARTTLS" in ehlo
        s.starttls(context=peer_ca.client_context())
        assert s.sock.version() in ("TLSv1.2", "TLSv1.3")
        refused = s.sendmail("a@sender.test", ["bob@example.test"], MESSAGE)
        assert refused == {}
        with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
            s.sendmail("a@sender.test", ["nobody@example.test"], MESSAGE)
        assert e.value.recipients["nobody@example.test"][0] == 550
        with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
            s.sendmail("a@sender.test", ["x@elsewhere.test"], MESSAGE)
        assert e.value.recipients["x@elsewhere.test"][0] == 554  # relay access denied
    (stored,) = pf.wait_messages(1, "bob@example.test", timeout=20)
    assert b"\nDelivered-To: bob@example.test\n" in stored
    assert stored.endswith(b"\n\nline one\n.leading dot\n..two dots\nlast line\n")


@needs_sink
def test_smtp_sink_takes_a_message(smtp_sink):
    sink = smtp_sink()
    with smtp(sink) as s:
        assert s.sendmail("a@sender.test", ["x@example.test"], MESSAGE) == {}
    (dump,) = sink.wait_messages(1)
    t = sink.parse(dump)
    assert t["client"] == "127.0.0.1" and t["proto"] == "ESMTP" and t["helo"] == "client.test"
    assert t["mail"].startswith("<a@sender.test>") and t["rcpts"] == ["<x@example.test>"]
    assert t["message"].startswith(b"Received: ")
    assert t["message"].rstrip(b"\n").endswith(
        b"\nSubject: peer test\n\nline one\n.leading dot\n..two dots\nlast line")

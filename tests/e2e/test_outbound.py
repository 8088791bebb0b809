"""Remote delivery end to end: tern takes relayed mail on its mx listener
(relay_networks lets a loopback client relay without AUTH), asks the test DNS
server for the recipients' mail exchangers and hands the mail to programmable
SMTP peers (or a private Postfix) on other loopback addresses, port 25.

Covered: MX preference (random among equals) and fallback (connection
refused, 421 greeting, failed TLS handshake, a malformed reply), implicit MX,
null MX and NXDOMAIN bounces, DNS failures, per-recipient results at RCPT (4xx
deferred then delivered, 5xx bounced), one transaction per domain, HELO when
EHLO is refused, opportunistic STARTTLS, SIZE refusals before MAIL, 8-bit
content made 7-bit for a peer without 8BITMIME (an 8-bit header bounces), no SIZE parameter to a peer that does not offer it, silent peers and
lost connections (deferred), a restart with deferred recipients, the content
as it arrives, the bounces (RFC 3464) in the sender's Maildir or at the
sender's own MX (none for a <> sender), and a real Postfix as the peer.
"""

import email
import email.policy
import re
import time

import tern_harness as th
from outbound import (SENDER, WAIT, check_failed, dot_stuff, inject, make_message, original_subject,
                      outbound_tern, parse_report, split_received, wait_bounce, wait_log, wait_rcpts,
                      wait_settled)


# ---- routing ----

def test_mx_lowest_preference_first(dns_server, peer, tern_server):
    dns = dns_server()
    low, high = peer(name="low"), peer(name="high")
    # Listed highest first: the order in DNS must not matter.
    dns.mx("example.test", [(20, "mx2.example.test", high.host), (10, "mx1.example.test", low.host)])
    srv = outbound_tern(tern_server, dns)
    inject(srv, ["bob@example.test"])
    (t,) = low.wait_messages(1)
    assert t.recipients == ["bob@example.test"] and t.mail_from == SENDER
    assert t.helo == th.HOSTNAME and t.helo_verb == "EHLO"
    srv.wait_queue_empty()
    assert high.connections == []
    wait_log(srv, r"event=remote_delivered .*to=\"?bob@example\.test\"? relay=mx1\.example\.test\[%s\]"
             % re.escape(low.host))


def test_second_mx_when_the_first_refuses_connections(dns_server, peer, tern_server, dead_address):
    dns = dns_server()
    backup = peer(name="backup")
    dns.mx("example.test", [(10, "mx1.example.test", dead_address), (20, "mx2.example.test", backup.host)])
    srv = outbound_tern(tern_server, dns)
    inject(srv, ["bob@example.test"])
    (t,) = backup.wait_messages(1)
    assert t.recipients == ["bob@example.test"]
    srv.wait_queue_empty()
    wait_log(srv, r"event=remote_delivered .*relay=mx2\.example\.test\[%s\]" % re.escape(backup.host))


def test_second_mx_when_the_first_greets_with_421(dns_server, peer, tern_server):
    dns = dns_server()
    busy = peer(name="busy", replies={"greeting": "421 4.3.2 too busy, come back later"})
    backup = peer(name="backup")
    dns.mx("example.test", [(10, "mx1.example.test", busy.host), (20, "mx2.example.test", backup.host)])
    srv = outbound_tern(tern_server, dns)
    inject(srv, ["bob@example.test"])
    (t,) = backup.wait_messages(1)
    assert t.recipients == ["bob@example.test"]
    srv.wait_queue_empty()
    assert len(busy.connections) == 1 and busy.transactions == []


def test_equal_preferences_share_the_mail(dns_server, peer, tern_server):
    """Among MX hosts of equal preference the order is random: over 16
    messages (each its own delivery) both get some; the worse one none."""
    dns = dns_server()
    a, b, worse = peer(name="a"), peer(name="b"), peer(name="worse")
    dns.mx("example.test", [(10, "mxa.example.test", a.host), (10, "mxb.example.test", b.host),
                            (30, "mxc.example.test", worse.host)])
    srv = outbound_tern(tern_server, dns)
    for i in range(16):
        inject(srv, ["bob@example.test"], make_message("share %d" % i))
    srv.wait_queue_empty()
    counts = (len(a.messages()), len(b.messages()))
    assert sum(counts) == 16 and min(counts) >= 1, counts
    assert worse.connections == []


def test_second_mx_when_every_address_of_the_first_fails(dns_server, peer, tern_server, dead_address):
    """mx1 has two addresses: nothing listens on one, the other greets with
    421. Both are tried (in whichever order), then mx2 gets the mail."""
    dns = dns_server()
    busy = peer(name="busy", replies={"greeting": "421 4.3.2 too busy, come back later"})
    backup = peer(name="backup")
    dns.mx("example.test", [(10, "mx1.example.test", [dead_address, busy.host]),
                            (20, "mx2.example.test", backup.host)])
    srv = outbound_tern(tern_server, dns)
    inject(srv, ["bob@example.test"])
    (t,) = backup.wait_messages(1)
    assert t.recipients == ["bob@example.test"]
    srv.wait_queue_empty()
    assert len(busy.connections) >= 1 and busy.transactions == []
    assert busy.connections[0].commands in ([], ["QUIT"]), busy.connections[0].commands


def test_implicit_mx(dns_server, peer, tern_server):
    dns = dns_server()
    mx = peer()
    dns.implicit_mx("implicit.test", mx.host)
    srv = outbound_tern(tern_server, dns)
    inject(srv, ["carol@implicit.test"])
    (t,) = mx.wait_messages(1)
    assert t.recipients == ["carol@implicit.test"]
    srv.wait_queue_empty()
    wait_log(srv, r"event=remote_delivered .*relay=implicit\.test\[%s\]" % re.escape(mx.host))


def test_null_mx_bounces_at_once(dns_server, tern_server):
    dns = dns_server()
    dns.null_mx("nomail.test")
    srv = outbound_tern(tern_server, dns)
    inject(srv, ["dave@nomail.test", "erin@nomail.test"], make_message("to a null MX"))
    msg, per_message, rcpts, original = wait_bounce(srv)
    assert msg["From"] is not None and msg["To"] is not None and SENDER in msg["To"]
    assert per_message["Reporting-MTA"] is not None and th.HOSTNAME in per_message["Reporting-MTA"]
    assert set(rcpts) == {"dave@nomail.test", "erin@nomail.test"}
    for block in rcpts.values():
        check_failed(block, "5.1.10", diagnostic="null MX")
    assert original is not None and original_subject(original) == "to a null MX"
    wait_settled(srv, bounced=["dave@nomail.test", "erin@nomail.test"])
    # The bounce itself comes from <>.
    (stored,) = srv.messages(SENDER)
    assert stored.startswith(b"Return-Path: <>\n"), stored[:100]
    assert len(srv.new_files(SENDER)) == 1


def test_nxdomain_bounces(dns_server, tern_server):
    dns = dns_server()
    srv = outbound_tern(tern_server, dns)
    inject(srv, ["frank@no-such-domain.test"], make_message("to nowhere"))
    _, _, rcpts, original = wait_bounce(srv)
    assert list(rcpts) == ["frank@no-such-domain.test"]
    check_failed(rcpts["frank@no-such-domain.test"], "5.1.2", diagnostic="does not exist")
    assert rcpts["frank@no-such-domain.test"]["Remote-MTA"] is None
    assert original is not None and original_subject(original) == "to nowhere"
    wait_settled(srv, bounced=["frank@no-such-domain.test"])
    assert re.search(r"event=remote_bounced .*dest=no-such-domain\.test", srv.log_text())


def test_dns_failure_defers(dns_server, tern_server):
    dns = dns_server()
    dns.servfail("broken.test")
    srv = outbound_tern(tern_server, dns)
    inject(srv, ["gina@broken.test"])
    rows = wait_rcpts(srv, {"gina@broken.test": "deferred"})
    assert (rows["gina@broken.test"]["last_error"] or "").startswith("4.4.3"), rows
    assert srv.new_files(SENDER) == []


# ---- per-recipient results ----

def test_temporary_failure_then_success(dns_server, peer, tern_server):
    dns = dns_server()
    mx = peer(replies={"RCPT": ["450 4.2.0 mailbox busy, try later"]})
    dns.mx("example.test", [(10, "mx1.example.test", mx.host)])
    srv = outbound_tern(tern_server, dns)
    inject(srv, ["bob@example.test"])
    rows = wait_rcpts(srv, {"bob@example.test": "deferred"})
    assert "450 4.2.0 mailbox busy, try later" in (rows["bob@example.test"]["last_error"] or ""), rows
    wait_log(srv, r"event=remote_deferred .*to=\"?bob@example\.test\"? relay=mx1\.example\.test\[%s\]"
             % re.escape(mx.host))
    (t,) = mx.wait_messages(1)
    srv.wait_queue_empty()
    txns = mx.transactions
    assert [r.code for r in txns[0].rcpts] == [450] and not txns[0].data_started
    assert t is txns[1] and t.recipients == ["bob@example.test"]
    assert len(mx.messages()) == 1 and srv.new_files(SENDER) == []


def test_permanent_failure_at_rcpt_bounces_with_the_reply(dns_server, peer, tern_server):
    dns = dns_server()
    mx = peer(rcpt_replies={"nobody@example.test": "550 5.1.1 no such user here"})
    dns.mx("example.test", [(10, "mx1.example.test", mx.host)])
    srv = outbound_tern(tern_server, dns)
    inject(srv, ["bob@example.test", "nobody@example.test"], make_message("partly refused"))
    (t,) = mx.wait_messages(1)
    assert t.recipients == ["bob@example.test"]
    _, _, rcpts, original = wait_bounce(srv)
    assert list(rcpts) == ["nobody@example.test"]
    check_failed(rcpts["nobody@example.test"], "5.1.1", diagnostic="no such user here",
                 remote_mta="mx1.example.test")
    assert "550" in rcpts["nobody@example.test"]["Diagnostic-Code"]
    assert original_subject(original) == "partly refused"
    wait_settled(srv, bounced=["nobody@example.test"])
    assert len(mx.transactions) == 1


def test_a_peers_reply_cannot_forge_log_fields(dns_server, peer, tern_server):
    """The peer's text goes into the log quoted: a reply holding a quote and
    key=value pairs stays one value."""
    dns = dns_server()
    mx = peer(rcpt_replies={"nobody@example.test": '550 5.1.1 gone" qid=FORGED to="admin@example.test'})
    dns.mx("example.test", [(10, "mx1.example.test", mx.host)])
    srv = outbound_tern(tern_server, dns)
    inject(srv, ["nobody@example.test"])
    wait_settled(srv, bounced=["nobody@example.test"])
    wait_log(srv, r"event=remote_bounced .*to=\"?nobody@example\.test")
    assert 'reply="550 5.1.1 gone\\" qid=FORGED to=\\"admin@example.test' in srv.log_text(), srv.log_tail()
    for l in srv.log_text().splitlines():
        if "event=remote_bounced" in l:
            # Outside quoted values there is one qid=, the real one.
            unquoted = re.sub(r'"(?:[^"\\]|\\.)*"', '""', l)
            assert unquoted.count("qid=") == 1 and "FORGED" not in unquoted, l


def test_many_recipients_of_one_domain_in_one_transaction(dns_server, peer, tern_server):
    dns = dns_server()
    mx = peer()
    dns.mx("example.test", [(10, "mx1.example.test", mx.host)])
    srv = outbound_tern(tern_server, dns)
    rcpts = ["user%02d@example.test" % i for i in range(25)]
    inject(srv, rcpts)
    (t,) = mx.wait_messages(1)
    srv.wait_queue_empty()
    assert sorted(t.recipients) == sorted(rcpts)
    assert len(mx.transactions) == 1 and len(mx.connections) == 1
    mails = [c for c in mx.connections[0].commands if c.upper().startswith("MAIL ")]
    assert len(mails) == 1


def test_two_domains_go_to_their_own_mx(dns_server, peer, tern_server):
    dns = dns_server()
    a, b = peer(name="a"), peer(name="b")
    dns.mx("one.test", [(10, "mx.one.test", a.host)])
    dns.mx("two.test", [(10, "mx.two.test", b.host)])
    srv = outbound_tern(tern_server, dns)
    inject(srv, ["x@one.test", "y@two.test", "z@one.test"])
    (ta,) = a.wait_messages(1)
    (tb,) = b.wait_messages(1)
    srv.wait_queue_empty()
    assert sorted(ta.recipients) == ["x@one.test", "z@one.test"]
    assert tb.recipients == ["y@two.test"]
    assert len(a.transactions) == 1 and len(b.transactions) == 1


# ---- what the peer offers ----

def test_starttls_used_when_offered(dns_server, peer, tern_server):
    dns = dns_server()
    secure = peer(name="secure", starttls=True)
    plain = peer(name="plain")
    dns.mx("secure.test", [(10, "mx.secure.test", secure.host)])
    dns.mx("plain.test", [(10, "mx.plain.test", plain.host)])
    srv = outbound_tern(tern_server, dns)
    inject(srv, ["s@secure.test", "p@plain.test"])
    (ts,) = secure.wait_messages(1)
    (tp,) = plain.wait_messages(1)
    srv.wait_queue_empty()
    assert ts.tls and ts.tls_version in ("TLSv1.2", "TLSv1.3"), ts
    commands = [c.split()[0].upper() for c in secure.connections[0].commands[:3]]
    assert commands == ["EHLO", "STARTTLS", "EHLO"], commands
    assert secure.connections[0].injected == b""
    assert not tp.tls and "STARTTLS" not in [c.upper() for c in plain.connections[0].commands]
    assert re.search(r"event=remote_tls relay=mx\.secure\.test\[%s\]" % re.escape(secure.host),
                     srv.log_text())


def test_peer_size_too_small_bounces_before_mail(dns_server, peer, tern_server):
    dns = dns_server()
    mx = peer(size=2000)
    dns.mx("example.test", [(10, "mx1.example.test", mx.host)])
    srv = outbound_tern(tern_server, dns)
    content = make_message("too big", body=(b"y" * 70 + b"\r\n") * 80)
    assert len(content) > 5000
    inject(srv, ["bob@example.test"], content)
    _, _, rcpts, _ = wait_bounce(srv)
    check_failed(rcpts["bob@example.test"], "5.3.4", diagnostic="too big")
    wait_settled(srv, bounced=["bob@example.test"])
    assert mx.transactions == [] and len(mx.connections) >= 1


def test_no_size_parameter_to_a_peer_that_does_not_offer_size(dns_server, smtp_peer, tern_server):
    """RFC 1870 / RFC 5321 4.1.1.11: SIZE= only to a server whose EHLO reply
    lists SIZE. The peer refuses parameters it did not offer (555)."""
    dns = dns_server()
    mx = smtp_peer(size=None, strict=True)
    dns.mx("example.test", [(10, "mx1.example.test", mx.host)])
    srv = outbound_tern(tern_server, dns)
    inject(srv, ["bob@example.test"])
    (t,) = mx.wait_transactions(1)
    assert t.mail_params == {}, "MAIL FROM sent %r to a peer that offered no SIZE" % t.mail_line
    mx.wait_messages(1)
    srv.wait_queue_empty()
    assert srv.new_files(SENDER) == []


def test_eight_bit_to_a_peer_without_8bitmime_is_made_7bit(dns_server, peer, tern_server):
    dns = dns_server()
    mx = peer(eightbitmime=False)
    dns.mx("example.test", [(10, "mx1.example.test", mx.host)])
    srv = outbound_tern(tern_server, dns)
    text = "Gr\u00fc\u00dfe aus K\u00f6ln = sch\u00f6n \r\n" + "\u00e4" * 120 + "\r\n.dot line\r\n"
    inject(srv, ["bob@example.test"], make_message("eight bit", body=text.encode("utf-8"),
                                                  extra=b"Content-Type: text/plain; charset=utf-8\r\n"
                                                  b"Content-Transfer-Encoding: 8bit\r\n"),
           mail_params=" BODY=8BITMIME")
    t = mx.wait_messages(1)[0]
    # RFC 6152 3: no BODY=8BITMIME to a peer that did not offer it, and 7-bit data only.
    assert "BODY" not in t.mail_params
    assert max(t.data) < 0x80
    assert all(len(line) <= 78 for line in t.data.split(b"\r\n"))
    msg = email.message_from_bytes(t.data, policy=email.policy.default)
    assert msg["Content-Transfer-Encoding"] == "quoted-printable"
    assert msg["Content-Type"].params["charset"] == "utf-8"
    assert msg.get_payload(decode=True) == text.encode("utf-8")
    assert int(t.mail_params["SIZE"]) == len(t.data)
    wait_log(srv, r"event=remote_downgrade qid=\S+ relay=mx1\.example\.test\S+ size=\d+ size_7bit=\d+")
    srv.wait_queue_empty()


def test_eight_bit_header_to_a_peer_without_8bitmime_bounces(dns_server, peer, tern_server):
    dns = dns_server()
    mx = peer(eightbitmime=False)
    dns.mx("example.test", [(10, "mx1.example.test", mx.host)])
    srv = outbound_tern(tern_server, dns)
    inject(srv, ["bob@example.test"], make_message("eight bit", body=b"plain\r\n",
                                                  extra="X-Note: K\u00f6ln\r\n".encode("utf-8")),
           mail_params=" BODY=8BITMIME")
    _, _, rcpts, _ = wait_bounce(srv)
    # A header cannot be made 7-bit without changing what it says.
    check_failed(rcpts["bob@example.test"], "5.6.3", diagnostic="8BITMIME")
    wait_settled(srv, bounced=["bob@example.test"])
    assert mx.transactions == []


def test_helo_when_ehlo_is_refused(dns_server, peer, tern_server):
    dns = dns_server()
    mx = peer(esmtp=False)
    dns.mx("example.test", [(10, "mx1.example.test", mx.host)])
    srv = outbound_tern(tern_server, dns)
    inject(srv, ["bob@example.test"])
    (t,) = mx.wait_messages(1)
    srv.wait_queue_empty()
    assert t.helo_verb == "HELO" and t.helo == th.HOSTNAME
    assert t.mail_params == {}  # no extension parameter under HELO
    assert [c.split()[0].upper() for c in mx.connections[0].commands[:2]] == ["EHLO", "HELO"]


# ---- broken peers ----

def test_failed_tls_handshake_tries_the_next_mx(dns_server, peer, tern_server):
    """mx1 offers STARTTLS and says 220 to it, but speaks no TLS: the
    handshake fails, and mx2 gets the mail."""
    dns = dns_server()
    fake = peer(name="fake", extra_ehlo=["STARTTLS"], replies={"STARTTLS": "220 2.0.0 go ahead"})
    good = peer(name="good")
    dns.mx("example.test", [(10, "mx1.example.test", fake.host), (20, "mx2.example.test", good.host)])
    srv = outbound_tern(tern_server, dns)
    inject(srv, ["bob@example.test"])
    (t,) = good.wait_messages(1)
    srv.wait_queue_empty()
    assert t.recipients == ["bob@example.test"]
    assert fake.transactions == []
    # (what follows is the TLS client hello, read as lines of garbage)
    assert [c.split()[0].upper() for c in fake.connections[0].commands[:2]] == ["EHLO", "STARTTLS"]


def test_silent_peer_is_deferred_after_the_command_timeout(dns_server, peer, tern_server):
    dns = dns_server()
    mute = peer(hang_at={"EHLO"})
    dns.mx("example.test", [(10, "mx1.example.test", mute.host)])
    srv = outbound_tern(tern_server, dns, remote_command_timeout="2s", retry_initial="30s",
                        retry_max="60s")
    t0 = time.monotonic()
    inject(srv, ["bob@example.test"])
    rows = wait_rcpts(srv, {"bob@example.test": "deferred"}, timeout=10)
    took = time.monotonic() - t0
    assert 1.5 <= took < 8, "deferred after %.1fs with remote_command_timeout 2s" % took
    assert "timeout" in (rows["bob@example.test"]["last_error"] or ""), rows
    assert mute.connections[0].hung_at == "EHLO" and mute.transactions == []


def test_mismatched_multiline_reply_abandons_the_address(dns_server, peer, tern_server):
    dns = dns_server()
    liar = peer(name="liar", replies={"EHLO": b"250-liar.test\r\n251-PIPELINING\r\n250 8BITMIME\r\n"})
    dns.mx("example.test", [(10, "mx1.example.test", liar.host)])
    srv = outbound_tern(tern_server, dns, retry_initial="30s", retry_max="60s")
    inject(srv, ["bob@example.test"])
    rows = wait_rcpts(srv, {"bob@example.test": "deferred"})
    assert "different codes" in (rows["bob@example.test"]["last_error"] or ""), rows
    assert liar.transactions == []
    commands = [c.upper() for c in liar.connections[0].commands]
    assert commands[0].startswith("EHLO") and not any(c.startswith(("MAIL", "HELO")) for c in commands), \
        commands


def test_mismatched_multiline_reply_then_the_next_mx(dns_server, peer, tern_server):
    dns = dns_server()
    liar = peer(name="liar", replies={"EHLO": b"250-liar.test\r\n251-PIPELINING\r\n250 8BITMIME\r\n"})
    good = peer(name="good")
    dns.mx("example.test", [(10, "mx1.example.test", liar.host), (20, "mx2.example.test", good.host)])
    srv = outbound_tern(tern_server, dns)
    inject(srv, ["bob@example.test"])
    (t,) = good.wait_messages(1)
    srv.wait_queue_empty()
    assert t.recipients == ["bob@example.test"] and liar.transactions == []


def test_connection_lost_in_data_defers(dns_server, peer, tern_server):
    dns = dns_server()
    mx = peer(close_after_data_bytes=50)
    dns.mx("example.test", [(10, "mx1.example.test", mx.host)])
    srv = outbound_tern(tern_server, dns, retry_initial="30s", retry_max="60s")
    inject(srv, ["bob@example.test"], make_message("cut", body=b"z" * 60 + b"\r\n"))
    rows = wait_rcpts(srv, {"bob@example.test": "deferred"})
    assert (rows["bob@example.test"]["last_error"] or "").startswith("4.4.2"), rows
    assert mx.messages() == []


# ---- restart, content, bounces to remote senders ----

def test_restart_delivers_deferred_recipients_exactly_once(dns_server, peer, tern_server):
    dns = dns_server()
    state = {"refuse": True}

    def rcpt(call):
        return "451 4.3.0 not now" if state["refuse"] else None
    mx = peer(replies={"RCPT": rcpt})
    dns.mx("example.test", [(10, "mx1.example.test", mx.host)])
    srv = outbound_tern(tern_server, dns)
    inject(srv, ["bob@example.test", "carl@example.test"], make_message("after restart"))
    wait_rcpts(srv, {"bob@example.test": "deferred", "carl@example.test": "deferred"})
    assert srv.stop() == 0
    state["refuse"] = False
    srv.start()
    srv.wait_queue_empty()
    # A retry may carry each recipient in a transaction of its own; every
    # recipient must have got the message exactly once.
    accepted = mx.messages()
    got = sorted(r for t in accepted for r in t.recipients)
    assert got == ["bob@example.test", "carl@example.test"], accepted
    for t in accepted:
        _, rest = split_received(t.data)
        assert rest == make_message("after restart")
    assert srv.new_files(SENDER) == []


def test_content_arrives_intact(dns_server, peer, tern_server):
    dns = dns_server()
    mx = peer()
    dns.mx("example.test", [(10, "mx1.example.test", mx.host)])
    srv = outbound_tern(tern_server, dns)
    body = (b"first line\r\n"
            b".a line starting with a dot\r\n"
            b"..two dots\r\n"
            b".\r\n"
            b" . not at the start\r\n"
            b"\r\n"
            b"tab\there, trailing space \r\n"
            + b"long " * 150 + b"\r\n"
            b"last line\r\n")
    content = make_message("intact", body=body)
    inject(srv, ["bob@example.test"], content)
    (t,) = mx.wait_messages(1)
    srv.wait_queue_empty()
    received, rest = split_received(t.data)
    assert rest == content
    assert th.HOSTNAME.encode() in received
    assert t.data_raw == dot_stuff(t.data)
    assert b"\r\n..a line starting with a dot\r\n...two dots\r\n..\r\n" in t.data_raw
    assert t.mail_params.get("SIZE") is not None and int(t.mail_params["SIZE"]) >= len(content)


def test_bounce_goes_to_a_remote_sender_through_its_mx(dns_server, peer, tern_server):
    dns = dns_server()
    refusing = peer(name="refusing", replies={"RCPT": "550 5.7.1 we do not want it"})
    home = peer(name="home")
    dns.mx("example.test", [(10, "mx1.example.test", refusing.host)])
    dns.mx("sender.test", [(10, "mx.sender.test", home.host)])
    srv = outbound_tern(tern_server, dns)
    inject(srv, ["bob@example.test"], make_message("bounced home"), sender="zoe@sender.test")
    (t,) = home.wait_messages(1)
    wait_settled(srv, bounced=["bob@example.test"])
    assert t.mail_from == "" and t.recipients == ["zoe@sender.test"]
    msg, _, rcpts, original = parse_report(t.data)
    assert "zoe@sender.test" in msg["To"]
    check_failed(rcpts["bob@example.test"], "5.7.1", diagnostic="550 5.7.1 we do not want it",
                 remote_mta="mx1.example.test")
    assert original_subject(original) == "bounced home"
    assert refusing.messages() == []
    wait_log(srv, r"event=remote_delivered .*to=\"?zoe@sender\.test\"? relay=mx\.sender\.test\[%s\]"
             % re.escape(home.host))


def test_no_bounce_for_a_null_sender(dns_server, peer, tern_server):
    dns = dns_server()
    refusing = peer(name="refusing", replies={"RCPT": "550 5.7.1 we do not want it"})
    dns.mx("example.test", [(10, "mx1.example.test", refusing.host)])
    srv = outbound_tern(tern_server, dns)
    offset = srv.log_size()
    inject(srv, ["bob@example.test"], make_message("from nobody"), sender="")
    refusing.wait_transactions(1)
    wait_log(srv, r"event=remote_bounced .*to=\"?bob@example\.test", since=offset)
    wait_settled(srv, bounced=["bob@example.test"])
    assert len(refusing.transactions) == 1
    assert srv.new_files(SENDER) == []


# ---- a real peer ----

def test_postfix_peer_receives_relayed_mail(dns_server, postfix_peer, tern_server):
    dns = dns_server()
    pf = postfix_peer(domains=["pf.test"], tls=True)
    dns.mx("pf.test", [(10, "mx.pf.test", pf.host)])
    srv = outbound_tern(tern_server, dns)
    body = b"Hello Postfix.\r\n.dot line\r\nend\r\n"
    inject(srv, ["bob@pf.test"], make_message("to postfix", body=body))
    (stored,) = pf.wait_messages(1, "bob@pf.test", timeout=WAIT)
    srv.wait_queue_empty()
    assert b"\nSubject: to postfix\n" in stored
    assert stored.endswith(b"\n\nHello Postfix.\n.dot line\nend\n"), stored[-200:]
    assert b"by tern.test" in stored or th.HOSTNAME.encode() in stored
    assert re.search(r"event=remote_tls relay=mx\.pf\.test", srv.log_text())

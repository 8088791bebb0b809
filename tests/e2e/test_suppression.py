"""The suppression list end to end: a recipient in another domain that a
peer refuses with 550 5.1.1 is listed, and the next message submitted to it
(smtplib, STARTTLS and AUTH on the submission listener) is refused at RCPT
with 550 5.1.1 until `tern suppression delete`; a policy refusal (5.7.1)
lists nothing; mail for local users, also on port 25, never meets the list;
`suppression = no` (at a reload) and a configured reply; and the pruning of
bounced recipients after bounce_retention.

Peers are programmable SMTP servers on loopback behind the test DNS server
(tests/lib/outbound.py).
"""

import json
import signal
import smtplib
import time

import tern_harness as th
from outbound import BASE_CONFIG, SENDER, inject, make_message, resolver, wait_log, wait_rcpts

PASSWORD = "alice's Pass 1"
GONE = "gone@example.test"
REFUSED = "550 5.1.1 <gone@example.test>: Recipient address rejected: it bounced before and is on the suppression list"


def suppression_tern(tern_server, dns, **config):
    """A tern with a submission listener, asking dns, with SENDER as a user who may log in."""
    cfg = dict(BASE_CONFIG, dns_resolver=resolver(dns))
    cfg.update({k: str(v) for k, v in config.items()})
    srv = tern_server(config=cfg, listeners=("submission",))
    srv.add_user(SENDER, PASSWORD)
    return srv


def submit(srv, rcpts, subject="suppression test"):
    """One message from SENDER over submission (STARTTLS, AUTH PLAIN); {address: (code, text)} of the refused
    recipients (smtplib raises SMTPRecipientsRefused when all are)."""
    with smtplib.SMTP("127.0.0.1", srv.port_of("submission"), local_hostname="client.test",
                      timeout=th.REPLY_TIMEOUT) as c:
        c.starttls(context=srv.tls_context())  # the self-signed certificate names 127.0.0.1
        c.ehlo()
        # PLAIN: the user has no CRAM-MD5 secret, which smtplib's login() would try first.
        c.user, c.password = SENDER, PASSWORD
        c.auth("PLAIN", c.auth_plain)
        try:
            refused = c.sendmail(SENDER, rcpts, make_message(subject))
        except smtplib.SMTPRecipientsRefused as e:
            refused = e.recipients
    return {a: (code, text.decode()) for a, (code, text) in refused.items()}


def listed(srv, *args):
    """`tern suppression list` as rows of its tab-separated fields."""
    out = srv.cli("suppression", "list", *args).stdout.decode()
    return [line.split("\t") for line in out.splitlines()]


def test_hard_bounce_then_refused_at_rcpt_until_deleted(dns_server, peer, tern_server):
    dns = dns_server()
    mx = peer(name="mx", rcpt_replies={GONE: "550 5.1.1 <gone@example.test>: no such user"})
    dns.mx("example.test", [(10, "mx.example.test", mx.host)])
    srv = suppression_tern(tern_server, dns)

    assert submit(srv, [GONE]) == {}
    wait_rcpts(srv, {GONE: "bounced"})
    srv.wait_mail(SENDER, 1)  # the bounce
    wait_log(srv, r"event=suppression_added qid=\w+ rcpt_id=\d+ to=\"?gone@example\.test\"? status=5\.1\.1")
    (row,) = listed(srv)
    assert row[0] == GONE and row[3].startswith("bounce:") and row[4].startswith("550 5.1.1 <gone@example.test>")
    assert listed(srv, "--domain", "EXAMPLE.test") == [row]
    assert listed(srv, "--domain", "example.org") == []

    # Submitted again, with a recipient that is fine: only the listed one is refused, in either case.
    refused = submit(srv, [GONE, "ok@example.test", "Gone@Example.TEST"], "second")
    assert refused == {GONE: (550, REFUSED[4:]),
                       "Gone@Example.TEST": (550, REFUSED[4:].replace(GONE, "Gone@Example.TEST"))}
    (t,) = mx.wait_messages(1)
    assert t.recipients == ["ok@example.test"]
    wait_log(srv, r"event=rcpt_suppressed .*to=\"?gone@example\.test\"?")
    wait_log(srv, r"event=reject .*code=550 status=5\.1\.1 reason=\"Recipient address rejected: it bounced")

    # The mailbox is back: the operator takes the address off the list.
    del mx.rcpt_replies[GONE]
    out = srv.cli("suppression", "delete", "GONE@example.test").stdout.decode()
    assert "gone@example.test: taken off the suppression list" in out
    wait_log(srv, r"event=suppression_command by=\"?root\"? action=delete target=\"?gone@example\.test\"? entries=1")
    assert listed(srv) == []
    assert submit(srv, [GONE], "third") == {}
    got = mx.wait_messages(2)
    assert got[1].recipients == [GONE]
    missing = srv.cli("suppression", "delete", GONE, check=False)
    assert missing.returncode == 1 and b"is not on the suppression list" in missing.stderr


def test_policy_and_other_refusals_do_not_suppress(dns_server, peer, tern_server):
    dns = dns_server()
    mx = peer(name="mx", rcpt_replies={"picky@example.test": "550 5.7.1 rejected by policy",
                                       "full@example.test": "552 5.2.2 mailbox full",
                                       "plain@example.test": "550 no such user"})
    dns.mx("example.test", [(10, "mx.example.test", mx.host)])
    srv = suppression_tern(tern_server, dns)
    rcpts = ["picky@example.test", "full@example.test", "plain@example.test"]
    assert submit(srv, rcpts) == {}
    wait_rcpts(srv, {r: "bounced" for r in rcpts})
    srv.wait_mail(SENDER, 1)
    assert listed(srv) == []
    assert "event=suppression_added" not in srv.log_text()
    # All three are taken again at RCPT (and refused by the peer again).
    assert submit(srv, rcpts, "again") == {}


def test_local_mail_and_port_25(dns_server, peer, tern_server):
    dns = dns_server()
    mx = peer(name="mx")
    dns.mx("example.test", [(10, "mx.example.test", mx.host)])
    srv = suppression_tern(tern_server, dns)
    srv.add_user("bob@localhost")
    # An operator lists a remote address and, for the test, a local one (with a warning).
    srv.cli("suppression", "add", GONE, "asked", "us", "to", "stop")
    r = srv.cli("suppression", "add", "bob@localhost")
    assert b"warning: bob@localhost is in a local domain" in r.stderr
    rows = {row[0]: row for row in listed(srv)}
    assert rows[GONE][2] == "never" and rows[GONE][3] == "manual:root" and rows[GONE][4] == "asked us to stop"
    wait_log(srv, r"event=suppression_command by=\"?root\"? action=add target=\"?gone@example\.test\"? entries=1")

    # Mail for a local user arriving on port 25 is delivered, listed or not.
    with th.SMTPClient("127.0.0.1", srv.port) as c:
        c.expect(220)
        assert c.cmd("EHLO outside.test").code == 250
        assert c.cmd("MAIL FROM:<someone@elsewhere.test>").code == 250
        assert c.cmd("RCPT TO:<bob@localhost>").code == 250
        # Relaying on port 25 (this client is in relay_networks) meets the list like submission.
        r = c.cmd("RCPT TO:<%s>" % GONE)
        assert r.code == 550 and r.enhanced() == "5.1.1" and "<gone@example.test>" in r.text, r
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: inbound\r\n\r\nhello\r\n.\r\n")
        assert c.reply().code == 250
    srv.wait_mail("bob@localhost", 1)
    # Submitted mail for the local user too.
    assert submit(srv, ["bob@localhost"]) == {}
    srv.wait_mail("bob@localhost", 2)
    assert mx.messages() == []


def test_turned_off_at_reload_and_a_configured_reply(dns_server, peer, tern_server):
    dns = dns_server()
    mx = peer(name="mx")
    dns.mx("example.test", [(10, "mx.example.test", mx.host)])
    srv = suppression_tern(tern_server, dns, suppression_reply="553 5.7.1 Not to this one, sorry")
    srv.cli("suppression", "add", GONE)
    assert submit(srv, [GONE, "ok@example.test"]) == {GONE: (553, "5.7.1 <gone@example.test>: Not to this one, sorry")}

    srv.set(suppression="no")
    offset = srv.log_size()
    srv.signal(signal.SIGHUP)
    wait_log(srv, r"event=reloaded", since=offset)
    assert submit(srv, [GONE], "after reload") == {}
    got = mx.wait_messages(2)
    assert got[1].recipients == [GONE]
    # The list is kept for when it is turned on again.
    assert [row[0] for row in listed(srv)] == [GONE]
    out = srv.cli("suppression", "clear").stdout.decode()
    assert "1 address taken off the suppression list" in out


def test_bounced_recipients_pruned_after_bounce_retention(dns_server, peer, tern_server):
    dns = dns_server()
    mx = peer(name="mx", rcpt_replies={GONE: "550 5.1.1 no such user"})
    dns.mx("example.test", [(10, "mx.example.test", mx.host)])
    srv = suppression_tern(tern_server, dns, bounce_retention="1s")
    inject(srv, [GONE])
    wait_rcpts(srv, {GONE: "bounced"})
    srv.wait_mail(SENDER, 1)
    (entry,) = [e for e in srv.queue() if any(r["address"] == GONE for r in e["recipients"])]
    # The store prunes once a minute, and at start: a restart makes it look now.
    time.sleep(1.5)
    srv.stop()
    offset = srv.log_size()
    srv.start()
    wait_log(srv, r"event=queue_pruned messages=1 rcpts=1", since=offset)
    srv.wait_queue_empty()
    missing = srv.cli("queue", "show", entry["qid"], check=False)
    assert missing.returncode == 1 and b"no message" in missing.stderr
    # The suppression entry is not the queue's: it stays.
    assert [row[0] for row in listed(srv)] == [GONE]
    assert json.loads(srv.cli("queue", "list", "--json").stdout.decode()) == []

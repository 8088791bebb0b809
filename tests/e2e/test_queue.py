"""Queue control while the server runs: `tern queue list` with filters,
`show` with the failed attempts and the replies, and `flush`, `retry`,
`hold`, `release` and `delete`, each acted on by the running server (which
watches the database) and logged with who ran it.

Deferrals come from programmable peers answering 450 (then 250 when the
test says so); retries are an hour apart, so only an operator's action can
make mail go out again within the test.
"""

import json
import re

from outbound import SENDER, inject, outbound_tern, wait_log, wait_rcpts

SLOW_RETRIES = {"retry_initial": "1h", "retry_max": "2h"}


def queue_json(srv, *args):
    r = srv.cli("queue", "list", "--json", *args)
    return json.loads(r.stdout.decode())


def qid_of(srv, address):
    for entry in srv.queue():
        if any(r["address"] == address for r in entry["recipients"]):
            return entry["qid"]
    raise AssertionError("%s is not in the queue: %r" % (address, srv.queue()))


def test_list_filters_and_show_attempts(dns_server, peer, tern_server):
    dns = dns_server()
    busy = peer(name="busy", replies={"RCPT": "450 4.2.1 busy, come back later"})
    fine = peer(name="fine")
    dns.mx("busy.test", [(10, "mx.busy.test", busy.host)])
    dns.mx("fine.test", [(10, "mx.fine.test", fine.host)])
    srv = outbound_tern(tern_server, dns, retry_initial="1s", retry_max="1s")
    srv.add_user("bob@localhost")
    inject(srv, ["ann@busy.test", "bob@localhost"])
    wait_rcpts(srv, {"ann@busy.test": "deferred", "bob@localhost": None})
    # A second attempt, so that show has two.
    n = len(busy.transactions)
    wait_log(srv, r"event=deferred .*attempts=2")
    assert len(busy.transactions) >= n + 1

    listed = queue_json(srv, "--state", "deferred", "--domain", "BUSY.test")
    assert [r["address"] for e in listed for r in e["recipients"]] == ["ann@busy.test"]
    assert queue_json(srv, "--domain", "fine.test") == []
    assert queue_json(srv, "--state", "held") == []
    assert len(queue_json(srv, "--newer-than", "1h")) == 1
    assert queue_json(srv, "--older-than", "1h") == []

    qid = qid_of(srv, "ann@busy.test")
    shown = json.loads(srv.cli("queue", "show", qid.lower(), "--json").stdout.decode())
    (rcpt,) = shown["recipients"]
    assert rcpt["state"] == "deferred" and rcpt["attempts"] >= 2
    assert len(rcpt["attempts_failed"]) >= 2
    assert all(a["outcome"] == "deferred" and "450 4.2.1 busy, come back later" in a["reply"]
               for a in rcpt["attempts_failed"])
    text = srv.cli("queue", "show", qid).stdout.decode()
    assert "deferred: 450 4.2.1 busy, come back later" in text and "next " in text

    bad = srv.cli("queue", "list", "--state", "lost", check=False)
    assert bad.returncode == 2 and b"--state takes" in bad.stderr


def test_hold_then_release(dns_server, peer, tern_server):
    dns = dns_server()
    mx = peer(name="mx", replies={"RCPT": ["450 4.2.1 not now"]})
    dns.mx("example.test", [(10, "mx.example.test", mx.host)])
    srv = outbound_tern(tern_server, dns, **SLOW_RETRIES)
    inject(srv, ["bob@example.test"])
    wait_rcpts(srv, {"bob@example.test": "deferred"})
    qid = qid_of(srv, "bob@example.test")

    out = srv.cli("queue", "hold", qid).stdout.decode()
    assert "1 recipient held" in out
    wait_log(srv, r"event=queue_command by=\"?root\"? action=hold target=\"?%s\"? rcpts=1" % qid)
    # Held mail stays put, even when everything is flushed.
    srv.cli("queue", "flush")
    wait_log(srv, r"event=queue_command .*action=flush target=\"?\*\"? rcpts=0")
    assert wait_rcpts(srv, {"bob@example.test": "held"})
    assert mx.messages() == []

    srv.cli("queue", "release", qid)
    (t,) = mx.wait_messages(1)
    assert t.recipients == ["bob@example.test"]
    srv.wait_queue_empty()
    wait_log(srv, r"event=queue_command .*action=release target=\"?%s\"? rcpts=1" % qid)


def test_flush_a_domain(dns_server, peer, tern_server):
    dns = dns_server()
    one = peer(name="one", replies={"RCPT": ["450 4.2.1 not now"]})
    two = peer(name="two", replies={"RCPT": ["450 4.2.1 not now"]})
    dns.mx("one.test", [(10, "mx.one.test", one.host)])
    dns.mx("two.test", [(10, "mx.two.test", two.host)])
    srv = outbound_tern(tern_server, dns, **SLOW_RETRIES)
    inject(srv, ["a@one.test", "b@two.test"])
    wait_rcpts(srv, {"a@one.test": "deferred", "b@two.test": "deferred"})
    out = srv.cli("queue", "flush", "one.test").stdout.decode()
    assert "1 recipient due now" in out
    (t,) = one.wait_messages(1)
    assert t.recipients == ["a@one.test"]
    wait_rcpts(srv, {"a@one.test": None, "b@two.test": "deferred"})
    assert two.messages() == []


def test_delete_sends_no_bounce(dns_server, peer, tern_server):
    dns = dns_server()
    mx = peer(name="mx", replies={"RCPT": "450 4.2.1 not now"})
    dns.mx("example.test", [(10, "mx.example.test", mx.host)])
    srv = outbound_tern(tern_server, dns, **SLOW_RETRIES)
    inject(srv, ["bob@example.test", "carol@example.test"])
    wait_rcpts(srv, {"bob@example.test": "deferred", "carol@example.test": "deferred"})
    qid = qid_of(srv, "bob@example.test")
    assert "2 recipients deleted" in srv.cli("queue", "delete", qid).stdout.decode()
    srv.wait_queue_empty()
    wait_log(srv, r"event=queue_command .*action=delete target=\"?%s\"? rcpts=2" % qid)
    missing = srv.cli("queue", "show", qid, check=False)
    assert missing.returncode == 1 and b"no message" in missing.stderr
    assert srv.new_files(SENDER) == []


def test_retry_a_bounced_recipient(dns_server, peer, tern_server):
    dns = dns_server()
    mx = peer(name="mx", replies={"RCPT": ["550 5.1.1 unknown today"]})
    dns.mx("example.test", [(10, "mx.example.test", mx.host)])
    srv = outbound_tern(tern_server, dns, **SLOW_RETRIES)
    inject(srv, ["bob@example.test"])
    wait_rcpts(srv, {"bob@example.test": "bounced"})
    srv.wait_mail(SENDER, 1)  # the bounce
    qid = qid_of(srv, "bob@example.test")
    # The peer's trouble is fixed (its next RCPT gets 250): the operator tries again.
    out = srv.cli("queue", "retry", qid).stdout.decode()
    assert re.search(r"1 recipient due now, backoff restarted", out), out
    (t,) = mx.wait_messages(1)
    assert t.recipients == ["bob@example.test"]
    srv.wait_queue_empty()

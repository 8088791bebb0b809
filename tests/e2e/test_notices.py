"""Delivery status notifications end to end (RFC 3461 NOTIFY, RFC 3464
reports): success notices ("delivered" for a local mailbox, "relayed" to a
peer without DSN, none from tern when the peer takes DSN and so reports
itself), NOTIFY=NEVER and NOTIFY lists without FAILURE or DELAY, the one
delay warning (and delay_warning taken at a reload), and expiry after max_queue_lifetime (a message made old by
moving its arrival time back in the queue database while tern is stopped).

Each report lands in the sender's Maildir and is parsed with Python's email
package, field by field.
"""

import signal
import sqlite3

import tern_harness as th
from outbound import (SENDER, check_failed, inject, outbound_tern, wait_bounce, wait_log, wait_rcpts,
                      wait_settled)

DAY_MS = 24 * 3600 * 1000


def test_success_notice_for_local_delivery(dns_server, tern_server):
    srv = outbound_tern(tern_server, dns_server())
    srv.add_user("bob@localhost")
    inject(srv, ["bob@localhost"], mail_params=" RET=HDRS ENVID=envelope-7", rcpt_params=" NOTIFY=SUCCESS")
    srv.wait_mail("bob@localhost", 1)
    msg, per_message, rcpts, original = wait_bounce(srv)
    assert msg["Subject"] == "Successful Mail Delivery Report"
    assert per_message["Original-Envelope-Id"].strip() == "envelope-7"
    block = rcpts["bob@localhost"]
    assert block["Action"].strip() == "delivered" and block["Status"].strip() == "2.0.0"
    assert original.get_content_type() == "text/rfc822-headers"
    wait_log(srv, r"event=success_notice_queued .*rcpts=1")


def test_success_notice_relayed_to_a_peer_without_dsn(dns_server, peer, tern_server):
    dns = dns_server()
    mx = peer(name="nodsn", dsn=False)
    dns.mx("example.test", [(10, "mx.example.test", mx.host)])
    srv = outbound_tern(tern_server, dns)
    inject(srv, ["bob@example.test", "carol@example.test"], rcpt_params={"bob@example.test": " NOTIFY=SUCCESS"})
    (t,) = mx.wait_messages(1)
    assert all("NOTIFY" not in r.params for r in t.rcpts), t.rcpts
    _, _, rcpts, _ = wait_bounce(srv)
    # Only bob asked; carol's success is not reported.
    assert list(rcpts) == ["bob@example.test"]
    block = rcpts["bob@example.test"]
    assert block["Action"].strip() == "relayed" and block["Status"].strip() == "2.0.0"
    assert "mx.example.test" in block["Remote-MTA"]


def test_no_success_notice_when_the_peer_takes_dsn(dns_server, peer, tern_server):
    dns = dns_server()
    mx = peer(name="dsn", dsn=True)
    dns.mx("example.test", [(10, "mx.example.test", mx.host)])
    srv = outbound_tern(tern_server, dns)
    inject(srv, ["bob@example.test"], rcpt_params=" NOTIFY=SUCCESS,FAILURE")
    (t,) = mx.wait_messages(1)
    # Passed on, so the next hop reports (RFC 3461 5.2.2), not tern.
    assert t.rcpts[0].params.get("NOTIFY") == "SUCCESS,FAILURE", t.rcpts
    # A notice would be queued in the same transaction as the result.
    srv.wait_queue_empty()
    assert srv.new_files(SENDER) == []


def test_notify_never_and_lists_without_failure_get_no_bounce(dns_server, peer, tern_server):
    dns = dns_server()
    mx = peer(name="refuser", replies={"RCPT": "550 5.1.1 no such user"})
    dns.mx("example.test", [(10, "mx.example.test", mx.host)])
    srv = outbound_tern(tern_server, dns)
    inject(srv, ["bob@example.test", "carol@example.test", "dave@example.test"],
           rcpt_params={"bob@example.test": " NOTIFY=NEVER", "carol@example.test": " NOTIFY=DELAY"})
    # All three fail in one transaction, which queues every bounce owed.
    wait_settled(srv, bounced=["bob@example.test", "carol@example.test", "dave@example.test"])
    # Only dave (no NOTIFY: failures are reported) is in the one bounce.
    _, _, rcpts, _ = wait_bounce(srv)
    assert list(rcpts) == ["dave@example.test"]
    assert len(srv.new_files(SENDER)) == 1


def test_one_delay_warning(dns_server, peer, tern_server):
    dns = dns_server()
    mx = peer(name="busy", replies={"RCPT": "450 4.2.1 try again later"})
    dns.mx("example.test", [(10, "mx.example.test", mx.host)])
    srv = outbound_tern(tern_server, dns, delay_warning="2s", retry_initial="1s", retry_max="1s")
    inject(srv, ["bob@example.test", "carol@example.test"], rcpt_params={"carol@example.test": " NOTIFY=FAILURE"})
    msg, _, rcpts, original = wait_bounce(srv)
    assert msg["Subject"] == "Delayed Mail (still being retried)"
    # carol's NOTIFY leaves out DELAY.
    assert list(rcpts) == ["bob@example.test"]
    block = rcpts["bob@example.test"]
    assert block["Action"].strip() == "delayed" and block["Status"].strip() == "4.2.1"
    assert "450 4.2.1 try again later" in " ".join(block["Diagnostic-Code"].split())
    assert block["Will-Retry-Until"]
    assert original.get_content_type() == "text/rfc822-headers"
    # More attempts, no second warning.
    attempts = len(mx.transactions)
    th.wait_until(lambda: len(mx.transactions) >= attempts + 2, 20, "two more attempts", srv.log_tail)
    assert len(srv.new_files(SENDER)) == 1


def test_expiry_bounces_with_the_last_error(dns_server, peer, tern_server):
    dns = dns_server()
    mx = peer(name="busy", replies={"RCPT": "451 4.3.0 temporary trouble"})
    dns.mx("example.test", [(10, "mx.example.test", mx.host)])
    srv = outbound_tern(tern_server, dns, delay_warning="0")
    inject(srv, ["bob@example.test"])
    wait_rcpts(srv, {"bob@example.test": "deferred"})
    srv.stop()
    # Six days old: past the default lifetime of five days.
    db = sqlite3.connect(srv.data_dir + "/queue.db")
    with db:
        db.execute("UPDATE messages SET arrival_ms = arrival_ms - ?", (6 * DAY_MS,))
        db.execute("UPDATE recipients SET next_attempt_ms = 0 WHERE state = 'deferred'")
    db.close()
    srv.start()
    _, _, rcpts, _ = wait_bounce(srv)
    check_failed(rcpts["bob@example.test"], "5.4.7", diagnostic="451 4.3.0 temporary trouble",
                 remote_mta="mx.example.test")
    wait_rcpts(srv, {"bob@example.test": "bounced"})
    wait_log(srv, r"event=expired .*error=\"451 4\.3\.0 temporary trouble")


def test_delay_warning_and_retry_times_change_at_a_reload(dns_server, peer, tern_server):
    dns = dns_server()
    mx = peer(name="busy", replies={"RCPT": "450 4.2.1 try again later"})
    dns.mx("example.test", [(10, "mx.example.test", mx.host)])
    srv = outbound_tern(tern_server, dns, delay_warning="0", retry_initial="1h", retry_max="2h")
    inject(srv, ["bob@example.test"])
    wait_rcpts(srv, {"bob@example.test": "deferred"})
    # SIGHUP: retries every second now, and a warning after two seconds.
    srv.set(delay_warning="2s", retry_initial="1s", retry_max="1s")
    offset = srv.log_size()
    srv.signal(signal.SIGHUP)
    wait_log(srv, r"event=reloaded", since=offset)
    srv.cli("queue", "flush")
    msg, _, rcpts, _ = wait_bounce(srv)
    assert msg["Subject"] == "Delayed Mail (still being retried)"
    assert list(rcpts) == ["bob@example.test"]
    # The retry after the flush came a second later, not an hour.
    wait_log(srv, r"event=deferred .*attempts=3", since=offset)

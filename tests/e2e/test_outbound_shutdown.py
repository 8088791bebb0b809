"""SIGTERM and outbound sessions: a transaction under way finishes (within
shutdown_timeout) and its result is recorded, idle connections are closed
with QUIT, and what shutdown_timeout cuts stays queued for the next start.
"""

import signal
import time

from outbound import inject, outbound_tern, rcpt_rows, wait_log


def test_sigterm_lets_a_transaction_finish(dns_server, peer, tern_server):
    dns = dns_server()
    mx = peer(name="mx", delay={"DOT": 2})
    dns.mx("example.test", [(10, "mx.example.test", mx.host)])
    srv = outbound_tern(tern_server, dns, shutdown_timeout="20s")
    inject(srv, ["ann@example.test"])
    wait_log(srv, r'event=remote_send relay=\S+ line="DATA"')
    time.sleep(0.3)  # the content is on its way; the peer answers it 2 s later
    srv.signal(signal.SIGTERM)
    assert srv.wait_exit(15) == 0, srv.log_tail()
    log = srv.log_text()
    assert "event=outbound_shutdown sessions=1" in log
    assert "event=remote_delivered" in log and "outbound_shutdown_timeout" not in log
    assert len(mx.messages()) == 1
    # Recorded before the exit: nothing is sent again after a restart.
    assert rcpt_rows(srv) == {}
    srv.start()
    time.sleep(1)
    assert len(mx.messages()) == 1


def test_sigterm_closes_idle_connections(dns_server, peer, tern_server):
    dns = dns_server()
    mx = peer(name="mx")
    dns.mx("example.test", [(10, "mx.example.test", mx.host)])
    srv = outbound_tern(tern_server, dns, remote_idle_timeout="60s")
    inject(srv, ["ann@example.test"])
    mx.wait_messages(1)
    srv.wait_queue_empty()
    assert mx.connections[0].closed_by is None
    srv.signal(signal.SIGTERM)
    assert srv.wait_exit(15) == 0, srv.log_tail()
    conn = mx.wait_connections(1, closed=True)[0]
    assert conn.quit, mx.summary()


def test_shutdown_timeout_cuts_and_keeps_the_mail_queued(dns_server, peer, tern_server):
    dns = dns_server()
    mx = peer(name="mx", hang_at=("DOT",))
    dns.mx("example.test", [(10, "mx.example.test", mx.host)])
    srv = outbound_tern(tern_server, dns, shutdown_timeout="1s", remote_data_timeout="60s")
    inject(srv, ["ann@example.test"])
    wait_log(srv, r'event=remote_send relay=\S+ line="DATA"')
    time.sleep(0.3)
    srv.signal(signal.SIGTERM)
    assert srv.wait_exit(15) == 0, srv.log_tail()
    assert "event=outbound_shutdown_timeout sessions=1" in srv.log_text()
    # No reply came: the recipient waits for the next start, not deferred nor bounced.
    assert rcpt_rows(srv)["ann@example.test"]["state"] == "queued"

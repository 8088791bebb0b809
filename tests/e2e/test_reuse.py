"""Many messages per connection: a session whose message is done carries the
next message waiting for the same destination, or waits idle for one
(remote_idle_timeout); RSET comes first only after a transaction that ended
early; remote_messages_per_connection bounds a connection's messages; a
kept connection the peer has given up on costs nothing but a new one.
"""

import time

import tern_harness as th
from outbound import inject, make_message, outbound_tern, wait_log, wait_rcpts


def mail_commands(conn):
    return [c for c in conn.commands if c.upper().startswith("MAIL FROM:")]


def verbs(conn):
    return [c.split()[0].upper() for c in conn.commands]


def refused_then_accepted(srv, mx):
    """A message whose only recipient the peer refuses (the transaction ends
    before the data), then one it takes; returns the peer's transactions."""
    inject(srv, ["nobody@example.test"])
    wait_rcpts(srv, {"nobody@example.test": "bounced"})
    inject(srv, ["ann@example.test"])
    return mx.wait_messages(1)


def test_waiting_messages_share_one_connection(dns_server, peer, tern_server):
    dns = dns_server()
    mx = peer(name="mx", delay={"DOT": 0.3})
    dns.mx("example.test", [(10, "mx.example.test", mx.host)])
    srv = outbound_tern(tern_server, dns, remote_max_per_destination=1, remote_idle_timeout="1s")
    for i in range(4):
        inject(srv, ["user%d@example.test" % i], content=make_message("reuse %d" % i))
    got = mx.wait_messages(4)
    assert sorted(r for t in got for r in t.recipients) == ["user%d@example.test" % i for i in range(4)]
    # Idle for a second after the last one, then QUIT.
    conns = mx.wait_connections(1, closed=True)
    assert len(mx.connections) == 1, mx.summary()
    conn = conns[0]
    assert len(mail_commands(conn)) == 4
    # Every transaction ended with the content's reply: no RSET needed.
    assert "RSET" not in verbs(conn) and verbs(conn)[-1] == "QUIT"
    assert conn.quit
    wait_log(srv, r"event=remote_close relay=mx\.example\.test\[%s\] messages=4" % mx.host.replace(".", r"\."))
    srv.wait_queue_empty()


def test_idle_connection_carries_the_next_message(dns_server, peer, tern_server):
    dns = dns_server()
    mx = peer(name="mx")
    dns.mx("example.test", [(10, "mx.example.test", mx.host)])
    srv = outbound_tern(tern_server, dns, remote_idle_timeout="30s")
    inject(srv, ["first@example.test"])
    mx.wait_messages(1)
    srv.wait_queue_empty()
    time.sleep(0.3)
    inject(srv, ["second@example.test"])
    mx.wait_messages(2)
    assert len(mx.connections) == 1, mx.summary()
    assert mx.connections[0].closed_by is None  # still open, idle
    assert len(mail_commands(mx.connections[0])) == 2
    assert "event=remote_close" not in srv.log_text()


def test_messages_per_connection_limit(dns_server, peer, tern_server):
    dns = dns_server()
    mx = peer(name="mx", delay={"DOT": 0.3})
    dns.mx("example.test", [(10, "mx.example.test", mx.host)])
    srv = outbound_tern(tern_server, dns, remote_max_per_destination=1, remote_messages_per_connection=2,
                        remote_idle_timeout="1s")
    for i in range(5):
        inject(srv, ["user%d@example.test" % i], content=make_message("limit %d" % i))
    mx.wait_messages(5)
    mx.wait_connections(3, closed=True)
    assert [len(mail_commands(c)) for c in mx.connections] == [2, 2, 1], mx.summary()
    assert all(verbs(c)[-1] == "QUIT" for c in mx.connections)


def test_rset_after_a_transaction_that_ended_early(dns_server, peer, tern_server):
    dns = dns_server()
    mx = peer(name="mx", rcpt_replies={"nobody@example.test": "550 5.1.1 no such user"})
    dns.mx("example.test", [(10, "mx.example.test", mx.host)])
    srv = outbound_tern(tern_server, dns, remote_idle_timeout="30s")
    got = refused_then_accepted(srv, mx)
    assert got[0].recipients == ["ann@example.test"]
    assert len(mx.connections) == 1, mx.summary()
    # MAIL was taken, then nothing came of it: the peer is reset before the next MAIL.
    assert verbs(mx.connections[0])[:8] == ["EHLO", "MAIL", "RCPT", "DATA", "RSET", "MAIL", "RCPT", "DATA"]


def test_kept_connection_refusing_rset_is_replaced(dns_server, peer, tern_server):
    dns = dns_server()
    mx = peer(name="mx", rcpt_replies={"nobody@example.test": "550 5.1.1 no such user"},
              replies={"RSET": "421 4.3.2 shutting down"})
    dns.mx("example.test", [(10, "mx.example.test", mx.host)])
    srv = outbound_tern(tern_server, dns, remote_idle_timeout="30s")
    got = refused_then_accepted(srv, mx)
    # The kept connection failed before anything was decided: a new one, at once, not a deferral.
    assert got[0].recipients == ["ann@example.test"]
    assert len(mx.connections) == 2, mx.summary()
    assert verbs(mx.connections[1])[:2] == ["EHLO", "MAIL"]
    assert "event=remote_deferred" not in srv.log_text()


def test_peer_closing_an_idle_connection(dns_server, peer, tern_server):
    dns = dns_server()
    mx = peer(name="mx", idle_timeout=1)
    dns.mx("example.test", [(10, "mx.example.test", mx.host)])
    srv = outbound_tern(tern_server, dns, remote_idle_timeout="60s", remote_max_connections=1)
    inject(srv, ["first@example.test"])
    mx.wait_messages(1)
    mx.wait_connections(1, closed=True)
    time.sleep(0.5)  # tern has seen the close by now and given back the only slot
    inject(srv, ["second@example.test"])
    got = mx.wait_messages(2)
    assert got[1].recipients == ["second@example.test"]
    assert len(mx.connections) == 2, mx.summary()
    srv.wait_queue_empty()


def test_each_destination_keeps_its_own_connections(dns_server, peer, tern_server):
    dns = dns_server()
    mx = peer(name="mx")
    dns.mx("one.test", [(10, "mx.shared.test", mx.host)])
    dns.mx("two.test", [(10, "mx.shared.test", mx.host)])
    srv = outbound_tern(tern_server, dns, remote_idle_timeout="30s")
    inject(srv, ["a@one.test"])
    mx.wait_messages(1)
    inject(srv, ["b@two.test"])
    mx.wait_messages(2)
    inject(srv, ["c@one.test"])
    got = mx.wait_messages(3)
    by_conn = {}
    for t in got:
        by_conn.setdefault(t.conn.number, []).extend(t.recipients)
    assert sorted(by_conn.values()) == [["a@one.test", "c@one.test"], ["b@two.test"]]

"""Per-destination scheduling: at most remote_max_per_destination sessions
to one domain at once (the others wait their turn, and all arrive), and a
destination none of whose hosts answered is left alone for a while: mail
for it is deferred at once, without another connection.
"""

import time

import tern_harness as th
from outbound import inject, outbound_tern, wait_log, wait_rcpts


def test_sessions_per_destination_are_limited(dns_server, peer, tern_server):
    dns = dns_server()
    slow = peer(name="slow", delay={"DOT": 1.5})
    other = peer(name="other")
    dns.mx("slow.test", [(10, "mx.slow.test", slow.host)])
    dns.mx("other.test", [(10, "mx.other.test", other.host)])
    srv = outbound_tern(tern_server, dns, remote_max_per_destination=2)
    for i in range(5):
        inject(srv, ["user%d@slow.test" % i])
    th.wait_until(lambda: len(slow.connections) >= 2, th.DELIVERY_TIMEOUT, "two sessions", srv.log_tail)
    # The limit is per destination: another domain is not held up.
    inject(srv, ["someone@other.test"])
    other.wait_messages(1)
    time.sleep(0.5)
    open_now = [c for c in slow.connections if c.closed_by is None]
    assert len(open_now) <= 2, slow.connections
    got = slow.wait_messages(5)
    assert sorted(r for t in got for r in t.recipients) == ["user%d@slow.test" % i for i in range(5)]
    srv.wait_queue_empty()


def test_unreachable_destination_is_left_alone(dns_server, peer, tern_server):
    dns = dns_server()
    broken = peer(name="broken", close_at=("greeting",))
    dns.mx("broken.test", [(10, "mx.broken.test", broken.host)])
    srv = outbound_tern(tern_server, dns, retry_initial="1h", retry_max="2h")
    inject(srv, ["a@broken.test"])
    rows = wait_rcpts(srv, {"a@broken.test": "deferred"})
    wait_log(srv, r"event=destination_down dest=broken\.test failures=1")
    assert len(broken.connections) == 1
    # The next message for it is deferred with the same reason, without a connection.
    inject(srv, ["b@broken.test"])
    rows = wait_rcpts(srv, {"a@broken.test": "deferred", "b@broken.test": "deferred"})
    assert rows["b@broken.test"]["last_error"] == rows["a@broken.test"]["last_error"]
    assert len(broken.connections) == 1

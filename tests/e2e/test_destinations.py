"""Per-destination scheduling: at most remote_max_per_destination sessions
to one domain at once (the others wait their turn, and all arrive); a
destination none of whose hosts answered is left alone for a while: mail
for it is deferred at once, without another connection; a destination's
rate (remote_rate_per_destination, or a route's rate=) spaces its messages.
"""

import datetime
import re
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


def mail_times(srv, relay_host):
    """When tern sent each MAIL to relay_host (seconds, from its log)."""
    rx = re.compile(r"^(\S+) debug event=remote_send relay=\S*\[%s\] line=\"MAIL FROM:" % re.escape(relay_host))
    times = []
    for line in srv.log_text().splitlines():
        m = rx.match(line)
        if m:
            stamp = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%fZ")
            times.append(stamp.timestamp())
    return times


def test_rate_spaces_messages_to_a_destination(dns_server, peer, tern_server):
    dns = dns_server()
    mx = peer(name="mx")
    dns.mx("example.test", [(10, "mx.example.test", mx.host)])
    srv = outbound_tern(tern_server, dns, remote_rate_per_destination="5/s", remote_idle_timeout="30s")
    for i in range(4):
        inject(srv, ["user%d@example.test" % i])
    mx.wait_messages(4)
    times = mail_times(srv, mx.host)
    assert len(times) == 4
    # At most 5 a second, evenly: 200 ms apart at least (the log has milliseconds).
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert min(gaps) >= 0.199, gaps
    # Waiting for its turn, the connection stayed open: one for all four.
    assert len(mx.connections) == 1, mx.summary()


def test_route_rate_holds_up_only_its_destination(dns_server, peer, tern_server):
    dns = dns_server()
    slow = peer(name="slow")
    fast = peer(name="fast")
    dns.mx("slow.test", [(10, "mx.slow.test", slow.host)])
    dns.mx("fast.test", [(10, "mx.fast.test", fast.host)])
    srv = outbound_tern(tern_server, dns, transport="slow.test mx rate=2/s")
    for i in range(3):
        inject(srv, ["s%d@slow.test" % i, "f%d@fast.test" % i])
    slow.wait_messages(3)
    fast.wait_messages(3)
    slow_times, fast_times = mail_times(srv, slow.host), mail_times(srv, fast.host)
    assert min(b - a for a, b in zip(slow_times, slow_times[1:])) >= 0.499, slow_times
    # fast.test has no rate: its three went out before slow.test's last.
    assert max(fast_times) < max(slow_times)
    srv.wait_queue_empty()


def expired_dests(srv):
    return re.findall(r"event=dest_expired dest=(\S+)", srv.log_text())


def test_unused_destinations_are_forgotten(dns_server, peer, tern_server):
    """A destination nothing goes to any more is dropped after remote_destination_ttl, and comes back when needed."""
    dns = dns_server()
    mx = peer(name="mx")
    domains = ["d%d.test" % i for i in range(3)]
    for d in domains:
        dns.mx(d, [(10, "mx." + d, mx.host)])
    srv = outbound_tern(tern_server, dns, remote_destination_ttl="1s", remote_idle_timeout=0)
    inject(srv, ["bob@" + d for d in domains])
    mx.wait_messages(3)
    srv.wait_queue_empty()
    th.wait_until(lambda: sorted(expired_dests(srv)) == domains, th.DELIVERY_TIMEOUT,
                  "every destination forgotten", srv.log_tail)
    # A forgotten destination is made again for new mail.
    inject(srv, ["carol@" + domains[0]])
    mx.wait_messages(4)
    srv.wait_queue_empty()
    th.wait_until(lambda: expired_dests(srv).count(domains[0]) == 2, th.DELIVERY_TIMEOUT,
                  "the destination forgotten again", srv.log_tail)


def test_a_destination_in_back_off_is_kept(dns_server, peer, tern_server):
    dns = dns_server()
    broken = peer(name="broken", close_at=("greeting",))
    good = peer(name="good")
    dns.mx("broken.test", [(10, "mx.broken.test", broken.host)])
    dns.mx("good.test", [(10, "mx.good.test", good.host)])
    srv = outbound_tern(tern_server, dns, remote_destination_ttl="1s", remote_idle_timeout=0,
                        retry_initial="1h", retry_max="2h")
    inject(srv, ["a@broken.test", "b@good.test"])
    wait_log(srv, r"event=destination_down dest=broken\.test failures=1")
    good.wait_messages(1)
    th.wait_until(lambda: "good.test" in expired_dests(srv), th.DELIVERY_TIMEOUT, "good.test forgotten",
                  srv.log_tail)
    # Its back-off (half an hour) still runs: broken.test stays, and new mail for it is deferred at once.
    assert "broken.test" not in expired_dests(srv)
    inject(srv, ["c@broken.test"])
    wait_rcpts(srv, {"c@broken.test": "deferred"})
    assert len(broken.connections) == 1


def test_destination_table_is_capped(dns_server, peer, tern_server):
    """Past remote_max_destinations new destinations wait (4.3.2), and go once room is made."""
    dns = dns_server()
    mx = peer(name="mx")
    dns.mx("one.test", [(10, "mx.one.test", mx.host)])
    dns.mx("two.test", [(10, "mx.two.test", mx.host)])
    srv = outbound_tern(tern_server, dns, remote_max_destinations=1, remote_destination_ttl="1s",
                        remote_idle_timeout=0, retry_initial="2s", retry_max="2s")
    inject(srv, ["a@one.test", "b@two.test"])
    rows = wait_rcpts(srv, {"b@two.test": "deferred"})
    assert "4.3.2" in rows["b@two.test"]["last_error"], rows
    wait_log(srv, r"event=dest_table_full destinations=1 limit=1")
    # one.test is forgotten after its second, and two.test then has its turn.
    mx.wait_messages(2)
    srv.wait_queue_empty()
    assert srv.log_text().count("event=dest_table_full") == 1

"""kill -9 under load, then restart: nothing acknowledged is lost.

Several client threads (each its own connection, several messages per
connection, then a new connection) send numbered messages, to local
mailboxes or, relayed, to a mail exchanger on loopback. The server is
interrupted while they run (SIGKILL, or SIGTERM for a clean stop) and
restarted on the same data directory; the clients carry on against the new
process. Afterwards:
  - every message answered 250 is in each of its recipients' Maildir new/;
  - every file in new/ is a complete message, byte for byte the one sent
    (nothing half-written, nothing garbled), the large ones that went
    through spool files too;
  - duplicates are counted and printed: allowed after SIGKILL (at least
    once), not after a clean SIGTERM stop, for local and relayed mail alike
    (a clean stop lets the transactions with the exchanger finish and
    records their results).
"""

import os
import re
import signal
import threading
import time

import tern_harness as th
from outbound import resolver

if th.SANITIZED:
    TOTAL, THREADS = 600, 4
else:
    TOTAL, THREADS = 3000, 6
PER_CONNECTION = 5
USERS = ["u%d@localhost" % i for i in range(4)]
RUN_DEADLINE = 240 * th.SLOW
RELAY_TOTAL = TOTAL // 5


def recipients(i):
    rcpts = [USERS[i % len(USERS)]]
    if i % 7 == 0:
        rcpts.append(USERS[(i + 1) % len(USERS)])
    return rcpts


def content(i, rcpts=recipients):
    lines = [b"From: load@localhost", b"To: %s" % ", ".join(rcpts(i)).encode(),
             b"Subject: crash %d" % i, b"Message-ID: <crash-%d@client.test>" % i, b""]
    lines += [b"message %d line %d %s" % (i, k, b"x" * (i % 50)) for k in range(1 + i % 40)]
    if i % 10 == 3:
        # Over 32 KiB: the body goes to a spool file, not into the database.
        lines += [b"message %d spooled line %04d %s" % (i, k, b"y" * 48) for k in range(600)]
    lines.append(b"END %d" % i)
    return b"\r\n".join(lines) + b"\r\n"


class Load:
    """Client threads sending numbered messages; tolerant of the server
    going away (they wait until `up` is set again and reconnect)."""

    def __init__(self, srv, total=TOTAL, rcpts=recipients):
        self.srv = srv
        self.total = total
        self.rcpts = rcpts
        self.lock = threading.Lock()
        self.next = 0
        self.acked = set()
        self.attempted = set()
        self.up = threading.Event()
        self.up.set()
        self.errors = []
        self.stop = threading.Event()
        self.deadline = time.monotonic() + RUN_DEADLINE

    def take(self):
        with self.lock:
            if self.next >= self.total:
                return None
            self.next += 1
            self.attempted.add(self.next - 1)
            return self.next - 1

    def acked_count(self):
        with self.lock:
            return len(self.acked)

    def expect(self, r, code):
        if r.code == 421:
            raise th.Closed("421 from the server: %r" % r)  # it is shutting down
        if r.code != code:
            with self.lock:
                self.errors.append("unexpected reply %r (want %d)" % (r, code))
            raise th.Closed("unexpected reply")

    def send_one(self, c, i):
        self.expect(c.cmd("MAIL FROM:<load@localhost>"), 250)
        for rc in self.rcpts(i):
            self.expect(c.cmd("RCPT TO:<%s>" % rc), 250)
        self.expect(c.cmd("DATA"), 354)
        c.send(content(i, self.rcpts) + b".\r\n")
        self.expect(c.reply(), 250)
        with self.lock:
            self.acked.add(i)

    def worker(self):
        for _ in range(self.total * 4):
            if self.stop.is_set() or time.monotonic() > self.deadline:
                return
            if not self.up.wait(timeout=60 * th.SLOW):
                self.errors.append("server did not come back")
                return
            try:
                c = self.srv.connect(timeout=30 * th.SLOW)
            except OSError:
                time.sleep(0.02)
                continue
            try:
                if c.reply().code != 220 or c.cmd("EHLO load.test").code != 250:
                    continue
                for _ in range(PER_CONNECTION):
                    i = self.take()
                    if i is None:
                        c.cmd("QUIT")
                        return
                    self.send_one(c, i)
                c.cmd("QUIT")
            except (th.Closed, OSError, TimeoutError, AssertionError):
                pass  # the server went away under us; reconnect
            finally:
                c.close()


def number_of(rest):
    m = re.search(rb"^Subject: crash (\d+)$", rest, re.M)
    return int(m.group(1)) if m else None


def run_with_interruptions(srv, how, total=TOTAL, rcpts=recipients):
    """Run the load; at 1/3 and 2/3 of total acknowledged, stop the server
    (`how`: "kill" or "term") and restart it on a new port."""
    load = Load(srv, total, rcpts)
    threads = [threading.Thread(target=load.worker, daemon=True) for _ in range(THREADS)]
    for t in threads:
        t.start()
    acked_at = []
    try:
        for fraction in (1 / 3, 2 / 3):
            target = int(total * fraction)
            th.wait_until(lambda: load.acked_count() >= target or not any(t.is_alive() for t in threads),
                          RUN_DEADLINE, "%d messages to be acknowledged" % target, srv.log_tail, interval=0.01)
            load.up.clear()
            if how == "kill":
                srv.kill9()
            else:
                srv.signal(signal.SIGTERM)
                code = srv.wait_exit()
                assert code == 0, "exit %r after SIGTERM under load%s" % (code, srv.log_tail())
            acked_at.append(load.acked_count())
            srv.port = th.free_port()
            srv.set(listen="127.0.0.1:%d mx" % srv.port)
            srv.start()
            load.up.set()
        for t in threads:
            t.join(timeout=max(1, load.deadline - time.monotonic()))
    finally:
        load.stop.set()
        load.up.set()
    assert not any(t.is_alive() for t in threads), "load threads did not finish in time"
    assert not load.errors, load.errors[:10]
    print("\ncrash (%s): %d messages acknowledged (%s at the interruptions), %d attempted"
          % (how, len(load.acked), "/".join(map(str, acked_at)), len(load.attempted)))
    assert acked_at[0] >= total // 3
    assert len(load.acked) >= total * 0.9, "too few messages acknowledged: %d" % len(load.acked)
    return load


def check_mailboxes(srv, load):
    """Wait for delivery to settle; return (lost, duplicates, unacked delivered, broken)."""
    acked = set(load.acked)
    want = {u: set() for u in USERS}
    for i in acked:
        for u in recipients(i):
            want[u].add(i)

    def have_all():
        for u in USERS:
            got = set()
            for stored in srv.messages(u):
                try:
                    _, rest = th.split_trace(stored)
                except AssertionError:
                    continue
                n = number_of(rest)
                if n is not None:
                    got.add(n)
            if not want[u] <= got:
                return False
        return True
    try:
        th.wait_until(have_all, th.DELIVERY_TIMEOUT * 4, "every acknowledged message to be delivered",
                      interval=0.5)
    except th.HarnessError:
        pass  # reported in detail below
    srv.wait_queue_empty(th.DELIVERY_TIMEOUT * 4)

    lost, duplicates, unacked_delivered, broken = [], 0, 0, []
    for u in USERS:
        seen = {}
        newdir = os.path.join(srv.maildir(u), "new")
        for name in srv.new_files(u):
            with open(os.path.join(newdir, name), "rb") as f:
                stored = f.read()
            try:
                _, rest = th.split_trace(stored)
            except AssertionError as e:
                broken.append("%s/%s: %s" % (u, name, e))
                continue
            n = number_of(rest)
            if n is None or n not in load.attempted or u not in recipients(n):
                broken.append("%s/%s: not a message sent to this mailbox: %r" % (u, name, rest[:200]))
                continue
            if rest != th.as_stored(content(n)):
                broken.append("%s/%s: message %d is not what was sent (%d bytes, want %d)"
                              % (u, name, n, len(rest), len(th.as_stored(content(n)))))
                continue
            seen[n] = seen.get(n, 0) + 1
        for n, k in seen.items():
            duplicates += k - 1
            if n not in acked:
                unacked_delivered += 1
        for n in sorted(want[u]):
            if n not in seen:
                lost.append((u, n))
    print("crash: %d duplicate deliveries, %d unacknowledged messages delivered, %d lost, %d broken files"
          % (duplicates, unacked_delivered, len(lost), len(broken)))
    return lost, duplicates, unacked_delivered, broken


def test_kill9_under_load_loses_nothing(tern_server):
    srv = tern_server(users=USERS, config={"log_level": "info", "retry_initial": "1s", "retry_max": "2s"})
    load = run_with_interruptions(srv, "kill")
    lost, duplicates, _, broken = check_mailboxes(srv, load)
    assert not broken, "files in new/ that are not complete messages:\n" + "\n".join(broken[:20])
    assert not lost, "%d acknowledged deliveries lost, e.g. %r%s" % (len(lost), lost[:20], srv.log_tail())


def test_sigterm_under_load_loses_nothing_and_duplicates_nothing(tern_server):
    srv = tern_server(users=USERS, config={"log_level": "info", "retry_initial": "1s", "retry_max": "2s",
                                           "shutdown_timeout": "60s"})
    load = run_with_interruptions(srv, "term")
    lost, duplicates, _, broken = check_mailboxes(srv, load)
    assert not broken, "files in new/ that are not complete messages:\n" + "\n".join(broken[:20])
    assert not lost, "%d acknowledged deliveries lost, e.g. %r%s" % (len(lost), lost[:20], srv.log_tail())
    # A clean stop finishes (or cleanly abandons) what it was delivering and
    # records it: nothing is delivered twice.
    assert duplicates == 0, "%d duplicate deliveries after clean SIGTERM restarts" % duplicates


def relay_recipients(i):
    return ["r%d@example.test" % (i % 3)]


def check_relayed(srv, mx, load):
    """Wait for the queue to drain; return (lost, duplicates, broken) as the exchanger saw them."""
    acked = set(load.acked)

    def numbers():
        got = {}
        for t in mx.messages():
            n = number_of((t.data or b"").replace(b"\r\n", b"\n"))
            got.setdefault(n, []).append(t)
        return got
    try:
        th.wait_until(lambda: acked <= set(numbers()), th.DELIVERY_TIMEOUT * 4,
                      "every acknowledged message to reach the exchanger", interval=0.5)
    except th.HarnessError:
        pass  # reported in detail below
    srv.wait_queue_empty(th.DELIVERY_TIMEOUT * 4)
    got = numbers()
    broken = ["message %r: not what was sent" % n for n, ts in got.items()
              if n not in load.attempted or any(not t.data.endswith(content(n, relay_recipients)) for t in ts)]
    lost = sorted(acked - set(got))
    duplicates = sum(len(ts) - 1 for ts in got.values())
    print("crash (relay): %d duplicate deliveries, %d lost, %d broken" % (duplicates, len(lost), len(broken)))
    return lost, duplicates, broken


def relay_setup(dns_server, peer, tern_server):
    dns = dns_server()
    # A little slow at the end of the data, so that transactions are open when the server stops.
    mx = peer(name="mx", delay={"DOT": 0.02})
    dns.mx("example.test", [(10, "mx.example.test", mx.host)])
    srv = tern_server(config={"log_level": "info", "relay_networks": "127.0.0.0/8", "dns_resolver": resolver(dns),
                              "retry_initial": "1s", "retry_max": "2s", "shutdown_timeout": "60s"})
    return srv, mx


def test_kill9_under_relay_load_loses_nothing(dns_server, peer, tern_server):
    srv, mx = relay_setup(dns_server, peer, tern_server)
    load = run_with_interruptions(srv, "kill", RELAY_TOTAL, relay_recipients)
    lost, _, broken = check_relayed(srv, mx, load)
    assert not broken, broken[:20]
    assert not lost, "%d acknowledged messages never reached the exchanger, e.g. %r%s" % (
        len(lost), lost[:20], srv.log_tail())


def test_sigterm_under_relay_load_loses_nothing_and_sends_nothing_twice(dns_server, peer, tern_server):
    srv, mx = relay_setup(dns_server, peer, tern_server)
    load = run_with_interruptions(srv, "term", RELAY_TOTAL, relay_recipients)
    lost, duplicates, broken = check_relayed(srv, mx, load)
    print("outbound sessions at the stops: %s" % re.findall(r"event=outbound_shutdown sessions=(\d+)",
                                                          srv.log_text()))
    assert not broken, broken[:20]
    assert not lost, "%d acknowledged messages never reached the exchanger, e.g. %r%s" % (
        len(lost), lost[:20], srv.log_tail())
    assert duplicates == 0, "%d messages sent twice after clean SIGTERM restarts" % duplicates

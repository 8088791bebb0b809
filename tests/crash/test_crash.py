"""kill -9 under load, then restart: nothing acknowledged is lost.

Several client threads (each its own connection, several messages per
connection, then a new connection) send numbered messages. The server is
killed with SIGKILL once about a third of them have been answered 250, then
restarted on the same data directory; the clients carry on against the new
process. Afterwards:
  - every message answered 250 is in each of its recipients' Maildir new/;
  - every file in new/ is a complete message, byte for byte the one sent
    (nothing half-written, nothing garbled);
  - duplicates are counted and printed (allowed: at least once), losses fail.
"""

import os
import re
import threading
import time

import tern_harness as th

if th.SANITIZED:
    TOTAL, THREADS = 600, 4
else:
    TOTAL, THREADS = 3000, 6
PER_CONNECTION = 5
USERS = ["u%d@localhost" % i for i in range(4)]
RUN_DEADLINE = 240 * th.SLOW


def recipients(i):
    rcpts = [USERS[i % len(USERS)]]
    if i % 7 == 0:
        rcpts.append(USERS[(i + 1) % len(USERS)])
    return rcpts


def content(i):
    lines = [b"From: load@localhost", b"To: %s" % ", ".join(recipients(i)).encode(),
             b"Subject: crash %d" % i, b"Message-ID: <crash-%d@client.test>" % i, b""]
    lines += [b"message %d line %d %s" % (i, k, b"x" * (i % 50)) for k in range(1 + i % 40)]
    lines.append(b"END %d" % i)
    return b"\r\n".join(lines) + b"\r\n"


class Load:
    def __init__(self, srv):
        self.srv = srv
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
            if self.next >= TOTAL:
                return None
            self.next += 1
            self.attempted.add(self.next - 1)
            return self.next - 1


    def acked_count(self):
        with self.lock:
            return len(self.acked)

    def send_one(self, c, i):
        """Returns True on 250, False on a refusal; raises on a broken connection."""
        r = c.cmd("MAIL FROM:<load@localhost>")
        if r.code != 250:
            return False
        for rc in recipients(i):
            if c.cmd("RCPT TO:<%s>" % rc).code != 250:
                return False
        if c.cmd("DATA").code != 354:
            return False
        c.send(content(i) + b".\r\n")
        r = c.reply()
        if r.code == 250:
            with self.lock:
                self.acked.add(i)
            return True
        return False

    def worker(self):
        for _ in range(TOTAL * 4):
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
                    if not self.send_one(c, i):
                        with self.lock:
                            self.errors.append("message %d refused" % i)
                        c.cmd("RSET")
                c.cmd("QUIT")
            except (th.Closed, OSError, TimeoutError, AssertionError):
                pass  # the server was killed under us; reconnect
            finally:
                c.close()


def number_of(rest):
    m = re.search(rb"^Subject: crash (\d+)$", rest, re.M)
    return int(m.group(1)) if m else None


def test_kill9_under_load_loses_nothing(tern_server):
    srv = tern_server(users=USERS, config={"log_level": "info", "retry_initial": "1s", "retry_max": "2s"})
    load = Load(srv)
    threads = [threading.Thread(target=load.worker, daemon=True) for _ in range(THREADS)]
    for t in threads:
        t.start()
    try:
        th.wait_until(lambda: load.acked_count() >= TOTAL // 3 or not any(t.is_alive() for t in threads),
                      RUN_DEADLINE, "a third of the messages to be acknowledged", srv.log_tail, interval=0.01)
        load.up.clear()
        srv.kill9()
        acked_at_kill = load.acked_count()
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
    acked = set(load.acked)
    print("\ncrash: %d messages acknowledged (%d before the kill), %d attempted"
          % (len(acked), acked_at_kill, len(load.attempted)))
    assert acked_at_kill >= TOTAL // 3
    assert len(acked) >= TOTAL * 0.9, "too few messages acknowledged after the restart: %d" % len(acked)

    # Wait until every acknowledged message is in each recipient's mailbox.
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
    assert not broken, "files in new/ that are not complete messages:\n" + "\n".join(broken[:20])
    assert not lost, "%d acknowledged deliveries lost, e.g. %r%s" % (len(lost), lost[:20], srv.log_tail())

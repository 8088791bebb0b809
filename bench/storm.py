#!/usr/bin/python3
"""storm.py - how long tern takes to answer the end of DATA while a bounce storm runs.

Started by `bench/run.sh --bounce-storm TERN_BINARY`. A steady submission load (SESSIONS
connections, each sending message after message to a local mailbox with a pause between them)
is timed per message from the moment the client has written the final "." CRLF to the moment
the 250 reply is read. Two phases: first while nothing else happens ("quiet"), then while
STORM_N recipients fail at once ("storm"): they were queued beforehand for storm.test, whose
route then pointed at an smtp-sink that answers 450 to every RCPT, so each was deferred; for the
storm the route is changed (configuration file and SIGHUP) to an smtp-sink that answers 550 to
every RCPT and `tern queue flush storm.test` makes them all due. (A route where nothing listens
would not do: tern then leaves the destination alone for minutes, flush or not.) Each 550
makes the store compose a bounce to the sender, a local mailbox.
The figure is the ratio of the two phases' p99 latencies.

A first row runs the same client against an smtp-sink (it answers at once): the latency the
client and loopback TCP add by themselves, so that a client too slow to measure shows.

The helpers for processes, tern and smtp-sink come from bench.py. Every load run is bounded in
time, every wait by a deadline; every server is one we started and is stopped by PID; the
temporary directory is removed at the end unless BENCH_KEEP=1. See bench/README.md.
"""

import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True  # importing bench.py must not write into the repository
import bench as B  # noqa: E402

TERN_HOST, DEFER_SINK, CEILING_SINK, REJECT_SINK = (
    "127.0.1.40", "127.0.1.41", "127.0.1.42", "127.0.1.43")
HOSTS = (TERN_HOST, DEFER_SINK, CEILING_SINK, REJECT_SINK)
SENDER = "sender@bench.test"  # local: the bounces come back to its mailbox
RCPT = "sink@bench.test"  # the steady load's recipient
STORM_RCPT = "rcpt@storm.test"  # smtp-source -N makes 1rcpt@, 2rcpt@, ...

SESSIONS = int(os.environ.get("BENCH_STORM_SESSIONS", "10"))
GAP = float(os.environ.get("BENCH_STORM_GAP", "0.05"))  # pause between a session's messages
SIZE = int(os.environ.get("BENCH_STORM_SIZE", "5120"))  # body bytes, steady load and storm
STORM_N = int(os.environ.get("BENCH_STORM_N", "5000"))
SECONDS = float(os.environ.get("BENCH_STORM_SECONDS", "20"))  # quiet phase, and storm at least
STORM_TIMEOUT = float(os.environ.get("BENCH_STORM_TIMEOUT", "180"))  # longest storm phase
QUEUE_TIMEOUT = 300  # longest time to queue and defer the storm's messages
WARMUP = 2.0  # seconds of load before the flush
REPLY_TIMEOUT = 60  # one reply, at most
REJECT = "550 5.1.1 Error: no such user here"


def log(msg):
    B.log(msg)


class BenchError(B.BenchError):
    pass


# ---------------------------------------------------------------- the steady load


def message(seq):
    """One message: headers and a body of SIZE bytes in 78-character lines."""
    head = ("From: <%s>\r\nTo: <%s>\r\nSubject: storm bench %d\r\n"
            "Date: Tue, 08 Dec 2026 00:00:00 +0000\r\nMessage-ID: <%d.storm@client.test>\r\n\r\n"
            % (SENDER, RCPT, seq, seq)).encode()
    line = b"x" * 76 + b"\r\n"
    body = line * (SIZE // len(line)) + b"y" * (SIZE % len(line))
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    return head + body + b".\r\n"


class Session(threading.Thread):
    """One connection sending message after message until stop is set; records, per message,
    (monotonic time the final "." CRLF was written, seconds until the 250 was read)."""

    def __init__(self, host, port, stop, n):
        super().__init__(daemon=True)
        self.addr = (host, port)
        self.stop = stop
        self.n = n
        self.samples = []
        self.errors = []
        self.sock = None
        self.buf = b""

    def reply(self):
        while True:
            end = self.buf.find(b"\r\n")
            while end >= 0:
                line, self.buf = self.buf[:end], self.buf[end + 2:]
                if len(line) >= 4 and line[3:4] == b" ":
                    return line[:3]
                end = self.buf.find(b"\r\n")
            chunk = self.sock.recv(65536)
            if not chunk:
                raise OSError("connection closed")
            self.buf += chunk

    def expect(self, want, what):
        code = self.reply()
        if code != want:
            raise OSError("%s: %s" % (what, code.decode(errors="replace")))

    def connect(self):
        self.sock = socket.create_connection(self.addr, timeout=REPLY_TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.expect(b"220", "greeting")
        self.sock.sendall(b"EHLO client.test\r\n")
        self.expect(b"250", "EHLO")

    def one(self, seq):
        s = self.sock
        s.sendall(b"MAIL FROM:<%s>\r\n" % SENDER.encode())
        self.expect(b"250", "MAIL")
        s.sendall(b"RCPT TO:<%s>\r\n" % RCPT.encode())
        self.expect(b"250", "RCPT")
        s.sendall(b"DATA\r\n")
        self.expect(b"354", "DATA")
        s.sendall(message(seq))
        t0 = time.monotonic()
        self.expect(b"250", "end of DATA")
        self.samples.append((t0, time.monotonic() - t0))

    def run(self):
        seq = self.n * 1000000
        while not self.stop.is_set():
            try:
                if self.sock is None:
                    self.connect()
                seq += 1
                self.one(seq)
            except OSError as e:
                self.errors.append(str(e))
                self.close()
                if len(self.errors) > 100:
                    return
            self.stop.wait(GAP)
        self.close()

    def close(self):
        if self.sock:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None


class Load:
    """SESSIONS sessions against host:port, from start() to finish()."""

    def __init__(self, host, port):
        self.stop = threading.Event()
        self.sessions = [Session(host, port, self.stop, i) for i in range(SESSIONS)]

    def start(self):
        self.t0 = time.monotonic()
        self.cpu0 = cpu_self()
        for s in self.sessions:
            s.start()

    def finish(self):
        self.stop.set()
        for s in self.sessions:
            s.join(timeout=REPLY_TIMEOUT + 10)
        self.t1 = time.monotonic()
        self.cpu = cpu_self() - self.cpu0

    def samples(self, since=0.0, until=float("inf")):
        return sorted(lat for s in self.sessions for t, lat in s.samples if since <= t < until)

    def errors(self):
        return [e for s in self.sessions for e in s.errors]


def cpu_self():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def percentile(xs, p):
    """Nearest-rank percentile of the sorted list xs (None when empty)."""
    if not xs:
        return None
    k = max(0, min(len(xs) - 1, int(-(-p * len(xs) // 100)) - 1))
    return xs[k]


def figures(load, since, until, stall=None):
    lat = load.samples(since, until)
    secs = max(1e-9, min(until, load.t1) - max(since, load.t0))
    return {"n": len(lat), "rate": len(lat) / secs, "secs": secs,
            "p50": percentile(lat, 50), "p99": percentile(lat, 99), "max": lat[-1] if lat else None,
            "errors": load.errors(), "client_cpu": 100.0 * load.cpu / max(1e-9, load.t1 - load.t0),
            "stall": stall}


# ---------------------------------------------------------------- tern


class StormTern(B.Tern):
    """tern with a local sender and sink, and storm.test routed to an smtp-sink."""

    logs_ready = False  # log_level = warning

    def __init__(self, top, binary, port, sink):
        super().__init__(top, binary, port, TERN_HOST)
        self.route_to(sink)
        self.bounces = os.path.join(self.data, "mail", "bench.test", "sender", "new")

    def route_to(self, sink):
        """route_to - storm.test to sink from now on: the configuration file, then, when tern
        runs, SIGHUP; tern answers the SIGUSR1 sent after it only once it has reloaded."""
        text = open(os.path.join(B.HERE, "tern-storm.conf.in")).read()
        for k, v in (("@DATA@", self.data), ("@LISTEN@", "%s:%d" % (TERN_HOST, self.port)),
                     ("@SINK_HOST@", sink.host), ("@SINK_PORT@", str(sink.port))):
            text = text.replace(k, v)
        with open(self.conf, "w") as f:
            f.write(text)
        if self.alive():
            self.proc.send_signal(signal.SIGHUP)
            if self.loop_stats() is None:
                raise BenchError("tern did not answer SIGUSR1 after SIGHUP")

    def add_user(self):
        for address in (RCPT, SENDER):
            r = subprocess.run([self.binary, "-c", self.conf, "user", "add", address],
                               stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=60)
            if r.returncode != 0:
                raise BenchError("tern user add %s failed: %s%s" % (address, r.stdout, r.stderr))
        self.user_added = True

    def cli(self, *args, timeout=120):
        return subprocess.run([self.binary, "-c", self.conf] + list(args),
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout)

    def count(self, state):
        """Recipients in state (`tern queue list --json --state STATE`); -1 if unknown."""
        r = self.cli("queue", "list", "--json", "--state", state)
        try:
            return len(json.loads(r.stdout)) if r.returncode == 0 else -1
        except ValueError:
            return -1

    def bounced(self):
        return B.count_files(self.bounces)

    def roots(self):
        return [self.proc.pid] if self.proc else []


def wait_for(what, predicate, limit):
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise BenchError("no %s within %ds" % (what, limit))
        time.sleep(0.5)


def queue_storm(tern):
    """STORM_N messages from SENDER, one recipient each in storm.test, all deferred
    (their route answers 450 to RCPT)."""
    t0 = time.monotonic()
    dt, err = B.smtp_source(tern.port, SESSIONS, STORM_N, True, QUEUE_TIMEOUT, host=tern.host,
                            length=SIZE, rcpt=STORM_RCPT, sender=SENDER, numbered=True)
    if err:
        raise BenchError("queueing the storm: smtp-source: %s" % err)
    wait_for("%d deferred recipients" % STORM_N, lambda: tern.count("deferred") >= STORM_N,
             QUEUE_TIMEOUT - (time.monotonic() - t0))
    log("  %d messages queued and deferred in %.1fs" % (STORM_N, time.monotonic() - t0))


def run_quiet(tern):
    tern.loop_stats()
    load = Load(tern.host, tern.port)
    load.start()
    load.stop.wait(SECONDS)
    load.finish()
    return figures(load, load.t0, load.t1, tern.loop_stats())


def run_storm(tern, sink):
    """The load, a flush of storm.test after WARMUP seconds, and the load on until every
    bounce is in the sender's mailbox (at least SECONDS, at most STORM_TIMEOUT)."""
    tern.route_to(sink)
    load = Load(tern.host, tern.port)
    load.start()
    load.stop.wait(WARMUP)
    tern.loop_stats()
    r = tern.cli("queue", "flush", "storm.test")
    flushed = time.monotonic()
    if r.returncode != 0:
        load.finish()
        raise BenchError("tern queue flush storm.test: %s%s" % (r.stdout, r.stderr))
    done = None
    deadline = flushed + STORM_TIMEOUT
    while time.monotonic() < deadline and load.sessions[0].is_alive():
        if done is None and tern.bounced() >= STORM_N:
            done = time.monotonic()
        if done is not None and time.monotonic() >= flushed + SECONDS:
            break
        time.sleep(0.2)
    storm_end = done if done is not None else time.monotonic()
    stall = tern.loop_stats()
    load.finish()
    res = figures(load, flushed, storm_end, stall)
    res["storm_secs"] = (done - flushed) if done is not None else None
    res["bounced"] = tern.bounced()
    res["left"] = tern.count("deferred")
    return res


def run_ceiling(top):
    """The client against an smtp-sink: what the client and loopback add by themselves."""
    sink = B.Sink(top, B.free_port(CEILING_SINK), CEILING_SINK, "sink-ceiling")
    sink.start()
    try:
        load = Load(sink.host, sink.port)
        load.start()
        load.stop.wait(min(SECONDS, 10))
        load.finish()
        return figures(load, load.t0, load.t1)
    finally:
        sink.stop()


# ---------------------------------------------------------------- report


def ms(x):
    return "-" if x is None else "%.1f" % (1000.0 * x)


def report(meta, rows):
    lines = [
        "tern bounce-storm bench, %s" % meta["date"],
        "machine: %s CPUs, %s MiB RAM, kernel %s; storage: %s" %
        (meta["cpus"], meta["mem"], meta["kernel"], meta["fs"]),
        "tern %s: listen %s, local mailboxes %s and %s, storm.test routed to smtp-sink %s "
        "(450 to every RCPT) while the storm is queued, then to smtp-sink %s (550 to every "
        "RCPT), log_level warning" %
        (meta["tern"], meta.get("listen", "-"), RCPT, SENDER, meta.get("defer_sink", "-"),
         meta.get("storm_sink", "-")),
        "load: %d sessions, each sending message after message on its connection (MAIL, RCPT, "
        "DATA, %d-byte body) with %gs between them, to %s; latency: final \".\" CRLF written "
        "to 250 read; load average at start %s, at the end %s" %
        (SESSIONS, SIZE, GAP, RCPT, meta["load"], meta.get("load_end", "?")),
        "storm: %d messages from %s, one recipient each in storm.test, queued and deferred "
        "beforehand, made due at once by `tern queue flush storm.test` %gs into the phase; the "
        "phase's figures cover the flush until the last bounce is in the sender's mailbox" %
        (STORM_N, SENDER, WARMUP),
        "",
        "End of DATA to 250, ms; stall: tern's longest event-loop stall in the phase, ms "
        "(in brackets: stalls of 100 ms or more); client CPU: the load client's CPU time as "
        "a % of one CPU",
    ]
    table = []
    for name, x in rows:
        if x is None:
            continue
        if "err" in x:
            table.append([name] + ["FAIL"] + ["-"] * 7)
            continue
        table.append([name, str(x["n"]), "%.0f" % x["rate"], ms(x["p50"]), ms(x["p99"]),
                      ms(x["max"]), str(len(x["errors"])), B.fmt_stall(x),
                      "%.0f" % x["client_cpu"]])
    lines.append(B.table(table, ["phase", "msgs", "msg/s", "p50", "p99", "max", "errors",
                                 "stall ms", "client CPU %"]))
    d = dict(rows)
    q, s = d.get("tern quiet"), d.get("tern storm")
    if q and s and "err" not in q and "err" not in s and q["p99"] and s["p99"]:
        lines.append("")
        lines.append("storm p99 / quiet p99: %.2f (target after the core rebuild: at most 2)" %
                     (s["p99"] / q["p99"]))
    if s and "err" not in s:
        lines.append("storm: %s bounces in %s's mailbox %s after the flush; %s recipients "
                     "still deferred at the end" %
                     (s["bounced"], SENDER,
                      "%.1fs" % s["storm_secs"] if s["storm_secs"] is not None
                      else "not all %ds" % STORM_TIMEOUT, s["left"]))
    for name, x in rows:
        if x and "err" in x:
            lines.append("FAIL %s: %s" % (name, x["err"]))
        elif x and x["errors"]:
            lines.append("note: %s: %d session errors, first: %s" % (name, len(x["errors"]),
                                                                     x["errors"][0]))
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- main


def main(argv):
    binary = B.start_checks(argv, "--bounce-storm", ["tern"], (B.SMTP_SOURCE, B.SMTP_SINK),
                            root_why="smtp-sink drops privileges to nobody")
    if binary is None:
        return 2
    top = tempfile.mkdtemp(prefix="tern-bench-storm.")
    os.chmod(top, 0o755)
    servers, rows = [], []
    def run():
        rc = 0
        meta = B.meta_info(top)
        rows.append(("client -> smtp-sink", run_ceiling(top)))
        defer_sink = B.Sink(top, B.free_port(DEFER_SINK), DEFER_SINK, "sink-defer")
        reject_sink = B.Sink(top, B.free_port(REJECT_SINK), REJECT_SINK, "sink-reject")
        for sink, options in ((defer_sink, ["-r", "RCPT"]),
                              (reject_sink, ["-f", "RCPT", "-B", REJECT])):
            servers.append(sink)
            sink.start(options=options)
        tern = StormTern(top, binary, B.free_port(TERN_HOST), defer_sink)
        meta["tern"] = "(binary sha256 %s)" % B.sha256_short(binary)
        meta["listen"] = "%s:%d" % (tern.host, tern.port)
        meta["defer_sink"] = "%s:%d" % (defer_sink.host, defer_sink.port)
        meta["storm_sink"] = "%s:%d" % (reject_sink.host, reject_sink.port)
        servers.append(tern)
        log("starting tern on %s" % meta["listen"])
        tern.start()
        if not tern.has_looplag():
            raise BenchError("%s has no loop-lag monitor (SIGUSR1, event=loop_stats)" % binary)
        B.check_listeners(servers, HOSTS)
        log("queueing %d messages for storm.test (its route answers 450 to RCPT)" % STORM_N)
        queue_storm(tern)
        log("quiet phase: %gs" % SECONDS)
        try:
            rows.append(("tern quiet", run_quiet(tern)))
        except (BenchError, OSError) as e:
            rows.append(("tern quiet", {"err": str(e)}))
        log("storm phase: flush storm.test after %gs" % WARMUP)
        try:
            rows.append(("tern storm", run_storm(tern, reject_sink)))
        except (BenchError, OSError) as e:
            rows.append(("tern storm", {"err": str(e)}))
        meta["load_end"] = " ".join(open("/proc/loadavg").read().split()[:3])
        B.write_report(report(meta, rows), "bench-bounce-storm")
        if any("err" in x or x["errors"] for _, x in rows):
            rc = 1
        return rc

    return B.guarded(run, servers, top)


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/python3
"""relay.py - tern against Postfix as a relay, end to end, in one run.

Started by `bench/run.sh --relay TERN_BINARY`. smtp-source sends to the server under test,
which relays every message to its own smtp-sink: tern with `relay_networks` and `smarthost`,
a private Postfix instance with `mynetworks` and `relayhost`. Both listen, and their sinks
listen, on their own addresses in 127.0.1.0/24. The figure is messages per second from the
start of smtp-source until the server's sink has received all N messages, counted from
smtp-sink's own running counters (`-c`). Also measured: server CPU per message, peak memory,
messages the sink received (loss, duplicates) and connections the server opened to the sink.
A third row sends straight into an smtp-sink: the ceiling of the load tool. See
bench/README.md.

The helpers for processes, memory, CPU, smtp-source, tern and Postfix come from bench.py.
Every load run is bounded by a message count and by timeout(1), every wait by a deadline;
every server is one we started and is stopped by PID (Postfix with `postfix -c DIR stop`);
the temporary directory is removed at the end unless BENCH_KEEP=1.
"""

import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True  # importing bench.py must not write into the repository
import bench as B  # noqa: E402

# Loopback addresses of their own, outside 127.0.0.0/24.
TERN_HOST, TERN_SINK = "127.0.1.10", "127.0.1.11"
POSTFIX_HOST, POSTFIX_SINK = "127.0.1.20", "127.0.1.21"
DIRECT_SINK = "127.0.1.30"
HOSTS = (TERN_HOST, TERN_SINK, POSTFIX_HOST, POSTFIX_SINK, DIRECT_SINK)

RCPT = "sink@relay.test"  # a domain neither server delivers locally
SECONDS = float(os.environ.get("BENCH_RELAY_SECONDS", "20"))
MIN_SECONDS = float(os.environ.get("BENCH_RELAY_MIN_SECONDS", "8"))
CONCURRENCY = [int(x) for x in os.environ.get("BENCH_RELAY_CONCURRENCY", "10 50").split()]
SIZES = [int(x) for x in os.environ.get("BENCH_RELAY_SIZES", "5120 102400").split()]
REUSE = os.environ.get("BENCH_RELAY_REUSE", "") == "1"  # smtp-source -d
# --big: fixed counts of big messages, no calibration (bench/README.md, "Big messages")
BIG_SIZES = [int(x) for x in os.environ.get("BENCH_BIG_SIZES", "1048576 10485760").split()]
BIG_COUNTS = [int(x) for x in os.environ.get("BENCH_BIG_COUNTS", "200 100").split()]
BIG_SESSIONS = int(os.environ.get("BENCH_BIG_SESSIONS", "50"))
BIG_TIMEOUT = float(os.environ.get("BENCH_BIG_TIMEOUT", "300"))  # one run, start to sink
SERVERS = os.environ.get("BENCH_SERVERS", "sink postfix tern").split()
DEST_CONCURRENCY = 100  # Postfix default_destination_concurrency_limit (its default: 20)
BIG_RSS_TARGET_MIB = 256  # tern's peak RSS target once bodies are streamed
MAX_MSGS = 200000  # upper bound on one run's message count
CAL_MIN = 3.0  # a calibration run shorter than this is done again with more messages
CAL_TIMEOUT = 60  # timeout(1) bound on one calibration smtp-source
MAX_SECONDS = 3 * SECONDS  # the slower server's run is sized for at most this long
SOURCE_TIMEOUT = MAX_SECONDS + 60  # timeout(1) bound on one measured smtp-source
DELIVER_TIMEOUT = MAX_SECONDS + SECONDS + 120  # longest time from the start until the sink has all
SETTLE_TIMEOUT = 60  # longest wait for an empty queue and no connection to the sink
SHORT = 0.75 * SECONDS  # the slower server's run under this gets a note


def log(msg):
    B.log(msg)


class BenchError(B.BenchError):
    pass


# ---------------------------------------------------------------- the sinks


class CountingSink(B.Sink):
    """smtp-sink -c: its counters (sessions ended, QUITs, messages) are read as they change.

    smtp-sink prints "sess=S quit=Q mesg=M" and a carriage return, and flushes, whenever a
    session ends, QUIT is received or a message's final "." is. A thread reads them from a
    pipe; watch(M) asks for the monotonic time at which the message counter first reached M.
    """

    def __init__(self, top, port, host, name):
        super().__init__(top, port, host, name)
        self.cond = threading.Condition()
        self.sess = self.quit = self.mesg = 0
        self.target = None
        self.reached_at = None
        self.reader = None

    def start(self):
        super().start(options=["-c"], stdout=subprocess.PIPE)
        self.reader = threading.Thread(target=self.read, daemon=True)
        self.reader.start()

    def read(self):
        fd = self.proc.stdout.fileno()
        buf = b""
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                return
            now = time.monotonic()
            buf += chunk
            *records, buf = buf.split(b"\r")
            last = None
            for rec in records:
                fields = dict(w.split(b"=", 1) for w in rec.split() if b"=" in w)
                try:
                    last = (int(fields[b"sess"]), int(fields[b"quit"]), int(fields[b"mesg"]))
                except (KeyError, ValueError):
                    continue
            if last is None:
                continue
            with self.cond:
                self.sess, self.quit, self.mesg = last
                if self.target is not None and self.reached_at is None and \
                        self.mesg >= self.target:
                    self.reached_at = now
                self.cond.notify_all()

    def counts(self):
        with self.cond:
            return self.sess, self.mesg

    def watch(self, target):
        with self.cond:
            self.target = target
            self.reached_at = now = time.monotonic() if self.mesg >= target else None
            return now

    def wait_reached(self, deadline):
        """wait_reached - when the watched count was reached, or None by the deadline."""
        with self.cond:
            while self.reached_at is None:
                left = deadline - time.monotonic()
                if left <= 0 or not self.alive():
                    return None
                self.cond.wait(min(left, 1.0))
            return self.reached_at

    def open_conns(self):
        """open_conns - TCP connections established to this sink now."""
        r = subprocess.run(["ss", "-Htn", "state", "established"], capture_output=True,
                           text=True, timeout=30)
        me = "%s:%d" % (self.host, self.port)
        return sum(1 for line in r.stdout.splitlines() if me in line.split()[:4])

    def roots(self):
        return [self.proc.pid]

    def queued(self):
        return 0

    def stop(self):
        super().stop()
        if self.reader:
            self.reader.join(timeout=10)


# ---------------------------------------------------------------- the relays


class RelayTern(B.Tern):
    """tern relaying for 127.0.0.0/8 to a smarthost: tern-relay.conf.in."""

    logs_ready = False  # log_level = warning

    def __init__(self, top, binary, port, host, sink):
        super().__init__(top, binary, port, host)
        self.sink = sink
        self.user_added = True  # no local mailbox: every recipient is relayed
        text = open(os.path.join(B.HERE, "tern-relay.conf.in")).read()
        for k, v in (("@DATA@", self.data), ("@LISTEN@", "%s:%d" % (host, port)),
                     ("@MAXCONN@", str(max(CONCURRENCY) + 1000)),
                     ("@SINK_HOST@", sink.host), ("@SINK_PORT@", str(sink.port))):
            text = text.replace(k, v)
        with open(self.conf, "w") as f:
            f.write(text)

    def roots(self):
        return [self.proc.pid] if self.proc else []

    def queued(self):
        """queued - messages in tern's queue (`tern queue list --json`); -1 if unknown."""
        r = subprocess.run([self.binary, "-c", self.conf, "queue", "list", "--json"],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        try:
            return len(json.loads(r.stdout)) if r.returncode == 0 else -1
        except ValueError:
            return -1


class RelayPostfix(B.Postfix):
    """The private Postfix instance as a relay: postfix/relay.cf.in and an smtp(8) service."""

    def __init__(self, top, port, host, sink):
        super().__init__(top, port, host)
        self.sink = sink
        text = open(os.path.join(B.HERE, "postfix", "relay.cf.in")).read()
        for k, v in (("@SINK_HOST@", sink.host), ("@SINK_PORT@", str(sink.port)),
                     ("@DEST_CONCURRENCY@", str(DEST_CONCURRENCY))):
            text = text.replace(k, v)
        settings = [line.strip() for line in text.splitlines()
                    if line.strip() and not line.lstrip().startswith("#")]
        settings = ["%s=%s" % tuple(x.strip() for x in s.split("=", 1)) for s in settings]
        r = subprocess.run([B.POSTCONF, "-c", self.conf, "-e"] + settings,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise BenchError("postconf -e failed: %s%s" % (r.stdout, r.stderr))
        with open(os.path.join(self.conf, "master.cf"), "a") as f:
            f.write("# relay.py: the SMTP client, for relayhost\n"
                    "smtp           unix  -       -       n       -       -       smtp\n")

    def roots(self):
        return [self.master] if self.master else []

    def setting(self, name):
        r = subprocess.run([B.POSTCONF, "-c", self.conf, "-h", name], capture_output=True,
                           text=True, timeout=30)
        return r.stdout.strip() or "?"


# ---------------------------------------------------------------- runs


def label(sc):
    size, sessions = sc
    if size >= 1 << 20:
        mb = size / 1048576.0
        return "%s MiB s=%d" % (("%d" % mb) if mb == int(mb) else ("%.1f" % mb), sessions)
    kb = size / 1024.0
    return "%s KB s=%d" % (("%d" % kb) if kb == int(kb) else ("%.1f" % kb), sessions)


def settle(server, sink):
    """settle - wait (bounded) until the server's queue is empty and nothing is connected to
    its sink (Postfix keeps cached connections open for a while); then sync(2). Returns
    (messages still queued, connections still open) at the end of the wait."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while True:
        queued = server.queued() if server is not sink else 0
        conns = sink.open_conns()
        if (queued == 0 and conns == 0) or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    os.sync()
    time.sleep(0.5)
    return queued, conns


def run_once(server, sessions, size, msgs, calibrating=False, limit=None):
    """run_once - msgs messages through server to its sink; the rate is msgs / seconds from the
    start of smtp-source until the sink's message counter reached msgs more than before.
    limit bounds smtp-source and the wait for the sink together (seconds), instead of the
    defaults. For tern the run's longest loop stall is asked for at both ends (SIGUSR1)."""
    sink = server.sink
    res = {"msgs": msgs, "err": None, "rate": None}
    settle(server, sink)
    looplag = isinstance(server, B.Tern) and not calibrating
    if looplag:
        server.loop_stats()  # the window starts here
    sess0, mesg0 = sink.counts()
    sink.watch(mesg0 + msgs)
    roots = server.roots()
    hwm_ok = isinstance(server, B.Tern) and server.reset_peak()
    sampler = B.Sampler(roots)
    cpu0 = [B.cpu_snapshot(r) for r in roots]
    sink0 = B.cpu_snapshot(sink.proc.pid) if sink is not server else None
    busy0, own0 = B.sys_busy(), B.own_cpu()
    sampler.start()
    t0 = time.monotonic()
    source_limit = limit or (CAL_TIMEOUT if calibrating else SOURCE_TIMEOUT)
    dt, err = B.smtp_source(server.port, sessions, msgs, REUSE, source_limit,
                            host=server.host, length=size, rcpt=RCPT)
    # after a failed smtp-source the sink cannot get them all; do not wait long for it
    reached = sink.wait_reached(time.monotonic() + 10 if err else t0 + (limit or DELIVER_TIMEOUT))
    end = reached if reached is not None else time.monotonic()
    if looplag:
        res["stall"] = server.loop_stats()
    cpu1 = [B.cpu_snapshot(r) for r in roots]
    sink1 = B.cpu_snapshot(sink.proc.pid) if sink0 else None
    busy, own = B.sys_busy() - busy0, B.own_cpu() - own0
    elapsed = time.monotonic() - t0
    sampler.finish()
    server_cpu = sum(B.cpu_seconds(a, b) for a, b in zip(cpu0, cpu1))
    sink_cpu = B.cpu_seconds(sink0, sink1) if sink0 else 0.0
    res["accept"] = dt
    res["secs"] = end - t0
    res["cpu_ms"] = 1000.0 * server_cpu / msgs
    res["other"] = 100.0 * max(0.0, busy - own - server_cpu - sink_cpu) / (
        os.cpu_count() * elapsed)
    res["rss"], res["pss"] = sampler.peak_rss, sampler.peak_pss
    if hwm_ok:
        res["rss"] = max(res["rss"], server.hwm())
    if err:
        res["err"] = "smtp-source: " + err
    elif reached is None:
        res["err"] = "the sink had %d of %d messages %ds after the start" % (
            sink.counts()[1] - mesg0, msgs, int(limit or DELIVER_TIMEOUT))
    else:
        res["rate"] = msgs / res["secs"]
    if not server.alive():
        res["err"] = (res["err"] or "") + " (server died)"
    # what the sink saw in all, once the server is idle and has closed its connections
    queued, still_open = settle(server, sink)
    sess1, mesg1 = sink.counts()
    res["got"] = mesg1 - mesg0
    res["conns"] = sess1 - sess0 + still_open
    res["queued"] = queued
    return res


def calibrate(server, sessions, size):
    """calibrate - end-to-end rate of server from short runs (each one at least CAL_MIN s)."""
    msgs = max(400, 40 * sessions)
    rate = None
    for _ in range(3):
        res = run_once(server, sessions, size, msgs, calibrating=True)
        if res["err"]:
            raise BenchError("%s calibration (%s): %s" % (server.name, label((size, sessions)),
                                                        res["err"]))
        rate = res["rate"]
        if res["secs"] >= CAL_MIN:
            break
        msgs = min(MAX_MSGS, int(rate * (CAL_MIN + 1)) + 1)
    return rate


def run_length(rates, sessions):
    """run_length - N for a scenario: SECONDS of the slower server, and MIN_SECONDS of the
    faster one if that is more, but not over MAX_SECONDS of the slower one."""
    slow, fast = min(rates.values()), max(rates.values())
    n = min(max(slow * SECONDS, fast * MIN_SECONDS), slow * MAX_SECONDS)
    return max(2 * sessions, min(MAX_MSGS, int(math.ceil(n))))


def failed(err):
    return {"err": err, "msgs": 0, "secs": 0, "rate": None}


# ---------------------------------------------------------------- report


def run_lines(results, scenarios):
    """The per-run table: times, what the sink got, connections, tern's longest loop stall."""
    lines = ["Per run: seconds until smtp-source had all N accepted, seconds until the "
             "sink had all N, messages the sink received, connections opened to the "
             "sink, other CPU % (not server, sink, load tool or driver); tern's longest "
             "event-loop stall in ms during the run (in brackets: stalls of 100 ms or more)"]
    rows = []
    for sc in scenarios:
        row = [label(sc)]
        for name in ("tern", "postfix", "sink"):
            x = results.get((name, sc))
            width = {"tern": 6, "postfix": 5, "sink": 2}[name]
            if not x or "accept" not in x:
                row += ["-"] * width
                continue
            if name == "sink":
                row += ["%.1f" % x["secs"], "%.0f" % x["other"]]
                continue
            row += ["%.1f" % x["accept"], "%.1f" % x["secs"], "%d/%d" % (x["got"], x["msgs"]),
                    str(x["conns"]), "%.0f" % x["other"]]
            if name == "tern":
                row.append(B.fmt_stall(x))
        rows.append(row)
    lines.append(B.table(rows, ["scenario", "tern acc s", "e2e s", "sink got", "conns", "other%",
                                "stall ms", "postfix acc s", "e2e s", "sink got", "conns",
                                "other%", "sink e2e s", "other%"]))
    return lines


def problem_lines(results, scenarios):
    """FAIL lines, and notes on lost, duplicated or still queued messages."""
    lines = []
    order = ("sink", "postfix", "tern")
    for (name, sc), x in sorted(results.items(),
                                key=lambda i: (scenarios.index(i[0][1]), order.index(i[0][0]))):
        if x.get("err"):
            lines.append("FAIL %s %s: %s" % (name, label(sc), x["err"]))
        if "got" in x and x["got"] != x["msgs"]:
            lines.append("note: %s %s: the sink received %d messages for %d sent (%s)" % (
                name, label(sc), x["got"], x["msgs"],
                "lost" if x["got"] < x["msgs"] else "duplicates or bounces"))
        if x.get("queued"):
            lines.append("note: %s %s: %s messages still queued %ds after the run" % (
                name, label(sc), "unknown number of" if x["queued"] < 0 else x["queued"],
                SETTLE_TIMEOUT))
    return lines


def run_ok(results, name, sc):
    """The run of server name in scenario sc, if it went well; else None."""
    x = results.get((name, sc))
    return x if x and not x.get("err") else None


def rate_text(results, name, sc, fmt):
    """The run's rate as fmt writes it; FAIL if it failed, - if it did not run."""
    x = run_ok(results, name, sc)
    if x:
        return fmt(x["rate"])
    return "FAIL" if (name, sc) in results else "-"


def header_lines(meta, kind):
    """The report's first lines: the machine and how each server is set up."""
    return [
        "tern %s, %s" % (kind, meta["date"]),
        "machine: %s CPUs, %s MiB RAM, kernel %s; storage: %s" %
        (meta["cpus"], meta["mem"], meta["kernel"], meta["fs"]),
        "tern %s: listen %s, relay_networks 127.0.0.0/8, smarthost %s (opportunistic "
        "STARTTLS, not offered), remote_* limits at their defaults" %
        (meta["tern"], meta.get("tern_listen", "-"), meta.get("tern_sink", "-")),
        "Postfix %s: private instance, listen %s, mynetworks 127.0.0.0/8, relayhost %s, "
        "default_destination_concurrency_limit %s, smtp_connection_cache_on_demand %s" %
        (meta["postfix"], meta.get("postfix_listen", "-"), meta.get("postfix_sink", "-"),
         meta.get("pf_conc", "-"), meta.get("pf_cache", "-")),
        "sink: smtp-source straight into smtp-sink %s (the load tool's ceiling)" %
        meta.get("direct", "-"),
    ]


def report(meta, results, scenarios, counts):
    fmt_mib, table = B.fmt_mib, B.table
    lines = header_lines(meta, "relay bench") + [
        "load: smtp-source, %s, HELO, 1 recipient, no pipelining; N messages per scenario "
        "from calibration runs: %gs of the slower server, or %gs of the faster one if more "
        "(at most %gs of the slower), the same N for each row; load average at start %s, "
        "after the runs %s" %
        ("one connection per session (-d)" if REUSE else "a new connection per message",
         SECONDS, MIN_SECONDS, MAX_SECONDS, meta["load"], meta.get("load_end", "?")),
        "",
        "Messages per second end to end: N / seconds from the start of smtp-source until the "
        "server's smtp-sink had received all N; server CPU ms per message (accepting and "
        "relaying); peak memory of the server's processes",
    ]

    def get(name, sc):
        return run_ok(results, name, sc)

    def rate(name, sc):
        return rate_text(results, name, sc, B.fmt_rate)

    rows = []
    for sc in scenarios:
        t, p = get("tern", sc), get("postfix", sc)
        ratio = "%.2f" % (t["rate"] / p["rate"]) if t and p else "-"
        rows.append([label(sc), str(counts.get(sc, "-")), rate("sink", sc), rate("tern", sc),
                     rate("postfix", sc), ratio,
                     "%.2f" % t["cpu_ms"] if t else "-", "%.2f" % p["cpu_ms"] if p else "-",
                     fmt_mib(t and t["rss"]), fmt_mib(p and p["rss"]),
                     fmt_mib(p and p["pss"])])
    lines.append(table(rows, ["scenario", "N", "sink/s", "tern/s", "postfix/s", "tern/postfix",
                              "tern cpu ms", "postfix cpu ms", "tern RSS MiB",
                              "postfix RSS MiB", "PSS"]))
    lines.append("")
    lines += run_lines(results, scenarios)
    lines += problem_lines(results, scenarios)
    for sc in scenarios:
        ran = [x["secs"] for x in (get("tern", sc), get("postfix", sc)) if x]
        if ran and max(ran) < SHORT:
            lines.append("note: %s: the slower server ran %.1fs (< %gs)" % (
                label(sc), max(ran), SHORT))
        if ran and min(ran) < 0.75 * MIN_SECONDS:
            lines.append("note: %s: the faster server ran %.1fs (< %gs)" % (
                label(sc), min(ran), 0.75 * MIN_SECONDS))
    return "\n".join(lines) + "\n"


def report_big(meta, results, scenarios, counts):
    """report_big - the --big report: rate, throughput and peak memory per message size."""
    fmt_mib, table = B.fmt_mib, B.table
    lines = header_lines(meta, "relay bench, big messages") + [
        "load: smtp-source -l SIZE (lines of 80 bytes), -s %d, %s, HELO, 1 recipient, no "
        "pipelining; fixed counts, no calibration, each run bounded by %gs; load average at "
        "start %s, after the runs %s" %
        (BIG_SESSIONS, "one connection per session (-d)" if REUSE else
         "a new connection per message", BIG_TIMEOUT, meta["load"], meta.get("load_end", "?")),
        "",
        "Messages per second end to end (as in --relay), MiB of bodies per second, peak memory "
        "of the server's processes (tern: one process; its target after the core rebuild is "
        "under %d MiB at any message size)" % BIG_RSS_TARGET_MIB,
    ]

    def get(name, sc):
        return run_ok(results, name, sc)

    def rate(name, sc):
        return rate_text(results, name, sc, lambda r: "%.1f" % r)

    def mibps(x, sc):
        return "%.1f" % (x["rate"] * sc[0] / 1048576.0) if x else "-"

    rows = []
    for sc in scenarios:
        t, p = get("tern", sc), get("postfix", sc)
        ratio = "%.2f" % (t["rate"] / p["rate"]) if t and p else "-"
        over = "-" if not t else ("yes" if t["rss"] / 1024.0 > BIG_RSS_TARGET_MIB else "no")
        rows.append([label(sc), str(counts.get(sc, "-")), rate("sink", sc), rate("tern", sc),
                     rate("postfix", sc), ratio, mibps(t, sc), mibps(p, sc),
                     fmt_mib(t and t["rss"]), over, fmt_mib(p and p["rss"]),
                     fmt_mib(p and p["pss"]),
                     "%.1f" % t["cpu_ms"] if t else "-", "%.1f" % p["cpu_ms"] if p else "-"])
    lines.append(table(rows, ["scenario", "N", "sink/s", "tern/s", "postfix/s", "tern/postfix",
                              "tern MiB/s", "postfix MiB/s", "tern RSS MiB",
                              "over %d" % BIG_RSS_TARGET_MIB, "postfix RSS MiB", "PSS",
                              "tern cpu ms", "postfix cpu ms"]))
    lines.append("")
    lines += run_lines(results, scenarios)
    lines += problem_lines(results, scenarios)
    return "\n".join(lines) + "\n"


def run_big(byname, results, counts):
    """run_big - each size once through every server, with its fixed count."""
    scenarios = [(size, BIG_SESSIONS) for size in BIG_SIZES]
    for sc, n in zip(scenarios, BIG_COUNTS):
        counts[sc] = n
        for name in ("sink", "postfix", "tern"):
            srv = byname.get(name)
            if not srv:
                continue
            log("%s: %s: %d messages" % (name, label(sc), n))
            if not srv.alive():
                results[(name, sc)] = failed("server not running")
                continue
            try:
                results[(name, sc)] = x = run_once(srv, BIG_SESSIONS, sc[0], n, limit=BIG_TIMEOUT)
            except B.BenchError as e:
                results[(name, sc)] = x = failed(str(e))
            log("  %.1fs: %s msg/s%s" % (x["secs"], "%.1f" % x["rate"] if x["rate"] else "-",
                                         " ERROR " + x["err"] if x["err"] else ""))
    return scenarios


# ---------------------------------------------------------------- main


def main(argv):
    big = len(argv) > 1 and argv[1] == "--big"
    if big:
        argv = argv[:1] + argv[2:]
        if len(BIG_SIZES) != len(BIG_COUNTS):
            print("bench: BENCH_BIG_SIZES and BENCH_BIG_COUNTS differ in length", file=sys.stderr)
            return 2
    binary = B.start_checks(argv, "--relay-big" if big else "--relay", SERVERS,
                            (B.SMTP_SOURCE, B.SMTP_SINK, B.POSTFIX, B.POSTCONF))
    if binary is None:
        return 2

    top = tempfile.mkdtemp(prefix="tern-bench-relay.")
    os.chmod(top, 0o755)  # postfix and nobody walk into it
    servers, results, counts = [], {}, {}
    def run():
        rc = 0
        meta = B.meta_info(top)
        byname = {}
        if "sink" in SERVERS:
            s = CountingSink(top, B.free_port(DIRECT_SINK), DIRECT_SINK, "sink-direct")
            s.sink = s
            byname["sink"] = s
            meta["direct"] = "%s:%d" % (s.host, s.port)
        if "postfix" in SERVERS:
            sink = CountingSink(top, B.free_port(POSTFIX_SINK), POSTFIX_SINK, "sink-postfix")
            servers.append(sink)
            sink.start()
            byname["postfix"] = RelayPostfix(top, B.free_port(POSTFIX_HOST), POSTFIX_HOST, sink)
        if "tern" in SERVERS:
            sink = CountingSink(top, B.free_port(TERN_SINK), TERN_SINK, "sink-tern")
            servers.append(sink)
            sink.start()
            byname["tern"] = RelayTern(top, binary, B.free_port(TERN_HOST), TERN_HOST, sink)
        for name in ("sink", "postfix", "tern"):
            srv = byname.get(name)
            if srv:
                log("starting %s on %s:%d" % (name, srv.host, srv.port))
                servers.append(srv)
                srv.start()
                if srv.sink is not srv:
                    meta[name + "_listen"] = "%s:%d" % (srv.host, srv.port)
                    meta[name + "_sink"] = "[%s]:%d" % (srv.sink.host, srv.sink.port)
        if "postfix" in byname:
            pf = byname["postfix"]
            meta["postfix"] = pf.version()
            meta["pf_conc"] = pf.setting("default_destination_concurrency_limit")
            meta["pf_cache"] = pf.setting("smtp_connection_cache_on_demand")
        if "tern" in byname:
            meta["tern"] = "(binary sha256 %s)" % B.sha256_short(binary)
        B.check_listeners(servers, HOSTS)

        scenarios = [] if big else [(size, s) for size in SIZES for s in CONCURRENCY]
        if big:
            scenarios = run_big(byname, results, counts)
        for sc in scenarios if not big else ():
            size, sessions = sc
            rates = {}
            for name in ("postfix", "tern"):
                srv = byname.get(name)
                if not srv or not srv.alive():
                    continue
                log("%s: %s: calibrating" % (name, label(sc)))
                try:
                    rates[name] = calibrate(srv, sessions, size)
                    log("  about %.0f msg/s" % rates[name])
                except B.BenchError as e:
                    results[(name, sc)] = failed(str(e))
                    log("  " + str(e))
            if not rates and "sink" in byname:
                rates["sink"] = calibrate(byname["sink"], sessions, size)
            if not rates:
                continue
            msgs = run_length(rates, sessions)
            counts[sc] = msgs
            for name in ("sink", "postfix", "tern"):
                srv = byname.get(name)
                if not srv or (name, sc) in results:
                    continue
                log("%s: %s: %d messages" % (name, label(sc), msgs))
                if not srv.alive():
                    results[(name, sc)] = failed("server not running")
                    continue
                try:
                    results[(name, sc)] = x = run_once(srv, sessions, size, msgs)
                except B.BenchError as e:
                    results[(name, sc)] = x = failed(str(e))
                log("  %.1fs: %s msg/s%s" % (x["secs"], B.fmt_rate(x["rate"]),
                                             " ERROR " + x["err"] if x["err"] else ""))
        meta["load_end"] = " ".join(open("/proc/loadavg").read().split()[:3])

        if big:
            B.write_report(report_big(meta, results, scenarios, counts), "bench-relay-big")
        else:
            B.write_report(report(meta, results, scenarios, counts), "bench-relay")
        if any(x.get("err") for x in results.values()) or \
                any(x.get("got", x["msgs"]) < x["msgs"] for x in results.values()):
            rc = 1
        return rc

    return B.guarded(run, servers, top)


if __name__ == "__main__":
    sys.exit(main(sys.argv))

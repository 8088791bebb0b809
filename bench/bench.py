#!/usr/bin/python3
"""bench.py - tern against Postfix on the same machine, in one run.

Started by bench/run.sh. Starts three servers on free loopback ports, each with its own
temporary directory: tern (the binary given), a private Postfix instance delivering to a
Maildir through virtual(8), and smtp-sink (accepts and discards: the ceiling of the load
tool). Drives each with Postfix's smtp-source at several concurrencies, with a new
connection per message and with many messages per connection, and measures accepted
messages per second, peak memory, CPU time per message, and memory per idle connection.
See bench/README.md for what each figure means.

Every load run is bounded by a message count and by timeout(1); every server is one we
started and is stopped by PID (Postfix with `postfix -c DIR stop`); the temporary directory
is removed at the end unless BENCH_KEEP=1.
"""

import datetime
import hashlib
import math
import os
import pwd
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SMTP_SOURCE = "/usr/sbin/smtp-source"
SMTP_SINK = "/usr/sbin/smtp-sink"
POSTFIX = "/usr/sbin/postfix"
POSTCONF = "/usr/sbin/postconf"

SENDER = "bench@client.test"
RCPT = "sink@bench.test"
HELO = "client.test"
MSG_LEN = 5120

SECONDS = float(os.environ.get("BENCH_SECONDS", "12"))
CONCURRENCY = [int(x) for x in os.environ.get("BENCH_CONCURRENCY", "1 10 50").split()]
IDLE_N = int(os.environ.get("BENCH_IDLE_N", "2000"))
IDLE_N_POSTFIX = int(os.environ.get("BENCH_IDLE_N_POSTFIX", str(IDLE_N)))
SERVERS = os.environ.get("BENCH_SERVERS", "sink postfix tern").split()
KEEP = os.environ.get("BENCH_KEEP", "") == "1"
MAX_MSGS = 400000  # upper bound on one run's message count
SHORT_RUN = min(10.0, SECONDS - 2)  # a measured run shorter than this is done again
RUN_TIMEOUT = 3 * SECONDS + 30  # timeout(1) bound on one measured run
CAL_TIMEOUT = 60  # timeout(1) bound on one calibration run
DRAIN_TIMEOUT = 120  # longest wait for a server to deliver what it accepted
SAMPLE_INTERVAL = 0.2
CLK_TCK = os.sysconf("SC_CLK_TCK")
LOOP_STATS = re.compile(rb"event=loop_stats max_stall_ms=(\d+) stalls=(\d+)")


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


# ---------------------------------------------------------------- processes and memory


def proc_tree(root):
    """proc_tree - root and all its descendants that are alive now."""
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        try:
            tids = os.listdir("/proc/%d/task" % pid)
        except OSError:
            continue
        out.append(pid)
        for tid in tids:
            try:
                with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                    todo.extend(int(x) for x in f.read().split())
            except OSError:
                pass
    return out


def proc_mem(pid):
    """proc_mem - (RSS KiB, PSS KiB) of one process, (0, 0) if it is gone."""
    rss = pss = 0
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def tree_mem(root):
    """tree_mem - (sum RSS KiB, sum PSS KiB, process count) over root's tree."""
    rss = pss = 0
    pids = proc_tree(root)
    for pid in pids:
        r, p = proc_mem(pid)
        rss += r
        pss += p
    return rss, pss, len(pids)


def proc_cpu(pid):
    """proc_cpu - (utime+stime, cutime+cstime) in ticks, or None if gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # fields[0] is field 3 (state); utime is field 14
    return int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])


def sys_busy():
    """sys_busy - CPU seconds all CPUs spent not idle since boot."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:7]) - v[3] - v[4]) / CLK_TCK  # user..softirq, minus idle and iowait


def own_cpu():
    """own_cpu - CPU seconds of this driver and of its reaped children (smtp-source)."""
    a = resource.getrusage(resource.RUSAGE_SELF)
    b = resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def cpu_snapshot(root):
    own = {}
    for pid in proc_tree(root):
        c = proc_cpu(pid)
        if c:
            own[pid] = c[0]
    rc = proc_cpu(root)
    return own, (rc[1] if rc else 0)


def cpu_seconds(s0, s1):
    """cpu_seconds - CPU time the tree used between two snapshots.

    Live processes count their own delta; children that exited and were reaped by the root
    show up in its cutime/cstime with their whole life, so the part they had used before
    the first snapshot is taken off again.
    """
    own0, ch0 = s0
    own1, ch1 = s1
    t = sum(v - own0.get(p, 0) for p, v in own1.items())
    t += ch1 - ch0
    t -= sum(v for p, v in own0.items() if p not in own1)
    return t / CLK_TCK


def roots_mem(roots):
    """tree_mem summed over several process trees."""
    rss = pss = n = 0
    for root in roots:
        r, p, k = tree_mem(root)
        rss, pss, n = rss + r, pss + p, n + k
    return rss, pss, n


class Sampler(threading.Thread):
    """Sampler - peak summed RSS and PSS of one process tree or several, every SAMPLE_INTERVAL."""

    def __init__(self, roots):
        super().__init__(daemon=True)
        self.roots = roots if isinstance(roots, (list, tuple)) else [roots]
        self.peak_rss = self.peak_pss = self.peak_procs = 0
        self.stop_ev = threading.Event()

    def run(self):
        while True:
            rss, pss, n = roots_mem(self.roots)
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_pss = max(self.peak_pss, pss)
            self.peak_procs = max(self.peak_procs, n)
            if self.stop_ev.wait(SAMPLE_INTERVAL):
                return

    def finish(self):
        self.stop_ev.set()
        self.join()


def free_port(host="127.0.0.1"):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, deadline, alive=None, host="127.0.0.1"):
    while time.monotonic() < deadline:
        if alive and not alive():
            return False
        try:
            socket.create_connection((host, port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


def count_files(d):
    try:
        return sum(1 for e in os.scandir(d) if e.is_file())
    except OSError:
        return 0


def empty_dir(d):
    try:
        for e in os.scandir(d):
            if e.is_file():
                os.unlink(e.path)
    except OSError:
        pass


def tail(path, n=20):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return "(no %s)\n" % path


# ---------------------------------------------------------------- servers


class Server:
    name = "?"
    host = "127.0.0.1"
    port = 0
    stores = True  # keeps and delivers mail (smtp-sink does not)

    def root_pid(self):
        raise NotImplementedError

    def delivered(self):
        """Messages in the sink mailbox now (new/ and cur/)."""
        return count_files(os.path.join(self.maildir, "new")) + count_files(
            os.path.join(self.maildir, "cur"))

    def clear_mailbox(self):
        empty_dir(os.path.join(self.maildir, "new"))
        empty_dir(os.path.join(self.maildir, "cur"))

    def queued(self):
        return 0


class Tern(Server):
    name = "tern"
    logs_ready = True  # its log_level shows event=ready

    def __init__(self, top, binary, port, host="127.0.0.1"):
        self.binary = binary
        self.port = port
        self.host = host
        self.dir = os.path.join(top, "tern")
        self.data = os.path.join(self.dir, "var")
        self.conf = os.path.join(self.dir, "tern.conf")
        self.logfile = os.path.join(self.dir, "tern.log")
        self.maildir = os.path.join(self.data, "mail", "bench.test", "sink")
        self.proc = None
        self.user_added = False
        self.looplag = None  # has_looplag(), once known
        os.makedirs(self.data)
        maxconn = max(IDLE_N, 1000) + 500
        with open(self.conf, "w") as f:
            f.write(open(os.path.join(HERE, "tern.conf.in")).read()
                    .replace("@DATA@", self.data)
                    .replace("@LISTEN@", "%s:%d" % (host, port))
                    .replace("@MAXCONN@", str(maxconn)))

    def add_user(self):
        r = subprocess.run([self.binary, "-c", self.conf, "user", "add", RCPT],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=60)
        if r.returncode != 0:
            raise BenchError("tern user add failed (%d): %s%s" % (r.returncode, r.stdout,
                                                                  r.stderr))
        self.user_added = True

    def start(self):
        if not self.user_added:
            self.add_user()
        # one log for the whole run; a restart appends, so look for "ready" past the end
        start_at = os.path.getsize(self.logfile) if os.path.exists(self.logfile) else 0
        with open(self.logfile, "ab") as logf:
            self.proc = subprocess.Popen([self.binary, "serve", "-c", self.conf],
                                         stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=subprocess.STDOUT, cwd=self.dir)
        deadline = time.monotonic() + 30
        # with log_level = warning tern does not log event=ready; then its port is the sign
        while self.logs_ready and time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError("tern exited with %d at start:\n%s" %
                                 (self.proc.returncode, tail(self.logfile)))
            with open(self.logfile, "rb") as f:
                f.seek(start_at)
                if b"event=ready" in f.read():
                    break
            time.sleep(0.1)
        else:
            if self.logs_ready:
                raise BenchError("tern did not log event=ready in 30s:\n" + tail(self.logfile))
        if not wait_port(self.port, time.monotonic() + 10, self.alive, self.host):
            raise BenchError("tern does not accept on %s:%d:\n%s" % (self.host, self.port,
                                                                     tail(self.logfile)))

    def root_pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def has_looplag(self):
        """has_looplag - the binary answers SIGUSR1 with event=loop_stats (an older one would
        die of the signal)."""
        if self.looplag is None:
            with open(self.binary, "rb") as f:
                self.looplag = b"event=loop_stats" in f.read()
        return self.looplag

    def loop_stats(self, timeout=10):
        """loop_stats - (longest loop stall in ms, stalls of 100 ms or more) since the
        previous call (or the start), from the event=loop_stats line tern logs on SIGUSR1
        whatever its log_level; None when the binary has no loop-lag monitor or no line came
        within timeout seconds."""
        if not self.alive() or not self.has_looplag():
            return None
        start = os.path.getsize(self.logfile)
        self.proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.logfile, "rb") as f:
                f.seek(start)
                m = LOOP_STATS.search(f.read())
            if m:
                return int(m.group(1)), int(m.group(2))
            time.sleep(0.05)
        return None

    def reset_peak(self):
        try:
            with open("/proc/%d/clear_refs" % self.proc.pid, "w") as f:
                f.write("5")
            return True
        except OSError:
            return False

    def hwm(self):
        try:
            with open("/proc/%d/status" % self.proc.pid) as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            log("tern did not exit 40s after SIGTERM; killing pid %d" % self.proc.pid)
            self.proc.kill()
            self.proc.wait(timeout=10)


class Postfix(Server):
    name = "postfix"

    def __init__(self, top, port, host="127.0.0.1"):
        self.port = port
        self.host = host
        self.top = top
        self.dir = os.path.join(top, "postfix")
        self.conf = os.path.join(self.dir, "conf")
        self.queue = os.path.join(self.dir, "queue")
        self.data = os.path.join(self.dir, "data")
        self.mail = os.path.join(self.dir, "mail")
        self.logfile = os.path.join(self.dir, "maillog")
        self.maildir = os.path.join(self.mail, "bench.test", "sink")
        self.master = None
        self.started = False
        for d in (self.conf, self.queue, self.data, self.mail):
            os.makedirs(d)
        pf = pwd.getpwnam("postfix")
        nobody = pwd.getpwnam("nobody")
        os.chown(self.data, pf.pw_uid, pf.pw_gid)
        os.chown(self.mail, nobody.pw_uid, nobody.pw_gid)
        subst = {
            "@TOP@": top, "@CONF@": self.conf, "@QUEUE@": self.queue, "@DATA@": self.data,
            "@LOG@": self.logfile, "@MAILBASE@": self.mail,
            "@UID@": str(nobody.pw_uid), "@GID@": str(nobody.pw_gid),
            "@PROCS@": str(max(IDLE_N_POSTFIX, max(CONCURRENCY)) + 100),
            "@LISTEN@": "%s:%d" % (host, port),
        }
        for name in ("main.cf", "master.cf"):
            text = open(os.path.join(HERE, "postfix", name + ".in")).read()
            for k, v in subst.items():
                text = text.replace(k, v)
            with open(os.path.join(self.conf, name), "w") as f:
                f.write(text)
        with open(os.path.join(self.conf, "vmailbox"), "w") as f:
            f.write("%s bench.test/sink/\n" % RCPT)

    def postfix(self, *args):
        return subprocess.run([POSTFIX, "-c", self.conf] + list(args),
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=60)

    def start(self):
        # Postfix logs its own errors to maillog_file, not to the terminal.
        for step in ("check", "start"):
            r = self.postfix(step)
            if step == "start":
                self.started = True
            if r.returncode != 0:
                raise BenchError("postfix %s failed:\n%s%s%s" % (step, r.stdout, r.stderr,
                                                                 tail(self.logfile)))
        pidfile = os.path.join(self.queue, "pid", "master.pid")
        self.master = None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and self.master is None:
            try:
                self.master = int(open(pidfile).read().split()[0])
            except (OSError, ValueError, IndexError):
                time.sleep(0.1)
        if self.master is None:
            raise BenchError("postfix master did not write its pid:\n" + tail(self.logfile))
        if not wait_port(self.port, deadline, self.alive, self.host):
            raise BenchError("postfix does not accept on port %d:\n%s" % (self.port,
                                                                        tail(self.logfile)))

    def version(self):
        r = subprocess.run([POSTCONF, "-c", self.conf, "-h", "mail_version"],
                           capture_output=True, text=True, timeout=30)
        return r.stdout.strip() or "?"

    def root_pid(self):
        return self.master

    def alive(self):
        return self.master is not None and os.path.exists("/proc/%d" % self.master)

    def queued(self):
        n = 0
        for sub in ("maildrop", "incoming", "active", "deferred", "hold"):
            for _, _, files in os.walk(os.path.join(self.queue, sub)):
                n += len(files)
        return n

    def stop(self):
        if not self.started:
            return
        tree = proc_tree(self.master) if self.master else []
        r = self.postfix("stop")
        if r.returncode != 0:
            log("postfix stop: %s%s" % (r.stdout, r.stderr))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(os.path.exists("/proc/%d" % p) for p in tree):
            time.sleep(0.2)
        if self.alive():
            log("postfix master %d still running; postfix abort" % self.master)
            self.postfix("abort")
            time.sleep(2)
        for p in tree:
            if os.path.exists("/proc/%d" % p):
                log("killing leftover postfix process %d" % p)
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
        self.started = False
        self.master = None


class Sink(Server):
    name = "sink"
    stores = False

    def __init__(self, top, port, host="127.0.0.1", name="sink"):
        self.port = port
        self.host = host
        self.name = name
        self.dir = os.path.join(top, name)
        self.proc = None
        os.makedirs(self.dir)

    def start(self, options=(), stdout=subprocess.DEVNULL):
        self.proc = subprocess.Popen(
            [SMTP_SINK, "-u", "nobody", "-m", "1024"] + list(options) +
            ["%s:%d" % (self.host, self.port), "1024"],
            stdin=subprocess.DEVNULL, stdout=stdout,
            stderr=open(os.path.join(self.dir, "sink.log"), "wb"), cwd=self.dir)
        if not wait_port(self.port, time.monotonic() + 10, self.alive, self.host):
            raise BenchError("smtp-sink does not accept on port %d" % self.port)

    def root_pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def delivered(self):
        return 0

    def stop(self):
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def check_listeners(servers, hosts=("127.0.0.1",)):
    """check_listeners - every socket our servers listen on is on one of hosts (loopback
    addresses), none on port 25."""
    ours = set()
    for s in servers:
        ours.update(proc_tree(s.root_pid()))
    r = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, timeout=30)
    for line in r.stdout.splitlines():
        pids = {int(p) for p in re.findall(r"pid=(\d+)", line)}
        if not pids & ours:
            continue
        local = line.split()[3]
        addr, _, port = local.rpartition(":")
        if addr not in hosts or port == "25":
            raise BenchError("a bench server listens on %s; refusing to go on" % local)


# ---------------------------------------------------------------- load


def smtp_source(port, sessions, msgs, reuse, limit, host="127.0.0.1", length=MSG_LEN,
                rcpt=RCPT, sender=SENDER, numbered=False):
    """smtp_source - one bounded smtp-source run; (seconds, error or None). numbered: -N,
    a different recipient for each message (1rcpt, 2rcpt, ...)."""
    cmd = ["timeout", "-k", "5", str(int(limit)), SMTP_SOURCE]
    if reuse:
        cmd.append("-d")
    if numbered:
        cmd.append("-N")
    cmd += ["-l", str(length), "-m", str(msgs), "-s", str(sessions), "-M", HELO,
            "-f", sender, "-t", rcpt, "%s:%d" % (host, port)]
    t0 = time.monotonic()
    # its own process group, so that an interrupted run takes smtp-source down too
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _, err = p.communicate(timeout=limit + 30)
    except BaseException:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        raise
    dt = time.monotonic() - t0
    if p.returncode == 124:
        return dt, "timed out after %ds" % int(limit)
    if p.returncode != 0:
        last = (err.strip().splitlines() or ["exit %d" % p.returncode])[-1]
        return dt, last
    return dt, None


def drain(server, expect, t0):
    """drain - wait until server has delivered `expect` messages; delivery time from t0."""
    if not server.stores:
        return None
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while True:
        got = server.delivered()
        if got >= expect and server.queued() == 0:
            return time.monotonic() - t0
        if time.monotonic() > deadline:
            log("%s delivered %d of %d within %ds" % (server.name, got, expect, DRAIN_TIMEOUT))
            return None
        time.sleep(0.1)


def settle(server):
    """settle - empty the mailbox and write back dirty pages so runs start alike."""
    if server.stores:
        server.clear_mailbox()
    os.sync()
    time.sleep(0.5)


def calibrate(server, sessions, reuse):
    """calibrate - messages for about SECONDS of load, from short runs."""
    msgs = max(200, 20 * sessions)
    rate = None
    for _ in range(3):
        dt, err = smtp_source(server.port, sessions, msgs, reuse, CAL_TIMEOUT)
        if err:
            raise BenchError("%s calibration (s=%d%s): %s" % (server.name, sessions,
                                                                " -d" if reuse else "", err))
        drain(server, msgs, time.monotonic())
        settle(server)
        rate = msgs / dt
        if dt >= 1.0:
            break
        msgs = min(MAX_MSGS, int(rate * 1.5) + 1)
    return max(2 * sessions, min(MAX_MSGS, int(math.ceil(rate * SECONDS))))


def failed(err):
    return {"err": err, "msgs": 0, "secs": 0, "rate": None}


def measure(server, sessions, reuse):
    """measure - one measured run; once more, longer, if it ended before SHORT_RUN."""
    res = run_once(server, sessions, reuse, calibrate(server, sessions, reuse))
    if not res["err"] and res["secs"] < SHORT_RUN and res["msgs"] < MAX_MSGS:
        log("  %d msgs took %.1fs; again with more" % (res["msgs"], res["secs"]))
        more = min(MAX_MSGS, int(math.ceil(res["rate"] * SECONDS)))
        res = run_once(server, sessions, reuse, max(more, res["msgs"] + 1))
    return res


def run_once(server, sessions, reuse, msgs):
    res = {"msgs": msgs}
    root = server.root_pid()
    hwm_ok = isinstance(server, Tern) and server.reset_peak()
    sampler = Sampler(root)
    cpu0 = cpu_snapshot(root)
    busy0, own0 = sys_busy(), own_cpu()
    sampler.start()
    t0 = time.monotonic()
    dt, err = smtp_source(server.port, sessions, msgs, reuse, RUN_TIMEOUT)
    res["err"] = err
    res["secs"] = dt
    res["rate"] = None if err else msgs / dt
    if not err:
        res["e2e"] = drain(server, msgs, t0)
    sampler.finish()
    cpu1 = cpu_snapshot(root)
    elapsed = time.monotonic() - t0
    busy, own = sys_busy() - busy0, own_cpu() - own0
    server_cpu = cpu_seconds(cpu0, cpu1)
    res["cpu_ms"] = 1000.0 * server_cpu / msgs
    # CPU used by neither the server, smtp-source nor this driver: other work on the
    # machine, plus kernel time not charged to a process
    res["other"] = 100.0 * max(0.0, busy - own - server_cpu) / (os.cpu_count() * elapsed)
    res["rss"] = sampler.peak_rss
    res["pss"] = sampler.peak_pss
    res["procs"] = sampler.peak_procs
    if hwm_ok:
        res["rss"] = max(res["rss"], server.hwm())
    if not server.alive():
        res["err"] = (err or "") + " (server died)"
    settle(server)
    return res


# ---------------------------------------------------------------- idle connections


def read_reply(sock, deadline):
    buf = b""
    while True:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        chunk = sock.recv(4096)
        if not chunk:
            raise OSError("connection closed")
        buf += chunk
        lines = buf.split(b"\r\n")
        for line in lines[:-1]:
            if len(line) >= 4 and line[3:4] == b" ":
                return line[:3]
        if len(buf) > 65536:
            raise OSError("reply too long")


def open_idle(port, n, limit=180):
    """open_idle - n connections that got the greeting and an EHLO reply, held open."""
    socks = []
    deadline = time.monotonic() + limit
    try:
        for _ in range(n):
            if time.monotonic() > deadline:
                raise BenchError("opening idle connections took over %ds" % limit)
            s = socket.create_connection(("127.0.0.1", port), timeout=15)
            socks.append(s)
            step = time.monotonic() + 15
            code = read_reply(s, step)
            if code != b"220":
                raise BenchError("connection %d: greeting %s" % (len(socks), code))
            s.sendall(b"EHLO " + HELO.encode() + b"\r\n")
            code = read_reply(s, step)
            if code != b"250":
                raise BenchError("connection %d: EHLO reply %s" % (len(socks), code))
    except BaseException:
        close_all(socks)
        raise
    return socks


def close_all(socks):
    for s in socks:
        try:
            s.close()
        except OSError:
            pass


def idle_memory(server, n):
    """idle_memory - (KiB RSS, KiB PSS) per idle connection, and process counts."""
    root = server.root_pid()
    time.sleep(1)
    rss0, pss0, procs0 = tree_mem(root)
    t0 = time.monotonic()
    socks = open_idle(server.port, n)
    took = time.monotonic() - t0
    try:
        time.sleep(2)
        rss1, pss1, procs1 = tree_mem(root)
        # still open? a server that closed them would make the figure meaningless
        for s in socks[:: max(1, n // 50)]:
            s.settimeout(0)
            try:
                if s.recv(1) == b"":
                    raise BenchError("%s closed an idle connection" % server.name)
            except BlockingIOError:
                pass
    finally:
        close_all(socks)
    return {"n": n, "rss0": rss0, "rss1": rss1, "pss0": pss0, "pss1": pss1,
            "procs0": procs0, "procs1": procs1, "secs": took,
            "rss_per": (rss1 - rss0) / n, "pss_per": (pss1 - pss0) / n}


# ---------------------------------------------------------------- report


def fmt_rate(r):
    if r is None:
        return "-"
    return "%.0f" % r


def fmt_stall(x):
    """The longest loop stall of a run (and the stalls of 100 ms or more, when any)."""
    if not x or x.get("stall") is None:
        return "-"
    ms, n = x["stall"]
    return "%d" % ms if not n else "%d (%d)" % (ms, n)


def fmt_mib(kib):
    return "-" if not kib else "%.1f" % (kib / 1024.0)


def sha256_short(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:12]


def idle_lines(idle):
    """The idle-connection table (one row per server) and its failures, as report lines."""
    lines = []
    rows = []
    for name in ("tern", "postfix"):
        x = idle.get(name)
        if not x:
            continue
        if "err" in x:
            rows.append([name, "-", "FAIL", "-", "-", "-", "-"])
            continue
        rows.append([name, str(x["n"]), "%.1f" % x["rss_per"], "%.1f" % x["pss_per"],
                     "%s -> %s" % (fmt_mib(x["rss0"]), fmt_mib(x["rss1"])),
                     "%d -> %d" % (x["procs0"], x["procs1"]), "%.1f" % x["secs"]])
    lines.append(table(rows, ["server", "N", "KiB RSS/conn", "KiB PSS/conn",
                              "RSS MiB before -> after", "processes", "open s"]))
    for name in ("tern", "postfix"):
        if "err" in idle.get(name, {}):
            lines.append("FAIL idle %s: %s" % (name, idle[name]["err"]))
    return lines


def table(rows, header):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    out = []
    for k, r in enumerate([header] + rows):
        cells = [str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in
                 enumerate(zip(r, widths))]
        out.append("  ".join(cells).rstrip())
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def report(meta, results, idle, scenarios):
    lines = [
        "tern bench, %s" % meta["date"],
        "machine: %s CPUs, %s MiB RAM, kernel %s; storage: %s" %
        (meta["cpus"], meta["mem"], meta["kernel"], meta["fs"]),
        "servers: tern %s | Postfix %s, private instance, virtual(8) to Maildir | "
        "smtp-sink, no storage" % (meta["tern"], meta["postfix"]),
        "load: smtp-source -l %d (HELO, 1 recipient, no pipelining); about %gs per run, "
        "message count from calibration runs; load average at start %s, after the load runs %s" %
        (MSG_LEN, SECONDS, meta["load"], meta.get("load_end", "?")),
        "",
        "Accepted messages per second (messages / smtp-source wall time); peak memory of "
        "the server's processes during the run",
    ]

    def get(name, sc):
        x = results.get((name, sc))
        return x if x and not x.get("err") else None

    rows = []
    for sc in scenarios:
        t, p, k = get("tern", sc), get("postfix", sc), get("sink", sc)
        ratio = "%.2f" % (t["rate"] / p["rate"]) if t and p else "-"
        def rate(name, x):
            if x:
                return fmt_rate(x["rate"])
            return "FAIL" if (name, sc) in results else "-"
        rows.append([sc[2], rate("sink", k), rate("tern", t), rate("postfix", p), ratio,
                     fmt_mib(t and t["rss"]), fmt_mib(t and t["pss"]),
                     fmt_mib(p and p["rss"]), fmt_mib(p and p["pss"])])
    lines.append(table(rows, ["scenario", "sink/s", "tern/s", "postfix/s", "tern/postfix",
                              "tern RSS MiB", "PSS", "postfix RSS MiB", "PSS"]))
    lines.append("")
    lines.append("Per run: messages sent, seconds, server CPU ms per message (accepting and "
                 "delivering), seconds until all were in the Maildir, other CPU % "
                 "(not server, load tool or driver)")
    rows = []
    for sc in scenarios:
        row = [sc[2]]
        for name in ("tern", "postfix", "sink"):
            x = get(name, sc)
            if not x:
                row += ["-"] * (4 if name == "sink" else 5)
                continue
            row += [str(x["msgs"]), "%.1f" % x["secs"], "%.2f" % x["cpu_ms"]]
            if name != "sink":
                row.append("%.1f" % x["e2e"] if x.get("e2e") else "-")
            row.append("%.0f" % x["other"])
        rows.append(row)
    lines.append(table(rows, ["scenario", "tern n", "s", "cpu ms", "deliv s", "other%",
                              "postfix n", "s", "cpu ms", "deliv s", "other%",
                              "sink n", "s", "cpu ms", "other%"]))
    order = ("sink", "postfix", "tern")
    for (n, sc), x in sorted(results.items(),
                             key=lambda i: (scenarios.index(i[0][1]), order.index(i[0][0]))):
        if x.get("err"):
            lines.append("FAIL %s %s: %s" % (n, sc[2], x["err"]))
        elif x["secs"] < SHORT_RUN:
            lines.append("note: %s %s ran %.1fs (< %gs)" % (n, sc[2], x["secs"], SHORT_RUN))
    lines.append("")
    lines.append("Memory per idle connection (greeting received, EHLO answered, held open); "
                 "(after - before) / N over the server's processes")
    lines += idle_lines(idle)
    t, p = idle.get("tern", {}), idle.get("postfix", {})
    if t.get("pss_per", 0) > 0 and p.get("pss_per", 0) > 0:
        lines.append("postfix/tern, PSS per idle connection: %.0f" %
                     (p["pss_per"] / t["pss_per"]))
    return "\n".join(lines) + "\n"


def meta_info(top):
    def first(path, default="?"):
        try:
            return open(path).read().split()[0]
        except (OSError, IndexError):
            return default
    mem = "?"
    for line in open("/proc/meminfo"):
        if line.startswith("MemTotal:"):
            mem = str(int(line.split()[1]) // 1024)
    fs = "?"
    r = subprocess.run(["df", "--output=fstype", top], capture_output=True, text=True)
    if r.returncode == 0:
        fs = r.stdout.split()[-1] + " (same file system for both servers)"
    return {
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S %z").strip(),
        "cpus": os.cpu_count(), "mem": mem, "kernel": os.uname().release, "fs": fs,
        "load": " ".join(open("/proc/loadavg").read().split()[:3]),
        "tern": "not run", "postfix": "not run",
    }


def idle_test(byname, measure_idle, what="idle connections"):
    """{server: figures or {"err": ...}} of measure_idle(server, n) on freshly
    restarted tern and Postfix: a Postfix with idle smtpd processes left over
    from the load runs would take connections without forking, and memory a
    server kept from the load would hide what a connection costs."""
    idle = {}
    for name, n in (("tern", IDLE_N), ("postfix", IDLE_N_POSTFIX)):
        srv = byname.get(name)
        if not srv or n <= 0:
            continue
        try:
            log("%s: restarting for the idle-connection test" % name)
            srv.stop()
            srv.start()
            log("%s: %d %s" % (name, n, what))
            idle[name] = measure_idle(srv, n)
        except (BenchError, OSError) as e:
            idle[name] = {"err": str(e)}
        time.sleep(1)
    return idle


def write_report(text, kind):
    """The report on stdout and into BENCH_OUT (or a dated file named after kind)."""
    sys.stdout.write(text)
    sys.stdout.flush()
    out = os.environ.get("BENCH_OUT") or os.path.join(
        tempfile.gettempdir(), "tern-%s-%s.txt" % (kind, time.strftime("%Y%m%d-%H%M%S")))
    with open(out, "w") as f:
        f.write(text)
    log("results written to %s" % out)


def stop_servers(servers, top):
    """Stop every server we started (last started first), then remove top unless BENCH_KEEP."""
    for srv in reversed(servers):
        try:
            srv.stop()
        except Exception as e:  # keep stopping the others
            log("stopping %s: %s" % (srv.name, e))
    if KEEP:
        log("kept %s" % top)
    else:
        shutil.rmtree(top, ignore_errors=True)


def start_checks(argv, mode, servers, tools, root_why="Postfix's master runs as root"):
    """What every driver checks before it starts: its arguments, the tern binary, the
    tools it runs, and root. Returns the binary's absolute path, or None after a message;
    from then on SIGTERM and SIGHUP end the run as ^C does (servers stopped, files removed)."""
    if len(argv) != 2:
        print("usage: bench/run.sh %sTERN_BINARY" % (mode + " " if mode else ""), file=sys.stderr)
        return None
    binary = os.path.abspath(argv[1])
    if "tern" in servers and not os.access(binary, os.X_OK):
        print("bench: %s is not an executable" % binary, file=sys.stderr)
        return None
    for tool in tools:
        if not os.access(tool, os.X_OK):
            print("bench: %s missing (scripts/install-deps.sh bench)" % tool, file=sys.stderr)
            return None
    if os.geteuid() != 0:
        print("bench: must run as root (%s)" % root_why, file=sys.stderr)
        return None

    def on_signal(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    return binary


def raise_nofile(want):
    """Descriptors for the idle-connection tests (the load tools inherit the limit)."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, want)), hard))
    except (ValueError, OSError):
        pass



def guarded(run, servers, top):
    """run() and its exit status; a BenchError or an interrupt ends it with 1 or 130. The servers
    are stopped whatever happens (last started first: the relays before their sinks)."""
    try:
        return run()
    except BenchError as e:
        log("error: %s" % e)
        return 1
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        stop_servers(servers, top)


def main(argv):
    binary = start_checks(argv, "", SERVERS, (SMTP_SOURCE, SMTP_SINK, POSTFIX))
    if binary is None:
        return 2

    raise_nofile(IDLE_N + IDLE_N_POSTFIX + 1024)

    top = tempfile.mkdtemp(prefix="tern-bench.")
    os.chmod(top, 0o755)  # postfix and nobody walk into it
    servers = []
    results, idle = {}, {}
    def run():
        rc = 0
        meta = meta_info(top)
        ports = set()
        while len(ports) < 3:
            ports.add(free_port())
        ports = sorted(ports)
        byname = {}
        if "sink" in SERVERS:
            byname["sink"] = Sink(top, ports[0])
        if "postfix" in SERVERS:
            byname["postfix"] = Postfix(top, ports[1])
        if "tern" in SERVERS:
            byname["tern"] = Tern(top, binary, ports[2])
        for name in ("sink", "postfix", "tern"):
            if name in byname:
                log("starting %s on 127.0.0.1:%d" % (name, byname[name].port))
                servers.append(byname[name])
                byname[name].start()
        if "postfix" in byname:
            meta["postfix"] = byname["postfix"].version()
        if "tern" in byname:
            meta["tern"] = "(binary sha256 %s)" % sha256_short(binary)
        check_listeners(servers)

        scenarios = []
        for reuse in (False, True):
            for s in CONCURRENCY:
                label = "%s s=%d" % ("reuse conn (-d)" if reuse else "new conn/msg", s)
                scenarios.append((s, reuse, label))
        for sc in scenarios:
            for name in ("sink", "postfix", "tern"):
                srv = byname.get(name)
                if not srv:
                    continue
                log("%s: %s" % (name, sc[2]))
                if not srv.alive():
                    results[(name, sc)] = failed("server not running")
                    continue
                try:
                    results[(name, sc)] = measure(srv, sc[0], sc[1])
                except BenchError as e:
                    results[(name, sc)] = failed(str(e))
                x = results[(name, sc)]
                log("  %s msgs in %.1fs: %s msg/s%s" % (x["msgs"], x["secs"],
                                                      fmt_rate(x["rate"]),
                                                      " ERROR " + x["err"] if x["err"] else ""))
        meta["load_end"] = " ".join(open("/proc/loadavg").read().split()[:3])

        idle.update(idle_test(byname, idle_memory))

        text = report(meta, results, idle, scenarios)
        write_report(text, "bench")
        if any(x.get("err") for x in results.values()) or any("err" in x for x in idle.values()):
            rc = 1
        return rc

    return guarded(run, servers, top)


if __name__ == "__main__":
    sys.exit(main(sys.argv))

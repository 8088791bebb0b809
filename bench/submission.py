#!/usr/bin/python3
"""submission.py - tern against Postfix on the submission path, in one run.

Started by `bench/run.sh --submission TERN_BINARY`. Both servers get a submission listener on
a free loopback port with the same certificate: STARTTLS, then AUTH PLAIN required before mail.
tern checks the password itself; Postfix asks a private Dovecot auth service. Both verify the
same kind of crypt(3) hash. The load generator is bench/tls-source.c, compiled here into the
temporary directory. Measured: accepted messages per second with a new connection per message
and with many messages per connection, TLS handshakes per second, and memory per idle TLS
connection. See bench/README.md.

The helpers for processes, memory, CPU, Postfix and tern come from bench.py. Every load run is
bounded by a count, by tls-source's own time limit and by timeout(1); every server is one we
started and is stopped by PID (Postfix with `postfix -c DIR stop`); the temporary directory is
removed at the end unless BENCH_KEEP=1.
"""

import ctypes
import math
import os
import pwd
import secrets
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # importing bench.py must not write into the repository
import bench as B  # noqa: E402

DOVECOT = "/usr/sbin/dovecot"
OPENSSL = "/usr/bin/openssl"
USER = "sender@bench.test"  # the authenticated user; also the envelope and From: sender
MSG_LEN = B.MSG_LEN
SECONDS = B.SECONDS
CONCURRENCY = B.CONCURRENCY
IDLE_N = B.IDLE_N
IDLE_N_POSTFIX = B.IDLE_N_POSTFIX
SERVERS = [s for s in os.environ.get("BENCH_SERVERS", "postfix tern").split() if s != "sink"]
CERT_KIND = os.environ.get("BENCH_TLS_KEY", "rsa")  # rsa (2048 bits) or ec (P-256)
IDLE_SETUP = 10  # idle test: connections in set-up at once
IDLE_LIMIT = 300  # seconds allowed to open the idle connections
MAX_UNITS = 200000
AUTH_WORKERS = max(2, os.cpu_count() or 2)  # Dovecot's auth-worker processes


def log(msg):
    B.log(msg)


class BenchError(B.BenchError):
    pass


# ---------------------------------------------------------------- set-up


def build_tls_source(top):
    """build_tls_source - compile bench/tls-source.c with the system cc against OpenSSL."""
    out = os.path.join(top, "tls-source")
    r = subprocess.run(["pkg-config", "--cflags", "--libs", "openssl"], capture_output=True,
                       text=True, timeout=30)
    if r.returncode != 0:
        raise BenchError("pkg-config openssl: %s" % r.stderr.strip())
    cmd = [os.environ.get("CC", "cc"), "-O2", "-Wall", "-o", out,
           os.path.join(B.HERE, "tls-source.c")] + r.stdout.split()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise BenchError("building tls-source failed:\n%s%s" % (r.stdout, r.stderr))
    return out


def make_cert(top):
    """make_cert - one self-signed certificate and key, used by both servers."""
    d = os.path.join(top, "tls")
    os.makedirs(d)
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    if CERT_KIND == "ec":
        keyopt = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
    elif CERT_KIND == "rsa":
        keyopt = ["-newkey", "rsa:2048"]
    else:
        raise BenchError("BENCH_TLS_KEY must be rsa or ec, not %r" % CERT_KIND)
    r = subprocess.run([OPENSSL, "req", "-x509", "-nodes", "-days", "2", "-subj", "/CN=bench.test",
                        "-addext", "subjectAltName=DNS:bench.test,DNS:localhost,IP:127.0.0.1",
                        "-keyout", key, "-out", cert] + keyopt,
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise BenchError("openssl req failed: %s" % r.stderr.strip())
    os.chmod(key, 0o600)
    os.chmod(d, 0o755)
    return cert, key


def crypt_hash(password):
    """crypt_hash - crypt(3) hash as `tern user add` makes it: yescrypt, libxcrypt's default cost."""
    lib = ctypes.CDLL("libcrypt.so.1")
    lib.crypt_gensalt.restype = ctypes.c_char_p
    lib.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int]
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    for prefix in (b"$y$", b"$6$"):
        setting = lib.crypt_gensalt(prefix, 0, None, 0)
        if setting:
            h = lib.crypt(password.encode(), setting)
            if h and h.startswith(prefix):
                return h.decode()
    raise BenchError("crypt(3) makes neither yescrypt nor SHA-512-crypt hashes")


def verify_cost_ms(h, password):
    """verify_cost_ms - CPU milliseconds of one crypt(3) verification of h here (median of 5)."""
    lib = ctypes.CDLL("libcrypt.so.1")
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    times = []
    for _ in range(5):
        t0 = time.process_time()
        lib.crypt(password.encode(), h.encode())
        times.append(1000.0 * (time.process_time() - t0))
    return sorted(times)[2]


def hash_setting(h):
    """hash_setting - the scheme and cost part of a crypt(3) hash, without salt and digest."""
    if not h:
        return "?"
    parts = h.split("$")
    if len(parts) > 3 and parts[1] == "y":
        return "yescrypt $y$%s$" % parts[2]
    if len(parts) > 2 and parts[1] == "6":
        return "SHA-512-crypt $6$" + ("%s$" % parts[2] if parts[2].startswith("rounds=") else "")
    return h[:8] + "..."


def tern_stored_hash(data_dir):
    """tern_stored_hash - the hash tern stored for USER, or None (for the report only)."""
    try:
        db = sqlite3.connect("file:%s?mode=ro" % os.path.join(data_dir, "queue.db"), uri=True,
                             timeout=5)
        try:
            row = db.execute("SELECT password FROM users WHERE lower(address) = ?",
                             (USER,)).fetchone()
        finally:
            db.close()
        return row[0] if row else None
    except Exception:  # a schema we do not know: the report says "?"
        return None


# ---------------------------------------------------------------- servers


class SubTern(B.Tern):
    """tern with one submission listener, the bench certificate and a user with a password."""

    def __init__(self, top, binary, port, cert, key, password):
        super().__init__(top, binary, port)
        self.password = password
        maxconn = max(IDLE_N, 1000) + 500
        text = open(os.path.join(B.HERE, "tern-submission.conf.in")).read()
        for k, v in (("@DATA@", self.data), ("@LISTEN@", "127.0.0.1:%d" % port),
                     ("@MAXCONN@", str(maxconn)), ("@CERT@", cert), ("@KEY@", key),
                     ("@AUTH_CACHE@", os.environ.get("BENCH_AUTH_CACHE", "0"))):
            text = text.replace(k, v)
        with open(self.conf, "w") as f:
            f.write(text)

    def add_user(self):
        for args, stdin in (([B.RCPT], None), ([USER, "--password-stdin"], self.password + "\n")):
            r = subprocess.run([self.binary, "-c", self.conf, "user", "add"] + args,
                               input=stdin, stdin=None if stdin else subprocess.DEVNULL,
                               capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                raise BenchError("tern user add %s failed (%d): %s%s" %
                                 (args[0], r.returncode, r.stdout, r.stderr))
        self.user_added = True

    def roots(self):
        return [self.proc.pid] if self.proc else []

    def hash_info(self):
        return hash_setting(tern_stored_hash(self.data))


class SubPostfix(B.Postfix):
    """Postfix with a submission listener (STARTTLS, SASL via a private Dovecot auth service)."""

    def __init__(self, top, port, cert, key, pwhash):
        super().__init__(top, port)
        self.pwhash = pwhash
        self.dovedir = os.path.join(top, "dovecot")
        self.doveconf = os.path.join(self.dovedir, "dovecot.conf")
        self.dovelog = os.path.join(self.dovedir, "dovecot.log")
        self.authsock = os.path.join(self.dovedir, "run", "auth-postfix")
        self.dovecot = None
        self.dovecot_pid = None
        subst = {"@KEY@": key, "@CERT@": cert, "@AUTHSOCK@": self.authsock, "@CONF@": self.conf}
        text = open(os.path.join(B.HERE, "postfix", "submission.cf.in")).read()
        for k, v in subst.items():
            text = text.replace(k, v)
        with open(os.path.join(self.conf, "main.cf"), "a") as f:
            f.write(text)
        with open(os.path.join(self.conf, "master.cf"), "a") as f:
            f.write("tlsmgr         unix  -       -       n       1000?   1       tlsmgr\n")
        with open(os.path.join(self.conf, "senders"), "w") as f:
            f.write("%s %s\n" % (USER, USER))

        os.makedirs(os.path.join(self.dovedir, "run"))
        os.makedirs(os.path.join(self.dovedir, "state"))
        nobody = pwd.getpwnam("nobody")
        text = open(os.path.join(B.HERE, "dovecot", "dovecot.conf.in")).read()
        clients = max(IDLE_N_POSTFIX, max(CONCURRENCY)) + 200
        for k, v in (("@DIR@", self.dovedir), ("@UID@", str(nobody.pw_uid)),
                     ("@GID@", str(nobody.pw_gid)), ("@CLIENTS@", str(clients)),
                     ("@WORKERS@", str(AUTH_WORKERS))):
            text = text.replace(k, v)
        with open(self.doveconf, "w") as f:
            f.write(text)
        text = open(os.path.join(B.HERE, "dovecot", "dovecot-sql.conf.ext.in")).read()
        with open(os.path.join(self.dovedir, "dovecot-sql.conf.ext"), "w") as f:
            f.write(text.replace("@DIR@", self.dovedir))
        db = sqlite3.connect(os.path.join(self.dovedir, "users.db"))
        try:
            db.execute("CREATE TABLE users (address TEXT PRIMARY KEY, password TEXT NOT NULL)")
            db.execute("INSERT INTO users VALUES (?, ?)", (USER, pwhash))
            db.commit()
        finally:
            db.close()
        os.chmod(self.dovedir, 0o755)

    def start_dovecot(self):
        if self.dovecot_alive():
            return
        try:
            os.unlink(self.authsock)
        except OSError:
            pass
        # in the foreground (-F): its master is our child and is stopped by its PID
        with open(os.path.join(self.dovedir, "dovecot.out"), "ab") as out:
            self.dovecot = subprocess.Popen([DOVECOT, "-F", "-c", self.doveconf],
                                            stdin=subprocess.DEVNULL, stdout=out,
                                            stderr=subprocess.STDOUT, cwd=self.dovedir)
        self.dovecot_pid = self.dovecot.pid
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.dovecot.poll() is not None:
                raise BenchError("dovecot exited with %d at start:\n%s%s" % (
                    self.dovecot.returncode, B.tail(os.path.join(self.dovedir, "dovecot.out")),
                    B.tail(self.dovelog)))
            if os.path.exists(self.authsock):
                return
            time.sleep(0.1)
        raise BenchError("dovecot's auth socket did not appear:\n" + B.tail(self.dovelog))

    def dovecot_alive(self):
        return self.dovecot is not None and self.dovecot.poll() is None

    def stop_dovecot(self):
        if not self.dovecot_alive():
            self.dovecot_pid = None
            return
        tree = B.proc_tree(self.dovecot_pid)
        self.dovecot.send_signal(signal.SIGTERM)
        try:
            self.dovecot.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(os.path.exists("/proc/%d" % p) for p in tree):
            time.sleep(0.2)
        for p in tree:
            if os.path.exists("/proc/%d" % p):
                log("killing leftover dovecot process %d" % p)
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
        if self.dovecot.poll() is None:
            self.dovecot.wait(timeout=10)
        self.dovecot_pid = None

    def start(self):
        self.start_dovecot()
        super().start()

    def stop(self):
        try:
            self.stop_postfix()
        finally:
            self.stop_dovecot()

    def stop_postfix(self):
        """stop_postfix - `postfix stop` for this instance; SIGTERM, then SIGKILL to its
        processes (and only those) if that does not end them. With a few thousand smtpd
        processes `postfix stop` itself may take longer than its time limit."""
        if not self.started:
            return
        tree = B.proc_tree(self.master) if self.master else []
        try:
            r = self.postfix("stop")
            if r.returncode != 0:
                log("postfix stop: %s%s" % (r.stdout, r.stderr))
        except subprocess.TimeoutExpired:
            log("postfix stop did not finish in 60s")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(os.path.exists("/proc/%d" % p) for p in tree):
            time.sleep(0.2)
        if self.master and os.path.exists("/proc/%d" % self.master):
            log("postfix master %d still running; SIGTERM" % self.master)
            try:
                os.kill(self.master, signal.SIGTERM)
            except OSError:
                pass
            time.sleep(5)
        for p in tree:
            if os.path.exists("/proc/%d" % p):
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
        self.started = False
        self.master = None

    def alive(self):
        return super().alive() and self.dovecot_alive()

    def roots(self):
        return [p for p in (self.master, self.dovecot_pid) if p]

    def hash_info(self):
        return hash_setting(self.pwhash)


def dovecot_version():
    r = subprocess.run([DOVECOT, "--version"], capture_output=True, text=True, timeout=30)
    return r.stdout.split()[0] if r.returncode == 0 and r.stdout.split() else "?"


def check_listeners(servers):
    """check_listeners - every TCP socket our processes listen on is on 127.0.0.1, none on 25."""
    ours = set()
    for s in servers:
        for root in s.roots():
            ours.update(B.proc_tree(root))
    r = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, timeout=30)
    for line in r.stdout.splitlines():
        pids = {int(p) for p in B.re.findall(r"pid=(\d+)", line)}
        if not pids & ours:
            continue
        local = line.split()[3]
        addr, _, port = local.rpartition(":")
        if addr != "127.0.0.1" or port == "25":
            raise BenchError("a bench server listens on %s; refusing to go on" % local)


# ---------------------------------------------------------------- load


class Load:
    """Load - one kind of tls-source run: mail (new connection or reuse) or handshakes."""

    def __init__(self, kind, sessions, reuse=False):
        self.kind = kind  # "mail" or "hs"
        self.sessions = sessions
        self.reuse = reuse
        if kind == "hs":
            self.label = "handshakes s=%d" % sessions
        else:
            self.label = "%s s=%d" % ("reuse conn" if reuse else "new conn/msg", sessions)

    def args(self, pwfile, count):
        if self.kind == "hs":
            return ["-H", "-s", str(self.sessions), "-m", str(count), "-e", B.HELO]
        a = ["-s", str(self.sessions), "-m", str(count), "-l", str(MSG_LEN), "-e", B.HELO,
             "-f", USER, "-r", B.RCPT, "-u", USER, "-w", pwfile]
        return a + (["-d"] if self.reuse else [])

    def first_count(self):
        if self.kind == "mail" and not self.reuse:
            return max(20, 2 * self.sessions)
        return max(100, 10 * self.sessions)


def tls_source(ctx, port, load, count, limit):
    """tls_source - one bounded run; (seconds, error or None, {key: value} of its last line)."""
    cmd = ["timeout", "-k", "5", str(int(limit) + 10), ctx["bin"]] + load.args(ctx["pwfile"], count)
    cmd += ["-t", str(int(limit)), "127.0.0.1:%d" % port]
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = p.communicate(timeout=limit + 40)
    except BaseException:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        raise
    dt = time.monotonic() - t0
    info = {"wait": {}}
    for line in out.splitlines():
        words = line.split()
        into = info["wait"] if words and words[0] == "wait_ms" else info
        for word in words:
            k, eq, v = word.partition("=")
            if eq:
                into[k] = v
    if p.returncode == 124:
        return dt, "timed out after %ds" % int(limit), info
    if p.returncode != 0:
        return dt, (err.strip().splitlines() or ["exit %d" % p.returncode])[-1], info
    if "seconds" in info:
        dt = float(info["seconds"])  # tls-source's own clock: without process start-up
    return dt, None, info


def calibrate(ctx, server, load):
    count = load.first_count()
    rate = None
    for _ in range(3):
        dt, err, _ = tls_source(ctx, server.port, load, count, B.CAL_TIMEOUT)
        if err:
            raise BenchError("%s calibration (%s): %s" % (server.name, load.label, err))
        if load.kind == "mail":
            B.drain(server, count, time.monotonic())
        B.settle(server)
        rate = count / dt
        if dt >= 1.0:
            break
        count = min(MAX_UNITS, int(rate * 1.5) + 1)
    return max(2 * load.sessions, min(MAX_UNITS, int(math.ceil(rate * SECONDS))))


def run_once(ctx, server, load, count):
    res = {"n": count}
    roots = server.roots()
    hwm_ok = isinstance(server, B.Tern) and server.reset_peak()
    sampler = B.Sampler(roots)
    cpu0 = [B.cpu_snapshot(r) for r in roots]
    busy0, own0 = B.sys_busy(), B.own_cpu()
    sampler.start()
    t0 = time.monotonic()
    dt, err, info = tls_source(ctx, server.port, load, count, B.RUN_TIMEOUT)
    res["err"] = err
    res["secs"] = dt
    res["rate"] = None if err else count / dt
    res["tls"] = "%s %s" % (info.get("tls", "?"), info.get("cipher", "?"))
    res["wait"] = info["wait"]
    if not err and load.kind == "mail":
        res["e2e"] = B.drain(server, count, t0)
    sampler.finish()
    cpu1 = [B.cpu_snapshot(r) for r in roots]
    elapsed = time.monotonic() - t0
    busy, own = B.sys_busy() - busy0, B.own_cpu() - own0
    server_cpu = sum(B.cpu_seconds(a, b) for a, b in zip(cpu0, cpu1))
    res["cpu_ms"] = 1000.0 * server_cpu / count
    res["other"] = 100.0 * max(0.0, busy - own - server_cpu) / (os.cpu_count() * elapsed)
    res["rss"], res["pss"], res["procs"] = sampler.peak_rss, sampler.peak_pss, sampler.peak_procs
    if hwm_ok:
        res["rss"] = max(res["rss"], server.hwm())
    if not server.alive():
        res["err"] = (err or "") + " (server died)"
    B.settle(server)
    return res


def measure(ctx, server, load):
    res = run_once(ctx, server, load, calibrate(ctx, server, load))
    if not res["err"] and res["secs"] < B.SHORT_RUN and res["n"] < MAX_UNITS:
        log("  %d took %.1fs; again with more" % (res["n"], res["secs"]))
        more = min(MAX_UNITS, int(math.ceil(res["rate"] * SECONDS)))
        res = run_once(ctx, server, load, max(more, res["n"] + 1))
    return res


def failed(err):
    return {"err": err, "n": 0, "secs": 0, "rate": None}


# ---------------------------------------------------------------- idle TLS connections


def idle_tls(ctx, server, n):
    """idle_tls - KiB RSS and PSS per connection held open after STARTTLS, handshake, EHLO."""
    roots = server.roots()
    time.sleep(1)
    rss0, pss0, procs0 = B.roots_mem(roots)
    cmd = ["timeout", "-k", "5", str(IDLE_LIMIT + 60), ctx["bin"], "-I", str(n), "-s",
           str(IDLE_SETUP), "-e", B.HELO, "-t", str(IDLE_LIMIT), "127.0.0.1:%d" % server.port]
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        ready = p.stdout.readline().split()
        if len(ready) != 3 or ready[0] != "ready":
            p.stdin.close()
            p.wait(timeout=30)
            raise BenchError("%s idle: %s" % (server.name, (p.stderr.read().strip().splitlines()
                                                            or ["no ready line"])[-1]))
        held, took = int(ready[1]), float(ready[2])
        time.sleep(2)
        rss1, pss1, procs1 = B.roots_mem(roots)
        p.stdin.write("check\n")
        p.stdin.flush()
        line = p.stdout.readline().split()
        still = int(line[1]) if len(line) == 2 and line[0] == "open" else -1
        p.stdin.close()
        p.wait(timeout=60)
    except BaseException:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
        p.wait()
        raise
    if held != n or still != n:
        raise BenchError("%s idle: %d of %d set up, %d still open at the end" %
                         (server.name, held, n, still))
    return {"n": n, "rss0": rss0, "rss1": rss1, "pss0": pss0, "pss1": pss1,
            "procs0": procs0, "procs1": procs1, "secs": took,
            "rss_per": (rss1 - rss0) / n, "pss_per": (pss1 - pss0) / n}


# ---------------------------------------------------------------- report


def report(meta, results, idle, loads):
    fmt_mib, table = B.fmt_mib, B.table
    lines = [
        "tern submission bench, %s" % meta["date"],
        "machine: %s CPUs, %s MiB RAM, kernel %s; storage: %s" %
        (meta["cpus"], meta["mem"], meta["kernel"], meta["fs"]),
        "servers: tern %s | Postfix %s with Dovecot %s auth, private instances, virtual(8) "
        "to Maildir" % (meta["tern"], meta["postfix"], meta["dovecot"]),
        "TLS: %s certificate, the same for both; negotiated: tern %s | postfix %s" %
        (meta["cert"], meta.get("tls_tern", "-"), meta.get("tls_postfix", "-")),
        "password hash: tern %s | Dovecot %s; one verification of it takes %.0f ms CPU here" %
        (meta.get("hash_tern", "-"), meta.get("hash_postfix", "-"), meta["verify_ms"]),
        "load: tls-source, EHLO, STARTTLS, EHLO, AUTH PLAIN, then MAIL, RCPT, DATA with a %d-byte "
        "body, no pipelining; about %gs per run; load average at start %s, after the load "
        "runs %s" % (MSG_LEN, SECONDS, meta["load"], meta.get("load_end", "?")),
        "",
    ]

    def get(name, ld):
        x = results.get((name, ld.label))
        return x if x and not x.get("err") else None

    def rate(name, ld):
        x = get(name, ld)
        if x:
            return B.fmt_rate(x["rate"])
        return "FAIL" if (name, ld.label) in results else "-"

    for title, kind in (("Accepted messages per second (messages / tls-source wall time); peak "
                         "memory of the server's processes (Postfix: with Dovecot's)", "mail"),
                        ("TLS handshakes per second (connect, EHLO, STARTTLS, full handshake, "
                         "QUIT; no session resumption)", "hs")):
        lines.append(title)
        rows = []
        for ld in loads:
            if ld.kind != kind:
                continue
            t, p = get("tern", ld), get("postfix", ld)
            ratio = "%.2f" % (t["rate"] / p["rate"]) if t and p else "-"
            rows.append([ld.label, rate("tern", ld), rate("postfix", ld), ratio,
                         fmt_mib(t and t["rss"]), fmt_mib(t and t["pss"]),
                         fmt_mib(p and p["rss"]), fmt_mib(p and p["pss"])])
        lines.append(table(rows, ["scenario", "tern/s", "postfix/s", "tern/postfix",
                                  "tern RSS MiB", "PSS", "postfix RSS MiB", "PSS"]))
        lines.append("")

    lines.append("Per run: count, seconds, server CPU ms per message or handshake (Postfix: with "
                 "Dovecot), seconds until all were in the Maildir, other CPU %")
    rows = []
    for ld in loads:
        row = [ld.label]
        for name in ("tern", "postfix"):
            x = get(name, ld)
            if not x:
                row += ["-"] * 5
                continue
            row += [str(x["n"]), "%.1f" % x["secs"], "%.2f" % x["cpu_ms"],
                    "%.1f" % x["e2e"] if x.get("e2e") else "-", "%.0f" % x["other"]]
        rows.append(row)
    lines.append(table(rows, ["scenario", "tern n", "s", "cpu ms", "deliv s", "other%",
                              "postfix n", "s", "cpu ms", "deliv s", "other%"]))
    for ld in loads:
        for name in ("postfix", "tern"):
            x = results.get((name, ld.label))
            if not x:
                continue
            if (ld.kind == "mail" and not ld.reuse and not x.get("err") and
                    x["cpu_ms"] < 0.5 * meta["verify_ms"]):
                lines.append("note: %s %s: %.1f ms CPU per message, each with its own AUTH, is "
                             "less than one hash verification (%.0f ms): it did not verify the "
                             "hash at every AUTH" % (name, ld.label, x["cpu_ms"],
                                                     meta["verify_ms"]))
            if x.get("err"):
                lines.append("FAIL %s %s: %s" % (name, ld.label, x["err"]))
            elif x["secs"] < B.SHORT_RUN:
                lines.append("note: %s %s ran %.1fs (< %gs)" % (name, ld.label, x["secs"],
                                                               B.SHORT_RUN))
    lines.append("")
    lines.append("Mean wait for a reply as the client sees it, ms: TLS handshake, EHLO after TLS, "
                 "AUTH, end of DATA (measured runs)")
    rows = []
    steps = ("handshake", "ehlo2", "auth", "dot")
    for ld in loads:
        row = [ld.label]
        for name in ("tern", "postfix"):
            x = get(name, ld) or {}
            w = x.get("wait", {})
            row += [w.get(k, "-") for k in steps]
        rows.append(row)
    lines.append(table(rows, ["scenario", "tern hs", "ehlo2", "auth", "dot",
                              "postfix hs", "ehlo2", "auth", "dot"]))
    lines.append("")
    lines.append("Memory per idle TLS connection (STARTTLS, handshake, EHLO answered, held open); "
                 "(after - before) / N over the server's processes")
    lines += B.idle_lines(idle)
    t, p = idle.get("tern", {}), idle.get("postfix", {})
    if t.get("pss_per", 0) > 0 and p.get("pss_per", 0) > 0:
        lines.append("tern/postfix, PSS per idle TLS connection: %.3f (postfix/tern: %.0f)" %
                     (t["pss_per"] / p["pss_per"], p["pss_per"] / t["pss_per"]))
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- main


def main(argv):
    need = [OPENSSL] + ([B.POSTFIX, DOVECOT] if "postfix" in SERVERS else [])
    binary = B.start_checks(argv, "--submission", SERVERS, need,
                            "Postfix's and Dovecot's masters run as root")
    if binary is None:
        return 2
    B.raise_nofile(IDLE_N + IDLE_N_POSTFIX + 1024)

    top = tempfile.mkdtemp(prefix="tern-bench-sub.")
    os.chmod(top, 0o755)
    servers, results, idle = [], {}, {}
    def run():
        rc = 0
        meta = B.meta_info(top)
        meta["dovecot"] = "-"
        ctx = {"bin": build_tls_source(top)}
        password = secrets.token_urlsafe(18)
        ctx["pwfile"] = os.path.join(top, "password")
        with open(ctx["pwfile"], "w") as f:
            f.write(password + "\n")
        os.chmod(ctx["pwfile"], 0o600)
        cert, key = make_cert(top)
        meta["cert"] = "RSA 2048" if CERT_KIND == "rsa" else "ECDSA P-256"

        ports = set()
        while len(ports) < 2:
            ports.add(B.free_port())
        ports = sorted(ports)
        byname = {}
        pwhash = crypt_hash(password)
        meta["verify_ms"] = verify_cost_ms(pwhash, password)
        if "postfix" in SERVERS:
            byname["postfix"] = SubPostfix(top, ports[0], cert, key, pwhash)
        if "tern" in SERVERS:
            byname["tern"] = SubTern(top, binary, ports[1], cert, key, password)
        for name in ("postfix", "tern"):
            if name in byname:
                log("starting %s on 127.0.0.1:%d" % (name, byname[name].port))
                servers.append(byname[name])
                byname[name].start()
                meta["hash_" + name] = byname[name].hash_info()
        if "postfix" in byname:
            meta["postfix"] = byname["postfix"].version()
            meta["dovecot"] = dovecot_version()
        if "tern" in byname:
            meta["tern"] = "(binary sha256 %s)" % B.sha256_short(binary)
        check_listeners(servers)

        loads = [Load("mail", s, reuse) for reuse in (False, True) for s in CONCURRENCY]
        loads += [Load("hs", s) for s in CONCURRENCY]
        for ld in loads:
            for name in ("postfix", "tern"):
                srv = byname.get(name)
                if not srv:
                    continue
                log("%s: %s" % (name, ld.label))
                if not srv.alive():
                    results[(name, ld.label)] = failed("server not running")
                    continue
                try:
                    results[(name, ld.label)] = measure(ctx, srv, ld)
                except BenchError as e:
                    results[(name, ld.label)] = failed(str(e))
                x = results[(name, ld.label)]
                if not x.get("err") and "tls" in x:
                    meta["tls_" + name] = x["tls"]
                log("  %s in %.1fs: %s/s%s" % (x["n"], x["secs"], B.fmt_rate(x["rate"]),
                                              " ERROR " + x["err"] if x["err"] else ""))
        meta["load_end"] = " ".join(open("/proc/loadavg").read().split()[:3])

        def idle_one(srv, n):
            figures = idle_tls(ctx, srv, n)
            log("  %.1f KiB PSS per connection" % figures["pss_per"])
            return figures
        idle.update(B.idle_test(byname, idle_one, "idle TLS connections"))

        text = report(meta, results, idle, loads)
        B.write_report(text, "bench-submission")
        if any(x.get("err") for x in results.values()) or any("err" in x for x in idle.values()):
            rc = 1
        return rc

    return B.guarded(run, servers, top)


if __name__ == "__main__":
    sys.exit(main(sys.argv))

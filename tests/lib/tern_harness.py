"""tern_harness - start, drive and stop a tern server for the Python test tiers.

Every server gets its own temporary root (configuration file, data directory,
log file) and a free loopback port. It is stopped by its PID (SIGTERM, then
SIGKILL after a deadline). Every wait is a bounded poll: a count and a
deadline, never an open-ended loop. Only loopback addresses are used.

A server may have more listeners than its mx one (kinds submission and
submissions, each on its own free port), users with passwords, and TLS:
SMTPClient can upgrade with STARTTLS or connect with implicit TLS, trusting
the certificate the server made for itself (DATA_DIR/tls/selfsigned.crt).

The binary comes from $TERN_BIN. When it is a sanitizer build (TERN_SANITIZED=1
or a path containing "build-san"), deadlines are stretched by SLOW.
"""

import contextlib
import errno
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TERN_BIN = os.environ.get("TERN_BIN") or os.path.join(REPO, "build", "tern")
SANITIZED = os.environ.get("TERN_SANITIZED") == "1" or "build-san" in TERN_BIN
SLOW = 3 if SANITIZED else 1

HOSTNAME = "tern.test"
START_TIMEOUT = 20 * SLOW
STOP_TIMEOUT = 30 * SLOW
REPLY_TIMEOUT = 15 * SLOW
DELIVERY_TIMEOUT = 30 * SLOW
POLL = 0.05

# Lines of the server log that mean it broke, whatever the test checked.
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "event=fatal")


class HarnessError(AssertionError):
    """A setup or wait step failed; the message carries the server's log."""


def binary_problem():
    """A reason the binary cannot be used, or None."""
    if not os.path.isfile(TERN_BIN):
        return "tern binary not found at %s (set TERN_BIN or run make)" % TERN_BIN
    if not os.access(TERN_BIN, os.X_OK):
        return "tern binary %s is not executable" % TERN_BIN
    return None


# Ports this process has handed out. The kernel may give the same
# ephemeral port to two bind(port 0) calls in a row once the first socket
# is closed, so a server with several listeners could be handed one port
# twice; each port is handed out once per test run instead.
_ports_handed_out = set()


def free_port(host="127.0.0.1"):
    """A TCP port that was free on host a moment ago (bind port 0), never
    one this process handed out before."""
    for _ in range(1000):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port not in _ports_handed_out:
            _ports_handed_out.add(port)
            return port
    raise HarnessError("no free port left that was not handed out already")


def port_is_free(host, port):
    """Nothing listens on host:port (connections in TIME_WAIT do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def wait_until(predicate, timeout, what, on_fail=None, interval=POLL):
    """Poll predicate() until it returns a true value (returned) or timeout.

    Bounded in time and count. On timeout raises HarnessError naming what was
    awaited; on_fail() may add context (a log tail).
    """
    deadline = time.monotonic() + timeout
    tries = int(timeout / interval) + 2
    last = None
    for _ in range(tries):
        last = predicate()
        if last:
            return last
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    extra = on_fail() if on_fail else ""
    raise HarnessError("timed out after %.1fs waiting for %s%s" % (timeout, what, extra))


def run_cli(args, input_bytes=None, timeout=30 * SLOW, cwd=None):
    """Run the tern binary with args; returns CompletedProcess (bytes)."""
    problem = binary_problem()
    if problem:
        raise HarnessError(problem)
    return subprocess.run([TERN_BIN] + list(args), input=input_bytes, capture_output=True,
                          timeout=timeout, cwd=cwd)


@contextlib.contextmanager
def mounted_tmpfs(size, where=None):
    """A tmpfs of size ("16m") mounted on a fresh directory (or on where, which
    must exist), unmounted afterwards; skips the test where mounting is not
    permitted (the tests do not run as root, or in a container without it)."""
    import pytest
    import shutil
    import tempfile
    d = where or tempfile.mkdtemp(prefix="tern-disk-")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", d], capture_output=True)
    if r.returncode != 0:
        if not where:
            os.rmdir(d)
        pytest.skip("cannot mount a tmpfs here: %s" % r.stderr.decode(errors="replace").strip())
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", d], capture_output=True)
        if not where:
            shutil.rmtree(d, ignore_errors=True)


def fill_file_system(path, leave=0):
    """Append to the file path until its file system has at most leave bytes
    free (0: until a write fails with ENOSPC, down to the last page).
    Bounded: at most one write per 4 KiB of the file system's size."""
    st = os.statvfs(os.path.dirname(path))
    limit = st.f_blocks * st.f_frsize // 4096 + 64
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for chunk in (1 << 20, 4096):
            for _ in range(limit):
                st = os.statvfs(os.path.dirname(path))
                room = st.f_bavail * st.f_frsize - leave
                if leave and room < chunk:
                    break
                try:
                    os.write(fd, b"\0" * chunk)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)


def maildir_path(data_dir, address):
    """DATA_DIR/mail/DOMAIN/LOCAL for a local address (lower-cased)."""
    local, _, domain = address.rpartition("@")
    return os.path.join(data_dir, "mail", domain.lower(), local.lower())


def list_new(data_dir, address):
    """Sorted file names in the mailbox's new/ folder (empty if it is absent)."""
    d = os.path.join(maildir_path(data_dir, address), "new")
    try:
        return sorted(n for n in os.listdir(d) if not n.startswith("."))
    except (FileNotFoundError, NotADirectoryError):
        return []


def read_new(data_dir, address):
    """Contents (bytes) of every file in the mailbox's new/ folder."""
    d = os.path.join(maildir_path(data_dir, address), "new")
    out = []
    for n in list_new(data_dir, address):
        with open(os.path.join(d, n), "rb") as f:
            out.append(f.read())
    return out


def split_trace(stored):
    """Split a delivered file into (trace header lines, the rest).

    The file starts with Return-Path:, Delivered-To: and one Received: field
    (possibly folded) that tern added, in that order. Raises AssertionError
    if it does not.
    """
    lines = stored.split(b"\n")
    trace = []
    i = 0
    for name in (b"Return-Path:", b"Delivered-To:", b"Received:"):
        assert i < len(lines) and lines[i].startswith(name), (
            "delivered file does not start with tern's %r trace line: %r"
            % (name, stored[:300]))
        field = lines[i]
        i += 1
        while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
            field += b"\n" + lines[i]
            i += 1
        trace.append(field)
    return trace, b"\n".join(lines[i:])


def as_stored(sent):
    """What the message sent with CRLF endings looks like in new/ (LF)."""
    return sent.replace(b"\r\n", b"\n")


class Server:
    """One tern server process with its own root directory and port."""

    def __init__(self, root, config=None, name="tern", listeners=()):
        self.root = root
        os.makedirs(root, exist_ok=True)
        self.name = name
        self.data_dir = os.path.join(root, "data")
        self.conf_path = os.path.join(root, "tern.conf")
        self.log_path = os.path.join(root, "tern.log")
        self.port = free_port()
        self.proc = None
        self.exit_code = None
        self.killed = False
        self.starts = 0
        self.log_offset = 0
        self.rlimit_nofile = None  # (soft, hard) for the server process, or None
        self.settings = {
            "hostname": HOSTNAME,
            "data_dir": self.data_dir,
            "listen": "127.0.0.1:%d mx" % self.port,
            "local_domains": "localhost",
            "log_level": "debug",
        }
        if config:
            self.settings.update(config)
        self.data_dir = self.settings["data_dir"]
        if "listen" in (config or {}):
            m = re.search(r":(\d+)", self.settings["listen"])
            if m:
                self.port = int(m.group(1))
        # Listeners besides the mx one: kind -> port, one per kind.
        self.ports = {"mx": self.port}
        for kind in listeners:
            assert kind in ("mx", "submission", "submissions") and kind not in self.ports, kind
            self.ports[kind] = free_port()
        self.write_config()

    # ---- configuration ----
    def write_config(self, extra_lines=()):
        text = "# written by the test harness\n"
        for k, v in self.settings.items():
            if isinstance(v, (list, tuple)):
                for item in v:
                    text += "%s = %s\n" % (k, item)
            else:
                text += "%s = %s\n" % (k, v)
        for kind, port in getattr(self, "ports", {}).items():
            if port != self.port:
                text += "listen = 127.0.0.1:%d %s\n" % (port, kind)
        for line in extra_lines:
            text += line + "\n"
        tmp = self.conf_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.conf_path)

    def set(self, **kv):
        self.settings.update({k: v if isinstance(v, (list, tuple)) else str(v) for k, v in kv.items()})
        self.write_config()

    # ---- process ----
    def start(self, wait=True):
        assert self.proc is None or self.proc.poll() is not None, "server already running"
        problem = binary_problem()
        if problem:
            raise HarnessError(problem)
        os.makedirs(self.root, exist_ok=True)
        self.starts += 1
        log = open(self.log_path, "ab")
        log.write(b"==== harness: start #%d ====\n" % self.starts)
        log.flush()
        self.log_offset = log.tell()
        preexec = None
        if self.rlimit_nofile:
            limits = self.rlimit_nofile

            def preexec():
                import resource
                resource.setrlimit(resource.RLIMIT_NOFILE, limits)
        self.proc = subprocess.Popen([TERN_BIN, "serve", "-c", self.conf_path], stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=log, cwd=self.root, preexec_fn=preexec)
        log.close()
        self.exit_code = None
        self.killed = False
        if wait:
            self.wait_ready()
        return self

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout=START_TIMEOUT):
        """Wait until the server logs event=ready (the contract's signal that
        its listeners are up and it is fully started) and accepts a connection.
        The kernel accepts connections as soon as the socket listens, which
        may be before the server has set up its signal handlers."""
        def up():
            if self.proc.poll() is not None:
                raise HarnessError("tern exited with %s while starting%s"
                                   % (self.proc.returncode, self.log_tail()))
            with open(self.log_path, "rb") as f:
                f.seek(self.log_offset)
                if b"event=ready" not in f.read():
                    return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return True
            except OSError:
                return False
        wait_until(up, timeout, "tern to accept connections on port %d" % self.port, self.log_tail)

    def signal(self, sig):
        if self.running():
            os.kill(self.proc.pid, sig)

    def wait_exit(self, timeout=STOP_TIMEOUT):
        """Wait (bounded) for the process to exit; returns the exit code or None."""
        try:
            self.exit_code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.exit_code

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM, then SIGKILL after timeout. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            if self.wait_exit(timeout) is None:
                self.killed = True
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
        self.exit_code = self.proc.returncode
        return self.exit_code

    def kill9(self):
        if self.running():
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.exit_code = self.proc.returncode

    # ---- log ----
    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except FileNotFoundError:
            return 0

    def log_since(self, offset, limit=1 << 20):
        """Up to limit bytes of the log written after offset, as text."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                return f.read(limit).decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines=60):
        size = self.log_size()
        try:
            with open(self.log_path, "rb") as f:
                f.seek(max(0, size - 200 * lines))
                text = f.read().decode("utf-8", "replace").splitlines()
        except FileNotFoundError:
            text = []
        return "\n---- %s log (%s, last %d lines) ----\n%s" % (
            self.name, self.log_path, min(lines, len(text)), "\n".join(text[-lines:]))

    def sanitizer_report(self):
        text = self.log_text()
        for mark in SANITIZER_MARKS:
            if mark in text:
                i = text.index(mark)
                return text[max(0, i - 200):i + 3000]
        return None

    # ---- CLI ----
    def cli(self, *args, input_bytes=None, check=True):
        r = run_cli(["-c", self.conf_path] + list(args), input_bytes=input_bytes)
        if check and r.returncode != 0:
            raise HarnessError("tern %s exited %d\nstdout: %s\nstderr: %s" % (
                " ".join(args), r.returncode, r.stdout.decode(errors="replace"),
                r.stderr.decode(errors="replace")))
        return r

    def add_user(self, address, password=None, cram_md5=False):
        """`tern user add`; with a password (given on stdin, which also makes
        the SCRAM-SHA-256 secret) and optionally the CRAM-MD5 secret."""
        if password is None:
            return self.cli("user", "add", address)
        args = ["user", "add", address, "--password-stdin"]
        if cram_md5:
            args.append("--cram-md5")
        return self.cli(*args, input_bytes=password.encode("utf-8") + b"\n")

    def set_senders(self, address, *patterns):
        """`tern user senders ADDRESS PATTERN...` (no pattern clears the list)."""
        return self.cli("user", "senders", address, *patterns)

    def del_user(self, address):
        return self.cli("user", "del", address)

    def add_alias(self, alias, *targets):
        return self.cli("alias", "add", alias, *targets)

    def queue(self):
        """The queue as `tern queue list --json` gives it: a list of entries."""
        r = self.cli("queue", "list", "--json")
        text = r.stdout.decode("utf-8", "replace").strip()
        if not text:
            return []
        data = json.loads(text)
        if isinstance(data, dict):
            for key in ("messages", "queue", "items", "entries"):
                if isinstance(data.get(key), list):
                    return data[key]
            lists = [v for v in data.values() if isinstance(v, list)]
            if len(lists) == 1:
                return lists[0]
            raise HarnessError("cannot read queue list --json output: %r" % text[:500])
        if isinstance(data, list):
            return data
        raise HarnessError("cannot read queue list --json output: %r" % text[:500])

    def wait_queue_empty(self, timeout=DELIVERY_TIMEOUT):
        last = []

        def empty():
            last[:] = self.queue()
            return not last
        wait_until(empty, timeout, "the queue to empty",
                   lambda: "\nqueue: %r%s" % (last[:5], self.log_tail()), interval=0.1)

    # ---- mailboxes ----
    def maildir(self, address):
        return maildir_path(self.data_dir, address)

    def new_files(self, address):
        return list_new(self.data_dir, address)

    def messages(self, address):
        return read_new(self.data_dir, address)

    def wait_mail(self, address, count, timeout=DELIVERY_TIMEOUT):
        """Wait until address's new/ holds at least count files; return their contents."""
        wait_until(lambda: len(self.new_files(address)) >= count, timeout,
                   "%d message(s) in %s/new (have %d)" % (count, self.maildir(address),
                                                          len(self.new_files(address))),
                   self.log_tail, interval=0.05)
        return self.messages(address)

    def expect_mail(self, address, count, timeout=DELIVERY_TIMEOUT):
        """Exactly count messages for address once the queue has emptied."""
        if count:
            self.wait_mail(address, count, timeout)
        self.wait_queue_empty(timeout)
        have = self.new_files(address)
        assert len(have) == count, "%s/new has %d file(s), want %d: %r%s" % (
            self.maildir(address), len(have), count, have, self.log_tail())
        return self.messages(address)

    def port_of(self, kind):
        return self.ports[kind]

    # ---- TLS ----
    def selfsigned_cert(self):
        """Path of the certificate tern made for itself on first start."""
        return os.path.join(self.data_dir, "tls", "selfsigned.crt")

    def tls_context(self, cafile=None):
        """A client context that trusts only cafile (default: the server's
        self-signed certificate) and checks the host name."""
        return client_context(cafile or self.selfsigned_cert())

    def connect(self, kind="mx", tls=None, server_hostname="localhost", **kw):
        """A raw client on the listener of that kind; for implicit TLS pass
        tls=True (the self-signed certificate as CA) or an SSLContext."""
        if tls is True:
            tls = self.tls_context()
        return SMTPClient("127.0.0.1", self.ports[kind], tls_context=tls, server_hostname=server_hostname, **kw)


def client_context(cafile, minimum=ssl.TLSVersion.TLSv1_2):
    """A TLS client context trusting cafile only, with host name checks."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=cafile)
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.minimum_version = minimum
    return ctx


class Reply:
    def __init__(self, code, lines):
        self.code = code
        self.lines = lines  # text after "NNN-" / "NNN ", as str

    @property
    def text(self):
        return "\n".join(self.lines)

    def enhanced(self):
        """The enhanced status code of the first line, or None."""
        m = re.match(r"([245])\.(\d{1,3})\.(\d{1,3})(?: |$)", self.lines[0] if self.lines else "")
        return m.group(0).strip() if m else None

    def __repr__(self):
        return "\n".join("%d%s%s" % (self.code, "-" if i < len(self.lines) - 1 else " ", l)
                         for i, l in enumerate(self.lines))


class Closed(Exception):
    """The server closed the connection while a reply was awaited."""


class SMTPClient:
    """A raw SMTP client: bytes out, parsed replies in, bounded reads."""

    def __init__(self, host, port, source=None, timeout=REPLY_TIMEOUT, tls_context=None,
                 server_hostname=None):
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        if source:
            self.sock.bind((source, 0))
        self.sock.connect((host, port))
        self.buf = b""
        self.eof = False
        self.transcript = []
        if tls_context is not None:
            try:
                self.sock = tls_context.wrap_socket(self.sock, server_hostname=server_hostname)
            except BaseException:
                self.sock.close()
                raise

    def starttls(self, context, server_hostname="localhost"):
        """The TLS handshake on this connection (after a 220 to STARTTLS).
        Nothing may be buffered from before it."""
        assert not self.buf, "bytes received before the TLS handshake: %r" % self.buf
        self.transcript.append(("C", b"<TLS handshake>"))
        self.sock = context.wrap_socket(self.sock, server_hostname=server_hostname)
        return self.sock

    @property
    def tls(self):
        """The SSLSocket when TLS is active, else None."""
        return self.sock if isinstance(self.sock, ssl.SSLSocket) else None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        """Send bytes as one write; returns False if the peer has gone."""
        self.transcript.append(("C", data))
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
            return False

    def cmd(self, line):
        """Send one command line (CRLF appended) and return its reply."""
        self.send(line.encode("utf-8") + b"\r\n")
        return self.reply()

    def _fill(self, deadline):
        if self.eof:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no complete reply within %.1fs; buffered %r" % (self.timeout, self.buf[-300:]))
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("no complete reply within %.1fs; buffered %r" % (self.timeout, self.buf[-300:]))
        except (ConnectionResetError, ssl.SSLZeroReturnError, ssl.SSLEOFError):
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def reply(self, timeout=None):
        """Read one whole reply (all its lines). Raises Closed on EOF."""
        deadline = time.monotonic() + (timeout or self.timeout)
        lines = []
        code = None
        for _ in range(100000):
            i = self.buf.find(b"\r\n")
            if i < 0:
                if not self._fill(deadline):
                    raise Closed("connection closed; partial reply %r, buffered %r" % (lines, self.buf))
                continue
            raw = self.buf[:i]
            self.buf = self.buf[i + 2:]
            m = re.match(rb"^([2-5]\d\d)([ -])(.*)$", raw, re.S)
            if not m:
                raise AssertionError("malformed reply line %r" % raw)
            c = int(m.group(1))
            if code is not None and c != code:
                raise AssertionError("reply code changed inside a multi-line reply: %r then %r" % (lines, raw))
            code = c
            lines.append(m.group(3).decode("utf-8", "replace"))
            if m.group(2) == b" ":
                r = Reply(code, lines)
                self.transcript.append(("S", r))
                return r
        raise AssertionError("reply with too many lines")

    def expect(self, code, timeout=None):
        r = self.reply(timeout)
        assert r.code == code, "expected %d, got %r\ntranscript:\n%s" % (code, r, self.dump())
        return r

    def wait_closed(self, timeout=None):
        """True if the server closes the connection (EOF or reset) in time;
        raises if it sends more bytes instead."""
        deadline = time.monotonic() + (timeout or self.timeout)
        if self.buf:
            raise AssertionError("expected the connection to close, but the server sent %r" % self.buf)
        try:
            more = self._fill(deadline)
        except TimeoutError:
            return False
        if more:
            raise AssertionError("expected the connection to close, but the server sent %r" % self.buf)
        return True

    def dump(self):
        out = []
        for who, x in self.transcript[-40:]:
            if who == "C":
                out.append("C: %r" % x[:300])
            else:
                out.append("S: %r" % x)
        return "\n".join(out)


def send_message(client, sender, rcpts, content, ehlo="client.test"):
    """One whole transaction on an open client; returns the final reply.

    content is the message with CRLF line endings, not dot-stuffed.
    """
    body = content
    if body and not body.endswith(b"\r\n"):
        body += b"\r\n"
    stuffed = re.sub(rb"(?m)^\.", b"..", body)
    client.cmd("MAIL FROM:<%s>" % sender)
    for r in rcpts:
        client.cmd("RCPT TO:<%s>" % r)
    r = client.cmd("DATA")
    if r.code != 354:
        return r
    client.send(stuffed + b".\r\n")
    return client.reply()

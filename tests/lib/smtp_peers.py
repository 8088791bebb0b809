"""smtp_peers - SMTP servers on loopback for tern's outbound tests to deliver to.

Three kinds, each on its own loopback address (127.0.0.2, 127.0.0.3, ...,
whichever is free) and port 25 unless told otherwise:

SMTPPeer     a programmable server in Python (one thread per connection). It
             records every connection and transaction (EHLO name, TLS, AUTH,
             MAIL FROM and RCPT TO with their parameters, the DATA bytes as
             received and unstuffed), answers each phase or recipient with the
             configured replies, offers the extensions it is told to, and can
             play a broken peer: a garbage greeting, replies cut into small
             packets, silence from some phase on, a close in the middle of DATA.
             LMTP mode (LHLO, one reply per recipient after the data) on TCP or
             a Unix socket.
PostfixPeer  a private Postfix instance (its own configuration, queue and log
             in a temporary directory, nothing of /etc/postfix used) that
             delivers to Maildirs through virtual(8) and relays nothing; or a
             submission service, Dovecot checking AUTH (dovecot_peer.py).
SmtpSink     Postfix's smtp-sink, which accepts everything and writes each
             transaction to a file.

TLS certificates come from TestCA: a throwaway CA made with openssl, so a
test can make tern trust exactly that CA.

Every wait is bounded; every process is stopped by its PID; every temporary
directory is removed at stop.
"""

import base64
import errno
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time

POLL = 0.05
WAIT_TIMEOUT = 30
START_TIMEOUT = 30
STOP_TIMEOUT = 20
IO_POLL = 0.2
IDLE_TIMEOUT = 120
MAX_LINE = 8192
MAX_DATA = 64 << 20

POSTFIX = "/usr/sbin/postfix"
SMTP_SINK = "/usr/sbin/smtp-sink"

PHASES = ("greeting", "EHLO", "HELO", "LHLO", "STARTTLS", "AUTH", "MAIL", "RCPT", "DATA", "DOT",
          "RSET", "NOOP", "VRFY", "QUIT", "unknown")


class PeerError(AssertionError):
    """A setup or wait step failed."""


def wait_for(predicate, timeout, what, on_fail=None):
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / POLL) + 2):
        got = predicate()
        if got:
            return got
        if time.monotonic() >= deadline:
            break
        time.sleep(POLL)
    raise PeerError("timed out after %.1fs waiting for %s%s" % (
        timeout, what, on_fail() if on_fail else ""))


# ---- loopback addresses ----

_claimed = set()
_claim_lock = threading.Lock()


def _try_bind(host, port, kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((host, port))
    except OSError as e:
        s.close()
        if e.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL):
            return None
        raise
    return s


def claim_address(port, host=None, bind=True):
    """A loopback address (127.0.0.2 and up) where port is free, marked as
    taken in this process. With bind, returns (host, bound socket): the bind
    is the claim. Without, (host, None) after a probe, for a server started
    as a separate process."""
    candidates = [host] if host else ["127.0.0.%d" % n for n in range(2, 255)]
    with _claim_lock:
        for h in candidates:
            if h in _claimed and not host:
                continue
            s = _try_bind(h, port)
            if s is None:
                continue
            _claimed.add(h)
            if bind:
                return h, s
            s.close()
            return h, None
    raise PeerError("no loopback address with port %d free (tried %s)" % (
        port, host or "127.0.0.2-254"))


def release_address(host):
    with _claim_lock:
        _claimed.discard(host)


def port_problem(port):
    if port < 1024 and os.geteuid() != 0:
        return "port %d needs root" % port
    return None


# ---- certificates ----

class TestCA:
    """A throwaway certificate authority in directory, and server
    certificates it signs (cached by name)."""

    def __init__(self, directory):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.cert = os.path.join(directory, "ca.crt")
        self.key = os.path.join(directory, "ca.key")
        self.issued = {}
        self.lock = threading.Lock()
        if not os.path.exists(self.cert):
            self._openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                          "-nodes", "-keyout", self.key, "-out", self.cert, "-days", "3",
                          "-subj", "/CN=tern test CA",
                          "-addext", "basicConstraints=critical,CA:TRUE",
                          "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    @staticmethod
    def _openssl(*args):
        if shutil.which("openssl") is None:
            raise PeerError("openssl is not installed")
        r = subprocess.run(["openssl"] + list(args), capture_output=True, timeout=60,
                           stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise PeerError("openssl %s: %s" % (args[0], r.stderr.decode(errors="replace")))

    def issue(self, *names):
        """(cert, key) paths for a server certificate valid for names (DNS
        names or IP addresses; the first is the subject CN)."""
        with self.lock:
            if names in self.issued:
                return self.issued[names]
            base = os.path.join(self.dir, re.sub(r"[^A-Za-z0-9.-]", "_", names[0]) +
                                "-%d" % len(self.issued))
            key, csr, cert, ext = base + ".key", base + ".csr", base + ".crt", base + ".ext"
            san = ",".join(("IP:" if re.match(r"^[0-9.]+$|:", n) else "DNS:") + n for n in names)
            with open(ext, "w") as f:
                f.write("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                        "extendedKeyUsage=serverAuth\nsubjectAltName=%s\n" % san)
            self._openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                          "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=" + names[0])
            self._openssl("x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey", self.key,
                          "-set_serial", str(int.from_bytes(os.urandom(8), "big")), "-days", "3",
                          "-out", cert, "-extfile", ext)
            self.issued[names] = (cert, key)
            return cert, key

    def client_context(self, check_hostname=True):
        """A client SSLContext trusting only this CA."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(cafile=self.cert)
        ctx.check_hostname = check_hostname
        return ctx


# ---- records ----

class Rcpt:
    def __init__(self, address, params, code, reply):
        self.address = address
        self.params = params  # dict: KEYWORD (upper case) -> value or None
        self.code = code
        self.reply = reply

    def __repr__(self):
        return "<RCPT %s %r -> %s>" % (self.address, self.params, self.code)


class Transaction:
    """One MAIL FROM and what followed it on a connection."""

    def __init__(self, conn, number, line, address, params):
        self.number = number
        self.conn = conn
        self.helo = conn.helo
        self.helo_verb = conn.helo_verb
        self.tls = conn.tls
        self.tls_version = conn.tls_version
        self.tls_cipher = conn.tls_cipher
        self.auth_user = conn.auth_user
        self.client = conn.client
        self.mail_line = line
        self.mail_from = address
        self.mail_params = params
        self.mail_code = None
        self.rcpts = []
        self.data_started = False
        self.data_raw = b""      # bytes after 354, as received, up to the final CRLF . CRLF
        self.data = None         # the same with dot-stuffing undone (None until the end)
        self.data_code = None    # final reply code (SMTP)
        self.data_reply = None
        self.lmtp_codes = {}     # LMTP: recipient -> final reply code
        self.bare_lf = False
        self.ended = None        # "data", "rset", "closed", "mail-rejected", "quit", "new-helo"

    @property
    def recipients(self):
        """Addresses whose RCPT got a 2xx."""
        return [r.address for r in self.rcpts if r.code is not None and 200 <= r.code < 300]

    @property
    def accepted(self):
        """The message was taken: a 2xx after the data (LMTP: for at least one recipient)."""
        if self.lmtp_codes:
            return any(200 <= c < 300 for c in self.lmtp_codes.values())
        return self.data_code is not None and 200 <= self.data_code < 300

    @property
    def eight_bit(self):
        return any(b > 127 for b in (self.data or self.data_raw))

    def __repr__(self):
        return "<txn %d from=%s %r rcpts=%r data=%s bytes code=%s tls=%s>" % (
            self.number, self.mail_from, self.mail_params, self.rcpts,
            len(self.data_raw), self.data_code if not self.lmtp_codes else self.lmtp_codes, self.tls)


class Connection:
    """One client connection to a peer."""

    def __init__(self, number, sock, client):
        self.number = number
        self.sock = sock
        self.client = client
        self.buf = b""
        self.helo = None
        self.helo_verb = None
        self.tls = False
        self.tls_version = None
        self.tls_cipher = None
        self.tls_error = None
        self.sni = None
        self.auth_user = None
        self.auth_mech = None
        self.auth_failures = 0
        self.commands = []       # command lines as received (str, no CRLF)
        self.transcript = []     # ("C" | "S", bytes)
        self.transactions = []
        self.injected = b""      # bytes that followed STARTTLS before the handshake
        self.batched = 0         # commands that arrived with more bytes behind them
        self.quit = False
        self.closed_by = None    # "client", "peer" or "stop"
        self.hung_at = None
        self.eof = False
        self.lock = threading.Lock()

    def __repr__(self):
        return "<conn %d from %s helo=%s tls=%s commands=%r>" % (
            self.number, self.client, self.helo, self.tls, self.commands)


def format_reply(reply):
    """Reply bytes: bytes are sent as they are; a str is "CODE text" with
    further lines after "\\n" (sent as a multi-line reply)."""
    if isinstance(reply, bytes):
        return reply
    lines = reply.split("\n")
    code, _, first = lines[0].partition(" ")
    texts = [first] + lines[1:]
    out = b""
    for i, t in enumerate(texts):
        sep = " " if i == len(texts) - 1 else "-"
        out += (code + (sep + t if t or sep == "-" else "")).encode("utf-8") + b"\r\n"
    return out


def reply_code(reply):
    m = re.match(rb"^(\d{3})", reply)
    return int(m.group(1)) if m else None


_PARAM = re.compile(r"^([A-Za-z0-9][A-Za-z0-9-]*)(?:=(\S*))?$")


def parse_path(arg, keyword):
    """(address, params) from "FROM:<a> K=V ..." or None if malformed."""
    m = re.match(r"^%s:\s*<([^<>]*)>(.*)$" % keyword, arg, re.I)
    if not m:
        return None
    params = {}
    for p in m.group(2).split():
        pm = _PARAM.match(p)
        if not pm:
            return None
        params[pm.group(1).upper()] = pm.group(2)
    return m.group(1), params


class Call:
    """What a reply callable gets: the phase, the command's argument, the
    connection and the open transaction (or None), and for RCPT / DOT in
    LMTP the recipient."""

    def __init__(self, phase, arg, conn, txn, rcpt=None):
        self.phase, self.arg, self.conn, self.txn, self.rcpt = phase, arg, conn, txn, rcpt


class _Closed(Exception):
    pass


class SMTPPeer:
    """A programmable SMTP (or LMTP) server. Options:

    hostname          name in the greeting and EHLO reply
    esmtp             False: EHLO gets 502 (the client must fall back to HELO)
    starttls          offer STARTTLS, with cert and key, or a certificate for
                      hostname and the address issued by ca (a TestCA)
    pipelining, eightbitmime, smtputf8, dsn, enhancedstatuscodes: offer them
    size              offer SIZE n and refuse bigger messages (None: no SIZE)
    auth              {user: password}: offer AUTH PLAIN LOGIN and check them
    auth_after_tls    offer AUTH only after STARTTLS
    auth_mechanisms   the mechanisms AUTH offers (PLAIN and LOGIN are checked)
    implicit_tls      TLS from the first byte (RFC 8314), with starttls's
                      certificate (starttls=True gives it; STARTTLS is then
                      not offered)
    require_tls, require_auth: answer MAIL with 530 5.7.0 until done
    strict            MAIL/RCPT parameters of extensions not offered get 555
    extra_ehlo        more EHLO keywords, as lines
    replies           {phase: reply}; a reply is a str ("450 4.2.0 busy",
                      lines joined with "\\n"), bytes (sent raw), a list (one
                      per occurrence of the phase, then the default), or a
                      callable(Call) returning one of those or None (the
                      default). Phases: greeting EHLO HELO LHLO STARTTLS AUTH
                      MAIL RCPT DATA (the 354) DOT (after the data) RSET NOOP
                      VRFY QUIT unknown
    rcpt_replies      {address: reply} for RCPT (before replies["RCPT"])
    lmtp_replies      {address: reply} after the data in LMTP mode
    delay             {phase: seconds} before the reply
    hang_at           phases from which the peer says nothing more (it keeps
                      reading); "greeting" means no greeting at all
    close_at          phases at which the peer closes without replying
    close_after_data_bytes  close once this many data bytes came in
    split             send every reply in pieces of this many bytes, with
                      split_delay seconds between them (separate packets)
    lmtp              speak LMTP; unix_path listens on a Unix socket instead
    """

    def __init__(self, host=None, port=25, name=None, hostname=None, esmtp=True, starttls=False,
                 cert=None, key=None, pipelining=True, size=None, eightbitmime=True,
                 smtputf8=False, dsn=False, enhancedstatuscodes=True, auth=None,
                 auth_after_tls=False, require_tls=False, require_auth=False, strict=True,
                 extra_ehlo=(), replies=None, rcpt_replies=None, lmtp_replies=None, delay=None,
                 hang_at=(), close_at=(), close_after_data_bytes=None, split=None,
                 split_delay=0.05, lmtp=False, unix_path=None, idle_timeout=IDLE_TIMEOUT, ca=None,
                 auth_mechanisms=("PLAIN", "LOGIN"), implicit_tls=False):
        self.port = port
        self.unix_path = unix_path
        self.lmtp = lmtp
        self.esmtp = esmtp
        self.starttls = starttls
        self.cert, self.key = cert, key
        if starttls and not (cert and key) and ca is None:
            raise PeerError("starttls needs cert and key, or ca (a TestCA) to issue them")
        self.pipelining = pipelining
        self.size = size
        self.eightbitmime = eightbitmime
        self.smtputf8 = smtputf8
        self.dsn = dsn
        self.enhancedstatuscodes = enhancedstatuscodes
        self.auth = dict(auth) if auth else None
        self.auth_after_tls = auth_after_tls
        self.auth_mechanisms = tuple(auth_mechanisms)
        self.implicit_tls = implicit_tls
        if implicit_tls:
            starttls = True
            self.starttls = True
        self.require_tls = require_tls
        self.require_auth = require_auth
        self.strict = strict
        self.extra_ehlo = list(extra_ehlo)
        self.replies = dict(replies or {})
        self.rcpt_replies = {k.lower(): v for k, v in (rcpt_replies or {}).items()}
        self.lmtp_replies = {k.lower(): v for k, v in (lmtp_replies or {}).items()}
        self.delay = dict(delay or {})
        self.hang_at = set(hang_at)
        self.close_at = set(close_at)
        self.close_after_data_bytes = close_after_data_bytes
        self.split = split
        self.split_delay = split_delay
        self.idle_timeout = idle_timeout
        for phase in list(self.replies) + list(self.delay) + list(self.hang_at) + list(self.close_at):
            if phase not in PHASES:
                raise PeerError("unknown phase %r (one of %s)" % (phase, ", ".join(PHASES)))
        self.listener = None
        if unix_path:
            self.host = None
            self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.listener.bind(unix_path)
        else:
            self.host, self.listener = claim_address(port, host)
        self.hostname = hostname or ("%s.peer.test" % (name or "peer-%s" % (
            self.host.rsplit(".", 1)[1] if self.host else "unix")))
        self.name = name or self.hostname
        if starttls and not (cert and key):
            try:
                self.cert, self.key = ca.issue(*([self.hostname] + ([self.host] if self.host else [])))
            except BaseException:
                self.listener.close()
                release_address(self.host)
                raise
        self.listener.listen(64)
        self.tls_context = None
        if starttls:
            self.tls_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls_context.load_cert_chain(self.cert, self.key)

            def on_sni(sslsock, server_name, ctx):
                conn = getattr(sslsock, "_peer_conn", None)
                if conn is not None:
                    conn.sni = server_name
            self.tls_context.sni_callback = on_sni
        self.connections = []
        self.transactions = []
        self.errors = []
        self.cond = threading.Condition()
        self.stopping = threading.Event()
        self.threads = []
        self._counts = {}
        self._txn_number = 0
        self._queue_id = 0
        self.thread = None

    # ---- addresses ----
    @property
    def address(self):
        """"HOST:PORT" (or the Unix socket path)."""
        return self.unix_path or "%s:%d" % (self.host, self.port)

    # ---- lifecycle ----
    def start(self):
        self.listener.settimeout(IO_POLL)
        self.thread = threading.Thread(target=self._accept_loop, daemon=True,
                                       name="smtp-peer-%s" % self.name)
        self.thread.start()
        return self

    def stop(self, timeout=STOP_TIMEOUT):
        self.stopping.set()
        if self.thread:
            self.thread.join(timeout=timeout)
        try:
            self.listener.close()
        except OSError:
            pass
        with self.cond:
            conns = list(self.connections)
        for c in conns:
            try:
                c.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        for t in list(self.threads):
            t.join(timeout=max(0.1, deadline - time.monotonic()))
        for c in conns:
            try:
                c.sock.close()
            except OSError:
                pass
        if self.unix_path:
            try:
                os.unlink(self.unix_path)
            except OSError:
                pass
        elif self.host:
            release_address(self.host)

    def _accept_loop(self):
        n = 0
        while not self.stopping.is_set():
            try:
                sock, client = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            n += 1
            if self.unix_path:
                client = ("unix", 0)
            conn = Connection(n, sock, client)
            with self.cond:
                self.connections.append(conn)
                self.cond.notify_all()
            t = threading.Thread(target=self._session, args=(conn,), daemon=True,
                                 name="smtp-peer-%s-%d" % (self.name, n))
            self.threads.append(t)
            t.start()

    # ---- waits and views ----
    def messages(self):
        """Transactions whose message was accepted, in order."""
        with self.cond:
            return [t for t in self.transactions if t.accepted]

    def wait_messages(self, count, timeout=WAIT_TIMEOUT):
        """Wait until count messages were accepted; returns them."""
        return self._wait(lambda: len(self.messages()) >= count and self.messages(), timeout,
                          "%d accepted message(s) at %s" % (count, self.address))

    def wait_transactions(self, count, timeout=WAIT_TIMEOUT, ended=True):
        """Wait until count transactions (accepted or not) have ended (or begun)."""
        def got():
            with self.cond:
                txns = [t for t in self.transactions if t.ended or not ended]
            return len(txns) >= count and txns
        return self._wait(got, timeout, "%d transaction(s) at %s" % (count, self.address))

    def wait_connections(self, count, timeout=WAIT_TIMEOUT, closed=False):
        """Wait until count connections came in (and were closed, if closed)."""
        def got():
            with self.cond:
                conns = [c for c in self.connections if c.closed_by or not closed]
            return len(conns) >= count and conns
        return self._wait(got, timeout, "%d connection(s)%s at %s" % (
            count, " closed" if closed else "", self.address))

    def _wait(self, predicate, timeout, what):
        deadline = time.monotonic() + timeout
        with self.cond:
            for _ in range(int(timeout / IO_POLL) + 2):
                got = predicate()
                if got:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(min(left, IO_POLL))
        raise PeerError("timed out after %.1fs waiting for %s\n%s" % (timeout, what, self.summary()))

    def summary(self):
        with self.cond:
            conns = list(self.connections)
        out = ["---- peer %s (%s): %d connection(s) ----" % (self.name, self.address, len(conns))]
        for c in conns[-10:]:
            out.append("connection %d from %s, closed by %s, tls=%s" % (
                c.number, c.client, c.closed_by, c.tls))
            for who, data in c.transcript[-30:]:
                out.append("  %s: %r" % (who, data[:200]))
        out += ["error: %s" % e for e in self.errors[-10:]]
        return "\n".join(out)

    def log_tail(self, lines=80):
        return "\n" + "\n".join(self.summary().splitlines()[-lines:])

    # ---- I/O ----
    def _readline(self, conn, limit=MAX_LINE):
        """One line with its ending (LF or CRLF); raises _Closed at EOF or stop."""
        deadline = time.monotonic() + self.idle_timeout
        while True:
            i = conn.buf.find(b"\n")
            if i >= 0:
                line, conn.buf = conn.buf[:i + 1], conn.buf[i + 1:]
                return line
            if len(conn.buf) > limit:
                line, conn.buf = conn.buf, b""
                return line
            self._fill(conn, deadline)

    def _fill(self, conn, deadline):
        while True:
            if self.stopping.is_set():
                conn.closed_by = conn.closed_by or "stop"
                raise _Closed()
            if time.monotonic() > deadline:
                conn.closed_by = conn.closed_by or "peer"
                self.errors.append("connection %d idle for %ds" % (conn.number, self.idle_timeout))
                raise _Closed()
            conn.sock.settimeout(IO_POLL)
            try:
                chunk = conn.sock.recv(65536)
            except (socket.timeout, ssl.SSLWantReadError):
                continue
            except (ConnectionError, ssl.SSLError, OSError):
                chunk = b""
            if not chunk:
                conn.eof = True
                conn.closed_by = conn.closed_by or "client"
                raise _Closed()
            conn.buf += chunk
            return

    def _send(self, conn, data):
        conn.transcript.append(("S", data))
        try:
            if self.split:
                if not self.unix_path:
                    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                for i in range(0, len(data), self.split):
                    conn.sock.sendall(data[i:i + self.split])
                    if i + self.split < len(data) and self.stopping.wait(self.split_delay):
                        raise _Closed()
            else:
                conn.sock.sendall(data)
        except (OSError, ssl.SSLError):
            conn.closed_by = conn.closed_by or "client"
            raise _Closed()

    def _hang(self, conn, phase):
        """Say nothing more; read and drop until the client leaves or stop."""
        conn.hung_at = phase
        deadline = time.monotonic() + self.idle_timeout
        conn.buf = b""
        while True:
            self._fill(conn, deadline)
            conn.transcript.append(("C", conn.buf[:200]))
            conn.buf = b""

    def _configured(self, phase, call):
        """The configured reply for a phase (bytes) or None for the default."""
        r = self.replies.get(phase)
        if isinstance(r, list):
            with self.cond:
                i = self._counts.get(phase, 0)
                self._counts[phase] = i + 1
            r = r[i] if i < len(r) else None
        if callable(r):
            r = r(call)
        return None if r is None else format_reply(r)

    def _respond(self, conn, phase, call, default, override=None):
        """Apply close/hang/delay for phase, then send the reply; returns
        its bytes. override (a configured reply, bytes) beats default."""
        if phase in self.close_at:
            conn.closed_by = "peer"
            raise _Closed()
        if phase in self.hang_at:
            self._hang(conn, phase)
        if self.delay.get(phase) and self.stopping.wait(self.delay[phase]):
            raise _Closed()
        reply = override if override is not None else self._configured(phase, call)
        if reply is None:
            reply = format_reply(default)
        self._send(conn, reply)
        return reply

    def _enh(self, code_text):
        """Drop the enhanced status code from a default reply when not offered."""
        if self.enhancedstatuscodes:
            return code_text
        return re.sub(r"^(\d{3}) \d\.\d{1,3}\.\d{1,3} ", r"\1 ", code_text)

    # ---- the session ----
    def _wrap_tls(self, conn):
        """The TLS handshake on conn (the client starts it); _Closed if it fails."""
        conn.sock.settimeout(15)
        try:
            sslsock = self.tls_context.wrap_socket(conn.sock, server_side=True,
                                                   do_handshake_on_connect=False)
            sslsock._peer_conn = conn
            sslsock.do_handshake()
        except (ssl.SSLError, OSError) as e:
            conn.tls_error = repr(e)
            conn.closed_by = "client"
            raise _Closed()
        conn.sock = sslsock
        conn.tls = True
        conn.tls_version = sslsock.version()
        conn.tls_cipher = (sslsock.cipher() or (None,))[0]
        conn.transcript.append(("C", b"<TLS handshake: %s>" % (conn.tls_version or "").encode()))

    def _session(self, conn):
        try:
            if self.implicit_tls:
                self._wrap_tls(conn)
            self._dialog(conn)
        except _Closed:
            pass
        except Exception as e:  # a bug in the peer: keep it for the report
            self.errors.append("connection %d: %r" % (conn.number, e))
            conn.closed_by = conn.closed_by or "peer"
        finally:
            try:
                conn.sock.close()
            except OSError:
                pass
            with self.cond:
                for t in conn.transactions:
                    if t.ended is None:
                        t.ended = "closed"
                conn.closed_by = conn.closed_by or "peer"
                self.cond.notify_all()

    def _ehlo_lines(self, conn):
        lines = [self.hostname]
        if self.pipelining:
            lines.append("PIPELINING")
        if self.size is not None:
            lines.append("SIZE %d" % self.size)
        if self.eightbitmime:
            lines.append("8BITMIME")
        if self.smtputf8:
            lines.append("SMTPUTF8")
        if self.dsn:
            lines.append("DSN")
        if self.enhancedstatuscodes:
            lines.append("ENHANCEDSTATUSCODES")
        if self.starttls and not conn.tls:
            lines.append("STARTTLS")
        if self._auth_offered(conn):
            lines.append("AUTH " + " ".join(self.auth_mechanisms))
        lines += self.extra_ehlo
        return "250 " + "\n".join(lines)

    def _auth_offered(self, conn):
        return bool(self.auth) and (conn.tls or not self.auth_after_tls)

    def _dialog(self, conn):
        call = Call("greeting", "", conn, None)
        self._respond(conn, "greeting", call, "220 %s ESMTP tern test peer" % self.hostname)
        txn = None
        while True:
            raw = self._readline(conn)
            if len(raw) > MAX_LINE:
                self._send(conn, format_reply(self._enh("500 5.5.2 line too long")))
                continue
            conn.transcript.append(("C", raw))
            if conn.buf:
                conn.batched += 1
            line = raw.rstrip(b"\r\n").decode("utf-8", "surrogateescape")
            conn.commands.append(line)
            verb, _, arg = line.partition(" ")
            verb = verb.upper()
            arg = arg.strip()
            phase = verb if verb in PHASES and verb not in ("greeting", "DOT", "unknown") else "unknown"
            call = Call(phase, arg, conn, txn)
            handler = getattr(self, "_cmd_" + phase.lower())
            txn = handler(conn, call, arg, txn)
            if txn == "quit":
                return

    def _close_txn(self, txn, why):
        if txn is not None and txn.ended is None:
            with self.cond:
                txn.ended = why
                self.cond.notify_all()

    def _cmd_ehlo(self, conn, call, arg, txn, verb="EHLO"):
        if self.lmtp and verb == "EHLO":
            self._respond(conn, "EHLO", call, self._enh("500 5.5.1 this is LMTP: LHLO"))
            return txn
        if not self.lmtp and verb == "LHLO":
            self._respond(conn, "LHLO", call, self._enh("500 5.5.1 unknown command"))
            return txn
        if not self.esmtp:
            self._respond(conn, verb, call, "502 5.5.1 EHLO not supported")
            return txn
        if not arg:
            self._respond(conn, verb, call, self._enh("501 5.5.4 %s needs a domain" % verb))
            return txn
        reply = self._respond(conn, verb, call, self._ehlo_lines(conn))
        if reply_code(reply) == 250:
            self._close_txn(txn, "new-helo")
            conn.helo, conn.helo_verb = arg, verb
            return None
        return txn

    def _cmd_lhlo(self, conn, call, arg, txn):
        return self._cmd_ehlo(conn, call, arg, txn, verb="LHLO")

    def _cmd_helo(self, conn, call, arg, txn):
        if self.lmtp:
            self._respond(conn, "HELO", call, self._enh("500 5.5.1 this is LMTP: LHLO"))
            return txn
        if not arg:
            self._respond(conn, "HELO", call, self._enh("501 5.5.4 HELO needs a domain"))
            return txn
        reply = self._respond(conn, "HELO", call, "250 %s" % self.hostname)
        if reply_code(reply) == 250:
            self._close_txn(txn, "new-helo")
            conn.helo, conn.helo_verb = arg, "HELO"
            return None
        return txn

    def _cmd_starttls(self, conn, call, arg, txn):
        if not self.starttls or conn.tls or conn.helo_verb in (None, "HELO"):
            self._respond(conn, "STARTTLS", call, self._enh(
                "503 5.5.1 TLS already active" if conn.tls else "502 5.5.1 STARTTLS not offered"))
            return txn
        if arg:
            self._respond(conn, "STARTTLS", call, self._enh("501 5.5.4 no arguments"))
            return txn
        reply = self._respond(conn, "STARTTLS", call, self._enh("220 2.0.0 ready to start TLS"))
        if reply_code(reply) != 220:
            return txn
        # Bytes sent after STARTTLS and before the handshake must not be
        # taken as commands (RFC 3207 section 4.2 / command injection).
        conn.injected, conn.buf = conn.buf, b""
        self._wrap_tls(conn)
        self._close_txn(txn, "starttls")
        conn.helo = conn.helo_verb = None
        conn.auth_user = None
        return None

    def _cmd_auth(self, conn, call, arg, txn):
        if not self._auth_offered(conn):
            self._respond(conn, "AUTH", call, self._enh("503 5.5.1 AUTH not offered"))
            return txn
        if conn.auth_user is not None or txn is not None:
            self._respond(conn, "AUTH", call, self._enh("503 5.5.1 AUTH not allowed now"))
            return txn
        override = self._configured("AUTH", call)
        if override is not None:
            self._respond(conn, "AUTH", call, None, override=override)
            if reply_code(override) == 235:
                conn.auth_user = ""
            return txn
        mech, _, initial = arg.partition(" ")
        mech = mech.upper()
        conn.auth_mech = mech
        if mech not in self.auth_mechanisms:
            self._send(conn, format_reply(self._enh("504 5.5.4 mechanism not offered")))
            return txn

        def challenge(text):
            self._send(conn, b"334 " + base64.b64encode(text.encode()) + b"\r\n")
            got = self._readline(conn)
            conn.transcript.append(("C", got))
            got = got.rstrip(b"\r\n")
            if got == b"*":
                return None
            return base64.b64decode(got, validate=True)

        user = password = None
        try:
            if mech == "PLAIN":
                if initial and initial != "=":
                    blob = base64.b64decode(initial, validate=True)
                elif initial == "=":
                    blob = b""
                else:
                    blob = challenge("")
                if blob is None:
                    self._send(conn, format_reply(self._enh("501 5.0.0 AUTH cancelled")))
                    return txn
                parts = blob.split(b"\0")
                if len(parts) != 3:
                    raise ValueError("PLAIN needs three fields")
                user, password = parts[1].decode("utf-8"), parts[2].decode("utf-8")
            elif mech == "LOGIN":
                u = base64.b64decode(initial, validate=True) if initial else challenge("Username:")
                p = None if u is None else challenge("Password:")
                if u is None or p is None:
                    self._send(conn, format_reply(self._enh("501 5.0.0 AUTH cancelled")))
                    return txn
                user, password = u.decode("utf-8"), p.decode("utf-8")
            else:
                self._send(conn, format_reply(self._enh("504 5.5.4 mechanism not supported")))
                return txn
        except (ValueError, UnicodeDecodeError):
            self._send(conn, format_reply(self._enh("501 5.5.2 cannot decode the response")))
            return txn
        if self.auth.get(user) == password:
            conn.auth_user = user
            self._send(conn, format_reply(self._enh("235 2.7.0 authentication successful")))
        else:
            conn.auth_failures += 1
            self._send(conn, format_reply(self._enh("535 5.7.8 authentication credentials invalid")))
        return txn

    def _offered_params(self, conn, kind):
        if conn.helo_verb not in ("EHLO", "LHLO"):
            return set()
        out = set()
        if kind == "MAIL":
            if self.size is not None:
                out.add("SIZE")
            if self.eightbitmime:
                out.add("BODY")
            if self.smtputf8:
                out.add("SMTPUTF8")
                out.add("BODY")  # BODY=8BITMIME comes with SMTPUTF8 in practice
            if self.dsn:
                out |= {"RET", "ENVID"}
            if self._auth_offered(conn):
                out.add("AUTH")
        else:
            if self.dsn:
                out |= {"NOTIFY", "ORCPT"}
        return out

    def _cmd_mail(self, conn, call, arg, txn):
        if conn.helo is None:
            self._respond(conn, "MAIL", call, self._enh("503 5.5.1 send EHLO or HELO first"))
            return txn
        if txn is not None:
            self._respond(conn, "MAIL", call, self._enh("503 5.5.1 nested MAIL command"))
            return txn
        parsed = parse_path(arg, "FROM")
        if parsed is None:
            self._respond(conn, "MAIL", call, self._enh("501 5.5.4 syntax: MAIL FROM:<address>"))
            return None
        address, params = parsed
        with self.cond:
            self._txn_number += 1
            new = Transaction(conn, self._txn_number, call.arg, address, params)
            conn.transactions.append(new)
            self.transactions.append(new)
            self.cond.notify_all()
        call.txn = new
        default = self._enh("250 2.1.0 sender ok")
        unknown = [k for k in params if k not in self._offered_params(conn, "MAIL")]
        if self.require_tls and not conn.tls:
            default = self._enh("530 5.7.0 must issue a STARTTLS command first")
        elif self.require_auth and conn.auth_user is None:
            default = self._enh("530 5.7.0 authentication required")
        elif unknown and self.strict:
            default = self._enh("555 5.5.4 unsupported parameter %s" % unknown[0])
        elif self.size is not None and (params.get("SIZE") or "0").isdigit() and \
                int(params.get("SIZE") or 0) > self.size:
            default = self._enh("552 5.3.4 message size exceeds fixed limit")
        reply = self._respond(conn, "MAIL", call, default)
        new.mail_code = reply_code(reply)
        if new.mail_code != 250:
            self._close_txn(new, "mail-rejected")
            return None
        return new

    def _cmd_rcpt(self, conn, call, arg, txn):
        if txn is None:
            self._respond(conn, "RCPT", call, self._enh("503 5.5.1 need MAIL first"))
            return txn
        parsed = parse_path(arg, "TO")
        if parsed is None:
            self._respond(conn, "RCPT", call, self._enh("501 5.5.4 syntax: RCPT TO:<address>"))
            return txn
        address, params = parsed
        call.rcpt = address
        unknown = [k for k in params if k not in self._offered_params(conn, "RCPT")]
        default = self._enh("250 2.1.5 recipient ok")
        if unknown and self.strict:
            default = self._enh("555 5.5.4 unsupported parameter %s" % unknown[0])
        override = self.rcpt_replies.get(address.lower())
        if callable(override):
            override = override(call)
        reply = self._respond(conn, "RCPT", call, default,
                              override=None if override is None else format_reply(override))
        with self.cond:
            txn.rcpts.append(Rcpt(address, params, reply_code(reply), reply))
        return txn

    def _cmd_data(self, conn, call, arg, txn):
        if txn is None or not txn.recipients:
            self._respond(conn, "DATA", call, self._enh(
                "503 5.5.1 need MAIL first" if txn is None else "554 5.5.1 no valid recipients"))
            return txn
        if arg:
            self._respond(conn, "DATA", call, self._enh("501 5.5.4 no arguments"))
            return txn
        reply = self._respond(conn, "DATA", call, "354 end data with <CR><LF>.<CR><LF>")
        if reply_code(reply) != 354:
            return txn
        txn.data_started = True
        raw, content = [], []
        after_crlf = True
        total = 0
        while True:
            line = self._readline(conn, limit=1 << 20)
            total += len(line)
            if self.close_after_data_bytes is not None and total >= self.close_after_data_bytes:
                txn.data_raw = b"".join(raw) + line
                conn.closed_by = "peer"
                raise _Closed()
            if line == b".\r\n" and after_crlf:
                break
            raw.append(line)
            if total > MAX_DATA:
                self.errors.append("connection %d: data over %d bytes" % (conn.number, MAX_DATA))
                raise _Closed()
            if line.endswith(b"\n") and not line.endswith(b"\r\n"):
                txn.bare_lf = True
            content.append(line[1:] if line.startswith(b".") else line)
            after_crlf = line.endswith(b"\r\n")
        txn.data_raw = b"".join(raw)
        txn.data = b"".join(content)
        conn.transcript.append(("C", b"<%d data bytes>" % len(txn.data_raw)))
        too_big = self.size is not None and len(txn.data) > self.size
        if self.lmtp:
            codes = {}
            for rcpt in txn.recipients:
                c = Call("DOT", "", conn, txn, rcpt)
                r = self.lmtp_replies.get(rcpt.lower())
                r = r(c) if callable(r) else r
                default = self._enh("552 5.3.4 message too big" if too_big else
                                    "250 2.0.0 <%s> delivered" % rcpt)
                reply = self._respond(conn, "DOT", c, default,
                                      override=None if r is None else format_reply(r))
                codes[rcpt] = reply_code(reply)
            with self.cond:
                txn.lmtp_codes = codes
        else:
            with self.cond:
                self._queue_id += 1
                qid = "%s%06d" % (self.name.split(".")[0].upper()[:8], self._queue_id)
            default = self._enh("552 5.3.4 message size exceeds fixed limit" if too_big else
                                "250 2.0.0 ok: queued as %s" % qid)
            reply = self._respond(conn, "DOT", Call("DOT", "", conn, txn), default)
            txn.data_reply = reply
            txn.data_code = reply_code(reply)
        self._close_txn(txn, "data")
        return None

    def _cmd_rset(self, conn, call, arg, txn):
        self._respond(conn, "RSET", call, self._enh("250 2.0.0 ok"))
        self._close_txn(txn, "rset")
        return None

    def _cmd_noop(self, conn, call, arg, txn):
        self._respond(conn, "NOOP", call, self._enh("250 2.0.0 ok"))
        return txn

    def _cmd_vrfy(self, conn, call, arg, txn):
        self._respond(conn, "VRFY", call, self._enh("252 2.0.0 cannot verify, will try"))
        return txn

    def _cmd_quit(self, conn, call, arg, txn):
        conn.quit = True
        self._close_txn(txn, "quit")
        self._respond(conn, "QUIT", call, self._enh("221 2.0.0 bye"))
        conn.closed_by = "peer"
        return "quit"

    def _cmd_unknown(self, conn, call, arg, txn):
        self._respond(conn, "unknown", call, self._enh("500 5.5.2 command not recognized"))
        return txn


# ---- processes started from here: Postfix and smtp-sink ----

def _proc_children():
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
        except OSError:
            continue
        children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    return children


def process_tree(pid):
    """pid and every process below it."""
    children = _proc_children()
    out, todo = [pid], [pid]
    for _ in range(10000):
        if not todo:
            break
        for c in children.get(todo.pop(), []):
            if c not in out:
                out.append(c)
                todo.append(c)
    return out


def _alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _kill_leftovers(pids, timeout):
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / POLL) + 2):
        if not any(_alive(p) for p in pids) or time.monotonic() > deadline:
            break
        time.sleep(POLL)
    left = [p for p in pids if _alive(p)]
    for p in left:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass
    return left


def _tail(path, lines=40):
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.path.getsize(path) - 200 * lines))
            text = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        text = []
    return "\n---- %s (last %d lines) ----\n%s" % (path, min(lines, len(text)),
                                                   "\n".join(text[-lines:]))


def _read_maildirs(base):
    """Contents of every message file under base's Maildirs (new/ and cur/),
    sorted by path."""
    out = []
    for dirpath, _, files in sorted(os.walk(base)):
        if os.path.basename(dirpath) in ("new", "cur"):
            for n in sorted(files):
                with open(os.path.join(dirpath, n), "rb") as f:
                    out.append((os.path.join(dirpath, n), f.read()))
    return out


def postfix_problem():
    if not os.access(POSTFIX, os.X_OK):
        return "Postfix is not installed (%s; scripts/install-deps.sh bench)" % POSTFIX
    if os.geteuid() != 0:
        return "a private Postfix instance needs root (its master runs as root)"
    try:
        pwd.getpwnam("postfix")
    except KeyError:
        return "no postfix user"
    return None


class PostfixPeer:
    """A private Postfix instance on host:port that delivers mail for domains
    to one Maildir per domain (MAILBASE/DOMAIN/) through virtual(8). Every
    local part is taken unless recipients lists the addresses (the others
    then get 550 5.1.1); other domains are refused (554 5.7.1, relay access
    denied); nothing is sent on. With cert and key, or ca (a TestCA) to
    issue them, it offers STARTTLS.

    With sasl_path (the auth socket of a Dovecot, see dovecot_peer.py) the
    listener is a submission service, as on port 587: STARTTLS is required
    before MAIL, AUTH is offered only after it and Dovecot checks the
    passwords, and only an authenticated client may send, to the domains too.
    Its log then names the mechanism and user of each such client
    (sasl_method=PLAIN, sasl_username=USER)."""

    def __init__(self, domains=("example.test",), host=None, port=25, name="postfix",
                 hostname=None, cert=None, key=None, message_size_limit=10240000, main=None,
                 recipients=None, ca=None, sasl_path=None):
        self.name = name
        self.port = port
        self.domains = [d.lower() for d in domains]
        self.host, _ = claim_address(port, host, bind=False)
        self.hostname = hostname or "%s.peer.test" % name
        if ca is not None and not cert:
            cert, key = ca.issue(self.hostname, self.host)
        self.cert, self.key = cert, key
        self.top = tempfile.mkdtemp(prefix="tern-postfix.")
        os.chmod(self.top, 0o755)  # postfix and nobody walk into it
        self.conf = os.path.join(self.top, "conf")
        self.queue = os.path.join(self.top, "queue")
        self.data = os.path.join(self.top, "data")
        self.mail = os.path.join(self.top, "mail")
        self.logfile = os.path.join(self.top, "maillog")
        self.master = None
        self.started = False
        for d in (self.conf, self.queue, self.data, self.mail):
            os.makedirs(d)
        pf = pwd.getpwnam("postfix")
        nobody = pwd.getpwnam("nobody")
        os.chown(self.data, pf.pw_uid, pf.pw_gid)
        os.chown(self.mail, nobody.pw_uid, nobody.pw_gid)
        settings = [
            ("compatibility_level", "3.6"),
            ("config_directory", self.conf),
            ("queue_directory", self.queue),
            ("data_directory", self.data),
            ("mail_owner", "postfix"),
            ("setgid_group", "postdrop"),
            ("maillog_file", self.logfile),
            ("maillog_file_prefixes", self.top),
            ("myhostname", self.hostname),
            ("mydomain", "peer.test"),
            ("myorigin", "$myhostname"),
            ("mydestination", ""),
            # The listener's own address is in master.cf: Postfix takes only
            # addresses of real interfaces here, and 127.0.0.N is not one.
            ("inet_interfaces", "loopback-only"),
            ("inet_protocols", "ipv4"),
            ("mynetworks", "127.0.0.0/8"),
            ("relayhost", ""),
            ("alias_maps", ""),
            ("alias_database", ""),
            ("local_recipient_maps", ""),
            ("biff", "no"),
            ("smtpd_banner", "$myhostname ESMTP"),
            ("smtpd_relay_restrictions", "reject_unauth_destination"),
            ("smtpd_recipient_restrictions", ""),
            ("smtpd_error_sleep_time", "0"),
            ("smtpd_peername_lookup", "no"),
            ("message_size_limit", str(message_size_limit)),
            ("default_transport", "error:the test peer sends nothing on"),
            ("relay_transport", "error:the test peer sends nothing on"),
            ("local_transport", "error:the test peer has no local delivery"),
            ("virtual_mailbox_domains", " ".join(self.domains)),
            ("virtual_mailbox_base", self.mail),
            ("virtual_mailbox_maps", "regexp:%s/vmailbox" % self.conf),
            ("virtual_uid_maps", "static:%d" % nobody.pw_uid),
            ("virtual_gid_maps", "static:%d" % nobody.pw_gid),
            ("virtual_minimum_uid", "1"),
        ]
        if cert:
            settings += [("smtpd_tls_chain_files", "%s, %s" % (key, cert)),
                         ("smtpd_tls_security_level", "may"),
                         ("smtpd_tls_received_header", "yes")]
        if sasl_path:
            if not cert:
                raise PeerError("a submission listener (sasl_path) needs a certificate (tls or ca)")
            # These replace the values above (see merged below).
            settings += [("smtpd_tls_security_level", "encrypt"),
                         ("smtpd_tls_auth_only", "yes"),
                         ("smtpd_sasl_auth_enable", "yes"),
                         ("smtpd_sasl_type", "dovecot"),
                         ("smtpd_sasl_path", sasl_path),
                         ("smtpd_sasl_security_options", "noanonymous"),
                         ("smtpd_sasl_authenticated_header", "no"),
                         # Not even the peer's own domains without AUTH:
                         # a submission service is no mail exchanger.
                         ("smtpd_relay_restrictions", "permit_sasl_authenticated, reject")]
        settings += list((main or {}).items())
        # One line per parameter, the last value given: Postfix would take
        # that one too, but warn about the others in every process.
        merged = {}
        for k, v in settings:
            merged[k] = v
        with open(os.path.join(self.conf, "main.cf"), "w") as f:
            f.write("# private Postfix instance of the tern tests\n")
            for k, v in merged.items():
                f.write("%s = %s\n" % (k, v))
        services = [
            ("%s:%d" % (self.host, port), "inet", "n", "-", "n", "-", "-", "smtpd"),
            ("cleanup", "unix", "n", "-", "n", "-", "0", "cleanup"),
            ("qmgr", "unix", "n", "-", "n", "300", "1", "qmgr"),
            ("rewrite", "unix", "-", "-", "n", "-", "-", "trivial-rewrite"),
            ("bounce", "unix", "-", "-", "n", "-", "0", "bounce"),
            ("defer", "unix", "-", "-", "n", "-", "0", "bounce"),
            ("trace", "unix", "-", "-", "n", "-", "0", "bounce"),
            ("verify", "unix", "-", "-", "n", "-", "1", "verify"),
            ("flush", "unix", "n", "-", "n", "1000?", "0", "flush"),
            ("proxymap", "unix", "-", "-", "n", "-", "-", "proxymap"),
            ("showq", "unix", "n", "-", "n", "-", "-", "showq"),
            ("error", "unix", "-", "-", "n", "-", "-", "error"),
            ("retry", "unix", "-", "-", "n", "-", "-", "error"),
            ("discard", "unix", "-", "-", "n", "-", "-", "discard"),
            ("virtual", "unix", "-", "n", "n", "-", "-", "virtual"),
            ("anvil", "unix", "-", "-", "n", "-", "1", "anvil"),
            ("scache", "unix", "-", "-", "n", "-", "1", "scache"),
            ("postlog", "unix-dgram", "n", "-", "n", "-", "1", "postlogd"),
            ("tlsmgr", "unix", "-", "-", "n", "1000?", "1", "tlsmgr"),
        ]
        with open(os.path.join(self.conf, "master.cf"), "w") as f:
            for s in services:
                f.write(" ".join(s) + "\n")
        # One Maildir per domain (MAILBASE/DOMAIN/); virtual(8) adds a
        # Delivered-To: field naming the recipient. virtual(8) takes no
        # regexp substitution, so the map names the Maildir of each domain
        # (every local part) or of each address in recipients.
        with open(os.path.join(self.conf, "vmailbox"), "w") as f:
            if recipients is None:
                for d in self.domains:
                    f.write("/@%s$/ %s/\n" % (re.escape(d), d))
            else:
                for r in recipients:
                    local, _, domain = r.lower().rpartition("@")
                    assert domain in self.domains and "/" not in r, r
                    f.write("/^%s@%s$/ %s/\n" % (re.escape(local), re.escape(domain), domain))

    @property
    def address(self):
        return "%s:%d" % (self.host, self.port)

    def postfix(self, *args):
        return subprocess.run([POSTFIX, "-c", self.conf] + list(args), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=60)

    def _explain(self, step):
        """Postfix prints its fatal errors only to a terminal (and the log,
        which may not be open yet): run the step again under script(1)."""
        if shutil.which("script") is None:
            return ""
        r = subprocess.run(["script", "-qec", "%s -c %s check" % (POSTFIX, self.conf), "/dev/null"],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        return r.stdout + r.stderr

    def start(self, timeout=START_TIMEOUT):
        # "postfix start" runs the configuration checks itself ("postfix
        # check" alone costs seconds more).
        for step in ("start",):
            r = self.postfix(step)
            self.started = True
            if r.returncode != 0:
                raise PeerError("postfix %s failed:\n%s%s%s%s" % (
                    step, r.stdout, r.stderr, self._explain(step), _tail(self.logfile)))
        pidfile = os.path.join(self.queue, "pid", "master.pid")

        def master():
            try:
                with open(pidfile) as f:
                    return int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                return None
        self.master = wait_for(master, timeout, "Postfix's master to write its pid",
                               lambda: _tail(self.logfile))

        def accepting():
            if not _alive(self.master):
                raise PeerError("Postfix's master exited" + _tail(self.logfile))
            try:
                with socket.create_connection((self.host, self.port), timeout=1):
                    return True
            except OSError:
                return False
        wait_for(accepting, timeout, "Postfix to accept on %s" % self.address,
                 lambda: _tail(self.logfile))
        return self

    def stop(self, timeout=STOP_TIMEOUT, keep=False):
        if self.started:
            tree = process_tree(self.master) if self.master else []
            r = self.postfix("stop")
            left = _kill_leftovers(tree, timeout) if r.returncode == 0 else tree
            if left and self.master and _alive(self.master):
                self.postfix("abort")
                _kill_leftovers(tree, 5)
            self.started = False
        release_address(self.host)
        if not keep:
            shutil.rmtree(self.top, ignore_errors=True)

    def maildir(self, domain):
        return os.path.join(self.mail, domain.lower())

    def messages(self, address=None):
        """Delivered messages (bytes, as virtual(8) stored them, with its
        Delivered-To: and Return-Path: fields first), for one recipient or all."""
        if address is None:
            return [data for _, data in _read_maildirs(self.mail)]
        want = b"delivered-to: " + address.lower().encode("utf-8")
        out = []
        for _, data in _read_maildirs(self.maildir(address.rpartition("@")[2])):
            head = data.split(b"\n\n", 1)[0].lower()
            if any(line.strip() == want for line in head.split(b"\n")):
                out.append(data)
        return out

    def queued(self):
        """Files in Postfix's queue (not yet delivered or deferred)."""
        n = 0
        for sub in ("maildrop", "incoming", "active", "deferred", "hold"):
            for _, _, files in os.walk(os.path.join(self.queue, sub)):
                n += len(files)
        return n

    def wait_messages(self, count, address=None, timeout=WAIT_TIMEOUT):
        return wait_for(lambda: len(self.messages(address)) >= count and self.messages(address),
                        timeout, "%d message(s) delivered by Postfix at %s" % (count, self.address),
                        lambda: _tail(self.logfile))

    def log_tail(self, lines=60):
        return _tail(self.logfile, lines)


def sink_problem():
    if not os.access(SMTP_SINK, os.X_OK):
        return "smtp-sink is not installed (%s, from Postfix; scripts/install-deps.sh bench)" % SMTP_SINK
    if os.geteuid() != 0:
        return "smtp-sink on port 25 and -u nobody need root"
    return None


class SmtpSink:
    """Postfix's smtp-sink on host:port: answers 250 to everything and writes
    each transaction to a file in dump_dir (envelope lines first, then the
    message). options are extra smtp-sink flags (e.g. ["-L"] for LMTP,
    ["-r", "RCPT"] to answer RCPT with 4xx)."""

    def __init__(self, host=None, port=25, name="sink", hostname=None, options=()):
        self.name = name
        self.port = port
        self.host, _ = claim_address(port, host, bind=False)
        self.hostname = hostname or "%s.peer.test" % name
        self.options = list(options)
        self.top = tempfile.mkdtemp(prefix="tern-sink.")
        os.chmod(self.top, 0o755)
        self.dump_dir = os.path.join(self.top, "dump")
        os.makedirs(self.dump_dir)
        nobody = pwd.getpwnam("nobody")
        os.chown(self.dump_dir, nobody.pw_uid, nobody.pw_gid)
        self.logfile = os.path.join(self.top, "sink.log")
        self.proc = None

    @property
    def address(self):
        return "%s:%d" % (self.host, self.port)

    def start(self, timeout=START_TIMEOUT):
        log = open(self.logfile, "wb")
        self.proc = subprocess.Popen(
            [SMTP_SINK, "-u", "nobody", "-h", self.hostname, "-d", self.dump_dir + "/msg."] +
            self.options + ["%s:%d" % (self.host, self.port), "64"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=self.top)
        log.close()

        def accepting():
            if self.proc.poll() is not None:
                raise PeerError("smtp-sink exited with %s%s" % (self.proc.returncode,
                                                                _tail(self.logfile)))
            try:
                with socket.create_connection((self.host, self.port), timeout=1):
                    return True
            except OSError:
                return False
        wait_for(accepting, timeout, "smtp-sink to accept on %s" % self.address,
                 lambda: _tail(self.logfile))
        return self

    def stop(self, timeout=STOP_TIMEOUT, keep=False):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        release_address(self.host)
        if not keep:
            shutil.rmtree(self.top, ignore_errors=True)

    def _open_files(self):
        """Paths smtp-sink has open: a transaction in progress keeps its dump
        file open, so a file that is not open is complete."""
        out = set()
        if self.proc is None:
            return out
        fd_dir = "/proc/%d/fd" % self.proc.pid
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            return out
        for fd in fds:
            try:
                out.add(os.readlink(os.path.join(fd_dir, fd)))
            except OSError:
                pass
        return out

    def messages(self):
        """The complete dump files (bytes), oldest first."""
        try:
            names = os.listdir(self.dump_dir)
        except FileNotFoundError:
            return []
        busy = self._open_files()
        paths = sorted((os.path.join(self.dump_dir, n) for n in names
                        if os.path.join(self.dump_dir, n) not in busy), key=os.path.getmtime)
        out = []
        for p in paths:
            with open(p, "rb") as f:
                out.append(f.read())
        return out

    @staticmethod
    def parse(dump):
        """A dump file as a dict: client, proto, helo, mail (the MAIL FROM
        argument with its parameters), rcpts (a list, the same for RCPT TO)
        and message (what followed, LF line ends, smtp-sink's Received: first)."""
        out = {"rcpts": []}
        rest = dump
        keys = {b"X-Client-Addr": "client", b"X-Client-Proto": "proto", b"X-Helo-Args": "helo",
                b"X-Mail-Args": "mail", b"X-Rcpt-Args": "rcpts"}
        for _ in range(100000):
            line, sep, after = rest.partition(b"\n")
            name, colon, value = line.partition(b": ")
            if not sep or not colon or name not in keys:
                break
            value = value.decode("utf-8", "replace")
            if keys[name] == "rcpts":
                out["rcpts"].append(value)
            else:
                out[keys[name]] = value
            rest = after
        out["message"] = rest
        return out

    def transactions(self):
        """The complete dump files, parsed (see parse)."""
        return [self.parse(d) for d in self.messages()]

    def wait_messages(self, count, timeout=WAIT_TIMEOUT):
        return wait_for(lambda: len(self.messages()) >= count and self.messages(), timeout,
                        "%d message(s) in smtp-sink's dump at %s" % (count, self.address),
                        lambda: _tail(self.logfile))

    def log_tail(self, lines=40):
        return _tail(self.logfile, lines)

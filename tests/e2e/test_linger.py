"""Lingering close: when tern refuses a client and closes (554 5.5.0 after
commands sent past a synchronisation point, 421 4.7.0 after too many errors),
the client reads the last reply and then a clean end of the connection, even
though it had sent far more than tern read.

Without lingering, tern closed a socket whose receive buffer still held the
client's bytes; the kernel then answers with a reset instead of a FIN, and a
client's stack may drop the reply it had not read yet. Each test sends its
violation together with tens of KiB more in one write, so that unread input
is certainly waiting when tern closes, then reads every reply, the exact
refusal line, and EOF: a reset (ECONNRESET) fails the test. On TLS the end
must be a close_notify (a bare TCP end raises an SSLError here), on a
plain connection a FIN.

Every read is bounded by a timeout; no test asserts how long anything took."""

import socket
import ssl

import pytest

import tern_harness as th

# More than tern reads from the socket in one go (16 KiB) and more than its
# input buffer holds (64 KiB): some of it is still in the kernel when tern
# closes.
FILLER = b"X-Filler: " + b"x" * 60 + b"\r\n"
EXTRA = FILLER * 1200  # about 86 KiB

PIPELINING_554 = b"554 5.5.0 Commands sent past a synchronization point"
TOO_MANY_ERRORS_421 = b"421 4.7.0 Too many errors, closing connection"


class Raw:
    """A bare client that sees resets and TLS ends as they are."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=th.REPLY_TIMEOUT)
        self.buf = b""

    def wrap(self, ctx):
        # A TCP end without close_notify must be an SSLEOFError, not a quiet
        # b"": some Pythons ignore an unexpected EOF by default.
        assert not self.buf, "bytes before the TLS handshake: %r" % self.buf
        ctx.options &= ~getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)
        self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost", suppress_ragged_eofs=False)

    def close(self):
        self.sock.close()

    def line(self):
        """One reply line (without CRLF); fails on EOF, reset or timeout."""
        for _ in range(10000):
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2:]
                return line
            chunk = self.sock.recv(65536)
            assert chunk, "connection closed before a whole reply line; buffered %r" % self.buf
            self.buf += chunk
        raise AssertionError("no reply line")

    def reply(self):
        """The lines of one whole (maybe multi-line) reply."""
        lines = [self.line()]
        for _ in range(1000):
            if lines[-1][3:4] != b"-":
                return lines
            lines.append(self.line())
        raise AssertionError("reply with too many lines")

    def expect(self, code):
        lines = self.reply()
        assert lines[0][:3] == b"%d" % code, "expected %d, got %r" % (code, lines)
        return lines

    def send(self, data):
        try:
            self.sock.sendall(data)
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError) as e:
            pytest.fail("the connection was reset while the client was still sending: %r" % e)

    def replies_until(self, last, allowed):
        """Read replies until one whose first line is last; every reply before
        it must have a code in allowed."""
        seen = []
        for _ in range(100):
            lines = self.reply()
            seen.append(lines)
            if lines[0] == last:
                return seen
            assert lines[0][:3] in allowed, "unexpected reply %r (replies so far %r)" % (lines, seen)
        raise AssertionError("no %r in %r" % (last, seen))

    def expect_clean_end(self):
        """Nothing more but an orderly end: EOF, not a reset (on TLS, after
        close_notify)."""
        assert not self.buf, "bytes after the last reply: %r" % self.buf
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError as e:
            pytest.fail("the connection was reset instead of closed: %r" % e)
        except ssl.SSLError as e:
            pytest.fail("the TLS connection did not end with close_notify: %r" % e)
        assert chunk == b"", "bytes after the last reply: %r" % chunk


def connect(srv, kind, mode):
    """A client greeted on the listener of that kind; mode "plain", "starttls"
    or "implicit" (submissions)."""
    c = Raw(srv.port_of(kind))
    if mode == "implicit":
        c.wrap(srv.tls_context())
    c.expect(220)
    if mode == "starttls":
        c.send(b"EHLO client.test\r\n")
        c.expect(250)
        c.send(b"STARTTLS\r\n")
        c.expect(220)
        c.wrap(srv.tls_context())
    c.send(b"EHLO client.test\r\n")
    c.expect(250)
    return c


@pytest.fixture
def server(tern_server):
    return tern_server(config={"max_errors": "3"}, listeners=("submission", "submissions"))


@pytest.mark.parametrize("kind,mode", [
    ("mx", "plain"),
    ("submission", "plain"),
    ("mx", "starttls"),
    ("submission", "starttls"),
    ("submissions", "implicit"),
])
def test_554_past_sync_point_reaches_client(server, kind, mode):
    c = connect(server, kind, mode)
    try:
        # NOOP ends a pipelined group: what follows it was sent blind.
        c.send(b"NOOP\r\n" + EXTRA)
        c.expect(250)
        assert c.line() == PIPELINING_554
        c.expect_clean_end()
    finally:
        c.close()


def test_554_after_data_sent_blind(server):
    """A client that sends the content with DATA, without waiting for 354."""
    c = connect(server, "mx", "plain")
    try:
        c.send(b"MAIL FROM:<sender@localhost>\r\nRCPT TO:<postmaster@localhost>\r\nDATA\r\n"
               b"Subject: blind\r\n\r\n" + EXTRA + b".\r\nQUIT\r\n")
        c.replies_until(PIPELINING_554, (b"250", b"354", b"550"))
        c.expect_clean_end()
    finally:
        c.close()
    assert server.new_files("postmaster@localhost") == []


@pytest.mark.parametrize("kind,mode", [("mx", "plain"), ("submissions", "implicit")])
def test_421_too_many_errors_reaches_client(server, kind, mode):
    c = connect(server, kind, mode)
    try:
        # Three unknown commands (max_errors = 3), then more that is never read.
        c.send(b"BOGUS1\r\nBOGUS2\r\nBOGUS3\r\n" + EXTRA)
        c.replies_until(TOO_MANY_ERRORS_421, (b"500",))
        c.expect_clean_end()
    finally:
        c.close()


def test_quit_ends_cleanly(server):
    """The common case: QUIT, 221, and an orderly end on both kinds."""
    for kind, mode in (("mx", "plain"), ("submissions", "implicit")):
        c = connect(server, kind, mode)
        try:
            c.send(b"QUIT\r\n")
            c.expect(221)
            c.expect_clean_end()
        finally:
            c.close()


def test_stop_while_a_socket_lingers(server):
    """SIGTERM does not wait for a client that keeps a refused connection
    open: the server stops cleanly (exit 0, no sanitizer report; the fixture
    checks both) and the server is still answering until then."""
    c = connect(server, "mx", "plain")
    try:
        c.send(b"NOOP\r\n" + EXTRA)
        c.expect(250)
        assert c.line() == PIPELINING_554
        # The client neither closes nor reads on: the socket lingers.
        with th.SMTPClient("127.0.0.1", server.port) as other:
            other.expect(220)
        assert server.stop() == 0 and not server.killed
    finally:
        c.close()

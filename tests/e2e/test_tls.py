"""TLS: STARTTLS on mx and submission listeners (RFC 3207), implicit TLS on
submissions listeners (RFC 8314), the self-signed certificate tern makes for
itself, certificates chosen by SNI, the protocol floor, STARTTLS command
injection, broken and stalled handshakes, and what the Received: field and
the log say about the TLS session.

Clients: Python's smtplib and ssl, and `openssl s_client`."""

import os
import re
import select
import shutil
import smtplib
import socket
import ssl
import subprocess
import threading
import time
import warnings

import pytest

import tern_harness as th

LISTENERS = ("submission", "submissions")
needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")


def tls_server(tern_server, config=None, users=("alice@localhost",), **kw):
    return tern_server(config=config, users=users, listeners=LISTENERS, **kw)


def keywords(reply):
    """The EHLO keywords (upper case) of a 250 reply to EHLO."""
    return {line.split()[0].upper() for line in reply.lines[1:] if line.split()}


def der_of(pem_path):
    with open(pem_path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def starttls(srv, kind="mx", ctx=None, server_hostname="localhost"):
    """A raw session on a STARTTLS listener, upgraded to TLS, before the
    second EHLO."""
    c = srv.connect(kind)
    c.expect(220)
    r = c.cmd("EHLO client.test")
    assert r.code == 250 and "STARTTLS" in keywords(r), r
    r = c.cmd("STARTTLS")
    assert r.code == 220 and r.enhanced() == "2.0.0", r
    c.starttls(ctx or srv.tls_context(), server_hostname=server_hostname)
    return c


def received_of(stored):
    trace, _ = th.split_trace(stored)
    return " ".join(trace[2].decode("utf-8", "replace").split())


def make_cert(directory, name, dns_names, key_type="ec"):
    """A self-signed certificate and its key for dns_names, made with openssl."""
    cert = os.path.join(directory, name + ".crt")
    key = os.path.join(directory, name + ".key")
    if key_type == "ec":
        newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
    else:
        newkey = ["-newkey", "rsa:2048"]
    san = ",".join("DNS:" + n for n in dns_names)
    r = subprocess.run(["openssl", "req", "-x509"] + newkey + [
        "-nodes", "-keyout", key, "-out", cert, "-days", "3", "-subj", "/CN=" + dns_names[0],
        "-addext", "subjectAltName=" + san], capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    return cert, key


def read_until_closed(sock, timeout):
    """Read (and discard nothing) until EOF or reset; returns (closed, bytes).
    closed is False if the peer kept the connection open for timeout."""
    deadline = time.monotonic() + timeout
    data = b""
    for _ in range(10000):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False, data
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return False, data
        except (ConnectionResetError, ssl.SSLError, OSError):
            return True, data
        if not chunk:
            return True, data
        data += chunk
    return False, data


def client_hello(server_hostname="localhost"):
    """The bytes of a real TLS ClientHello (made with an in-memory handshake)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=server_hostname)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    hello = outgoing.read()
    assert hello[:1] == b"\x16" and len(hello) > 100, hello[:20]
    return hello


def working_session(srv):
    """Proof that the server still serves: a whole implicit-TLS greeting and EHLO."""
    with srv.connect("submissions", tls=True) as c:
        c.expect(220)
        assert c.cmd("EHLO client.test").code == 250
        assert c.cmd("QUIT").code == 221


# ---------------------------------------------------------------- certificate

@needs_openssl
def test_selfsigned_certificate_made_with_names_and_reused(tern_server):
    srv = tls_server(tern_server)
    cert = srv.selfsigned_cert()
    key = os.path.join(srv.data_dir, "tls", "selfsigned.key")
    assert os.path.isfile(cert) and os.path.isfile(key), os.listdir(srv.data_dir)
    r = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-ext", "subjectAltName"],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    san = r.stdout.decode()
    for name in ("DNS:tern.test", "DNS:localhost", "IP Address:127.0.0.1"):
        assert name in san, san
    assert re.search(r"IP Address:(0:0:0:0:0:0:0:1|::1)\b", san), san
    # The key matches the certificate.
    pub_cert = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-pubkey"], capture_output=True,
                              timeout=30).stdout
    pub_key = subprocess.run(["openssl", "pkey", "-in", key, "-pubout"], capture_output=True, timeout=30).stdout
    assert pub_cert and pub_cert == pub_key
    # The server presents exactly that certificate.
    with srv.connect("submissions", tls=True) as c:
        assert c.tls.getpeercert(binary_form=True) == der_of(cert)
    before = der_of(cert)
    srv.stop()
    srv.start()
    assert der_of(cert) == before, "the self-signed certificate was made again on restart"
    with srv.connect("submissions", tls=True) as c:
        assert c.tls.getpeercert(binary_form=True) == before


def test_certificate_names_checked_by_client(tern_server):
    srv = tls_server(tern_server)
    for name in ("localhost", "tern.test"):
        with srv.connect("submissions", tls=True, server_hostname=name) as c:
            c.expect(220)
    with pytest.raises(ssl.SSLCertVerificationError):
        srv.connect("submissions", tls=True, server_hostname="not-this-host.example")


# ---------------------------------------------------------------- smtplib

def test_smtplib_starttls_on_mx_delivers_with_esmtps(tern_server):
    srv = tls_server(tern_server)
    ctx = srv.tls_context()
    with smtplib.SMTP("127.0.0.1", srv.port, local_hostname="client.test", timeout=th.REPLY_TIMEOUT) as s:
        s.ehlo()
        assert s.has_extn("starttls"), s.esmtp_features
        assert not s.has_extn("auth"), "mx listeners do not offer AUTH: %r" % s.esmtp_features
        code, text = s.starttls(context=ctx)  # smtplib checks the IP address 127.0.0.1
        assert code == 220 and text.startswith(b"2.0.0"), (code, text)
        version, cipher = s.sock.version(), s.sock.cipher()[0]
        assert version in ("TLSv1.2", "TLSv1.3"), version
        assert s.sock.getpeercert(binary_form=True) == der_of(srv.selfsigned_cert())
        s.ehlo()
        assert not s.has_extn("starttls"), "STARTTLS still offered under TLS: %r" % s.esmtp_features
        assert s.sendmail("sender@localhost", ["alice@localhost"],
                          b"From: sender@localhost\r\nSubject: over TLS\r\n\r\nsecret\r\n") == {}
    received = received_of(srv.expect_mail("alice@localhost", 1)[0])
    assert re.search(r"\bwith ESMTPS\b", received), received
    assert "(version=%s cipher=%s)" % (version, cipher) in received, (received, version, cipher)


def test_smtplib_starttls_on_submission(tern_server):
    srv = tls_server(tern_server)
    with smtplib.SMTP("127.0.0.1", srv.port_of("submission"), local_hostname="client.test",
                      timeout=th.REPLY_TIMEOUT) as s:
        s.ehlo()
        assert s.has_extn("starttls"), s.esmtp_features
        s.starttls(context=srv.tls_context())
        assert s.sock.version() in ("TLSv1.2", "TLSv1.3")
        s.ehlo()
        assert not s.has_extn("starttls")
        assert s.has_extn("auth"), "submission offers AUTH under TLS: %r" % s.esmtp_features


def test_smtplib_implicit_tls(tern_server):
    srv = tls_server(tern_server)
    ctx = srv.tls_context()
    with smtplib.SMTP_SSL("127.0.0.1", srv.port_of("submissions"), local_hostname="client.test",
                          context=ctx, timeout=th.REPLY_TIMEOUT) as s:
        assert s.sock.version() in ("TLSv1.2", "TLSv1.3")
        code, _ = s.ehlo()
        assert code == 250
        assert not s.has_extn("starttls"), s.esmtp_features
        assert s.has_extn("auth"), s.esmtp_features
        code, text = s.docmd("STARTTLS")
        assert code == 503 and text.startswith(b"5.5.1") and b"TLS already active" in text, (code, text)
        assert s.noop()[0] == 250


def test_tls12_client_and_received_field(tern_server):
    srv = tls_server(tern_server)
    ctx = srv.tls_context()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with starttls(srv, ctx=ctx) as c:
        assert c.tls.version() == "TLSv1.2"
        cipher = c.tls.cipher()[0]
        assert c.cmd("EHLO client.test").code == 250
        r = th.send_message(c, "sender@localhost", ["alice@localhost"], b"Subject: tls 1.2\r\n\r\nbody\r\n")
        assert r.code == 250, r
    received = received_of(srv.expect_mail("alice@localhost", 1)[0])
    assert "(version=TLSv1.2 cipher=%s)" % cipher in received, (received, cipher)
    assert re.search(r"\bwith ESMTPS\b", received), received


def test_plain_session_has_no_tls_comment(tern_server):
    srv = tls_server(tern_server)
    with smtplib.SMTP("127.0.0.1", srv.port, local_hostname="client.test", timeout=th.REPLY_TIMEOUT) as s:
        s.sendmail("sender@localhost", ["alice@localhost"], b"Subject: plain\r\n\r\nbody\r\n")
    received = received_of(srv.expect_mail("alice@localhost", 1)[0])
    assert re.search(r"\bwith ESMTP\b", received) and "version=" not in received, received


# ---------------------------------------------------------------- protocol versions

def tls11_contexts():
    """(client, server) contexts limited to TLS 1.0-1.1 at security level 0."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return tls11_contexts_made()


def tls11_contexts_made():
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    for ctx in (client, server):
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    return client, server


def client_can_speak_tls11(tmp_path):
    """Control: this Python and OpenSSL can make a TLS 1.1 handshake at all
    (with a server in this process), so a refusal by tern means something."""
    try:
        client, server = tls11_contexts()
    except (ssl.SSLError, ValueError):
        return False
    cert, key = make_cert(str(tmp_path), "control", ["control.test"], key_type="rsa")
    server.load_cert_chain(cert, key)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(10)
    result = {}

    def serve():
        try:
            conn, _ = listener.accept()
            with server.wrap_socket(conn, server_side=True) as tls:
                result["version"] = tls.version()
        except (OSError, ssl.SSLError) as e:
            result["error"] = e

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        with socket.create_connection(listener.getsockname(), timeout=10) as raw:
            with client.wrap_socket(raw) as tls:
                ok = tls.version() == "TLSv1.1"
    except (OSError, ssl.SSLError):
        ok = False
    t.join(15)
    listener.close()
    return ok


@needs_openssl
def test_tls11_refused(tern_server, tmp_path):
    if not client_can_speak_tls11(tmp_path):
        pytest.skip("this OpenSSL build cannot make a TLS 1.1 handshake even with itself")
    srv = tls_server(tern_server)
    client, _ = tls11_contexts()
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        c = srv.connect("submissions", tls=client)
        c.close()
    c = srv.connect("mx")
    c.expect(220)
    c.cmd("EHLO client.test")
    assert c.cmd("STARTTLS").code == 220
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        c.starttls(client)
    c.close()
    working_session(srv)


def test_tls_min_version_13(tern_server):
    srv = tls_server(tern_server, config={"tls_min_version": "TLSv1.3"})
    ctx = srv.tls_context()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        srv.connect("submissions", tls=ctx).close()
    with srv.connect("submissions", tls=True) as c:
        assert c.tls.version() == "TLSv1.3"
        c.expect(220)


# ---------------------------------------------------------------- openssl s_client

def s_client(args, script=(), timeout=30):
    """Run openssl s_client. script is a list of (regex, bytes): each time
    the output matches the next regex (after what the last step matched),
    send its bytes, so that nothing is sent before the server's reply to
    the last line. Standard input is closed after the last step (at once
    when there is none); then the program runs to its end. Returns (exit
    code, output)."""
    proc = subprocess.Popen(["openssl", "s_client"] + args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    out = b""
    deadline = time.monotonic() + timeout * th.SLOW
    steps = list(script)
    seen = 0
    if not steps:
        proc.stdin.close()
    try:
        for _ in range(100000):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            ready, _, _ = select.select([proc.stdout], [], [], min(remaining, 0.5))
            if ready:
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                out += chunk
            if steps:
                m = re.compile(steps[0][0]).search(out, seen)
                if m:
                    seen = m.end()
                    proc.stdin.write(steps.pop(0)[1])
                    proc.stdin.flush()
                    if not steps:
                        proc.stdin.close()
            elif proc.poll() is not None and not ready:
                break
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
    return proc.returncode, out.decode("utf-8", "replace")


def check_s_client_output(out, cert_path):
    m = (re.search(r"Protocol version: (TLSv1\.\d)", out) or re.search(r"Protocol\s*: (TLSv1\.\d)", out)
         or re.search(r"New, (TLSv1\.\d), Cipher is", out))
    assert m, out
    assert m.group(1) in ("TLSv1.2", "TLSv1.3"), out
    assert "Verification: OK" in out or "Verify return code: 0 (ok)" in out, out
    pem = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", out, re.S)
    assert pem, out
    assert ssl.PEM_cert_to_DER_cert(pem.group(0)) == der_of(cert_path)


@needs_openssl
def test_openssl_s_client_starttls_smtp(tern_server):
    srv = tls_server(tern_server)
    cert = srv.selfsigned_cert()
    for kind in ("mx", "submission"):
        rc, out = s_client(["-connect", "127.0.0.1:%d" % srv.port_of(kind), "-starttls", "smtp",
                            "-CAfile", cert, "-verify_return_error", "-verify_hostname", "tern.test",
                            "-servername", "tern.test", "-showcerts", "-crlf"],
                           )
        assert rc == 0, out
        check_s_client_output(out, cert)


@needs_openssl
def test_openssl_s_client_implicit_tls(tern_server):
    srv = tls_server(tern_server)
    cert = srv.selfsigned_cert()
    rc, out = s_client(["-connect", "127.0.0.1:%d" % srv.port_of("submissions"), "-CAfile", cert,
                        "-verify_return_error", "-verify_hostname", "localhost", "-servername", "localhost",
                        "-showcerts", "-crlf", "-ign_eof"],
                       script=[(rb"(?m)^220 ", b"EHLO client.test\n"), (rb"(?m)^250 ", b"QUIT\n")])
    assert re.search(r"(?m)^220 tern\.test", out), out
    assert re.search(r"(?m)^250-?tern\.test", out), out
    assert re.search(r"(?m)^221 ", out), out
    check_s_client_output(out, cert)
    # The wrong name fails verification.
    rc, out = s_client(["-connect", "127.0.0.1:%d" % srv.port_of("submissions"), "-CAfile", cert,
                        "-verify_return_error", "-verify_hostname", "other.example", "-crlf"])
    assert rc != 0 and "220 tern.test" not in out, out


# ---------------------------------------------------------------- SNI

@needs_openssl
def test_sni_chooses_certificate(tern_server, tmp_path):
    d = str(tmp_path)
    first = make_cert(d, "first", ["mail.first.test"])
    second = make_cert(d, "second", ["mail.second.test", "*.wild.test"], key_type="rsa")
    srv = tls_server(tern_server, config={"tls_certificate": ["%s %s" % first, "%s %s" % second]})
    both = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    both.load_verify_locations(first[0])
    both.load_verify_locations(second[0])
    cases = [("mail.second.test", second), ("x.wild.test", second), ("mail.first.test", first)]
    for name, (cert, _key) in cases:
        with srv.connect("submissions", tls=both, server_hostname=name) as c:
            assert c.tls.getpeercert(binary_form=True) == der_of(cert), name
            c.expect(220)
        with starttls(srv, "mx", ctx=both, server_hostname=name) as c:
            assert c.tls.getpeercert(binary_form=True) == der_of(cert), name
            assert c.cmd("EHLO client.test").code == 250
    # An unknown name, and no SNI at all, get the first (default) pair.
    loose = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    loose.check_hostname = False
    loose.verify_mode = ssl.CERT_NONE
    # A wildcard covers one label only (as X509_check_host has it).
    for name in ("unknown.test", "deep.x.wild.test", "wild.test", None):
        with srv.connect("submissions", tls=loose, server_hostname=name) as c:
            assert c.tls.getpeercert(binary_form=True) == der_of(first[0]), name
    # openssl s_client's -servername picks the same way.
    rc, out = s_client(["-connect", "127.0.0.1:%d" % srv.port_of("submissions"), "-servername",
                        "mail.second.test", "-CAfile", second[0], "-verify_return_error", "-verify_hostname",
                        "mail.second.test", "-showcerts"])
    check_s_client_output(out, second[0])


# ---------------------------------------------------------------- STARTTLS state

def test_starttls_state_after_handshake(tern_server):
    srv = tls_server(tern_server)
    for kind in ("mx", "submission"):
        with starttls(srv, kind) as c:
            # Back to "no EHLO yet".
            r = c.cmd("MAIL FROM:<sender@localhost>")
            assert r.code == 503 and r.enhanced() == "5.5.1", r
            r = c.cmd("EHLO client.test")
            assert r.code == 250 and "STARTTLS" not in keywords(r), r
            r = c.cmd("STARTTLS")
            assert r.code == 503 and r.enhanced() == "5.5.1" and "TLS already active" in r.text, r
            assert c.cmd("NOOP").code == 250


def test_starttls_forgets_plaintext_session(tern_server):
    """The EHLO and transaction before STARTTLS do not survive it (RFC 3207 4.2)."""
    srv = tls_server(tern_server)
    c = srv.connect("mx")
    c.expect(220)
    c.cmd("EHLO client.test")
    r = c.cmd("STARTTLS")
    assert r.code == 220, r
    c.starttls(srv.tls_context())
    r = c.cmd("RCPT TO:<alice@localhost>")
    assert r.code == 503, r
    c.close()


def test_starttls_injection_one_packet(tern_server):
    """Commands pipelined after STARTTLS in the same packet are an attack
    (CVE-2011-0411 style): 554 5.5.0 and close, never executed."""
    srv = tls_server(tern_server)
    for kind in ("mx", "submission"):
        for injected in (b"RSET\r\n", b"MAIL FROM:<sender@localhost>\r\n", b"EHLO evil.test\r\n"):
            with srv.connect(kind) as c:
                c.expect(220)
                assert c.cmd("EHLO client.test").code == 250
                c.send(b"STARTTLS\r\n" + injected)
                r = c.reply()
                if r.code == 220:
                    r = c.reply()
                assert r.code == 554 and r.enhanced() == "5.5.0", (kind, injected, r)
                assert c.wait_closed(), (kind, injected)
    working_session(srv)


def test_starttls_injection_never_executed_after_handshake(tern_server):
    """Plaintext sent right behind STARTTLS, in a separate write before the
    220 is read, is never executed inside the TLS session: whatever the
    server does (close, or a failed handshake), a MAIL sent in plaintext does
    not open a transaction after the handshake."""
    srv = tls_server(tern_server)
    outcomes = set()
    for attempt in range(5):
        c = srv.connect("mx")
        c.expect(220)
        assert c.cmd("EHLO client.test").code == 250
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.send(b"STARTTLS\r\n")
        c.send(b"MAIL FROM:<sender@localhost>\r\n")
        try:
            r = c.reply()
        except th.Closed:
            outcomes.add("closed")
            c.close()
            continue
        if r.code == 554:
            assert r.enhanced() == "5.5.0", r
            assert c.wait_closed()
            outcomes.add("554")
            c.close()
            continue
        assert r.code == 220, r
        if c.buf:
            # The server saw the plaintext after its 220: 554 and close.
            r = c.reply()
            assert r.code == 554 and r.enhanced() == "5.5.0", r
            assert c.wait_closed()
            outcomes.add("554 after 220")
            c.close()
            continue
        try:
            c.starttls(srv.tls_context())
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
            outcomes.add("handshake failed")  # the MAIL bytes were taken as TLS garbage
            c.close()
            continue
        # The handshake worked: the MAIL must not have been executed.
        assert c.cmd("EHLO client.test").code == 250
        r = c.cmd("RCPT TO:<alice@localhost>")
        assert r.code == 503, "a plaintext MAIL was executed inside TLS: %r\n%s" % (r, c.dump())
        outcomes.add("not executed")
        c.close()
    assert outcomes, outcomes
    working_session(srv)


# ---------------------------------------------------------------- broken handshakes

def test_garbage_instead_of_tls_closes(tern_server):
    srv = tls_server(tern_server, config={"command_timeout": "2s"})
    payloads = [b"EHLO client.test\r\n", os.urandom(300), b"\x16\x03\x01\x00\x05hello" + b"\0" * 64,
                b"\x16\x03\x03\xff\xff" + os.urandom(2000)]
    for payload in payloads:
        with socket.create_connection(("127.0.0.1", srv.port_of("submissions")), timeout=10) as s:
            s.sendall(payload)
            closed, data = read_until_closed(s, 20 * th.SLOW)
            assert closed, "connection left open after %r" % payload[:20]
            assert b"220 " not in data and b"250" not in data, data
        # The same after STARTTLS on mx.
        with srv.connect("mx") as c:
            c.expect(220)
            c.cmd("EHLO client.test")
            assert c.cmd("STARTTLS").code == 220
            c.sock.sendall(payload)
            closed, data = read_until_closed(c.sock, 20 * th.SLOW)
            assert closed, "connection left open after STARTTLS and %r" % payload[:20]
            assert b"250" not in data, data
    working_session(srv)


def test_stalled_handshake_closed_while_others_served(tern_server):
    srv = tls_server(tern_server, config={"command_timeout": "2s"})
    hello = client_hello()
    stalled = []
    try:
        # Half a ClientHello on the implicit-TLS port; nothing after 220 to STARTTLS;
        # a connection that sends nothing at all.
        s = socket.create_connection(("127.0.0.1", srv.port_of("submissions")), timeout=10)
        s.sendall(hello[:len(hello) // 2])
        stalled.append(s)
        c = srv.connect("mx")
        c.expect(220)
        c.cmd("EHLO client.test")
        assert c.cmd("STARTTLS").code == 220
        stalled.append(c.sock)
        stalled.append(socket.create_connection(("127.0.0.1", srv.port_of("submissions")), timeout=10))
        # Others are served while these hang.
        working_session(srv)
        with starttls(srv, "submission") as ok:
            assert ok.cmd("EHLO client.test").code == 250
        for i, s in enumerate(stalled):
            closed, data = read_until_closed(s, 30 * th.SLOW)
            assert closed, "stalled connection %d was not closed" % i
    finally:
        for s in stalled:
            s.close()
    working_session(srv)
    assert srv.running()


# ---------------------------------------------------------------- log

def test_tls_logged(tern_server):
    srv = tls_server(tern_server)
    before = srv.log_size()
    with starttls(srv) as c:
        version, cipher = c.tls.version(), c.tls.cipher()[0]
        assert c.cmd("EHLO client.test").code == 250
        c.cmd("QUIT")

    def logged():
        for line in srv.log_since(before).splitlines():
            if "event=tls" in line:
                return line
        return None
    line = th.wait_until(logged, 10 * th.SLOW, "an event=tls log line", srv.log_tail)
    assert re.search(r"\bsession=\S+", line), line
    assert re.search(r"\bversion=\"?%s\b" % re.escape(version), line), (line, version)
    assert re.search(r"\bcipher=\"?%s\b" % re.escape(cipher), line), (line, cipher)

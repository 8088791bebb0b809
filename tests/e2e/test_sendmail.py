"""`tern sendmail`, the command programs written for /usr/sbin/sendmail call,
against a running server: it hands the message over the server's local socket
(DATA_DIR/sendmail.sock) and exits 0 only once the message is queued.

The command runs as root and as `nobody`, who may not read the data
directory: the socket is the only way in. So the server's data directory, a
copy of the binary and a copy of its configuration live in a directory other
users can traverse (pytest's own temporary directories are private to root).
Real callers are driven too: PHP's mail() and s-nail, through the command and
through links named sendmail and mailq.
"""

import email
import email.policy
import os
import pwd
import re
import select
import shutil
import socket
import stat
import subprocess
import tempfile
import time

import pytest

import tern_harness as th

ALICE, BOB, CAROL = "alice@localhost", "bob@localhost", "carol@localhost"
EX_USAGE, EX_DATAERR, EX_NOUSER, EX_UNAVAILABLE, EX_NOPERM = 64, 65, 67, 69, 77
# EX_TEMPFAIL (75) tells callers the message is queued (PHP's mail() takes it as success): never for a message
# the server did not take, so the tests below want 69 where the server is down or answered 4xx.
RUN_TIMEOUT = 30 * th.SLOW


class Env:
    """A server and what a local user needs to reach it: the binary, its links, a readable configuration."""

    def __init__(self, public, srv):
        self.public = public
        self.srv = srv
        self.bin = os.path.join(public, "bin", "tern")
        self.conf = os.path.join(public, "tern.conf")
        self.data_dir = srv.data_dir
        self.socket = os.path.join(srv.data_dir, "sendmail.sock")
        shutil.copyfile(srv.conf_path, self.conf)
        os.chmod(self.conf, 0o644)

    def run(self, args, input_bytes=b"", user=None, program=None, timeout=RUN_TIMEOUT):
        """Run `tern sendmail ARGS` (or the program named, e.g. a link) with -C the configuration."""
        cmd = ([program] if program else [self.bin, "sendmail"]) + ["-C", self.conf] + list(args)
        return run_as(cmd, input_bytes, user, timeout)

    def messages(self, address):
        return [email.message_from_bytes(raw, policy=email.policy.default)
                for raw in th.read_new(self.data_dir, address)]

    def wait_messages(self, address, count=1):
        th.wait_until(lambda: len(th.list_new(self.data_dir, address)) >= count, th.DELIVERY_TIMEOUT,
                      "%d message(s) in %s's mailbox" % (count, address), self.srv.log_tail)
        return self.messages(address)


def nobody():
    pw = pwd.getpwnam("nobody")
    return pw.pw_uid, pw.pw_gid


def run_as(cmd, input_bytes=b"", user=None, timeout=RUN_TIMEOUT):
    """Run cmd, as root or (user="nobody") as nobody without any group."""
    if user == "nobody":
        uid, gid = nobody()
        cmd = ["setpriv", "--reuid=%d" % uid, "--regid=%d" % gid, "--clear-groups", "--"] + cmd
    return subprocess.run(cmd, input=input_bytes, capture_output=True, timeout=timeout, cwd="/")


@pytest.fixture
def public():
    """A directory every user may traverse (0711), with a bin/ they may read; removed at the end."""
    if os.geteuid() != 0:
        pytest.skip("running the command as another user needs root")
    problem = th.binary_problem()
    if problem:
        pytest.fail(problem)
    root = tempfile.mkdtemp(prefix="tern-sendmail-")
    os.chmod(root, 0o711)
    os.mkdir(os.path.join(root, "bin"), 0o755)
    shutil.copy2(th.TERN_BIN, os.path.join(root, "bin", "tern"))
    os.chmod(os.path.join(root, "bin", "tern"), 0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def start(public, tern_server, config=None, users=(ALICE, BOB, CAROL), start_server=True):
    cfg = {"data_dir": os.path.join(public, "data"), "retry_initial": "1h", "retry_max": "2h"}
    cfg.update(config or {})
    srv = tern_server(config=cfg, start=start_server)
    if start_server:
        for u in users:
            srv.add_user(u)
    return Env(public, srv)


@pytest.fixture
def env(public, tern_server):
    return start(public, tern_server)


def message(subject="a test", body="Hello.\n", headers=""):
    return ("%sSubject: %s\n\n%s" % (headers, subject, body)).encode()


def ok(r):
    assert r.returncode == 0, "exit %d\nstdout: %s\nstderr: %s" % (
        r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace"))
    return r


# ---- who sends ----

def test_root_and_nobody_deliver(env):
    ok(env.run(["alice"], message("from root", "sent by root\n")))
    (m,) = env.wait_messages(ALICE)
    assert m["Return-Path"] == "<root@localhost>"
    assert m["Subject"] == "from root"
    assert m["From"].addresses[0].addr_spec == "root@localhost"
    assert re.search(r"^Received: by tern\.test \(tern, from userid 0\)", m.as_string(), re.M)
    assert m["Date"] and m["Message-ID"], "the server adds Date: and Message-ID: to a local submission"
    assert m.get_content() == "sent by root\n"

    # nobody cannot read the data directory or the queue, only reach the socket.
    assert run_as(["ls", env.data_dir], user="nobody").returncode != 0
    assert run_as(["cat", os.path.join(env.data_dir, "queue.db")], user="nobody").returncode != 0
    ok(env.run([ALICE], message("from nobody", "sent by nobody\n"), user="nobody"))
    m = [x for x in env.wait_messages(ALICE, 2) if x["Subject"] == "from nobody"][0]
    assert m["Return-Path"] == "<nobody@localhost>"
    assert "from userid %d" % nobody()[0] in str(m["Received"])
    assert m.get_content() == "sent by nobody\n"
    log = env.srv.log_text()
    assert re.search(r'event=connect session=\S+ client=local uid=%d user="nobody"' % nobody()[0], log)
    assert re.search(r'event=mail session=\S+ qid=\S+ from="nobody@localhost" uid=%d user="nobody"'
                     % nobody()[0], log)


def test_queued_before_exit(env):
    """Exit 0 means the message is committed: a kill -9 right after it loses nothing."""
    ok(env.run([BOB], message("durable")))
    env.srv.kill9()
    env.srv.start()
    (m,) = env.wait_messages(BOB)
    assert m["Subject"] == "durable"


def test_server_that_drops_privileges(public, tern_server):
    """Bound as root before privileges go, the socket serves a server running as nobody, which removes it at stop."""
    env = start(public, tern_server, config={"user": "nobody"}, users=(ALICE,))
    assert os.stat(env.data_dir).st_uid == nobody()[0]
    assert "event=privileges_dropped user=nobody" in env.srv.log_text()
    ok(env.run([ALICE], message("to a server running as nobody"), user="nobody"))
    (m,) = env.wait_messages(ALICE)
    assert m["Subject"] == "to a server running as nobody"
    assert env.srv.stop() == 0
    assert not os.path.exists(env.socket)


def test_data_dir_modes(public, tern_server):
    """The data directory may be traversed, the socket written by all; nothing else is open to others."""
    env = start(public, tern_server, start_server=False)
    env.srv.cli("user", "add", ALICE)  # made with the test's umask, before the server sets its own
    db = os.path.join(env.data_dir, "queue.db")
    os.chmod(db, 0o644)
    # Entries the server did not make: a setuid file, a setgid directory, and links to files elsewhere,
    # which root at start must not change (the data directory belongs to the unprivileged user).
    planted = os.path.join(env.data_dir, "planted")
    with open(planted, "w") as f:
        f.write("x")
    os.chmod(planted, 0o4755)
    os.mkdir(os.path.join(env.data_dir, "shared"))
    os.chmod(os.path.join(env.data_dir, "shared"), 0o2775)
    outside = {}
    for name in ("symlinked", "hardlinked"):
        outside[name] = os.path.join(public, name)
        with open(outside[name], "w") as f:
            f.write("not tern's")
        os.chmod(outside[name], 0o4755)
    os.symlink(outside["symlinked"], os.path.join(env.data_dir, "symlink"))
    os.link(outside["hardlinked"], os.path.join(env.data_dir, "hardlink"))
    env.srv.start()
    ok(env.run([ALICE], message(body=("x" * 70 + "\n") * 600)))  # big enough for a spool file
    env.wait_messages(ALICE)

    def mode(name):
        return stat.S_IMODE(os.lstat(os.path.join(env.data_dir, name)).st_mode)

    assert mode("") == 0o711
    assert stat.S_ISSOCK(os.lstat(env.socket).st_mode) and mode("sendmail.sock") == 0o666
    assert mode("queue.db") == 0o600, "a file made before start keeps only its owner's permissions"
    assert mode("planted") == 0o700, "setuid and the permissions of group and others go"
    assert mode("shared") == 0o700
    for name, path in outside.items():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o4755, "%s: a file outside the data directory changed" % name
    assert 'event=mode_fix_failed path=%s/hardlink error="the file has other hard links"' % env.data_dir \
        in env.srv.log_text()
    # SQLite gives its -wal and -shm files the database's mode; what the server makes itself is its own only.
    for name in ("queue.db-wal", "queue.db-shm"):
        if os.path.exists(os.path.join(env.data_dir, name)):
            assert mode(name) & 0o007 == 0, "%s has mode %o" % (name, mode(name))
    for name in ("spool", "tmp", "mail", "tls", "tls/selfsigned.key", "tls/selfsigned.crt", "mail/localhost/alice",
                 "mail/localhost/alice/new"):
        assert mode(name) & 0o077 == 0, "%s has mode %o" % (name, mode(name))
    for name in ("spool", "tmp", "mail", "tls"):
        assert os.path.exists(os.path.join(env.data_dir, name)), name
    for f in th.list_new(env.data_dir, ALICE):
        assert mode("mail/localhost/alice/new/" + f) & 0o077 == 0


def test_relay_password_not_read(public, tern_server):
    """A smarthost's auth= file only root may read is no concern of sendmail: it does not open it."""
    auth = os.path.join(public, "relay.auth")
    with open(auth, "w") as f:
        f.write("relay-user relay-password\n")
    os.chmod(auth, 0o600)
    env = start(public, tern_server, config={"smarthost": "[127.0.0.1]:1 auth=" + auth}, users=(ALICE,))
    ok(env.run([ALICE], message("with a smarthost password"), user="nobody"))
    (m,) = env.wait_messages(ALICE)
    assert m["Subject"] == "with a smarthost password"


# ---- the flags ----

def test_extract_recipients(env):
    """-t: To:, Cc: and Bcc: all receive it (plus the command line's), and nobody sees the Bcc:."""
    text = (b"To: Alice <alice@localhost>\nCc: bob\nBcc: carol@localhost\n"
            b"Subject: three ways\n\nfor all of you\n")
    ok(env.run(["-t", "-i", "postmaster"], text))
    for who in (ALICE, BOB, CAROL, "postmaster@localhost"):
        (m,) = env.wait_messages(who)
        assert m["Subject"] == "three ways"
        assert m["Bcc"] is None, "Bcc: reached %s" % who
        assert m["To"] == "Alice <alice@localhost>" and m["Cc"] == "bob"
        assert m.get_content() == "for all of you\n"


def test_quoted_local_part_with_at(env):
    """-t: To: "bob@evil.example" is a local part at the default domain, never an address at evil.example."""
    text = b'To: "bob@evil.example", alice\nSubject: quoted\n\nhi\n'
    r = ok(env.run(["-t"], text))
    assert b'"bob@evil.example"@localhost: 550 5.1.1' in r.stderr, r.stderr
    (m,) = env.wait_messages(ALICE)
    assert m["Subject"] == "quoted"
    log = env.srv.log_text()
    assert not re.search(r'event=rcpt session=\S+ qid=\S+ to="?bob@evil\.example', log), "sent off-site"
    assert "evil.example" not in env.srv.cli("queue", "list").stdout.decode()


def test_duplicate_recipients(env):
    """A recipient given twice gets one RCPT: the domain compared in any case, the local part exactly."""
    ok(env.run(["alice", "alice@LOCALHOST", "Alice@localhost", BOB, "bob@LocalHost"], message("once each")))
    env.wait_messages(BOB)
    rcpts = re.findall(r'event=rcpt(?:_refused)? session=\S+ qid=\S+ to="?([^" ]+)', env.srv.log_text())
    assert rcpts == ["alice@localhost", "Alice@localhost", "bob@localhost"], rcpts


def test_too_many_recipients(public, tern_server):
    """More than max_recipients (duplicates aside): nothing is sent, as the server would refuse the rest."""
    env = start(public, tern_server, config={"max_recipients": "100"}, users=(ALICE,))
    r = env.run(["r%d@localhost" % i for i in range(101)], message())
    assert r.returncode == EX_UNAVAILABLE, r.stderr
    assert b"more than max_recipients (100) recipients; nothing was sent" in r.stderr
    assert "client=local" not in env.srv.log_text(), "nothing reached the server"
    ok(env.run([ALICE] * 150 + ["alice@LOCALHOST"] * 50, message("once")))
    (m,) = env.wait_messages(ALICE)
    assert m["Subject"] == "once"


def test_extract_resent_and_errors(env):
    text = b"To: alice@localhost\nResent-To: bob@localhost\nResent-Bcc: carol\nSubject: resent\n\nagain\n"
    ok(env.run(["-t"], text))
    env.wait_messages(BOB)
    (m,) = env.wait_messages(CAROL)
    assert m["Resent-Bcc"] is None and m["Resent-To"] == "bob@localhost"
    assert th.list_new(env.data_dir, ALICE) == [], "Resent- fields replace To:"

    r = env.run(["-t"], b"Subject: nobody to send to\n\nx\n")
    assert r.returncode == EX_USAGE and b"no recipients" in r.stderr
    r = env.run(["-t"], b"To: this is not, an address list\n\nx\n")
    assert r.returncode == EX_DATAERR and b"To: field is not a list of addresses" in r.stderr


def test_dot_ends_input_unless_i(env):
    body = b"first\n.\nafter the dot\n"
    ok(env.run([ALICE], message("no -i").replace(b"Hello.\n", body)))
    ok(env.run(["-i", ALICE], message("with -i").replace(b"Hello.\n", body)))
    ok(env.run(["-oi", ALICE], message("with -oi", ".hidden\n..double\n.\n")))
    got = {m["Subject"]: m.get_content() for m in env.wait_messages(ALICE, 3)}
    assert got["no -i"] == "first\n"
    assert got["with -i"] == "first\n.\nafter the dot\n"
    assert got["with -oi"] == ".hidden\n..double\n.\n"


def test_sender_and_full_name(env):
    ok(env.run(["-f", "robot@example.org", "-F", "The Robot", ALICE], message("from -f")))
    ok(env.run(["-fbounces@example.org", "-FJürgen Müller", ALICE], message("glued")))
    ok(env.run(["-f", "", ALICE], message("null sender")))
    ok(env.run(["-r", "other@example.org", ALICE], message("has From", headers="From: Real <real@example.org>\n")))
    got = {m["Subject"]: m for m in env.wait_messages(ALICE, 4)}
    m = got["from -f"]
    assert m["Return-Path"] == "<robot@example.org>"
    assert m["From"].addresses[0].display_name == "The Robot"
    assert m["From"].addresses[0].addr_spec == "robot@example.org"
    m = got["glued"]
    assert m["Return-Path"] == "<bounces@example.org>"
    assert m["From"].addresses[0].display_name == "Jürgen Müller"
    assert got["null sender"]["Return-Path"] == "<>"
    assert got["null sender"]["From"].addresses[0].addr_spec == "root@localhost"
    assert got["has From"]["From"] == "Real <real@example.org>", "a message's own From: stays"
    assert got["has From"]["Return-Path"] == "<other@example.org>"

    r = env.run(["-f", "not an address", ALICE], message())
    assert r.returncode == EX_USAGE and b"-f not an address" in r.stderr


def test_message_without_header(env):
    ok(env.run(["-i", ALICE], b"just a line\r\nand another, CRLF\r\nno newline at the end"))
    (m,) = env.wait_messages(ALICE)
    assert m["From"].addresses[0].addr_spec == "root@localhost"
    assert m.get_content() == "just a line\nand another, CRLF\nno newline at the end\n"


def test_cron_style_call(env):
    """What cron runs: -FCronDaemon -i -B8BITMIME -oem USER, with 8-bit output."""
    text = ("Content-Type: text/plain; charset=UTF-8\nSubject: Cron <root@host> run-parts\n\n"
            "déjà vu\n.\n").encode()
    ok(env.run(["-FCronDaemon", "-i", "-B8BITMIME", "-oem", "alice"], text))
    (m,) = env.wait_messages(ALICE)
    assert str(m["From"]) == "CronDaemon <root@localhost>"
    assert m.get_content() == "déjà vu\n.\n"


def test_refused_recipient(env):
    """Sent to some: exit 0 (a caller's retry would send the others a second copy), each refusal on stderr."""
    r = ok(env.run([ALICE, "nosuchuser", "not an address", BOB], message("partly")))
    assert re.search(rb"nosuchuser@localhost: 550 5\.1\.1", r.stderr), r.stderr
    assert b"not an address: not a valid address" in r.stderr
    assert b"the message was queued for 2 recipients; the 2 named above did not get it" in r.stderr
    env.wait_messages(ALICE)
    env.wait_messages(BOB)
    r = env.run(["nosuchuser", "nobody-else"], message("nobody at all"))
    assert r.returncode == EX_NOUSER and b"no recipient was accepted" in r.stderr


def test_server_refusal_is_reported(env):
    r = env.run(["-i", ALICE], message(body="x" * 1200 + "\n"))
    assert r.returncode == EX_UNAVAILABLE
    assert b"550 5.6.0 Message has a line over 1000 octets" in r.stderr


def test_message_too_big(public, tern_server):
    """Past max_message_size on standard input nothing is sent (65): a message is never cut short."""
    env = start(public, tern_server, config={"max_message_size": "1k"})
    r = env.run(["-i", ALICE], message("too big", body=("y" * 70 + "\n") * 200))
    assert r.returncode == EX_DATAERR, r.stderr
    assert b"larger than max_message_size (1024 bytes); nothing was sent" in r.stderr
    # A long Bcc: makes the input too big, and removing it would make what was read fit: still nothing goes.
    bcc = "Bcc: " + ",\n ".join(["someone.else@localhost"] * 4000) + "\n"
    r = env.run(["-i", ALICE], message("cut short?", body="the end\n", headers=bcc))
    assert r.returncode == EX_DATAERR, r.stderr
    assert "client=local" not in env.srv.log_text(), "nothing reached the server"
    ok(env.run(["-i", ALICE], message("small", body="small\n")))
    (m,) = env.wait_messages(ALICE)
    assert m.get_content() == "small\n"


def test_server_limit_smaller(public, tern_server):
    """A server whose limit is below the command's configuration refuses by SIZE at MAIL (69)."""
    env = start(public, tern_server, config={"max_message_size": "1k"})
    with open(env.conf) as f:
        text = f.read()
    with open(env.conf, "w") as f:
        f.write(text.replace("max_message_size = 1k", "max_message_size = 1M"))
    r = env.run(["-i", ALICE], message(body=("y" * 70 + "\n") * 200))
    assert r.returncode == EX_UNAVAILABLE
    assert re.search(rb"MAIL FROM:<root@localhost> SIZE=\d+: 552 5\.3\.4", r.stderr), r.stderr


def test_usage_errors(env):
    for args in (["-q"], ["--help"], ["-bd"], ["-f"], ["-B", "binarymime", ALICE]):
        r = env.run(args, message())
        assert r.returncode == EX_USAGE, args
        assert b"usage: sendmail" in r.stderr
    r = env.run([], message())
    assert r.returncode == EX_USAGE and b"no recipients" in r.stderr


def test_server_not_running(env):
    env.srv.stop()
    assert not os.path.exists(env.socket), "the server removes its socket when it stops"
    r = env.run([ALICE], message())
    assert r.returncode == EX_UNAVAILABLE
    assert ("cannot reach the mail server at %s" % env.socket).encode() in r.stderr
    php = shutil.which("php")
    if php:
        # mail() counts 75 as sent (from PHP 8.5, which reads the exit status right): it must say false here.
        code = "exit(mail('alice@localhost', 'lost?', 'body') ? 0 : 1);"
        path = "%s sendmail -C %s -t -i" % (env.bin, env.conf)
        r = run_as([php, "-n", "-d", "sendmail_path=" + path, "-r", code], user="nobody")
        assert r.returncode == 1, "mail() said the message was sent while the server was stopped"
    env.srv.start()
    ok(env.run([ALICE], message("after restart")))
    env.wait_messages(ALICE)


def test_stale_socket_and_socket_off(env, tern_server, public):
    env.srv.kill9()
    assert os.path.exists(env.socket)
    r = env.run([ALICE], message())
    assert r.returncode == EX_UNAVAILABLE, "a dead server's socket refuses"
    env.srv.start()
    assert "event=stale_socket_removed" in env.srv.log_text()
    ok(env.run([ALICE], message()))

    env.srv.stop()
    env.srv.set(sendmail_socket="none")
    env.srv.start()
    shutil.copyfile(env.srv.conf_path, env.conf)
    assert not os.path.exists(env.socket)
    r = env.run([ALICE], message())
    assert r.returncode == EX_UNAVAILABLE and b"local submission is turned off" in r.stderr


# ---- -bs, -bp, -bi ----

class Dialogue:
    """sendmail -bs as a child: lines in, replies out, every read bounded."""

    def __init__(self, env, user=None):
        cmd = [env.bin, "sendmail", "-C", env.conf, "-bs"]
        if user == "nobody":
            uid, gid = nobody()
            cmd = ["setpriv", "--reuid=%d" % uid, "--regid=%d" % gid, "--clear-groups", "--"] + cmd
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.buf = b""

    def reply(self):
        deadline = time.monotonic() + th.REPLY_TIMEOUT
        lines = []
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2:]
                lines.append(line.decode())
                if line[3:4] == b" ":
                    return int(line[:3]), lines
                continue
            left = deadline - time.monotonic()
            assert left > 0, "no reply from sendmail -bs; got %r" % self.buf
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                assert chunk, "sendmail -bs closed its output; partial %r" % self.buf
                self.buf += chunk

    def say(self, text):
        """Send text (LF line ends, as a person types) and return the reply."""
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()
        return self.reply()

    def close(self):
        self.proc.stdin.close()
        return self.proc.wait(timeout=RUN_TIMEOUT)


def test_smtp_on_stdin(env):
    d = Dialogue(env, user="nobody")
    assert d.reply()[0] == 220
    code, lines = d.say("EHLO client.example\n")
    assert code == 250 and not any("STARTTLS" in x or "AUTH" in x for x in lines)
    assert d.say("MAIL FROM:<script@example.org>\n")[0] == 250
    assert d.say("RCPT TO:<alice@localhost>\n")[0] == 250
    assert d.say("RCPT TO:<someone@example.net>\n")[0] == 250, "a local user may relay"
    assert d.say("RSET\n")[0] == 250
    assert d.say("MAIL FROM:<script@example.org>\n")[0] == 250
    assert d.say("RCPT TO:<alice@localhost>\n")[0] == 250
    assert d.say("DATA\n")[0] == 354
    code, lines = d.say("Subject: over -bs\n\n..stuffed\nbody\n.\n")
    assert code == 250 and "queued as" in lines[0]
    assert d.say("QUIT\n")[0] == 221
    assert d.close() == 0
    (m,) = env.wait_messages(ALICE)
    assert m["Subject"] == "over -bs" and m["Return-Path"] == "<script@example.org>"
    assert m.get_content() == ".stuffed\nbody\n"


def test_local_session_refuses_tls_and_auth(env):
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(th.REPLY_TIMEOUT)
        s.connect(env.socket)
        f = s.makefile("rwb")

        def cmd(line):
            if line:
                f.write(line.encode() + b"\r\n")
                f.flush()
            out = []
            while True:
                got = f.readline()
                assert got, "connection closed"
                out.append(got)
                if got[3:4] == b" ":
                    return out
        assert cmd(None)[0].startswith(b"220 ")
        assert cmd("EHLO x.example")[-1].startswith(b"250 ")
        assert cmd("STARTTLS")[0].startswith(b"454 ")
        assert cmd("AUTH PLAIN AGFsaWNlAHNlY3JldA==")[0][:1] == b"5"
        assert cmd("QUIT")[0].startswith(b"221 ")


def queued_remote(env):
    """A message for a relayed address that cannot be delivered yet: it waits in the queue."""
    ok(env.run(["someone@example.test"], message("waits")))
    th.wait_until(lambda: "deferred" in env.srv.cli("queue", "list").stdout.decode(), th.DELIVERY_TIMEOUT,
                  "the relayed message to be deferred", env.srv.log_tail)


@pytest.fixture
def relay_env(public, tern_server):
    # Port 1 on loopback refuses: relayed mail is deferred and stays in the queue.
    return start(public, tern_server, config={"transport": "example.test smtp:[127.0.0.1]:1"})


def test_mailq(relay_env):
    env = relay_env
    queued_remote(env)
    r = ok(env.run(["-bp"]))
    assert b"someone@example.test" in r.stdout and b"deferred" in r.stdout
    assert b"<root@localhost>" in r.stdout

    os.symlink("tern", os.path.join(env.public, "bin", "mailq"))
    r = ok(run_as([os.path.join(env.public, "bin", "mailq"), "-C", env.conf]))
    assert b"someone@example.test" in r.stdout

    r = env.run(["-bp"], user="nobody")
    assert r.returncode == EX_NOPERM
    assert b"cannot read the queue" in r.stderr and env.data_dir.encode() in r.stderr


def test_newaliases_and_bi(env):
    os.symlink("tern", os.path.join(env.public, "bin", "newaliases"))
    r = ok(run_as([os.path.join(env.public, "bin", "newaliases")]))
    assert b"no aliases file" in r.stdout
    ok(env.run(["-bi"]))


def test_link_named_sendmail(env):
    link = os.path.join(env.public, "bin", "sendmail")
    os.symlink("tern", link)
    ok(env.run(["-i", "alice"], message("through the link"), program=link, user="nobody"))
    (m,) = env.wait_messages(ALICE)
    assert m["Subject"] == "through the link"
    # tern's own -c FILE works as well as sendmail's -C FILE.
    ok(run_as([link, "-c", env.conf, "-t"], message("with -c", headers="To: bob\n")))
    env.wait_messages(BOB)


# ---- real callers ----

def test_php_mail(env):
    php = shutil.which("php")
    if not php:
        pytest.fail("php is not installed (scripts/install-deps.sh test installs php-cli)")
    code = (
        "$ok = mail('alice@localhost', 'Hello from PHP', \"Line one\\nLine two\\n.\\nafter a dot\","
        " \"From: Web App <app@localhost>\\r\\nCc: bob@localhost\\r\\nX-Mailer-Test: yes\");"
        "exit($ok ? 0 : 1);")
    path = "%s sendmail -C %s -t -i" % (env.bin, env.conf)
    ok(run_as([php, "-n", "-d", "sendmail_path=" + path, "-r", code], user="nobody"))
    (m,) = env.wait_messages(ALICE)
    assert m["Subject"] == "Hello from PHP"
    assert m["From"] == "Web App <app@localhost>" and m["X-Mailer-Test"] == "yes"
    assert m["Return-Path"] == "<nobody@localhost>"
    assert m.get_content() == "Line one\nLine two\n.\nafter a dot\n"
    (c,) = env.wait_messages(BOB)
    assert c["Subject"] == "Hello from PHP"


def test_s_nail(env):
    snail = shutil.which("s-nail")
    if not snail:
        pytest.fail("s-nail is not installed (scripts/install-deps.sh test installs it)")
    link = os.path.join(env.public, "bin", "sendmail")
    os.symlink("tern", link)
    r = run_as([snail, "-n", "-Sv15-compat", "-Smta=" + link, "-Smta-arguments=-C " + env.conf,
                "-s", "Hello from s-nail", "-c", BOB, ALICE], b"Sent with mailx.\n", user="nobody")
    ok(r)
    (m,) = env.wait_messages(ALICE)
    assert m["Subject"] == "Hello from s-nail" and m["Cc"] == BOB
    assert m["From"].addresses[0].addr_spec == "nobody@localhost"
    assert m.get_content() == "Sent with mailx.\n"
    env.wait_messages(BOB)


# ---- limits count per local user ----

def test_limits_per_local_user(public, tern_server):
    env = start(public, tern_server, config={"max_connections_per_ip": "2", "user_message_rate": "1"})
    ok(env.run([ALICE], message("first from root")))
    r = env.run([ALICE], message("second from root"))
    assert r.returncode == EX_UNAVAILABLE and b"450 4.7.1" in r.stderr
    assert "scope=user user=root kind=messages" in env.srv.log_text()
    ok(env.run([ALICE], message("first from nobody"), user="nobody"))

    held = []
    try:
        for _ in range(2):
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(th.REPLY_TIMEOUT)
            s.connect(env.socket)
            assert s.recv(512).startswith(b"220 ")
            held.append(s)
        third = socket.socket(socket.AF_UNIX)
        third.settimeout(th.REPLY_TIMEOUT)
        third.connect(env.socket)
        assert third.recv(512).startswith(b"421 4.7.0"), "a third connection from the same uid is refused"
        third.close()
        d = Dialogue(env, user="nobody")
        assert d.reply()[0] == 220, "another local user is not counted with root"
        assert d.say("QUIT\n")[0] == 221
        assert d.close() == 0
    finally:
        for s in held:
            s.close()

"""The server's life: SIGHUP reload, SIGTERM with a transaction in flight,
connection limits, the default configuration, the CLI against a running
server, and local delivery retries."""

import os
import shutil
import signal
import socket
import subprocess

import pytest

import tern_harness as th


def ehlo_size(srv):
    with srv.connect() as c:
        c.expect(220)
        r = c.cmd("EHLO client.test")
        assert r.code == 250, r
        c.cmd("QUIT")
    for line in r.lines:
        if line.upper().startswith("SIZE"):
            return line.split()[1] if len(line.split()) > 1 else ""
    return None


def open_data_to_alice(srv):
    """A session inside DATA for alice@localhost, ready for content."""
    c = srv.connect()
    c.expect(220)
    c.cmd("EHLO client.test")
    assert c.cmd("MAIL FROM:<sender@localhost>").code == 250
    assert c.cmd("RCPT TO:<alice@localhost>").code == 250
    assert c.cmd("DATA").code == 354
    return c


def test_sighup_reloads_configuration(tern_server):
    srv = tern_server(config={"max_message_size": "1M"})
    assert ehlo_size(srv) == str(1024 * 1024)
    srv.set(max_message_size="2M")
    srv.signal(signal.SIGHUP)
    th.wait_until(lambda: ehlo_size(srv) == str(2 * 1024 * 1024), 20 * th.SLOW,
                  "EHLO to show SIZE 2097152 after SIGHUP", srv.log_tail)
    assert srv.running()
    # The new limit is enforced too, not only advertised.
    with srv.connect() as c:
        c.expect(220)
        assert c.cmd("EHLO client.test").code == 250
        assert c.cmd("MAIL FROM:<a@localhost> SIZE=%d" % (2 * 1024 * 1024)).code == 250
        c.cmd("RSET")
        assert c.cmd("MAIL FROM:<a@localhost> SIZE=%d" % (2 * 1024 * 1024 + 1)).code == 552


def test_sighup_with_broken_file_keeps_old_settings(tern_server):
    srv = tern_server(config={"max_message_size": "1M"})
    srv.write_config(extra_lines=["max_message_size = 5M", "max_recipients = 5"])
    before = srv.log_size()
    srv.signal(signal.SIGHUP)
    # The reload is refused and the reason logged, naming the bad parameter.
    th.wait_until(lambda: "max_recipients" in srv.log_since(before), 20 * th.SLOW,
                  "a log line naming max_recipients after the bad reload", srv.log_tail)
    assert srv.running(), "a bad file on SIGHUP took the server down" + srv.log_tail()
    assert ehlo_size(srv) == str(1024 * 1024), "a rejected file must not be applied, even in part"
    # A good file afterwards is taken.
    srv.set(max_message_size="3M")
    srv.signal(signal.SIGHUP)
    th.wait_until(lambda: ehlo_size(srv) == str(3 * 1024 * 1024), 20 * th.SLOW,
                  "the good reload after a bad one", srv.log_tail)


def test_sigterm_lets_inflight_data_finish(tern_server):
    srv = tern_server(users=["alice@localhost"], config={"shutdown_timeout": "60s"})
    c = open_data_to_alice(srv)
    c.send(b"Subject: in flight\r\n\r\nfirst half\r\n")
    srv.signal(signal.SIGTERM)

    # Wait until the server has stopped accepting (connection refused, or a
    # 421 instead of a greeting) so the SIGTERM is known to be handled.
    def stopped_accepting():
        try:
            with srv.connect(timeout=5) as probe:
                r = probe.reply(timeout=5)
                return r.code == 421
        except (ConnectionRefusedError, th.Closed, ConnectionResetError):
            return True
        except TimeoutError:
            return False
    th.wait_until(stopped_accepting, 20 * th.SLOW, "tern to stop accepting after SIGTERM", srv.log_tail,
                  interval=0.1)
    assert srv.running(), "tern exited with a transaction in flight" + srv.log_tail()
    c.send(b"second half\r\n.\r\n")
    r = c.reply()
    assert r.code == 250 and r.enhanced() == "2.0.0", r
    c.send(b"QUIT\r\n")
    try:
        r = c.reply()
        assert r.code in (221, 421), r
    except th.Closed:
        pass
    c.close()
    code = srv.wait_exit(30 * th.SLOW)
    assert code == 0, "exit code %r after SIGTERM%s" % (code, srv.log_tail())
    # The message was committed before 250: a restart delivers it (if the
    # first run did not already).
    srv.start()
    stored = srv.expect_mail("alice@localhost", 1)
    _, rest = th.split_trace(stored[0])
    assert rest == b"Subject: in flight\n\nfirst half\nsecond half\n"


def test_sigterm_idle_exits_zero(tern_server):
    # shutdown_timeout is long: an idle session holds no transaction, so the
    # server must not wait for it.
    srv = tern_server(config={"shutdown_timeout": "10m"})
    with srv.connect() as c:
        c.expect(220)
        c.cmd("EHLO client.test")
        srv.signal(signal.SIGTERM)
        # An idle session does not hold the shutdown for shutdown_timeout.
        code = srv.wait_exit(20 * th.SLOW)
    assert code == 0, "exit code %r%s" % (code, srv.log_tail())


def greeting(srv, source=None):
    c = srv.connect(source=source)
    return c, c.reply()


def test_max_connections_per_ip(tern_server):
    srv = tern_server(config={"max_connections_per_ip": "2"})
    a, ra = greeting(srv)
    b, rb = greeting(srv)
    assert ra.code == 220 and rb.code == 220
    c, rc = greeting(srv)
    assert rc.code == 421 and rc.enhanced() == "4.7.0", rc
    assert c.wait_closed()
    c.close()
    # Another client address is not counted against 127.0.0.1.
    d, rd = greeting(srv, source="127.0.0.2")
    assert rd.code == 220, rd
    # Sessions still work, and a freed slot can be used again.
    assert a.cmd("NOOP").code == 250
    a.cmd("QUIT")
    a.close()

    def slot_free():
        e, re_ = greeting(srv)
        e.close()
        return re_.code == 220
    th.wait_until(slot_free, 20 * th.SLOW, "a connection slot to be freed", srv.log_tail, interval=0.1)
    for x in (b, d):
        x.close()


def test_max_connections(tern_server):
    srv = tern_server(config={"max_connections": "3"})
    held = []
    for src in ("127.0.0.1", "127.0.0.2", "127.0.0.3"):
        c, r = greeting(srv, source=src)
        assert r.code == 220, r
        held.append(c)
    c, r = greeting(srv, source="127.0.0.4")
    assert r.code == 421 and r.enhanced() == "4.7.0", r
    assert c.wait_closed()
    c.close()
    for c in held:
        c.close()


def test_default_configuration(tmp_path):
    """`tern serve` with no -c: 127.0.0.1:2525, ./var, local domain localhost."""
    if not th.port_is_free("127.0.0.1", 2525):
        pytest.skip("127.0.0.1:2525 is in use")
    log = open(tmp_path / "tern.log", "wb")
    proc = subprocess.Popen([th.TERN_BIN, "serve"], cwd=str(tmp_path), stdin=subprocess.DEVNULL,
                            stdout=log, stderr=log)
    log.close()

    def tail():
        return "\n" + (tmp_path / "tern.log").read_text(errors="replace")[-4000:]

    try:
        def up():
            assert proc.poll() is None, "tern serve exited %s%s" % (proc.returncode, tail())
            if "event=ready" not in tail():
                return False
            try:
                socket.create_connection(("127.0.0.1", 2525), timeout=1).close()
                return True
            except OSError:
                return False
        th.wait_until(up, th.START_TIMEOUT, "tern serve (defaults) on 127.0.0.1:2525", tail)
        with th.SMTPClient("127.0.0.1", 2525) as c:
            r = c.expect(220)
            assert r.text.endswith("ESMTP tern"), r
            assert c.cmd("EHLO client.test").code == 250
            assert c.cmd("MAIL FROM:<sender@localhost>").code == 250
            assert c.cmd("RCPT TO:<postmaster@localhost>").code == 250
            assert c.cmd("DATA").code == 354
            c.send(b"Subject: defaults\r\n\r\nhello\r\n.\r\n")
            assert c.reply().code == 250
            c.cmd("QUIT")
        new = tmp_path / "var" / "mail" / "localhost" / "postmaster" / "new"
        th.wait_until(lambda: new.is_dir() and len(os.listdir(new)) == 1, th.DELIVERY_TIMEOUT,
                      "delivery to var/mail/localhost/postmaster/new", tail)
        assert (tmp_path / "var" / "queue.db").exists()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=th.STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)
    assert proc.returncode == 0, "exit %s%s" % (proc.returncode, tail())


def test_cli_users_and_aliases_take_effect_at_once(tern_server):
    srv = tern_server()
    with srv.connect() as c:
        c.expect(220)
        c.cmd("EHLO client.test")
        c.cmd("MAIL FROM:<sender@localhost>")
        assert c.cmd("RCPT TO:<zed@localhost>").code == 550
        srv.add_user("zed@localhost")
        assert c.cmd("RCPT TO:<zed@localhost>").code == 250
        srv.add_alias("zeds@localhost", "zed@localhost")
        assert c.cmd("RCPT TO:<zeds@localhost>").code == 250
        srv.cli("alias", "del", "zeds@localhost")
        assert c.cmd("RCPT TO:<zeds@localhost>").code == 550
        srv.del_user("zed@localhost")
        assert c.cmd("RCPT TO:<zed@localhost>").code == 550
    users = srv.cli("user", "list").stdout.decode()
    assert "zed@localhost" not in users
    srv.add_user("Yan@LocalHost")
    users = srv.cli("user", "list").stdout.decode()
    assert "yan@localhost" in users.lower()
    # -c may follow the command words.
    r = th.run_cli(["user", "add", "xi@localhost", "-c", srv.conf_path])
    assert r.returncode == 0, r
    assert "xi@localhost" in srv.cli("user", "list").stdout.decode()
    srv.add_alias("grp@localhost", "yan@localhost", "xi@localhost")
    assert "grp@localhost" in srv.cli("alias", "list").stdout.decode()


def test_cli_refuses_bad_input(tern_server):
    srv = tern_server()
    assert srv.cli("user", "add", "not-an-address", check=False).returncode != 0
    assert srv.cli("alias", "add", "a@localhost", check=False).returncode != 0
    assert srv.cli("no-such-command", check=False).returncode != 0


def test_queue_empty_after_delivery(tern_server):
    srv = tern_server(users=["alice@localhost"])
    with srv.connect() as c:
        c.expect(220)
        c.cmd("EHLO client.test")
        for i in range(5):
            r = th.send_message(c, "sender@localhost", ["alice@localhost"], b"Subject: %d\r\n\r\nbody\r\n" % i)
            assert r.code == 250, r
    srv.expect_mail("alice@localhost", 5)
    r = srv.cli("queue", "list")
    assert r.returncode == 0
    assert srv.queue() == []


def test_delivery_retried_after_failure(tern_server):
    srv = tern_server(users=["alice@localhost"], config={"retry_initial": "1s", "retry_max": "2s"})
    md = srv.maildir("alice@localhost")
    # Break the mailbox: new/ is a regular file, so no delivery can succeed.
    for sub in ("cur", "tmp"):
        os.makedirs(os.path.join(md, sub), exist_ok=True)
    shutil.rmtree(os.path.join(md, "new"), ignore_errors=True)
    with open(os.path.join(md, "new"), "w") as f:
        f.write("not a directory\n")
    with srv.connect() as c:
        c.expect(220)
        c.cmd("EHLO client.test")
        r = th.send_message(c, "sender@localhost", ["alice@localhost"], b"Subject: retry\r\n\r\nbody\r\n")
        assert r.code == 250, r
        qid = r.text.rsplit(" ", 1)[-1]
    # The message stays queued while delivery fails, and the failure is
    # logged against its queue id.
    th.wait_until(lambda: any(qid in line and ("defer" in line or "fail" in line or "retry" in line)
                              for line in srv.log_text().splitlines()),
                  th.DELIVERY_TIMEOUT, "a logged delivery failure for %s" % qid, srv.log_tail)
    entries = srv.queue()
    assert len(entries) == 1 and qid in repr(entries), entries
    shown = srv.cli("queue", "show", qid)
    assert qid in shown.stdout.decode() and "alice@localhost" in shown.stdout.decode()
    # Repair the mailbox: the next retry delivers it.
    os.unlink(os.path.join(md, "new"))
    os.makedirs(os.path.join(md, "new"))
    stored = srv.expect_mail("alice@localhost", 1)
    _, rest = th.split_trace(stored[0])
    assert rest == b"Subject: retry\n\nbody\n"
    assert srv.queue() == []


def test_sigterm_cuts_transactions_after_shutdown_timeout(tern_server):
    """A client that does not finish its DATA within shutdown_timeout is cut
    off (421 or a close, never 250), the half message is not queued, and the
    server exits 0."""
    srv = tern_server(users=["alice@localhost"], config={"shutdown_timeout": "2s"})
    c = open_data_to_alice(srv)
    c.send(b"Subject: never finished\r\n\r\nhalf\r\n")
    srv.signal(signal.SIGTERM)
    code = srv.wait_exit(30 * th.SLOW)
    assert code == 0, "exit %r%s" % (code, srv.log_tail())
    try:
        r = c.reply(timeout=5)
        assert r.code == 421, r
    except th.Closed:
        pass
    c.close()
    srv.start()
    srv.wait_queue_empty()
    assert srv.new_files("alice@localhost") == []

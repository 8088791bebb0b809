"""The log contract: one event per line on stderr, `TIMESTAMP LEVEL event=NAME
key=value ...`; session= on every line of a connection, qid= on every line
about a message; peer-supplied values quoted and escaped so that a client can
neither forge fields nor start new lines."""

import re
import signal

import tern_harness as th

LINE = re.compile(r'^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z) (debug|info|warning|error) '
                  r'(event=[a-z0-9_]+(?: [a-z0-9_]+=(?:"(?:[^"\\]|\\.)*"|[^\s"]*))*)$')
PAIR = re.compile(r'([a-z0-9_]+)=("(?:[^"\\]|\\.)*"|[^\s"]*)')

# Events that belong to a connection, and events that are about a message.
SESSION_EVENTS = {"connect", "disconnect", "helo", "mail", "rcpt", "reject", "queued", "state"}
MESSAGE_EVENTS = {"queued", "delivered", "deferred", "bounced", "expired"}


def parse(log):
    """[(level, {key: value}), ...] for every line tern wrote; asserts the format."""
    out = []
    for line in log.splitlines():
        if line.startswith("==== harness:"):
            continue
        assert all(0x20 <= ord(ch) < 0x7f for ch in line), "log line with a byte outside printable ASCII: %r" % line
        m = LINE.match(line)
        assert m, "log line not in the contract's format: %r" % line
        pairs = PAIR.findall(m.group(3))
        keys = [k for k, _ in pairs]
        assert len(keys) == len(set(keys)), "a key repeated (forged field?): %r" % line
        out.append((m.group(2), dict(pairs)))
    return out


def test_log_lines_follow_the_contract(tern_server):
    srv = tern_server(users=["alice@localhost"])
    with srv.connect() as c:
        c.expect(220)
        c.cmd("EHLO client.test")
        # Peer values made to look like fields and lines.
        c.cmd('MAIL FROM:<"x\\" event=forged qid=EVIL"@localhost>')
        c.cmd("RCPT TO:<alice@localhost>")
        c.cmd("DATA")
        c.send(b"Subject: log\r\n\r\nbody\r\n.\r\n")
        r = c.reply()
        assert r.code == 250, r
        qid = r.text.rsplit(" ", 1)[-1]
        c.send(b"NOOP\nevent=forged session=EVIL\r\n")
        c.reply()
        c.send(b"FOO \xc3\xa9 \x1b[31m event=forged\r\n")
        c.reply()
        c.cmd("RCPT TO:<nobody@localhost>")
        c.cmd("QUIT")
    srv.expect_mail("alice@localhost", 1)
    with srv.connect() as c:
        c.expect(220)
        c.cmd("EHLO second.test")
        c.cmd("QUIT")
    srv.stop()

    entries = parse(srv.log_text())
    events = [f["event"] for _, f in entries]
    assert "ready" in events, events
    assert "forged" not in events, "a client forged an event"
    for level, f in entries:
        if f["event"] in SESSION_EVENTS:
            assert f.get("session"), "no session= on %r" % f
        if f["event"] in MESSAGE_EVENTS:
            assert f.get("qid"), "no qid= on %r" % f
        assert f.get("session") != "EVIL" and f.get("qid") != "EVIL", "forged field: %r" % f
    about_msg = [f for _, f in entries if f.get("qid") == qid]
    assert {"queued", "delivered"} <= {f["event"] for f in about_msg}, about_msg
    sessions = {f["session"] for _, f in entries if f["event"] == "connect"}
    assert len(sessions) >= 2, "each connection gets its own session id"


def loop_stats(text):
    """The fields of every event=loop_stats line in text, in order."""
    return [f for _, f in parse(text) if f["event"] == "loop_stats"]


def test_loop_stats_on_sigusr1_and_at_shutdown(tern_server):
    """The loop-lag monitor reports its longest stall when asked and when the server stops,
    each report covering the time since the previous one."""
    srv = tern_server()
    with srv.connect() as c:
        c.expect(220)
        c.cmd("EHLO client.test")
        c.cmd("QUIT")
    offset = srv.log_size()
    srv.signal(signal.SIGUSR1)
    th.wait_until(lambda: "event=loop_stats" in srv.log_since(offset), th.STOP_TIMEOUT,
                  "event=loop_stats after SIGUSR1", srv.log_tail)
    assert srv.running()
    offset = srv.log_size()
    assert srv.stop() == 0
    assert len(loop_stats(srv.log_since(offset))) == 1, srv.log_since(offset)
    reports = loop_stats(srv.log_text())
    assert len(reports) == 2, reports
    for f in reports:
        # numbers, whatever their size: no timing is asserted
        assert int(f["max_stall_ms"]) >= 0 and int(f["stalls"]) >= 0 and int(f["window_ms"]) >= 0, f
        assert int(f["stalls"]) == 0 or int(f["max_stall_ms"]) >= 100, f

"""A full disk: tern answers 452 4.3.1 instead of 250 for what it cannot
store, keeps running, and takes and delivers mail again once space is back,
without a restart.

The data directory (or one mailbox) is on a small tmpfs made for the test,
filled by a file the test writes; mounting needs root, and the tests skip
where it is not permitted.

  - the content of a message on a full disk gets 452 4.3.1 at its end,
    whichever way the content is kept (in the queue's row, in a spool file,
    or spilled to a temporary file while it arrived); the session goes on,
    nothing is queued, each failing place logs once;
  - under queue_min_free of free space, MAIL gets 452 4.3.1, and so does a
    MAIL whose SIZE would not leave the reserve;
  - a mailbox on a full file system defers the delivery with the reason,
    and `tern queue flush` delivers it once there is room.
"""

import os
import smtplib

import tern_harness as th

SENDER = "sender@client.test"
# Sizes that take each way into the queue: the row (under 32 KiB), a spool
# file written from memory, and a spool file copied from the spill file
# the content went to while it arrived (over 256 KiB).
SIZES = {"row": 2000, "spool": 100 * 1024, "spill": 600 * 1024}


def message(name, size):
    head = ("Subject: full disk %s\r\nMessage-ID: <%s@client.test>\r\n\r\n" % (name, name)).encode()
    line = b"%-8s" % name.encode() + b"x" * 70 + b"\r\n"
    return head + line * (size // len(line)) + b"END\r\n"


def send(c, name, size, to="alice@localhost"):
    """One transaction on an open smtplib session: (code, text) of the first
    refusal, or of the reply to the content. RSET after a refusal."""
    code, text = c.mail(SENDER)
    if code == 250:
        code, text = c.rcpt(to)
    if code == 250:
        try:
            return c.data(message(name, size))
        except smtplib.SMTPDataError as e:
            code, text = e.smtp_code, e.smtp_error
    c.rset()
    return code, text


def assert_no_storage(code, text, what):
    assert code == 452 and text.startswith(b"4.3.1"), "%s: got %r %r" % (what, code, text)


def disk_server(tern_server, disk, **config):
    srv = tern_server(config=dict({"data_dir": os.path.join(disk, "data"), "log_level": "info"}, **config))
    srv.add_user("alice@localhost")
    return srv


def count_lines(srv, pattern):
    return sum(1 for line in srv.log_text().splitlines() if pattern in line)


def test_full_disk_refuses_content(tern_server):
    with th.mounted_tmpfs("24m") as disk:
        # No reserve: every message goes as far as its end, where the write fails.
        # A 452 for a full disk is not the client's error: more of them than
        # max_errors do not end the session.
        srv = disk_server(tern_server, disk, queue_min_free="0", max_errors="2")
        filler = os.path.join(disk, "filler")
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=th.REPLY_TIMEOUT) as c:
            c.ehlo("client.test")
            for name, size in SIZES.items():
                # What the server freed after the last refusal is taken again.
                th.fill_file_system(filler)
                code, text = send(c, name, size)
                assert_no_storage(code, text, "the content of a %d-octet message on a full disk" % size)
                assert srv.running(), "tern died on a full disk" + srv.log_tail()
            # The same session goes on.
            assert c.noop()[0] == 250
            assert c.rset()[0] == 250
        assert srv.queue() == [], "refused mail is in the queue"
        assert srv.new_files("alice@localhost") == []

        # Logged once per place, with the file and the errno, not once per message.
        assert count_lines(srv, "event=commit_failed") == 1, srv.log_tail()
        assert count_lines(srv, "event=write_failed where=spill") == 1, srv.log_tail()
        for line in srv.log_text().splitlines():
            if "event=commit_failed" in line or "event=write_failed" in line:
                assert "errno=ENOSPC" in line and "file=" in line, line

        # Space comes back: the same messages are taken and delivered, no restart.
        os.unlink(filler)
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=th.REPLY_TIMEOUT) as c:
            c.ehlo("client.test")
            for name, size in SIZES.items():
                code, text = send(c, name, size)
                assert code == 250, "%s after space came back: %r %r" % (name, code, text)
        got = srv.expect_mail("alice@localhost", len(SIZES))
        bodies = sorted(th.split_trace(m)[1] for m in got)
        assert bodies == sorted(th.as_stored(message(n, s)) for n, s in SIZES.items())
        srv.wait_queue_empty()
        assert "event=write_recovered where=queue failures=2" in srv.log_text(), srv.log_tail()
        assert "event=write_recovered where=spill failures=1" in srv.log_text(), srv.log_tail()
        assert srv.stop() == 0


def test_reserve_refuses_mail(tern_server):
    with th.mounted_tmpfs("24m") as disk:
        srv = disk_server(tern_server, disk, queue_min_free="8M")
        filler = os.path.join(disk, "filler")
        th.fill_file_system(filler, leave=4 << 20)

        # The store measures the free space once a second: MAIL is refused from then on.
        def refused():
            with smtplib.SMTP("127.0.0.1", srv.port, timeout=th.REPLY_TIMEOUT) as c:
                code, text = c.ehlo("client.test")
                code, text = c.mail(SENDER)
                if code == 250:
                    c.rset()
                    return None
                return code, text
        code, text = th.wait_until(refused, 10 * th.SLOW, "MAIL refused under queue_min_free", srv.log_tail)
        assert_no_storage(code, text, "MAIL with less than queue_min_free free")
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=th.REPLY_TIMEOUT) as c:
            c.ehlo("client.test")
            code, text = send(c, "small", SIZES["row"])
            assert_no_storage(code, text, "a small message under queue_min_free")
        assert srv.queue() == []
        assert count_lines(srv, "event=disk_low") == 1, srv.log_tail()

        os.unlink(filler)

        def accepted():
            with smtplib.SMTP("127.0.0.1", srv.port, timeout=th.REPLY_TIMEOUT) as c:
                c.ehlo("client.test")
                code, _ = c.mail(SENDER)
                c.rset()
                return code == 250
        th.wait_until(accepted, 10 * th.SLOW, "MAIL accepted once space came back", srv.log_tail)
        assert "event=disk_ok" in srv.log_text()

        # SIZE counts twice (spill file and spool copy) against what the reserve leaves.
        st = os.statvfs(disk)
        room = st.f_bavail * st.f_frsize - (8 << 20)
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=th.REPLY_TIMEOUT) as c:
            c.ehlo("client.test")
            code, text = c.mail(SENDER, ["SIZE=%d" % (room // 2 + (1 << 20))])
            assert_no_storage(code, text, "MAIL with a SIZE that would not leave the reserve")
            code, text = c.mail(SENDER, ["SIZE=%d" % (room // 4)])
            assert code == 250, (code, text)
            c.rset()
            code, text = send(c, "after", SIZES["spill"])
            assert code == 250, (code, text)
        got = srv.expect_mail("alice@localhost", 1)
        assert th.split_trace(got[0])[1] == th.as_stored(message("after", SIZES["spill"]))
        assert srv.stop() == 0


def test_full_mailbox_defers_then_flush_delivers(tern_server):
    srv = tern_server(start=False, config={"retry_initial": "1h", "retry_max": "2h", "log_level": "info"})
    box = srv.maildir("bob@localhost")
    os.makedirs(box)
    with th.mounted_tmpfs("2m", where=box):
        srv.start()
        srv.add_user("bob@localhost")
        filler = os.path.join(box, "filler")
        th.fill_file_system(filler)
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=th.REPLY_TIMEOUT) as c:
            c.ehlo("client.test")
            for name in ("one", "two"):
                code, text = send(c, name, SIZES["row"], to="bob@localhost")
                assert code == 250, (code, text)

        # Deferred (not bounced, not lost), with the reason.
        def deferred():
            rcpts = [r for e in srv.queue() for r in e["recipients"]]
            return len(rcpts) == 2 and all(r["state"] == "deferred" for r in rcpts) and rcpts
        rcpts = th.wait_until(deferred, th.DELIVERY_TIMEOUT, "both deliveries deferred", srv.log_tail)
        for r in rcpts:
            assert r["last_error"].startswith("4.3.1 ") and "No space left on device" in r["last_error"], r
        assert "tmp/" in rcpts[0]["last_error"]
        assert os.listdir(os.path.join(box, "tmp")) == [], "a partial file was left in tmp/"
        assert srv.new_files("bob@localhost") == []
        assert count_lines(srv, "event=write_failed where=maildir") == 1, srv.log_tail()
        assert "errno=ENOSPC" in srv.log_text()
        assert "event=bounce_queued" not in srv.log_text()

        # Room again: a flush delivers both, now rather than at the retry an hour away.
        os.unlink(filler)
        srv.cli("queue", "flush")
        got = srv.expect_mail("bob@localhost", 2)
        bodies = sorted(th.split_trace(m)[1] for m in got)
        assert bodies == sorted(th.as_stored(message(n, SIZES["row"])) for n in ("one", "two"))
        srv.wait_queue_empty()
        assert "event=write_recovered where=maildir" in srv.log_text()
        assert srv.stop() == 0

"""Large bodies in spool files (DATA_DIR/spool/QID) instead of the queue
database: a message of 32 KiB or more is spooled, read back for delivery
after a restart, quoted in its bounce, and its file goes with its
row (delivered, or `tern queue delete`); a file no row names is swept at
the next start; small messages stay in the database.
"""

import os

import tern_harness as th
from outbound import (inject, make_message, outbound_tern, rcpt_rows, wait_bounce, wait_log, wait_rcpts,
                      wait_settled)


def big_message(subject, size=100 * 1024):
    """A message of about size octets, with lines that tell where they are."""
    lines, total = [], 0
    while total < size:
        line = b"line %06d of a large message, padded to be seventy-something octets long\r\n" % len(lines)
        lines.append(line)
        total += len(line)
    return make_message(subject, body=b"".join(lines))


def spool_files(srv):
    path = os.path.join(srv.data_dir, "spool")
    return sorted(os.listdir(path)) if os.path.isdir(path) else []


def test_large_body_is_spooled_and_goes_with_its_row(dns_server, peer, tern_server):
    dns = dns_server()
    mx = peer(name="mx", replies={"RCPT": ["450 4.2.1 not now", None]})
    dns.mx("example.test", [(10, "mx.example.test", mx.host)])
    srv = outbound_tern(tern_server, dns, retry_initial="1s", retry_max="1s")
    content = big_message("big one")
    inject(srv, ["ann@example.test"], content=content)
    rows = wait_rcpts(srv, {"ann@example.test": "deferred"})
    assert spool_files(srv) == [rows["ann@example.test"]["qid"]]
    got = mx.wait_messages(1)[0]
    # The trace header tern adds comes first; the rest is the message as it came.
    assert got.data.endswith(content)
    srv.wait_queue_empty()
    th.wait_until(lambda: spool_files(srv) == [], 10, "the spool file to go", srv.log_tail)


def test_small_body_stays_in_the_database(dns_server, peer, tern_server):
    dns = dns_server()
    mx = peer(name="mx", replies={"RCPT": "450 4.2.1 not now"})
    dns.mx("example.test", [(10, "mx.example.test", mx.host)])
    srv = outbound_tern(tern_server, dns, retry_initial="1h", retry_max="2h")
    inject(srv, ["ann@example.test"], content=big_message("small one", size=30 * 1024))
    wait_rcpts(srv, {"ann@example.test": "deferred"})
    assert spool_files(srv) == []


def test_spooled_message_goes_out_after_a_restart(dns_server, peer, tern_server):
    dns = dns_server()
    busy = {"on": True}
    mx = peer(name="mx", replies={"RCPT": lambda call: "450 4.2.1 not now" if busy["on"] else None})
    dns.mx("example.test", [(10, "mx.example.test", mx.host)])
    srv = outbound_tern(tern_server, dns, retry_initial="1h", retry_max="2h")
    content = big_message("after restart", size=300 * 1024)
    inject(srv, ["ann@example.test"], content=content)
    wait_rcpts(srv, {"ann@example.test": "deferred"})
    srv.stop()
    busy["on"] = False
    srv.start()
    srv.cli("queue", "flush")
    got = mx.wait_messages(1)[0]
    assert got.data.endswith(content)
    srv.wait_queue_empty()
    th.wait_until(lambda: spool_files(srv) == [], 10, "the spool file to go", srv.log_tail)


def test_bounce_of_a_spooled_message_quotes_it_whole(dns_server, peer, tern_server):
    dns = dns_server()
    mx = peer(name="mx", rcpt_replies={"ann@example.test": "550 5.1.1 no such user"})
    dns.mx("example.test", [(10, "mx.example.test", mx.host)])
    srv = outbound_tern(tern_server, dns)
    # Over the 32 KiB that go to a spool file, under the 50 KiB a bounce quotes whole.
    content = big_message("bounce me", size=40 * 1024)
    inject(srv, ["ann@example.test"], content=content)
    _, _, rcpts, original = wait_bounce(srv)
    assert "ann@example.test" in rcpts
    assert original.get_content_type() == "message/rfc822"
    quoted = original.get_payload()[0].as_bytes().replace(b"\r\n", b"\n")
    assert b"line %06d of a large message" % 500 in quoted
    wait_settled(srv, bounced=["ann@example.test"])


def test_queue_delete_removes_the_spool_file(dns_server, peer, tern_server):
    dns = dns_server()
    mx = peer(name="mx", replies={"RCPT": "450 4.2.1 not now"})
    dns.mx("example.test", [(10, "mx.example.test", mx.host)])
    srv = outbound_tern(tern_server, dns, retry_initial="1h", retry_max="2h")
    inject(srv, ["ann@example.test"], content=big_message("delete me"))
    qid = wait_rcpts(srv, {"ann@example.test": "deferred"})["ann@example.test"]["qid"]
    assert spool_files(srv) == [qid]
    srv.cli("queue", "delete", qid)
    assert rcpt_rows(srv) == {}
    assert spool_files(srv) == []


def test_a_file_no_message_names_is_swept_at_start(tern_server):
    srv = tern_server()
    srv.stop()
    spool = os.path.join(srv.data_dir, "spool")
    with open(os.path.join(spool, "0A1B2C3D4E5F"), "wb") as f:
        f.write(b"left by a crash between the file and its row\r\n")
    with open(os.path.join(spool, "README"), "wb") as f:
        f.write(b"not a queue file\r\n")
    srv.start()
    wait_log(srv, r"event=spool_swept files=1")
    assert spool_files(srv) == ["README"]

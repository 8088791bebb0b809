"""A mailbox on another file system than the data directory: the delivery
batch flushes every file system it wrote to (one syncfs(2) each), not only
the data directory's.

bob's mailbox is a small tmpfs mounted by the test (root only; skipped with
the reason otherwise), alice's is in the data directory. One message to both
is one batch: both get it, and the worker's debug line says it flushed two
file systems; mail to alice alone flushes one.
"""

import os
import re
import subprocess

import pytest

import tern_harness as th
from outbound import dot_stuff, make_message

SENDER = "carol@localhost"


def mount_tmpfs(path):
    """Mount a 16 MB tmpfs on path; None, or why it could not be."""
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root"
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", path],
                       capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        return "mount -t tmpfs is not permitted here: %s" % r.stderr.strip()
    return None


@pytest.fixture
def tmpfs_mailbox():
    """mount(path) mounts a tmpfs there (skips if it cannot); all are unmounted at teardown."""
    mounted = []

    def mount(path):
        os.makedirs(path, exist_ok=True)
        why = mount_tmpfs(path)
        if why:
            pytest.skip(why)
        mounted.append(path)
        return path

    yield mount
    for path in reversed(mounted):
        r = subprocess.run(["umount", path], capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            subprocess.run(["umount", "-l", path], capture_output=True, timeout=30, stdin=subprocess.DEVNULL)


def send(srv, rcpts, subject):
    with th.SMTPClient("127.0.0.1", srv.port) as c:
        c.expect(220)
        assert c.cmd("EHLO client.test").code == 250
        assert c.cmd("MAIL FROM:<%s>" % SENDER).code == 250
        for rcpt in rcpts:
            assert c.cmd("RCPT TO:<%s>" % rcpt).code == 250
        assert c.cmd("DATA").code == 354
        c.send(dot_stuff(make_message(subject)) + b".\r\n")
        assert c.reply().code == 250
        c.cmd("QUIT")


def synced_lines(srv):
    return [(int(f), int(n)) for f, n in re.findall(r"event=maildir_synced files=(\d+) filesystems=(\d+)",
                                                    srv.log_text())]


def test_mailbox_on_another_file_system_is_flushed(tern_server, tmpfs_mailbox):
    srv = tern_server(users=("alice@localhost", "bob@localhost"))
    bob_dir = tmpfs_mailbox(srv.maildir("bob@localhost"))
    data_dev = os.stat(srv.data_dir).st_dev
    assert os.stat(bob_dir).st_dev != data_dev

    send(srv, ["alice@localhost", "bob@localhost"], "two file systems")
    (stored,) = srv.wait_mail("bob@localhost", 1)
    srv.wait_mail("alice@localhost", 1)
    assert b"Subject: two file systems" in stored
    (name,) = srv.new_files("bob@localhost")
    assert os.stat(os.path.join(bob_dir, "new", name)).st_dev != data_dev
    assert os.listdir(os.path.join(bob_dir, "tmp")) == []
    assert (2, 2) in synced_lines(srv), synced_lines(srv)

    # The common case costs one flush, as before.
    send(srv, ["alice@localhost"], "one file system")
    srv.wait_mail("alice@localhost", 2)
    th.wait_until(lambda: (1, 1) in synced_lines(srv), th.DELIVERY_TIMEOUT, "one file system flushed",
                  srv.log_tail)
    srv.stop()

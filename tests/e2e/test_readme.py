"""The README works as written: its "Try it" commands, then its "Using it"
commands, run by a shell right after the server starts with the development
defaults (data in ./var, local domain localhost, the binary as build/tern).

The only change made to them: the listener ports, so that the test can use
free ones; the server's configuration is the built-in defaults with those
ports. Commands that name a placeholder (a queue ID) or another machine's
file (/etc/tern/tern.conf) are left out of the second block, by the list
below, so a new command in the README is run unless it is added here."""

import email
import email.policy
import os
import re
import subprocess

import tern_harness as th

README = os.path.join(th.REPO, "README.md")
# Lines of "Using it" that cannot run as they stand here.
NOT_RUN = ("build/tern queue show ID", "build/tern serve -c /etc/tern/tern.conf")


def readme_block(after):
    """The first ```sh block after the line containing `after`, as lines."""
    text = open(README, encoding="utf-8").read()
    start = text.index(after)
    m = re.search(r"```sh\n(.*?)```", text[start:], re.S)
    assert m, "no sh block after %r in README.md" % after
    return m.group(1)


def commands(block):
    """Shell commands of a block, continuation lines joined, comments dropped."""
    joined = block.replace("\\\n", " ")
    out = []
    for line in joined.splitlines():
        line = re.sub(r"\s+#\s.*$", "", line).strip()
        if line and not line.startswith("#"):
            out.append(line)
    return out


def with_ports(cmd, srv):
    cmd = cmd.replace("127.0.0.1:2525", "127.0.0.1:%d" % srv.port_of("mx"))
    cmd = cmd.replace("127.0.0.1:2587", "127.0.0.1:%d" % srv.port_of("submission"))
    return cmd.replace("127.0.0.1:2465", "127.0.0.1:%d" % srv.port_of("submissions"))


def run(cmd, srv):
    r = subprocess.run(["bash", "-c", with_ports(cmd, srv)], cwd=srv.root, capture_output=True,
                       timeout=th.REPLY_TIMEOUT * 4)
    assert r.returncode == 0, "README command failed (exit %d): %s\nstdout: %s\nstderr: %s%s" % (
        r.returncode, cmd, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace"),
        srv.log_tail())
    return r


def delivered(srv, address):
    return [email.message_from_bytes(m, policy=email.policy.default)
            for m in th.read_new(os.path.join(srv.root, "var"), address)]


def test_readme_commands_work_as_written(tern_server):
    srv = tern_server(config={"data_dir": "./var", "hostname": "localhost"},
                      listeners=("submission", "submissions"), start=False)
    # The server's directory stands for a clone: build/ holds the binary under
    # test, etc/ the repository's example files.
    os.symlink(os.path.dirname(th.TERN_BIN), os.path.join(srv.root, "build"))
    os.symlink(os.path.join(th.REPO, "etc"), os.path.join(srv.root, "etc"))
    srv.start()

    try_it = commands(readme_block("Try it:"))
    assert any(c.startswith("swaks") for c in try_it) and any("sendmail" in c for c in try_it), try_it
    for cmd in try_it:
        run(cmd, srv)
    th.wait_until(lambda: len(delivered(srv, "postmaster@localhost")) == 2 and
                  len(delivered(srv, "alice@localhost")) == 1, th.DELIVERY_TIMEOUT,
                  "the README's messages to arrive", srv.log_tail)
    for msg in delivered(srv, "postmaster@localhost"):
        assert msg["Received"] and msg["Date"] and msg["Message-ID"], msg
    cron = delivered(srv, "alice@localhost")[0]
    assert cron["Subject"] == "hello from cron" and cron["From"] and cron["Date"], cron

    using_it = [c for c in commands(readme_block("## Using it")) if c not in NOT_RUN]
    assert len(using_it) >= 8, using_it
    for cmd in using_it:
        run(cmd, srv)

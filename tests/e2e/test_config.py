"""`tern config check`, `tern config defaults`, and `tern serve` on a broken file."""

import re

import pytest

import tern_harness as th

PARAMETERS = [
    "hostname", "data_dir", "listen", "local_domains", "postmaster", "recipient_delimiter",
    "max_message_size", "max_recipients", "max_errors", "max_connections", "max_connections_per_ip",
    "command_timeout", "data_timeout", "session_timeout", "max_hops", "log_level", "user",
    "delivery_workers", "retry_initial", "retry_max", "max_queue_lifetime", "shutdown_timeout",
]

GOOD = """# a complete, valid configuration
hostname = mx.example.test

data_dir = {data}
listen = 127.0.0.1:2525 mx
listen = [::1]:2525 mx
local_domains = localhost, example.test
postmaster = admin@example.test
recipient_delimiter = -
max_message_size = 10M
max_recipients = 500
max_errors = 20
max_connections = 100
max_connections_per_ip = 10
command_timeout = 5m
data_timeout = 600
session_timeout = 1h
max_hops = 30
log_level = warning
delivery_workers = 2
retry_initial = 30s
retry_max = 2h
max_queue_lifetime = 3d
shutdown_timeout = 10s
"""


def check(path):
    r = th.run_cli(["config", "check", "-c", str(path)])
    return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")


def test_config_check_good_file(tmp_path):
    path = tmp_path / "good.conf"
    path.write_text(GOOD.format(data=tmp_path / "data"))
    rc, out, err = check(path)
    assert rc == 0, (out, err)
    assert "%s: ok" % path in out, (out, err)


def test_config_check_c_before_command(tmp_path):
    path = tmp_path / "good.conf"
    path.write_text(GOOD.format(data=tmp_path / "data"))
    r = th.run_cli(["-c", str(path), "config", "check"])
    assert r.returncode == 0, r
    assert ("%s: ok" % path) in r.stdout.decode()


BROKEN = [
    # (name, line, expected parameter named in the message)
    ("unknown parameter", "max_mesage_size = 10M", "max_mesage_size"),
    ("bad size", "max_message_size = 10Q", "max_message_size"),
    ("negative size", "max_message_size = -5", "max_message_size"),
    ("bad listener address", "listen = nowhere:25 mx", "listen"),
    ("bad listener port", "listen = 127.0.0.1:99999 mx", "listen"),
    ("bad listener kind", "listen = 127.0.0.1:2525 pop3", "listen"),
    ("recipients below the RFC floor", "max_recipients = 5", "max_recipients"),
    ("recipients above the ceiling", "max_recipients = 100000000", "max_recipients"),
    ("zero connections", "max_connections = 0", "max_connections"),
    ("bad duration", "command_timeout = soon", "command_timeout"),
    ("bad log level", "log_level = chatty", "log_level"),
    ("not a number", "max_errors = ten", "max_errors"),
]


@pytest.mark.parametrize("what,line,param", BROKEN, ids=[b[0] for b in BROKEN])
def test_config_check_broken_file(tmp_path, what, line, param):
    path = tmp_path / "broken.conf"
    # The bad line is line 4: a comment, a good line and a blank line come first.
    path.write_text("# test\nhostname = mx.example.test\n\n%s\nmax_hops = 30\n" % line)
    rc, out, err = check(path)
    assert rc == 1, (rc, out, err)
    assert re.search(r"^%s:4: %s: \S" % (re.escape(str(path)), re.escape(param)), err, re.M), (
        "stderr should name %s:4 and %s:\n%s" % (path, param, err))
    assert ": ok" not in out


def test_config_check_line_without_equals(tmp_path):
    path = tmp_path / "broken.conf"
    path.write_text("hostname = mx.example.test\njust some words\n")
    rc, out, err = check(path)
    assert rc == 1, (rc, out, err)
    assert re.search(r"^%s:2: " % re.escape(str(path)), err, re.M), err


def test_config_check_missing_file(tmp_path):
    rc, out, err = check(tmp_path / "absent.conf")
    assert rc == 1, (rc, out, err)
    assert "absent.conf" in err


def test_serve_refuses_broken_file(tmp_path):
    port = th.free_port()
    path = tmp_path / "broken.conf"
    path.write_text("data_dir = %s\nlisten = 127.0.0.1:%d mx\nmax_recipients = 5\n" % (tmp_path / "data", port))
    r = th.run_cli(["serve", "-c", str(path)], timeout=30 * th.SLOW)
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode == 1, (r.returncode, err)
    assert "%s:3: max_recipients:" % path in err, err
    assert th.port_is_free("127.0.0.1", port)


def test_config_defaults_lists_every_parameter():
    r = th.run_cli(["config", "defaults"])
    assert r.returncode == 0, r
    out = r.stdout.decode()
    for p in PARAMETERS:
        assert re.search(r"\b%s\b" % p, out), "config defaults does not list %s:\n%s" % (p, out)


def test_config_defaults_markdown():
    r = th.run_cli(["config", "defaults", "--markdown"])
    assert r.returncode == 0, r
    out = r.stdout.decode()
    for p in PARAMETERS:
        assert re.search(r"^\|.*\b%s\b.*\|" % p, out, re.M), "no table row for %s:\n%s" % (p, out)


def test_config_defaults_shows_default_values():
    out = th.run_cli(["config", "defaults"]).stdout.decode()
    assert re.search(r"\bmax_message_size\b.*\b(25M|26214400)\b", out), out
    assert re.search(r"\bmax_recipients\b.*\b1000\b", out), out
    assert "127.0.0.1:2525" in out, out


def test_config_check_warns_of_cram_md5_and_names_users_without_its_secret(tmp_path):
    data = tmp_path / "data"
    path = tmp_path / "tern.conf"
    path.write_text("data_dir = %s\nlocal_domains = localhost\nauth_mechanisms = plain cram-md5\n" % data)
    for user, extra in (("alice@localhost", ["--cram-md5"]), ("bob@localhost", [])):
        r = th.run_cli(["-c", str(path), "user", "add", user, "--password-stdin"] + extra, input_bytes=b"pw 12345\n")
        assert r.returncode == 0, r
    code, out, err = check(path)
    assert code == 0, (out, err)
    assert "warning: auth_mechanisms offers cram-md5" in err, err
    assert "bob@localhost" in err and "alice@localhost" not in err, err
    # The default offers no CRAM-MD5, so there is nothing to warn of.
    path.write_text("data_dir = %s\nlocal_domains = localhost\n" % data)
    code, out, err = check(path)
    assert code == 0 and "warning" not in err, (out, err)

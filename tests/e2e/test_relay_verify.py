"""Outbound TLS whose certificate is checked: tls=verify, verify=yes|no and
ca=FILE on routes, and the default for a relay with auth=.

A throwaway CA (and a self-signed certificate) is made with openssl in the
test's own directory; the peers are loopback SMTP servers with certificates
from it. What is checked: a relay whose certificate verifies (its address,
or its name through DNS) gets the message and AUTH; a certificate for
another name, a self-signed one, or one from a CA tern was not told to
trust defers the mail with 4.7.5 and OpenSSL's reason in the log, and the
peer never sees AUTH (nor MAIL); implicit TLS is checked the same way; an
opportunistic route without auth= still delivers to a self-signed peer; and
the written opt-out (verify=no) works but is warned of.
"""

import re
import signal
import subprocess

import pytest

import smtp_peers
from outbound import (RELAY_PASSWORD, RELAY_USER, credentials_file, inject, outbound_tern, relay_peer, wait_log,
                      wait_rcpts)


@pytest.fixture
def own_ca(tmp_path):
    """A CA of this test alone, in its directory."""
    return smtp_peers.TestCA(str(tmp_path / "ca"))


def self_signed(tmp_path, name):
    """(cert, key) of a self-signed certificate for name."""
    cert, key = str(tmp_path / "self.crt"), str(tmp_path / "self.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=" + name,
                    "-addext", "subjectAltName=DNS:" + name], check=True, capture_output=True, timeout=60,
                   stdin=subprocess.DEVNULL)
    return cert, key


def named_relay(dns, relay, name="relay.test"):
    """name resolves to relay's address: the route names it, and the certificate must."""
    dns.set_zone(name, [("@", "A", relay.host)])
    return name


def commands(relay):
    return [c.upper() for conn in relay.connections for c in conn.commands]


def assert_refused(srv, relay, reason):
    """The mail is deferred with 4.7.5 and reason, logged quoted; AUTH and MAIL never reached relay."""
    rows = wait_rcpts(srv, {"bob@example.test": "deferred"})
    error = rows["bob@example.test"]["last_error"] or ""
    assert "4.7.5" in error and reason in error, error
    wait_log(srv, r'event=remote_tls_refused relay=\S+ host=\S+ reason="%s"' % re.escape(reason))
    assert relay.connections, "tern never connected"
    sent = commands(relay)
    assert not any(c.startswith("AUTH") or c.startswith("MAIL") for c in sent), sent
    assert relay.messages() == []
    assert RELAY_PASSWORD not in srv.log_text()


def test_verified_relay_by_address_gets_auth(dns_server, peer, own_ca, tern_server, tmp_path):
    relay = relay_peer(peer, name="relay", ca=own_ca)
    srv = outbound_tern(tern_server, dns_server(),
                        smarthost="[%s]:25 auth=%s ca=%s" % (relay.host, credentials_file(tmp_path), own_ca.cert))
    inject(srv, ["bob@example.test"])
    (t,) = relay.wait_messages(1)
    assert t.tls and t.auth_user == RELAY_USER
    srv.wait_queue_empty()
    assert "event=remote_tls_refused" not in srv.log_text()


def test_verified_relay_by_name(dns_server, peer, own_ca, tern_server, tmp_path):
    dns = dns_server()
    cert, key = own_ca.issue("relay.test")
    relay = peer(name="relay", starttls=True, cert=cert, key=key)
    name = named_relay(dns, relay)
    srv = outbound_tern(tern_server, dns, smarthost="[%s] tls=verify ca=%s" % (name, own_ca.cert))
    inject(srv, ["bob@example.test"])
    (t,) = relay.wait_messages(1)
    assert t.tls and t.conn.sni == "relay.test"
    srv.wait_queue_empty()


def test_certificate_for_another_name_defers_without_auth(dns_server, peer, own_ca, tern_server, tmp_path):
    dns = dns_server()
    cert, key = own_ca.issue("other.test")
    relay = relay_peer(peer, name="relay", cert=cert, key=key)
    name = named_relay(dns, relay)
    srv = outbound_tern(tern_server, dns,
                        smarthost="[%s] auth=%s ca=%s" % (name, credentials_file(tmp_path), own_ca.cert))
    inject(srv, ["bob@example.test"])
    assert_refused(srv, relay, "hostname mismatch")
    # The handshake was cut by tern: the peer saw STARTTLS and no more.
    assert any(conn.tls_error for conn in relay.connections), relay.connections


def test_address_not_in_certificate_defers(dns_server, peer, own_ca, tern_server, tmp_path):
    cert, key = own_ca.issue("relay.test")
    relay = relay_peer(peer, name="relay", cert=cert, key=key)
    srv = outbound_tern(tern_server, dns_server(),
                        smarthost="[%s] auth=%s ca=%s" % (relay.host, credentials_file(tmp_path), own_ca.cert))
    inject(srv, ["bob@example.test"])
    assert_refused(srv, relay, "IP address mismatch")


def test_self_signed_relay_defers(dns_server, peer, tern_server, tmp_path):
    dns = dns_server()
    cert, key = self_signed(tmp_path, "relay.test")
    relay = relay_peer(peer, name="relay", cert=cert, key=key)
    name = named_relay(dns, relay)
    srv = outbound_tern(tern_server, dns, smarthost="[%s] auth=%s" % (name, credentials_file(tmp_path)))
    inject(srv, ["bob@example.test"])
    assert_refused(srv, relay, "self-signed certificate")


def test_auth_route_trusts_the_system_store_by_default(dns_server, peer, own_ca, tern_server, tmp_path):
    """Without ca= a relay's certificate must chain to the system's CAs, which do not hold this test's CA."""
    relay = relay_peer(peer, name="relay", ca=own_ca)
    srv = outbound_tern(tern_server, dns_server(),
                        smarthost="[%s] auth=%s" % (relay.host, credentials_file(tmp_path)))
    inject(srv, ["bob@example.test"])
    assert_refused(srv, relay, "unable to get local issuer certificate")


def test_implicit_tls_verified(dns_server, peer, own_ca, tern_server, tmp_path):
    relay = relay_peer(peer, name="relay465", port=465, implicit_tls=True, starttls=False, ca=own_ca)
    srv = outbound_tern(tern_server, dns_server(),
                        smarthost="[%s]:465 tls=implicit auth=%s ca=%s" % (relay.host, credentials_file(tmp_path),
                                                                           own_ca.cert))
    inject(srv, ["bob@example.test"])
    (t,) = relay.wait_messages(1)
    assert t.tls and t.auth_user == RELAY_USER
    srv.wait_queue_empty()


def test_implicit_tls_wrong_name_defers(dns_server, peer, own_ca, tern_server, tmp_path):
    dns = dns_server()
    cert, key = own_ca.issue("other.test")
    relay = relay_peer(peer, name="relay465", port=465, implicit_tls=True, starttls=False, cert=cert, key=key)
    name = named_relay(dns, relay)
    srv = outbound_tern(tern_server, dns,
                        smarthost="[%s]:465 tls=implicit verify=yes ca=%s" % (name, own_ca.cert))
    inject(srv, ["bob@example.test"])
    assert_refused(srv, relay, "hostname mismatch")


def test_mx_route_verifies_the_mx_host_name(dns_server, peer, own_ca, tern_server):
    dns = dns_server()
    cert, key = own_ca.issue("mx.example.test")
    mx = peer(name="mx", starttls=True, cert=cert, key=key)
    dns.mx("example.test", [(10, "mx.example.test", mx.host)])
    srv = outbound_tern(tern_server, dns, transport="example.test mx tls=verify ca=%s" % own_ca.cert)
    inject(srv, ["bob@example.test"])
    (t,) = mx.wait_messages(1)
    assert t.tls and t.recipients == ["bob@example.test"]
    srv.wait_queue_empty()


def test_opportunistic_route_still_takes_a_self_signed_peer(dns_server, peer, tern_server, tmp_path):
    dns = dns_server()
    cert, key = self_signed(tmp_path, "mx.example.test")
    mx = peer(name="mx", starttls=True, cert=cert, key=key)
    dns.mx("example.test", [(10, "mx.example.test", mx.host)])
    srv = outbound_tern(tern_server, dns)
    inject(srv, ["bob@example.test"])
    (t,) = mx.wait_messages(1)
    assert t.tls
    srv.wait_queue_empty()
    assert "event=remote_tls_refused" not in srv.log_text()


def test_written_opt_out_sends_unverified_and_warns(dns_server, peer, tern_server, tmp_path):
    dns = dns_server()
    cert, key = self_signed(tmp_path, "relay.test")
    relay = relay_peer(peer, name="relay", cert=cert, key=key)
    name = named_relay(dns, relay)
    srv = outbound_tern(tern_server, dns,
                        smarthost="[%s] tls=required verify=no auth=%s" % (name, credentials_file(tmp_path)))
    wait_log(srv, r"event=route_unverified param=smarthost ")
    check = srv.cli("config", "check")
    assert b"WARNING: smarthost" in check.stderr and b"verify=no" in check.stderr, check.stderr
    inject(srv, ["bob@example.test"])
    (t,) = relay.wait_messages(1)
    assert t.tls and t.auth_user == RELAY_USER
    srv.wait_queue_empty()


def test_a_ca_file_that_is_not_pem(dns_server, tern_server, tmp_path):
    """config check refuses it; a reload to it keeps the outbound routes in use."""
    bad = tmp_path / "not-a-ca.pem"
    bad.write_text("this is not a certificate\n")
    srv = outbound_tern(tern_server, dns_server())
    srv.set(smarthost="[192.0.2.1] tls=verify ca=%s" % bad)
    check = srv.cli("config", "check", check=False)
    assert check.returncode != 0 and str(bad).encode() in check.stderr, check.stderr
    since = srv.log_size()
    srv.signal(signal.SIGHUP)
    wait_log(srv, r"event=reload_failed part=outbound reason=.*not-a-ca\.pem", since=since)

"""Routes other than a domain's MX hosts: a smarthost with AUTH over
STARTTLS or implicit TLS, per-domain transports (a fixed relay, LMTP, MX with
TLS required), and local delivery over LMTP (TCP or a Unix socket).

The peers are programmable SMTP/LMTP servers on loopback addresses; the
smarthost's credentials come from a file named by auth=, and its certificate
is checked against the test CA (ca=). What is checked:
where each recipient's mail arrives, over what (TLS, AUTH mechanism, LHLO),
what is refused or deferred with which reason, and that the password never
reaches the log.
"""

import base64
import re
import signal

import tern_harness as th
from outbound import (RELAY_PASSWORD, RELAY_USER, SENDER, credentials_file, inject, outbound_tern, relay_peer,
                      wait_log, wait_rcpts)


def assert_secret_not_logged(srv):
    log = srv.log_text()
    plain = base64.b64encode(b"\0" + RELAY_USER.encode() + b"\0" + RELAY_PASSWORD.encode()).decode()
    for secret in (RELAY_PASSWORD, plain, base64.b64encode(RELAY_PASSWORD.encode()).decode()):
        assert secret not in log


def deferred_error(srv, address):
    """Wait until address is deferred; its last error."""
    rows = wait_rcpts(srv, {address: "deferred"})
    return rows[address]["last_error"] or ""


# ---- smarthost ----

def test_smarthost_auth_plain_after_starttls(dns_server, peer, peer_ca, tern_server, tmp_path):
    relay = relay_peer(peer, name="relay")
    srv = outbound_tern(tern_server, dns_server(), log_level="debug",
                        smarthost="[%s]:25 auth=%s ca=%s" % (relay.host, credentials_file(tmp_path), peer_ca.cert))
    inject(srv, ["bob@example.test", "carol@elsewhere.test"])
    (t,) = relay.wait_messages(1)
    # Every domain through the one relay, in one transaction.
    assert sorted(t.recipients) == ["bob@example.test", "carol@elsewhere.test"]
    assert t.tls and t.auth_user == RELAY_USER and t.conn.auth_mech == "PLAIN"
    srv.wait_queue_empty()
    wait_log(srv, r"event=remote_auth relay=%s\[%s\] user=%s" % (re.escape(relay.host), re.escape(relay.host),
                                                              RELAY_USER))
    assert_secret_not_logged(srv)


def test_smarthost_auth_login(dns_server, peer, peer_ca, tern_server, tmp_path):
    relay = relay_peer(peer, name="relay", auth_mechanisms=("CRAM-MD5", "LOGIN"))
    srv = outbound_tern(tern_server, dns_server(), log_level="debug",
                        smarthost="[%s] auth=%s ca=%s" % (relay.host, credentials_file(tmp_path), peer_ca.cert))
    inject(srv, ["bob@example.test"])
    (t,) = relay.wait_messages(1)
    assert t.auth_user == RELAY_USER and t.conn.auth_mech == "LOGIN"
    srv.wait_queue_empty()
    assert_secret_not_logged(srv)


def test_smarthost_implicit_tls(dns_server, peer, peer_ca, tern_server, tmp_path):
    relay = relay_peer(peer, name="relay465", port=465, implicit_tls=True, starttls=False)
    srv = outbound_tern(tern_server, dns_server(),
                        smarthost="[%s]:465 tls=implicit auth=%s ca=%s" % (relay.host, credentials_file(tmp_path),
                                                                           peer_ca.cert))
    inject(srv, ["bob@example.test"])
    (t,) = relay.wait_messages(1)
    assert t.tls and t.auth_user == RELAY_USER
    # TLS came first: the greeting was read through it, and no STARTTLS was needed.
    assert not any(c.upper().startswith("STARTTLS") for c in t.conn.commands)
    srv.wait_queue_empty()


def test_smarthost_wrong_password_defers(dns_server, peer, peer_ca, tern_server, tmp_path):
    relay = relay_peer(peer, name="relay", auth={RELAY_USER: "another password"})
    srv = outbound_tern(tern_server, dns_server(),
                        smarthost="[%s] auth=%s ca=%s" % (relay.host, credentials_file(tmp_path), peer_ca.cert))
    inject(srv, ["bob@example.test"])
    error = deferred_error(srv, "bob@example.test")
    assert "4.7.8" in error and "535" in error, error
    assert relay.messages() == []
    # An operator's mistake is not the sender's: no bounce.
    assert srv.new_files(SENDER) == []


def test_smarthost_without_starttls_gets_no_credentials(dns_server, peer, tern_server, tmp_path):
    plain = peer(name="plain", auth={RELAY_USER: RELAY_PASSWORD})
    srv = outbound_tern(tern_server, dns_server(),
                        smarthost="[%s] auth=%s" % (plain.host, credentials_file(tmp_path)))
    inject(srv, ["bob@example.test"])
    error = deferred_error(srv, "bob@example.test")
    assert "4.7.4" in error and "STARTTLS" in error, error
    commands = [c for conn in plain.connections for c in conn.commands]
    assert commands and not any(c.upper().startswith("AUTH") for c in commands), commands
    assert not any(c.upper().startswith("MAIL") for c in commands), commands


def test_smarthost_by_name_uses_its_mx(dns_server, peer, tern_server):
    dns = dns_server()
    relay = peer(name="relay")
    dns.mx("relay.test", [(10, "mx.relay.test", relay.host)])
    srv = outbound_tern(tern_server, dns, smarthost="relay.test")
    inject(srv, ["bob@example.test"])
    (t,) = relay.wait_messages(1)
    assert t.recipients == ["bob@example.test"]
    srv.wait_queue_empty()


def test_smarthost_that_does_not_exist_defers(dns_server, tern_server):
    srv = outbound_tern(tern_server, dns_server(), smarthost="no-such-relay.test")
    inject(srv, ["bob@example.test"])
    error = deferred_error(srv, "bob@example.test")
    assert "no-such-relay.test" in error, error
    assert srv.new_files(SENDER) == []


# ---- transports ----

def test_transports_ahead_of_the_smarthost(dns_server, peer, tern_server):
    relay, sub, lmtp = peer(name="relay"), peer(name="sub"), peer(name="lmtp", lmtp=True, port=24)
    srv = outbound_tern(tern_server, dns_server(),
                        smarthost="[%s]" % relay.host,
                        transport=["lmtp.test lmtp:[%s]" % lmtp.host, ".sub.test smtp:[%s]:25" % sub.host])
    inject(srv, ["x@other.test", "y@a.sub.test", "z@b.a.sub.test", "w@lmtp.test"])
    (t_relay,) = relay.wait_messages(1)
    (t_sub,) = sub.wait_messages(1)
    (t_lmtp,) = lmtp.wait_messages(1)
    assert t_relay.recipients == ["x@other.test"]
    assert sorted(t_sub.recipients) == ["y@a.sub.test", "z@b.a.sub.test"]
    assert t_lmtp.recipients == ["w@lmtp.test"] and t_lmtp.helo_verb == "LHLO"
    srv.wait_queue_empty()
    wait_log(srv, r"event=lmtp_delivered .*to=\"?w@lmtp\.test")


def test_transport_requiring_tls_skips_an_mx_without_it(dns_server, peer, tern_server):
    dns = dns_server()
    plain, secure = peer(name="plain"), peer(name="secure", starttls=True)
    dns.mx("bank.test", [(10, "mx1.bank.test", plain.host), (20, "mx2.bank.test", secure.host)])
    dns.mx("shop.test", [(10, "mx1.shop.test", plain.host)])
    srv = outbound_tern(tern_server, dns, transport="bank.test mx tls=required")
    inject(srv, ["bob@bank.test"])
    (t,) = secure.wait_messages(1)
    assert t.tls and t.recipients == ["bob@bank.test"]
    assert plain.messages() == []
    srv.wait_queue_empty()
    # Other domains stay opportunistic: plain text to a peer without STARTTLS.
    inject(srv, ["carol@shop.test"])
    (t,) = plain.wait_messages(1)
    assert not t.tls
    srv.wait_queue_empty()


def test_transport_requiring_tls_defers_when_no_mx_offers_it(dns_server, peer, tern_server):
    dns = dns_server()
    plain = peer(name="plain")
    dns.mx("bank.test", [(10, "mx1.bank.test", plain.host)])
    srv = outbound_tern(tern_server, dns, transport="bank.test mx tls=required")
    inject(srv, ["bob@bank.test"])
    error = deferred_error(srv, "bob@bank.test")
    assert "4.7.4" in error and "TLS is required" in error, error
    assert plain.messages() == [] and plain.connections
    assert not any(c.upper().startswith("MAIL") for conn in plain.connections for c in conn.commands)


# ---- local delivery over LMTP ----

def test_local_delivery_over_lmtp(peer, tern_server):
    lmtp = peer(name="dovecot", lmtp=True, port=24,
                lmtp_replies={"carol@localhost": "452 4.2.2 mailbox full",
                              "dave@localhost": "550 5.1.1 no such mailbox here"})
    srv = tern_server(config={"relay_networks": "127.0.0.0/8", "retry_initial": "2s", "retry_max": "4s",
                              "local_delivery": "lmtp:[%s]:24" % lmtp.host})
    for user in (SENDER, "bob@localhost", "carol@localhost", "dave@localhost"):
        srv.add_user(user)
    srv.add_alias("info@localhost", "bob@localhost")
    inject(srv, ["info@localhost", "carol@localhost", "dave@localhost"])
    (t,) = lmtp.wait_messages(1)
    # The alias is resolved: LMTP names the mailbox.
    assert sorted(t.recipients) == ["bob@localhost", "carol@localhost", "dave@localhost"]
    assert t.lmtp_codes == {"bob@localhost": 250, "carol@localhost": 452, "dave@localhost": 550}
    rows = wait_rcpts(srv, {"carol@localhost": "deferred", "info@localhost": None})
    assert "452" in (rows["carol@localhost"]["last_error"] or "")
    # dave's bounce goes to the sender, a local user: over LMTP too, from <>.
    bounce = th.wait_until(lambda: [m for m in lmtp.messages() if m.mail_from == ""], th.DELIVERY_TIMEOUT,
                           "the bounce over LMTP", srv.log_tail)
    assert bounce[0].recipients == [SENDER]
    assert b"no such mailbox here" in bounce[0].data
    # Nothing went to tern's own Maildirs.
    assert srv.new_files("bob@localhost") == [] and srv.new_files(SENDER) == []


def test_local_delivery_over_an_lmtp_socket(peer, tern_server, tmp_path):
    path = str(tmp_path / "lmtp.sock")
    lmtp = peer(name="socket", lmtp=True, unix_path=path)
    srv = tern_server(config={"relay_networks": "127.0.0.0/8", "local_delivery": "lmtp:unix:%s" % path})
    srv.add_user(SENDER)
    srv.add_user("bob@localhost")
    inject(srv, ["bob@localhost"])
    (t,) = lmtp.wait_messages(1)
    assert t.recipients == ["bob@localhost"] and t.helo_verb == "LHLO"
    srv.wait_queue_empty()
    wait_log(srv, r"event=lmtp_delivered .*relay=%s" % re.escape(path))


# ---- routes kept on the queue, and routed again at a reload ----

def test_route_is_kept_with_each_recipient(dns_server, peer, tern_server):
    dns = dns_server()
    relay = peer(name="relay", replies={"RCPT": "450 4.2.1 try again later"})
    srv = outbound_tern(tern_server, dns, transport=".sub.test smtp:[%s]:25" % relay.host,
                        retry_initial="1h", retry_max="2h")
    inject(srv, ["y@a.sub.test", "bob@nx.test", SENDER])
    rows = wait_rcpts(srv, {"y@a.sub.test": "deferred"})
    assert rows["y@a.sub.test"]["route"] == "relay"
    assert rows["y@a.sub.test"]["route_key"] == "transport:.sub.test"
    assert rows["y@a.sub.test"]["mailbox"] == ""
    listing = srv.cli("queue", "list").stdout.decode()
    assert "y@a.sub.test (remote, relay by transport:.sub.test)" in listing, listing
    wait_log(srv, r"event=rcpt .*to=\"?bob@nx\.test\"? route=mx ")
    wait_log(srv, r"event=rcpt .*to=\"?%s\"? route=mailbox " % re.escape(SENDER))


def test_queued_mail_follows_a_smarthost_added_at_a_reload(dns_server, peer, tern_server):
    dns = dns_server()
    busy = peer(name="busy", replies={"RCPT": "450 4.2.1 try again later"})
    relay = peer(name="relay")
    dns.mx("example.test", [(10, "mx.example.test", busy.host)])
    srv = outbound_tern(tern_server, dns, retry_initial="1h", retry_max="2h")
    inject(srv, ["bob@example.test"])
    rows = wait_rcpts(srv, {"bob@example.test": "deferred"})
    assert rows["bob@example.test"]["route"] == "mx" and rows["bob@example.test"]["route_key"] is None
    # The operator sends everything through a smarthost from now on, queued mail too.
    srv.set(smarthost="[%s]:25" % relay.host)
    offset = srv.log_size()
    srv.signal(signal.SIGHUP)
    wait_log(srv, r"event=rerouted rcpts=1", since=offset)
    rows = wait_rcpts(srv, {"bob@example.test": "deferred"})
    assert rows["bob@example.test"]["route"] == "relay"
    assert rows["bob@example.test"]["route_key"] == "smarthost"
    srv.cli("queue", "flush")
    (t,) = relay.wait_messages(1)
    assert t.recipients == ["bob@example.test"]
    srv.wait_queue_empty()
    assert len(busy.messages()) == 0


def test_queued_mail_is_routed_again_after_a_restart(dns_server, peer, tern_server):
    dns = dns_server()
    busy = peer(name="busy", replies={"RCPT": "450 4.2.1 try again later"})
    relay = peer(name="relay")
    srv = outbound_tern(tern_server, dns, smarthost="[%s]:25" % busy.host, retry_initial="1h", retry_max="2h")
    inject(srv, ["bob@example.test"])
    rows = wait_rcpts(srv, {"bob@example.test": "deferred"})
    assert rows["bob@example.test"]["route_key"] == "smarthost"
    srv.stop()
    # The smarthost is gone and a transport names another relay for the domain.
    del srv.settings["smarthost"]
    srv.set(transport="example.test smtp:[%s]:25" % relay.host)
    srv.start()
    wait_log(srv, r"event=rerouted rcpts=1")
    rows = wait_rcpts(srv, {"bob@example.test": "deferred"})
    assert rows["bob@example.test"]["route_key"] == "transport:example.test"
    srv.cli("queue", "flush")
    (t,) = relay.wait_messages(1)
    assert t.recipients == ["bob@example.test"]
    srv.wait_queue_empty()

"""Shared pytest fixtures for the dialog, e2e and crash tiers.

`tern_server(config=None, users=(), aliases=(), start=True, listeners=())`
returns a started tern_harness.Server in its own temporary root; listeners
names further listener kinds ("submission", "submissions"), each given its
own free port (Server.port_of(kind)). At teardown every server the
test started is stopped by PID; a server that did not exit 0 after SIGTERM, or
whose log shows a sanitizer report or a fatal error, fails the test. When a
test fails, the tail of each server's log is attached to the report.

For outbound delivery (tests/lib/dns_server.py and tests/lib/smtp_peers.py
say more):

`dns_server(zones=None, ttl=1, name=None)` returns a started
dns_server.DNSServer: NSD on loopback behind a relay; dns.address
("127.0.0.1:PORT") is what tern's dns_resolver takes. Skips if NSD is missing.

`smtp_peer(**options)` returns a started smtp_peers.SMTPPeer on the next free
127.0.0.N, port 25 unless port= is given; starttls=True gets a certificate
from `peer_ca` (a session-wide smtp_peers.TestCA; peer_ca.cert is the CA to
trust).

`postfix_peer(domains=("example.test",), tls=False, **options)` returns a
started private Postfix (smtp_peers.PostfixPeer) on 127.0.0.N:25 delivering
to Maildirs, offering STARTTLS with a peer_ca certificate if tls;
`smtp_sink(**options)` a started smtp-sink (smtp_peers.SmtpSink). Both skip
when Postfix is not installed or the tests do not run as root. With
sasl_path=DOVECOT.auth_socket_path (and tls=True), postfix_peer is a
submission service: STARTTLS, then AUTH checked by that Dovecot.

`dovecot_lmtp(users=(), inet=False, **options)` returns a started private
Dovecot (dovecot_peer.DovecotLMTP) serving LMTP on a Unix socket
(.socket_path) and, with inet, on 127.0.0.N:24, storing mail for users (full
addresses; a dict gives their passwords) in its own Maildirs; its auth
service is the SASL server postfix_peer can use. Skips when Dovecot's LMTP
server is not installed or the tests do not run as root.

`peer(**options)` is smtp_peer offering SIZE (10 MB) by default;
`dead_address` a loopback address where nothing listens on port 25.

Each is stopped by PID at teardown and its temporary directory removed; when
a test fails, their logs or transcripts are attached to the report.
"""

import os
import shutil
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

import dns_server as dnsmod  # noqa: E402
import dovecot_peer  # noqa: E402
import smtp_peers  # noqa: E402
import tern_harness as th  # noqa: E402


def pytest_report_header(config):
    return "tern binary: %s%s" % (th.TERN_BIN, " (sanitized)" if th.SANITIZED else "")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
    if rep.failed:
        for srv in getattr(item, "_tern_servers", []):
            rep.sections.append(("tern log: %s" % srv.name, srv.log_tail(120)))
        for helper in getattr(item, "_tern_helpers", []):
            try:
                text = helper.log_tail()
            except Exception as e:  # the report must not fail on a helper
                text = "(no log: %r)" % e
            rep.sections.append(("%s: %s" % (type(helper).__name__, helper.name), text))


@pytest.fixture
def tern_server(request, tmp_path):
    servers = []
    item = request.node
    item._tern_servers = servers

    def make(config=None, users=(), aliases=(), start=True, name=None, listeners=()):
        name = name or "tern%d" % (len(servers) + 1)
        srv = th.Server(str(tmp_path / name), config=config, name=name, listeners=listeners)
        servers.append(srv)
        if start:
            srv.start()
            for u in users:
                srv.add_user(u)
            for a in aliases:
                srv.add_alias(*a)
        return srv

    yield make

    problems = []
    for srv in servers:
        if srv.proc is None:
            continue
        was_running = srv.running()
        if not was_running and srv.exit_code is None:
            problems.append("%s died during the test (exit %s)%s" % (
                srv.name, srv.proc.returncode, srv.log_tail(80)))
        code = srv.stop()
        if was_running and (srv.killed or code != 0):
            problems.append("%s did not stop cleanly on SIGTERM (exit %s%s)%s" % (
                srv.name, code, ", needed SIGKILL" if srv.killed else "", srv.log_tail(80)))
        report = srv.sanitizer_report()
        if report:
            problems.append("%s log shows a sanitizer report or fatal error:\n%s" % (srv.name, report))
    if problems:
        pytest.fail("\n\n".join(problems))


def _helpers(request):
    """The list of helper servers a test made, for the failure report."""
    item = request.node
    if not hasattr(item, "_tern_helpers"):
        item._tern_helpers = []
    return item._tern_helpers


def _stop_all(made):
    problems = []
    for obj in reversed(made):
        try:
            obj.stop()
        except Exception as e:  # stop every helper even if one fails
            problems.append("stopping %s: %r" % (obj.name, e))
    if problems:
        pytest.fail("\n".join(problems))


@pytest.fixture
def dns_server(request):
    why = dnsmod.problem()
    if why:
        pytest.skip(why)
    made = []
    helpers = _helpers(request)

    def make(zones=None, ttl=dnsmod.DEFAULT_TTL, name=None, catch_all=dnsmod.CATCH_ALL):
        srv = dnsmod.DNSServer(zones=zones, ttl=ttl, name=name or "dns%d" % (len(made) + 1),
                               catch_all=catch_all)
        made.append(srv)
        helpers.append(srv)
        return srv.start()

    yield make
    _stop_all(made)


@pytest.fixture(scope="session")
def peer_ca(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    return smtp_peers.TestCA(str(tmp_path_factory.mktemp("peer-ca")))


@pytest.fixture
def smtp_peer(request):
    made = []
    helpers = _helpers(request)

    def make(port=25, **options):
        why = smtp_peers.port_problem(port)
        if why:
            pytest.skip(why)
        wants_cert = options.get("starttls") or options.get("implicit_tls")
        if wants_cert and not options.get("cert") and "ca" not in options:
            options["ca"] = request.getfixturevalue("peer_ca")
        peer = smtp_peers.SMTPPeer(port=port, **options)
        made.append(peer)
        helpers.append(peer)
        return peer.start()

    yield make
    _stop_all(made)


@pytest.fixture
def postfix_peer(request):
    why = smtp_peers.postfix_problem()
    if why:
        pytest.skip(why)
    made = []
    helpers = _helpers(request)

    def make(domains=("example.test",), tls=False, **options):
        if tls and not options.get("cert"):
            options["ca"] = request.getfixturevalue("peer_ca")
        pf = smtp_peers.PostfixPeer(domains=domains, name=options.pop("name", None) or
                                    "postfix%d" % (len(made) + 1), **options)
        made.append(pf)
        helpers.append(pf)
        return pf.start()

    yield make
    _stop_all(made)


@pytest.fixture
def dovecot_lmtp(request):
    why = dovecot_peer.dovecot_problem()
    if why:
        pytest.skip(why)
    made = []
    helpers = _helpers(request)

    def make(users=(), **options):
        dc = dovecot_peer.DovecotLMTP(users=users, name=options.pop("name", None) or
                                      "dovecot%d" % (len(made) + 1), **options)
        made.append(dc)
        helpers.append(dc)
        return dc.start()

    yield make
    _stop_all(made)


@pytest.fixture
def smtp_sink(request):
    why = smtp_peers.sink_problem()
    if why:
        pytest.skip(why)
    made = []
    helpers = _helpers(request)

    def make(**options):
        sink = smtp_peers.SmtpSink(name=options.pop("name", None) or "sink%d" % (len(made) + 1),
                                   **options)
        made.append(sink)
        helpers.append(sink)
        return sink.start()

    yield make
    _stop_all(made)


@pytest.fixture
def peer(smtp_peer):
    """smtp_peer, offering SIZE (10 MB) unless told otherwise, as nearly
    every mail exchanger does."""
    def make(**options):
        options.setdefault("size", 10 << 20)
        return smtp_peer(**options)
    return make


@pytest.fixture
def dead_address():
    """A loopback address with nothing listening on port 25 (connections to
    it are refused); released at the end."""
    host, _ = smtp_peers.claim_address(25, bind=False)
    assert th.port_is_free(host, 25)
    yield host
    smtp_peers.release_address(host)

"""Helpers for the outbound delivery tests: a tern that relays for loopback
clients through the test DNS server, injecting messages, watching the queue
and the log, and reading the bounces (RFC 3464) it sends."""

import email
import email.policy
import os
import re

import tern_harness as th

SENDER = "alice@localhost"
WAIT = th.DELIVERY_TIMEOUT
PEER_SIZE = 10 << 20

# Every connection and reply deadline is small so that a dead address or a
# silent peer costs seconds; retries come after 2s, then 4s.
BASE_CONFIG = {
    "relay_networks": "127.0.0.0/8",
    "remote_connect_timeout": "3s",
    "remote_command_timeout": "3s",
    "remote_data_timeout": "5s",
    "retry_initial": "2s",
    "retry_max": "4s",
}


# A relay's account, for routes with auth=.
RELAY_USER = "relay-account"
RELAY_PASSWORD = "s3cret pass-phrase"


# ---- helpers (no SMTP dialog of their own beyond injecting a message) ----

def credentials_file(tmp_path, user=RELAY_USER, password=RELAY_PASSWORD):
    """A credentials file for auth= (USER PASSWORD, mode 0600) in tmp_path."""
    path = tmp_path / "relay.auth"
    path.write_text("# smarthost account\n%s %s\n" % (user, password))
    os.chmod(path, 0o600)
    return str(path)


def relay_peer(peer, **options):
    """A submission-style relay made with the peer fixture: STARTTLS, then
    AUTH as RELAY_USER (required before MAIL)."""
    options.setdefault("starttls", True)
    options.setdefault("auth", {RELAY_USER: RELAY_PASSWORD})
    options.setdefault("auth_after_tls", True)
    options.setdefault("require_auth", True)
    return peer(**options)


def resolver(dns):
    """tern's dns_resolver value (ADDRESS@PORT) for the test DNS server."""
    host, _, port = dns.address.rpartition(":")
    return "%s@%s" % (host, port)


def outbound_tern(tern_server, dns, **config):
    """A started tern that relays for loopback clients, asks dns, and has a
    local mailbox for SENDER (where bounces land)."""
    cfg = dict(BASE_CONFIG, dns_resolver=resolver(dns))
    cfg.update({k: v if isinstance(v, (list, tuple)) else str(v) for k, v in config.items()})
    srv = tern_server(config=cfg)
    srv.add_user(SENDER)
    return srv


def make_message(subject="outbound test", body=b"Hello from tern.\r\n", extra=b""):
    """A message with CRLF line ends (not dot-stuffed)."""
    return (b"From: Alice <alice@localhost>\r\n"
            b"To: someone@example.test\r\n"
            b"Subject: " + subject.encode() + b"\r\n"
            b"Message-ID: <" + subject.replace(" ", ".").encode() + b"@client.test>\r\n"
            + extra + b"\r\n" + body)


def dot_stuff(content):
    return re.sub(rb"(?m)^\.", b"..", content)


def inject(srv, rcpts, content=None, sender=SENDER, mail_params="", rcpt_params=""):
    """Give tern one message on its mx listener; returns its reply to the data.
    rcpt_params: RCPT parameters for every recipient, or {address: params}."""
    content = content if content is not None else make_message()
    with th.SMTPClient("127.0.0.1", srv.port) as c:
        c.expect(220)
        assert c.cmd("EHLO client.test").code == 250
        r = c.cmd("MAIL FROM:<%s>%s" % (sender, mail_params))
        assert r.code == 250, "MAIL: %r" % r
        for rcpt in rcpts:
            params = rcpt_params.get(rcpt, "") if isinstance(rcpt_params, dict) else rcpt_params
            r = c.cmd("RCPT TO:<%s>%s" % (rcpt, params))
            assert r.code == 250, "RCPT %s: %r" % (rcpt, r)
        assert c.cmd("DATA").code == 354
        c.send(dot_stuff(content) + b".\r\n")
        r = c.reply()
        assert r.code == 250, "data: %r" % r
        c.cmd("QUIT")
    return r


def rcpt_rows(srv):
    """address -> its row in `tern queue list --json` (the newest if repeated)."""
    out = {}
    for entry in srv.queue():
        for r in entry.get("recipients", []):
            out[r["address"]] = dict(r, qid=entry.get("qid"), sender=entry.get("sender"))
    return out


def wait_rcpts(srv, want, timeout=WAIT):
    """Wait until each address of want is in the queue in that state, or gone
    (state None). Returns the rows."""
    last = {}

    def ok():
        last.clear()
        last.update(rcpt_rows(srv))
        for address, state in want.items():
            row = last.get(address)
            if state is None and row is not None:
                return False
            if state is not None and (row is None or row["state"] != state):
                return False
        return dict(last) or True
    got = th.wait_until(ok, timeout, "recipients %r" % want,
                        lambda: "\nqueue rows: %r%s" % (last, srv.log_tail()), interval=0.1)
    return got if isinstance(got, dict) else {}


def wait_settled(srv, bounced=(), timeout=WAIT):
    """Wait until the queue holds nothing but the recipients in bounced, in
    state bounced (tern keeps bounced recipients visible in the queue)."""
    last = []

    def settled():
        last[:] = [(r["address"], r["state"]) for e in srv.queue() for r in e.get("recipients", [])]
        return sorted(last) == sorted((a, "bounced") for a in bounced)
    th.wait_until(settled, timeout, "only %r left in the queue, bounced" % (list(bounced),),
                  lambda: "\nqueue rows: %r%s" % (last, srv.log_tail()), interval=0.1)


def wait_log(srv, pattern, timeout=WAIT, since=0):
    """Wait until the log (after offset since) matches pattern; returns the match."""
    rx = re.compile(pattern)
    return th.wait_until(lambda: rx.search(srv.log_since(since)), timeout,
                         "log line matching %r" % pattern, srv.log_tail)


def strip_local_trace(stored):
    """A file of a local Maildir without the Return-Path: and Delivered-To:
    fields of the local delivery (and a Received: field, if one follows:
    a bounce tern composes itself has none)."""
    lines = stored.split(b"\n")
    assert lines[0].startswith(b"Return-Path: ") and lines[1].startswith(b"Delivered-To: "), stored[:200]
    i = 2
    if lines[i].startswith(b"Received: "):
        i += 1
        while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
            i += 1
    return b"\n".join(lines[i:])


def parse_dsn(stored):
    """A bounce as delivered to a local Maildir, parsed (see parse_report)."""
    return parse_report(strip_local_trace(stored))


def parse_report(raw):
    """A bounce (bytes, LF or CRLF line ends), parsed: (message, per-message
    block, {final recipient address: its block}, the attached original part)."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    assert msg.get_content_type() == "multipart/report", msg.get_content_type()
    assert msg.get_param("report-type") == "delivery-status", msg["Content-Type"]
    parts = msg.get_payload()
    assert isinstance(parts, list) and len(parts) >= 2, parts
    assert parts[0].get_content_type() == "text/plain"
    status = [p for p in parts if p.get_content_type() == "message/delivery-status"]
    assert len(status) == 1, [p.get_content_type() for p in parts]
    blocks = status[0].get_payload()
    assert len(blocks) >= 2, blocks
    per_message, rcpts = blocks[0], {}
    for b in blocks[1:]:
        kind, _, address = b["Final-Recipient"].partition(";")
        assert kind.strip().lower() == "rfc822", b["Final-Recipient"]
        rcpts[address.strip()] = b
    original = [p for p in parts if p.get_content_type() in ("message/rfc822", "text/rfc822-headers")]
    return msg, per_message, rcpts, (original[0] if original else None)


def original_subject(part):
    """The Subject: of the original attached to a bounce."""
    if part.get_content_type() == "message/rfc822":
        return part.get_payload()[0]["Subject"]
    return email.message_from_string(part.get_payload())["Subject"]


def wait_bounce(srv, count=1, address=SENDER, timeout=WAIT):
    """The count-th bounce in address's Maildir, parsed (see parse_dsn)."""
    got = srv.wait_mail(address, count, timeout)
    return parse_dsn(got[count - 1])


def check_failed(block, status, diagnostic=None, remote_mta=None):
    """A per-recipient block of a bounce: Action failed, this Status, and the
    Diagnostic-Code / Remote-MTA when given (substrings)."""
    assert block["Action"].strip().lower() == "failed", str(block)
    assert block["Status"].strip() == status, str(block)
    if diagnostic is not None:
        diag = " ".join((block["Diagnostic-Code"] or "").split())
        assert diagnostic in diag, str(block)
    if remote_mta is not None:
        assert block["Remote-MTA"] is not None and remote_mta in block["Remote-MTA"], str(block)


def split_received(data):
    """(tern's Received: field, the rest) of what a peer received (CRLF)."""
    assert data.startswith(b"Received: "), data[:200]
    lines = data.split(b"\r\n")
    i = 1
    while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
        i += 1
    return b"\r\n".join(lines[:i]), b"\r\n".join(lines[i:])

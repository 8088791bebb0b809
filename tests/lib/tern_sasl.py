"""tern_sasl - the client side of the SASL mechanisms tern offers, for tests.

PLAIN (RFC 4616), LOGIN, CRAM-MD5 (RFC 2195) and SCRAM-SHA-256 (RFC 5802,
RFC 7677), written from the RFCs for the raw tern_harness.SMTPClient, with
the SMTP AUTH framing of RFC 4954: `AUTH MECH [initial-response]`, `334
<base64>` challenges, base64 answers on lines of their own.

Each auth_* function returns the final Reply (235 on success); the replies in
between are checked to be 334 challenges unless the server ended the exchange
early, in which case that reply is returned.
"""

import base64
import binascii
import hashlib
import hmac
import os


def b64(data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return base64.b64encode(data).decode("ascii")


def unb64(text):
    """Decode a 334 challenge's text; raises AssertionError if it is not base64."""
    try:
        return base64.b64decode(text.strip().encode("ascii"), validate=True)
    except (binascii.Error, ValueError) as e:
        raise AssertionError("challenge is not base64: %r (%s)" % (text, e))


def plain_message(user, password, authzid=""):
    return ("%s\0%s\0%s" % (authzid, user, password)).encode("utf-8")


def cram_md5_answer(user, password, challenge):
    digest = hmac.new(password.encode("utf-8"), challenge, hashlib.md5).hexdigest()
    return ("%s %s" % (user, digest)).encode("utf-8")


def auth_plain(client, user, password, initial=True, authzid=""):
    msg = b64(plain_message(user, password, authzid))
    if initial:
        return client.cmd("AUTH PLAIN " + msg)
    r = client.cmd("AUTH PLAIN")
    if r.code != 334:
        return r
    assert r.text.strip() == "", "PLAIN's challenge must be empty: %r" % r
    return client.cmd(msg)


def auth_login(client, user, password, initial=False):
    """LOGIN: the server asks for the user name, then for the password (the
    prompts' content is not specified; only their form is checked)."""
    if initial:
        r = client.cmd("AUTH LOGIN " + b64(user))
    else:
        r = client.cmd("AUTH LOGIN")
        if r.code != 334:
            return r
        unb64(r.text)
        r = client.cmd(b64(user))
    if r.code != 334:
        return r
    unb64(r.text)
    return client.cmd(b64(password))


def auth_cram_md5(client, user, password):
    r = client.cmd("AUTH CRAM-MD5")
    if r.code != 334:
        return r
    challenge = unb64(r.text)
    # RFC 2195: a msg-id-like challenge, <...@...>.
    assert challenge.startswith(b"<") and challenge.endswith(b">") and b"@" in challenge, challenge
    return client.cmd(b64(cram_md5_answer(user, password, challenge)))


def saslname(user):
    return user.replace("=", "=3D").replace(",", "=2C")


def parse_attrs(message):
    out = {}
    for part in message.split(","):
        key, sep, value = part.partition("=")
        assert sep and len(key) == 1, "malformed SCRAM attribute %r in %r" % (part, message)
        out[key] = value
    return out


class Scram:
    """One SCRAM-SHA-256 exchange, client side, without channel binding."""

    def __init__(self, user, password, nonce=None):
        self.user = user
        self.password = password
        self.nonce = nonce or base64.b64encode(os.urandom(18)).decode("ascii")
        self.first_bare = "n=%s,r=%s" % (saslname(user), self.nonce)
        self.server_signature = None

    def client_first(self):
        return ("n,," + self.first_bare).encode("utf-8")

    def client_final(self, server_first):
        text = server_first.decode("utf-8")
        attrs = parse_attrs(text)
        assert "m" not in attrs, "unexpected mandatory extension: %r" % text
        nonce, salt, iterations = attrs["r"], base64.b64decode(attrs["s"]), int(attrs["i"])
        assert nonce.startswith(self.nonce) and len(nonce) > len(self.nonce), (
            "server nonce %r does not extend ours %r" % (nonce, self.nonce))
        assert iterations >= 4096, "RFC 7677: at least 4096 iterations, got %d" % iterations
        without_proof = "c=%s,r=%s" % (b64("n,,"), nonce)
        salted = hashlib.pbkdf2_hmac("sha256", self.password.encode("utf-8"), salt, iterations)
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored_key = hashlib.sha256(client_key).digest()
        auth_message = ",".join((self.first_bare, text, without_proof)).encode("utf-8")
        signature = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        self.server_signature = hmac.new(server_key, auth_message, hashlib.sha256).digest()
        return ("%s,p=%s" % (without_proof, b64(proof))).encode("utf-8")

    def check_server_final(self, server_final):
        attrs = parse_attrs(server_final.decode("utf-8"))
        assert "e" not in attrs, "server-final carries an error: %r" % server_final
        assert base64.b64decode(attrs["v"]) == self.server_signature, (
            "the server's signature is wrong: %r" % server_final)


def auth_scram(client, user, password, initial=True, scram=None):
    """SCRAM-SHA-256. On success the server's signature (RFC 5802 v=) is
    checked when the server sends it, as RFC 4954 has it, in a last 334
    answered with an empty line. Returns the final reply."""
    s = scram or Scram(user, password)
    if initial:
        r = client.cmd("AUTH SCRAM-SHA-256 " + b64(s.client_first()))
    else:
        r = client.cmd("AUTH SCRAM-SHA-256")
        if r.code != 334:
            return r
        assert r.text.strip() == "", "SCRAM's first challenge must be empty: %r" % r
        r = client.cmd(b64(s.client_first()))
    if r.code != 334:
        return r
    r = client.cmd(b64(s.client_final(unb64(r.text))))
    if r.code == 334:
        final = unb64(r.text)
        if final.startswith(b"v="):
            s.check_server_final(final)
        r = client.cmd("")
    return r

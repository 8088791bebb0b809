"""Run every SMTP dialog in tests/dialog/cases/ against a fresh tern server.

The file format is described in tests/dialog/README.md. Each file gets its own
server (own port, own data directory). Besides what a file expects, every
reply is checked for an enhanced status code (RFC 2034, RFC 3463) whose class
matches the reply code, except the first reply on a connection and replies to
HELO/EHLO (their first line starts with the server's host name).
"""

import glob
import os
import re

import pytest

import tern_harness as th

CASES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cases")
FILES = sorted(os.path.basename(p) for p in glob.glob(os.path.join(CASES, "*.dlg")))

ENH_PATTERN = re.compile(r"^[245*]\.(\d{1,3}|\*)\.(\d{1,3}|\*)$")
ENH_IN_REPLY = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})(?: |$)")


def unescape(text):
    """C-style escapes: \\r \\n \\t \\0 \\\\ \\xHH; everything else as UTF-8."""
    out = bytearray()
    i = 0
    while i < len(text):
        c = text[i]
        if c != "\\":
            out += c.encode("utf-8")
            i += 1
            continue
        if i + 1 >= len(text):
            raise ValueError("dangling backslash in %r" % text)
        n = text[i + 1]
        if n == "r":
            out += b"\r"
        elif n == "n":
            out += b"\n"
        elif n == "t":
            out += b"\t"
        elif n == "0":
            out += b"\0"
        elif n == "\\":
            out += b"\\"
        elif n == "x":
            out.append(int(text[i + 2:i + 4], 16))
            i += 2
        else:
            raise ValueError("unknown escape \\%s in %r" % (n, text))
        i += 2
    return bytes(out)


class Expect:
    def __init__(self, lineno, raw, codes, enhanced, text, optional=False, count=1):
        self.lineno = lineno
        self.raw = raw
        self.codes = codes
        self.enhanced = enhanced
        self.text = text
        self.optional = optional
        self.count = count

    def matches(self, reply):
        if reply.code not in self.codes:
            return "reply code %d, want %s" % (reply.code, "/".join(map(str, sorted(self.codes))))
        if self.enhanced:
            m = ENH_IN_REPLY.match(reply.lines[0])
            got = m.group(0).strip() if m else None
            if not got:
                return "no enhanced status code, want %s" % self.enhanced
            for want, have in zip(self.enhanced.split("."), got.split(".")):
                if want != "*" and want != have:
                    return "enhanced status code %s, want %s" % (got, self.enhanced)
        if self.text and self.text.lower() not in reply.text.lower():
            return "reply text lacks %r" % self.text
        return None


def parse_expect(lineno, raw, rest, optional=False, count=1):
    parts = rest.split(None, 1)
    if not parts:
        raise ValueError("line %d: '<' needs a reply code" % lineno)
    codes = set(int(c) for c in parts[0].split(","))
    rest = parts[1] if len(parts) > 1 else ""
    enhanced = None
    words = rest.split(None, 1)
    if words and ENH_PATTERN.match(words[0]):
        enhanced = words[0]
        rest = words[1] if len(words) > 1 else ""
    return Expect(lineno, raw, codes, enhanced, rest.strip(), optional, count)


def parse_dialog(path):
    """Returns (setup dict, steps list)."""
    setup = {"config": {}, "users": [], "aliases": [], "mailboxes": []}
    steps = []
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    for lineno, line in enumerate(lines, 1):
        raw = line
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line.startswith("! "):
            words = line[2:].split()
            kind = words[0]
            if kind == "config":
                name, _, value = line[2:].partition(" ")[2].partition("=")
                setup["config"][name.strip()] = value.strip()
            elif kind == "user":
                setup["users"].extend(words[1:])
            elif kind == "alias":
                setup["aliases"].append(words[1:])
            elif kind == "mailbox":
                setup["mailboxes"].append((words[1], int(words[2]), lineno))
            else:
                raise ValueError("%s:%d: unknown setup line %r" % (path, lineno, line))
        elif line.startswith(">* "):
            count, _, text = line[3:].partition(" ")
            data = b"".join(unescape(text.replace("{n}", str(i))) for i in range(1, int(count) + 1))
            steps.append((lineno, "send", data, raw))
        elif line.startswith(">bdat ") or line.startswith(">bdatlast "):
            verb, _, text = line.partition(" ")
            data = unescape(text)
            head = "BDAT %d%s\r\n" % (len(data), " LAST" if verb == ">bdatlast" else "")
            steps.append((lineno, "send", head.encode() + data, raw))
        elif line.startswith(">> "):
            steps.append((lineno, "send", unescape(line[3:]), raw))
        elif line.startswith("> ") or line == ">":
            steps.append((lineno, "send", line[2:].encode("utf-8") + b"\r\n", raw))
        elif line.startswith("<end? "):
            steps.append((lineno, "end?", parse_expect(lineno, raw, line[6:]), raw))
        elif line.startswith("<close"):
            steps.append((lineno, "close", None, raw))
        elif line.startswith("<? "):
            steps.append((lineno, "expect", parse_expect(lineno, raw, line[3:], optional=True), raw))
        elif line.startswith("<* "):
            count, _, rest = line[3:].partition(" ")
            steps.append((lineno, "expect", parse_expect(lineno, raw, rest, count=int(count)), raw))
        elif line.startswith("<+ "):
            steps.append((lineno, "has", line[3:].strip(), raw))
        elif line.startswith("<- "):
            steps.append((lineno, "hasnot", line[3:].strip(), raw))
        elif line.startswith("< "):
            steps.append((lineno, "expect", parse_expect(lineno, raw, line[2:]), raw))
        elif line.split()[0] == "connect":
            words = line.split()
            steps.append((lineno, "connect", words[1] if len(words) > 1 else None, raw))
        else:
            raise ValueError("%s:%d: cannot parse %r" % (path, lineno, line))
    return setup, steps


class Session:
    """One connection of a dialog, with a one-reply look-ahead for '<?'."""

    def __init__(self, server, source=None):
        self.client = server.connect(source=source)
        self.pending = None
        self.replies = 0

    def next_reply(self):
        if self.pending is not None:
            r, self.pending = self.pending, None
            return r
        r = self.client.reply()
        self.replies += 1
        check_enhanced(r, first=self.replies == 1)
        return r


def check_enhanced(reply, first):
    if first or reply.code // 100 == 3:
        return  # the greeting; 354 (enhanced codes have classes 2, 4, 5 only)
    if reply.lines and reply.lines[0].lower().startswith(th.HOSTNAME):
        return  # HELO/EHLO reply (RFC 2034 section 3 exempts them)
    for line in reply.lines:
        m = ENH_IN_REPLY.match(line)
        assert m, "reply line without an enhanced status code (RFC 2034): %r" % reply
        assert int(m.group(1)) == reply.code // 100, (
            "enhanced status class %s does not match reply code %d: %r" % (m.group(1), reply.code, reply))


def run_dialog(server, name, steps):
    session = Session(server)
    last = None
    skipping = False
    try:
        for lineno, kind, payload, raw in steps:
            where = "%s:%d: %s" % (name, lineno, raw)
            if skipping and kind != "connect":
                continue
            skipping = False
            if kind == "end?":
                # Optional end of this connection: a matching reply, then close.
                try:
                    if session.pending is None:
                        session.pending = session.next_reply()
                except th.Closed:
                    raise AssertionError("%s\nserver closed the connection without a reply" % where)
                if payload.matches(session.pending) is None:
                    last, session.pending = session.pending, None
                    assert session.client.wait_closed(), "%s\nno close after %r" % (where, last)
                    skipping = True
            elif kind == "connect":
                session.client.close()
                session = Session(server, source=payload)
            elif kind == "send":
                session.client.send(payload)
            elif kind == "expect":
                for _ in range(payload.count):
                    if payload.optional and session.pending is None:
                        try:
                            session.pending = session.next_reply()
                        except th.Closed:
                            break
                    elif not payload.optional:
                        try:
                            r = session.next_reply()
                        except th.Closed as e:
                            raise AssertionError("%s\nserver closed the connection: %s" % (where, e))
                        why = payload.matches(r)
                        assert why is None, "%s\n%s; got:\n%r" % (where, why, r)
                        last = r
                        continue
                    r = session.pending
                    if r is not None and payload.matches(r) is None:
                        session.pending = None
                        last = r
            elif kind == "has":
                assert last is not None and payload.lower() in last.text.lower(), (
                    "%s\nlast reply lacks %r:\n%r" % (where, payload, last))
            elif kind == "hasnot":
                assert last is not None and payload.lower() not in last.text.lower(), (
                    "%s\nlast reply contains %r:\n%r" % (where, payload, last))
            elif kind == "close":
                assert session.pending is None, "%s\nunexpected reply before close:\n%r" % (
                    where, session.pending)
                assert session.client.wait_closed(), "%s\nserver did not close the connection" % where
    except (AssertionError, TimeoutError) as e:
        raise AssertionError("%s\n--- transcript ---\n%s" % (e, session.client.dump())) from None
    finally:
        session.client.close()


@pytest.mark.parametrize("name", FILES)
def test_dialog(name, tern_server):
    setup, steps = parse_dialog(os.path.join(CASES, name))
    server = tern_server(config=setup["config"], users=setup["users"], aliases=setup["aliases"])
    run_dialog(server, name, steps)
    for address, count, _lineno in setup["mailboxes"]:
        server.expect_mail(address, count)


def test_dialog_files_present():
    # A glob that finds nothing must not pass silently.
    assert len(FILES) >= 40, "expected the dialog cases in %s, found %d" % (CASES, len(FILES))


def test_unescape():
    assert unescape(r"a\r\n\x00\\b\t") == b"a\r\n\x00\\b\t"
    assert unescape("ü") == "ü".encode("utf-8")

"""dns_server - an authoritative DNS server on loopback for the outbound tests.

NSD serves the test zones; a small relay in front of it (this module) owns
the address the tests hand to tern. The relay passes every query to NSD and
back, records what was asked, and can be told to drop the queries for a name
(a timeout), delay them, or answer them with a given rcode. NSD cannot drop a
query on its own: a zone's allow-query list that does not match answers
REFUSED rather than staying silent.

What each failure looks like on the wire:

    a name that exists          NOERROR with the records, AA set
    nothing of that type        NOERROR, no answer, SOA in authority (NODATA)
    a name absent from a zone   NXDOMAIN, AA set. The zones "test." and
                                "127.in-addr.arpa." are always served (empty
                                unless records are added), so every name under
                                .test and every 127.x.y.z PTR query gets an
                                authoritative answer instead of REFUSED
    servfail(zone)              SERVFAIL from NSD: the zone is configured but
                                its zone file does not exist, which is how NSD
                                serves a zone it could not load
    timeout(name)               no answer at all, over UDP or TCP
    slow(name, s)               the real answer, s seconds late
    fail(name, rcode, qtypes)   the relay answers rcode itself (for one type
                                only, say, while the others resolve)
    a name outside every zone   REFUSED (a forwarding resolver turns it into
                                SERVFAIL)

Note for resolvers built on libunbound: libunbound answers a few special-use
zones itself (among them "test." and "127.in-addr.arpa.") with NXDOMAIN
without asking its forwarder, unless the program removes those local zones
(ub_ctx_zone_remove). A libunbound forwarder whose query gets no answer
gives SERVFAIL after about 3 to 4 seconds while the server answers other
queries, and after 12 to 17 seconds when it answered nothing before.

Zone changes are made without a restart: the zone file is rewritten with a
new serial and NSD is told to reload it (nsd-control over a local socket);
zones are added or removed with nsd-control reconfig. Every change waits,
bounded in time, until NSD serves the new serial (or the SERVFAIL).

NSD runs as root in the foreground, with its own temporary directory and a
free port, and is stopped by its PID (SIGTERM, then SIGKILL for whatever is
left of the processes it forked). Only 127.0.0.1 is used.
"""

import ipaddress
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time

from smtp_peers import process_tree

NSD = "/usr/sbin/nsd"
NSD_CONTROL = "/usr/sbin/nsd-control"
NSD_CHECKCONF = "/usr/sbin/nsd-checkconf"
DIG = "dig"

HOST = "127.0.0.1"
START_TIMEOUT = 20
CHANGE_TIMEOUT = 10
STOP_TIMEOUT = 10
UPSTREAM_TIMEOUT = 3
POLL = 0.05
DEFAULT_TTL = 1
CATCH_ALL = ("test", "127.in-addr.arpa")
NS_TARGET = "ns.dns-fixture.invalid."
MAX_LOG = 20000

TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28,
         "SRV": 33, "OPT": 41, "TLSA": 52, "CAA": 257, "ANY": 255}
TYPE_NAMES = {v: k for k, v in TYPES.items()}
RCODES = {"NOERROR": 0, "FORMERR": 1, "SERVFAIL": 2, "NXDOMAIN": 3, "NOTIMP": 4, "REFUSED": 5}
RCODE_NAMES = {v: k for k, v in RCODES.items()}
# Record types whose data ends in a domain name (MX: after the preference).
NAME_TARGETS = ("MX", "CNAME", "NS", "PTR", "SRV")


class DNSError(AssertionError):
    """A setup or wait step failed; the message carries NSD's log."""


def problem():
    """Why the DNS server cannot run here, or None."""
    for path in (NSD, NSD_CONTROL):
        if not os.access(path, os.X_OK):
            return "%s not found (Debian package nsd; scripts/install-deps.sh test)" % path
    if os.geteuid() != 0:
        return "the DNS server runs NSD as root"
    return None


def dig_problem():
    if shutil.which(DIG) is None:
        return "dig not found (Debian package bind9-dnsutils; scripts/install-deps.sh test)"
    return None


def type_code(qtype):
    if isinstance(qtype, int):
        return qtype
    return TYPES[qtype.upper()]


def type_name(code):
    return TYPE_NAMES.get(code, "TYPE%d" % code)


def norm(name):
    """Lower case, no trailing dot ("" for the root)."""
    return name.lower().rstrip(".")


def under(name, zone):
    """name is zone or below it."""
    name, zone = norm(name), norm(zone)
    return name == zone or name.endswith("." + zone)


def reverse_name(ip):
    """The in-addr.arpa / ip6.arpa name of an address."""
    return ipaddress.ip_address(ip).reverse_pointer


# ---- wire format (enough for queries, the relay and checks) ----

def encode_name(name):
    out = b""
    for label in norm(name).split(".") if norm(name) else []:
        raw = label.encode("ascii")
        if not 0 < len(raw) < 64:
            raise ValueError("bad label %r in %r" % (label, name))
        out += bytes([len(raw)]) + raw
    return out + b"\0"


def build_query(name, qtype, qid=None, rd=True, edns=1232):
    """A query message; edns is the advertised UDP size (None: no OPT record)."""
    if qid is None:
        qid = int.from_bytes(os.urandom(2), "big")
    flags = 0x0100 if rd else 0
    msg = struct.pack("!HHHHHH", qid, flags, 1, 0, 0, 1 if edns else 0)
    msg += encode_name(name) + struct.pack("!HH", type_code(qtype), 1)
    if edns:
        msg += b"\0" + struct.pack("!HHIH", TYPES["OPT"], edns, 0, 0)
    return msg


def read_name(msg, off):
    """(name, offset after it), following compression pointers (bounded)."""
    labels = []
    end = None
    for _ in range(128):
        if off >= len(msg):
            raise ValueError("name runs past the message")
        n = msg[off]
        if n & 0xC0 == 0xC0:
            if off + 1 >= len(msg):
                raise ValueError("truncated pointer")
            if end is None:
                end = off + 2
            off = ((n & 0x3F) << 8) | msg[off + 1]
            continue
        if n & 0xC0:
            raise ValueError("bad label type")
        if n == 0:
            return ".".join(labels), (end if end is not None else off + 1)
        labels.append(msg[off + 1:off + 1 + n].decode("ascii", "replace"))
        off += 1 + n
    raise ValueError("name with too many labels or a pointer loop")


def question_of(msg):
    """(id, qname lower-cased, qtype) of a query; raises ValueError if malformed."""
    if len(msg) < 12:
        raise ValueError("short message")
    qid, _, qd = struct.unpack("!HHH", msg[:6])
    if qd < 1:
        raise ValueError("no question")
    name, off = read_name(msg, 12)
    if off + 4 > len(msg):
        raise ValueError("truncated question")
    qtype, = struct.unpack("!H", msg[off:off + 2])
    return qid, name.lower(), qtype


def _rdata_text(msg, rtype, start, rdlen):
    rd = msg[start:start + rdlen]
    if rtype == TYPES["A"] and rdlen == 4:
        return socket.inet_ntop(socket.AF_INET, rd)
    if rtype == TYPES["AAAA"] and rdlen == 16:
        return socket.inet_ntop(socket.AF_INET6, rd)
    if rtype in (TYPES["NS"], TYPES["CNAME"], TYPES["PTR"]):
        return read_name(msg, start)[0] + "."
    if rtype == TYPES["MX"]:
        pref, = struct.unpack("!H", rd[:2])
        target = read_name(msg, start + 2)[0]
        return "%d %s." % (pref, target) if target else "%d ." % pref
    if rtype == TYPES["TXT"]:
        parts, i = [], 0
        while i < len(rd):
            n = rd[i]
            parts.append(rd[i + 1:i + 1 + n].decode("utf-8", "replace"))
            i += 1 + n
        return "".join(parts)
    if rtype == TYPES["SOA"]:
        mname, off = read_name(msg, start)
        rname, off = read_name(msg, off)
        nums = struct.unpack("!IIIII", msg[off:off + 20])
        return "%s. %s. %s" % (mname, rname, " ".join(str(x) for x in nums))
    return rd.hex()


class Record:
    def __init__(self, name, rtype, ttl, data):
        self.name, self.type, self.ttl, self.data = name, rtype, ttl, data

    def __repr__(self):
        return "%s %d %s %s" % (self.name, self.ttl, self.type, self.data)


class Message:
    """A parsed response: rcode (name), flags, question and sections."""

    def __init__(self, raw):
        self.raw = raw
        (self.id, flags, qd, an, ns, ar) = struct.unpack("!HHHHHH", raw[:12])
        self.qr = bool(flags & 0x8000)
        self.aa = bool(flags & 0x0400)
        self.tc = bool(flags & 0x0200)
        self.rd = bool(flags & 0x0100)
        self.ra = bool(flags & 0x0080)
        self.rcode_value = flags & 0xF
        self.rcode = RCODE_NAMES.get(self.rcode_value, "RCODE%d" % self.rcode_value)
        off = 12
        self.question = []
        for _ in range(qd):
            name, off = read_name(raw, off)
            qtype, _ = struct.unpack("!HH", raw[off:off + 4])
            off += 4
            self.question.append((name, type_name(qtype)))
        self.answer, self.authority, self.additional = [], [], []
        for section, count in ((self.answer, an), (self.authority, ns), (self.additional, ar)):
            for _ in range(count):
                name, off = read_name(raw, off)
                rtype, _, ttl, rdlen = struct.unpack("!HHIH", raw[off:off + 10])
                off += 10
                if rtype != TYPES["OPT"]:
                    section.append(Record(name, type_name(rtype), ttl,
                                          _rdata_text(raw, rtype, off, rdlen)))
                off += rdlen

    def data(self, rtype=None):
        """The answer's data strings (of one type if given)."""
        return [r.data for r in self.answer if rtype is None or r.type == rtype.upper()]

    def __repr__(self):
        return "<%s aa=%s answer=%r authority=%r>" % (self.rcode, self.aa, self.answer,
                                                      self.authority)


def _recv_exact(sock, n, deadline):
    buf = b""
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("timed out")
        sock.settimeout(left)
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk
    return buf


def query(port, name, qtype="A", tcp=False, timeout=2.0, host=HOST, rd=True, edns=1232):
    """Ask host:port once. Returns a Message, or None if no answer came in time."""
    q = build_query(name, qtype, rd=rd, edns=edns)
    qid = struct.unpack("!H", q[:2])[0]
    deadline = time.monotonic() + timeout
    try:
        if tcp:
            with socket.create_connection((host, port), timeout=timeout) as s:
                s.sendall(struct.pack("!H", len(q)) + q)
                n, = struct.unpack("!H", _recv_exact(s, 2, deadline))
                return Message(_recv_exact(s, n, deadline))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((host, port))
            s.send(q)
            for _ in range(100):
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                s.settimeout(left)
                raw = s.recv(65535)
                if len(raw) >= 12 and struct.unpack("!H", raw[:2])[0] == qid:
                    return Message(raw)
    except (socket.timeout, ConnectionError):
        return None
    return None


def synthesize(request, rcode):
    """A response to request with rcode, its question echoed, nothing else."""
    qid, flags = struct.unpack("!HH", request[:4])
    _, off = read_name(request, 12)
    question = request[12:off + 4]
    flags = 0x8000 | (flags & 0x7900) | (rcode & 0xF)  # QR, opcode and RD kept
    return struct.pack("!HHHHHH", qid, flags, 1, 0, 0, 0) + question


# ---- the relay ----

class Rule:
    """What the relay does with queries for name (and the names below it)."""

    def __init__(self, name, action, qtypes=None, seconds=0.0, rcode=None):
        self.name = norm(name)
        self.action = action  # "drop", "delay" or "rcode"
        self.qtypes = None if qtypes is None else {type_code(t) for t in qtypes}
        self.seconds = seconds
        self.rcode = rcode

    def matches(self, qname, qtype):
        return under(qname, self.name) and (self.qtypes is None or qtype in self.qtypes)


class Query:
    """One query the relay saw."""

    def __init__(self, transport, name, qtype, action):
        self.time = time.time()
        self.transport = transport
        self.name = name
        self.type = type_name(qtype)
        self.action = action  # "forward", "drop", "delay", "rcode", "malformed"

    def __repr__(self):
        return "%s %s %s (%s)" % (self.transport, self.name, self.type, self.action)


class Relay:
    """UDP and TCP on one port of 127.0.0.1, passing queries to NSD."""

    def __init__(self, upstream_port):
        self.upstream = upstream_port
        self.rules = []
        self.log = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = []
        self.udp, self.tcp = self._bind()
        self.port = self.udp.getsockname()[1]

    @staticmethod
    def _bind():
        """A port free for both UDP and TCP (bounded tries)."""
        for _ in range(50):
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            tcp.bind((HOST, 0))
            port = tcp.getsockname()[1]
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                udp.bind((HOST, port))
            except OSError:
                udp.close()
                tcp.close()
                continue
            tcp.listen(64)
            return udp, tcp
        raise DNSError("no port free for both UDP and TCP on %s" % HOST)

    def start(self):
        for target in (self._udp_loop, self._tcp_loop):
            t = threading.Thread(target=target, daemon=True, name="dns-relay")
            t.start()
            self.threads.append(t)

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=5)
        for s in (self.udp, self.tcp):
            s.close()

    def decide(self, transport, raw):
        """(action, rule) for a query; records it."""
        try:
            _, qname, qtype = question_of(raw)
        except ValueError:
            self._note(Query(transport, "?", 0, "malformed"))
            return "malformed", None
        with self.lock:
            rule = next((r for r in reversed(self.rules) if r.matches(qname, qtype)), None)
        action = rule.action if rule else "forward"
        self._note(Query(transport, qname, qtype, action))
        return action, rule

    def _note(self, q):
        with self.lock:
            self.log.append(q)
            if len(self.log) > MAX_LOG:
                del self.log[:len(self.log) - MAX_LOG]

    def _answer(self, raw, rule, ask):
        """The reply bytes for a query to be answered (None: none)."""
        if rule is not None and rule.action == "rcode":
            return synthesize(raw, rule.rcode)
        if rule is not None and rule.action == "delay":
            if self.stopping.wait(rule.seconds):
                return None
        return ask(raw)

    def _ask_udp(self, raw):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((HOST, self.upstream))
            s.send(raw)
            deadline = time.monotonic() + UPSTREAM_TIMEOUT
            for _ in range(20):
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                s.settimeout(left)
                try:
                    got = s.recv(65535)
                except (socket.timeout, ConnectionError):
                    return None
                if got[:2] == raw[:2]:
                    return got
        return None

    def _udp_loop(self):
        self.udp.settimeout(0.2)
        while not self.stopping.is_set():
            try:
                raw, peer = self.udp.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            action, rule = self.decide("udp", raw)
            if action in ("drop", "malformed"):
                continue
            threading.Thread(target=self._udp_one, args=(raw, peer, rule), daemon=True).start()

    def _udp_one(self, raw, peer, rule):
        reply = self._answer(raw, rule, self._ask_udp)
        if reply is not None and not self.stopping.is_set():
            try:
                self.udp.sendto(reply, peer)
            except OSError:
                pass

    def _tcp_loop(self):
        self.tcp.settimeout(0.2)
        while not self.stopping.is_set():
            try:
                conn, _ = self.tcp.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._tcp_conn, args=(conn,), daemon=True).start()

    def _tcp_conn(self, conn):
        upstream = []

        def ask(raw):
            for _ in range(2):  # NSD may have closed an idle connection: one new try
                try:
                    if not upstream:
                        upstream.append(socket.create_connection((HOST, self.upstream),
                                                                 timeout=UPSTREAM_TIMEOUT))
                    s = upstream[0]
                    s.sendall(struct.pack("!H", len(raw)) + raw)
                    deadline = time.monotonic() + UPSTREAM_TIMEOUT
                    n, = struct.unpack("!H", _recv_exact(s, 2, deadline))
                    return _recv_exact(s, n, deadline)
                except (OSError, ConnectionError):
                    if upstream:
                        upstream.pop().close()
            return None

        buf = b""
        idle_until = time.monotonic() + 60
        conn.settimeout(0.2)
        try:
            while not self.stopping.is_set() and time.monotonic() < idle_until:
                if len(buf) >= 2:
                    n, = struct.unpack("!H", buf[:2])
                    if len(buf) >= 2 + n:
                        raw, buf = buf[2:2 + n], buf[2 + n:]
                        action, rule = self.decide("tcp", raw)
                        if action == "malformed":
                            return
                        if action == "drop":
                            continue
                        reply = self._answer(raw, rule, ask)
                        if reply is not None:
                            conn.sendall(struct.pack("!H", len(reply)) + reply)
                        continue
                try:
                    chunk = conn.recv(65535)
                except socket.timeout:
                    continue
                if not chunk:
                    return
                buf += chunk
                idle_until = time.monotonic() + 60
        except OSError:
            pass
        finally:
            conn.close()
            for s in upstream:
                s.close()


# ---- dig ----

class DigResult:
    """What dig printed: status (NOERROR, NXDOMAIN, SERVFAIL, REFUSED, or
    TIMEOUT when no answer came), flags, and answer records as
    (name, ttl, type, data) with data as dig prints it."""

    def __init__(self, text, returncode):
        self.text = text
        self.returncode = returncode
        self.status = None
        self.flags = set()
        self.answer = []
        section = None
        for line in text.splitlines():
            if "status: " in line:
                self.status = line.split("status: ", 1)[1].split(",")[0].strip()
            elif line.startswith(";; flags:"):
                self.flags = set(line.split(":", 2)[1].split(";")[0].split())
            elif line.startswith(";; ANSWER SECTION"):
                section = "answer"
            elif line.startswith(";;") or not line.strip():
                if not line.strip():
                    section = None
            elif section == "answer" and not line.startswith(";"):
                parts = line.split(None, 4)
                if len(parts) == 5:
                    self.answer.append((parts[0], int(parts[1]), parts[3], parts[4]))
        if self.status is None and ("timed out" in text or "no servers could be reached" in text):
            self.status = "TIMEOUT"

    def data(self, rtype=None):
        return [a[3] for a in self.answer if rtype is None or a[2] == rtype.upper()]

    def __repr__(self):
        return "<dig %s %r>" % (self.status, self.answer)


def dig(port, name, qtype="A", tcp=False, timeout=2, host=HOST, extra=()):
    """Run dig once against host:port (one try, timeout seconds)."""
    args = [DIG, "@" + host, "-p", str(port), "+time=%d" % timeout, "+tries=1", "+retry=0",
            "+nocookie", name, qtype] + list(extra)
    if tcp:
        args.insert(1, "+tcp")
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout + 10,
                       stdin=subprocess.DEVNULL)
    return DigResult(r.stdout + r.stderr, r.returncode)


# ---- the server ----

class Zone:
    def __init__(self, name, records, broken=False, ttl=DEFAULT_TTL):
        self.name = norm(name)
        self.records = list(records)
        self.broken = broken
        self.ttl = ttl
        self.serial = 0

    def file_name(self):
        return self.name + (".servfail.zone" if self.broken else ".zone")


def _format_rdata(rtype, data):
    rtype = rtype.upper()
    data = str(data).strip()
    if rtype == "TXT" and not data.startswith('"'):
        raw = data.encode("utf-8")
        chunks = [raw[i:i + 255] for i in range(0, len(raw), 255)] or [b""]
        quoted = []
        for c in chunks:
            s = c.decode("utf-8", "surrogateescape")
            quoted.append('"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"')
        return " ".join(quoted)
    if rtype in NAME_TARGETS:
        parts = data.split()
        target = parts[-1]
        if target != "." and "." in target and not target.endswith("."):
            parts[-1] = target + "."
        return " ".join(parts)
    return data


def _record_tuple(rec):
    """(owner, ttl or None, type, data) from (owner, type, data) or (owner, ttl, type, data)."""
    if len(rec) == 3:
        return rec[0], None, rec[1], rec[2]
    if len(rec) == 4:
        return rec[0], int(rec[1]), rec[2], rec[3]
    raise ValueError("a record is (owner, type, data) or (owner, ttl, type, data): %r" % (rec,))


class DNSServer:
    """NSD behind the relay. Use address ("127.0.0.1:PORT") as tern's dns_resolver."""

    def __init__(self, zones=None, name="dns", ttl=DEFAULT_TTL, catch_all=CATCH_ALL):
        self.name = name
        self.ttl = ttl
        self.root = tempfile.mkdtemp(prefix="tern-dns.")
        self.zone_dir = os.path.join(self.root, "zones")
        os.makedirs(self.zone_dir)
        self.conf_path = os.path.join(self.root, "nsd.conf")
        self.log_path = os.path.join(self.root, "nsd.log")
        self.ctl_path = os.path.join(self.root, "nsd.ctl")
        self.proc = None
        self.tree = set()
        self.relay = None
        self.nsd_port = None
        self.zones = {}
        self.serial = int(time.time()) % 1000000 * 1000
        self.lock = threading.RLock()
        self.catch_all = tuple(norm(z) for z in catch_all)
        for z in self.catch_all:
            self.zones[z] = Zone(z, [], ttl=ttl)
        for zname, records in (zones or {}).items():
            self.zones[norm(zname)] = Zone(zname, records, ttl=ttl)

    # ---- addresses ----
    @property
    def port(self):
        return self.relay.port

    @property
    def address(self):
        return "%s:%d" % (HOST, self.port)

    # ---- files ----
    def _next_serial(self):
        self.serial += 1
        return self.serial

    def _zone_text(self, zone):
        origin = zone.name + "."
        lines = ["$ORIGIN %s" % origin, "$TTL %d" % zone.ttl,
                 "@ %d IN SOA %s hostmaster.%s %d 3600 600 86400 %d" % (
                     zone.ttl, NS_TARGET, origin, zone.serial, zone.ttl),
                 "@ %d IN NS %s" % (zone.ttl, NS_TARGET)]
        for rec in zone.records:
            owner, ttl, rtype, data = _record_tuple(rec)
            if "." in owner and not owner.endswith(".") and under(owner, zone.name):
                owner += "."  # a full name given without its dot
            if owner.endswith(".") and not under(owner, zone.name):
                raise DNSError("record %r is outside zone %s" % (rec, zone.name))
            lines.append("%s %d IN %s %s" % (owner or "@", zone.ttl if ttl is None else ttl,
                                               rtype.upper(), _format_rdata(rtype, data)))
        return "\n".join(lines) + "\n"

    def _write_zone(self, zone):
        zone.serial = self._next_serial()
        path = os.path.join(self.zone_dir, zone.file_name())
        if zone.broken:
            if os.path.exists(path):
                os.unlink(path)
            return
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(self._zone_text(zone))
        os.replace(tmp, path)

    def _write_conf(self, zones):
        text = "\n".join([
            "# NSD for the tern tests: loopback only, no privileges dropped, no database.",
            "server:",
            "    ip-address: %s@%d" % (HOST, self.nsd_port),
            "    do-ip4: yes",
            "    do-ip6: no",
            "    username: \"\"",
            "    chroot: \"\"",
            "    zonesdir: \"%s\"" % self.zone_dir,
            "    database: \"\"",
            "    zonelistfile: \"%s\"" % os.path.join(self.root, "zone.list"),
            "    xfrdfile: \"%s\"" % os.path.join(self.root, "xfrd.state"),
            "    xfrdir: \"%s\"" % self.root,
            "    pidfile: \"%s\"" % os.path.join(self.root, "nsd.pid"),
            "    logfile: \"%s\"" % self.log_path,
            "    server-count: 1",
            "    verbosity: 1",
            "    hide-version: yes",
            "    hide-identity: yes",
            "    rrl-ratelimit: 0",
            "    rrl-whitelist-ratelimit: 0",
            "    xfrd-reload-timeout: 0",
            "    zonefiles-write: 0",
            "remote-control:",
            "    control-enable: yes",
            "    control-interface: \"%s\"" % self.ctl_path,
            "",
        ])
        for z in zones:
            text += "zone:\n    name: \"%s\"\n    zonefile: \"%s\"\n" % (z.name, z.file_name())
        tmp = self.conf_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.conf_path)

    # ---- process ----
    def start(self, timeout=START_TIMEOUT):
        why = problem()
        if why:
            raise DNSError(why)
        self.relay = Relay(0)
        self.relay.start()
        # NSD's port is picked free a moment before NSD binds it: if another
        # process took it in between, NSD exits and is started again on
        # another port (bounded).
        for attempt in range(3):
            self.nsd_port = self._free_port()
            self.relay.upstream = self.nsd_port
            with self.lock:
                for z in self.zones.values():
                    self._write_zone(z)
                self._write_conf(self.zones.values())
            r = subprocess.run([NSD_CHECKCONF, self.conf_path], capture_output=True, text=True,
                               timeout=30)
            if r.returncode != 0:
                raise DNSError("nsd-checkconf: %s%s" % (r.stdout, r.stderr))
            log = open(os.path.join(self.root, "nsd.out"), "ab")
            self.proc = subprocess.Popen([NSD, "-d", "-c", self.conf_path],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         cwd=self.root)
            log.close()
            try:
                self._wait(lambda: self._served_all(self.zones.values()), timeout,
                           "NSD to serve its zones on port %d" % self.nsd_port)
            except DNSError:
                if self.proc.poll() is not None and attempt < 2 and \
                        "address already in use" in self.log_tail().lower():
                    continue
                raise
            break
        self._wait(lambda: os.path.exists(self.ctl_path), timeout, "NSD's control socket")
        return self

    @staticmethod
    def _free_port():
        for _ in range(50):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                t.bind((HOST, 0))
                port = t.getsockname()[1]
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                    try:
                        u.bind((HOST, port))
                    except OSError:
                        continue
                return port
        raise DNSError("no free port for NSD")

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def _descendants(self):
        """PIDs of the processes NSD forked (read from /proc)."""
        if self.proc is None:
            return set()
        return set(process_tree(self.proc.pid)) - {self.proc.pid}

    def stop(self, timeout=STOP_TIMEOUT, keep=False):
        """SIGTERM to NSD, SIGKILL to anything of it left after timeout; the
        relay stops; the directory is removed unless keep."""
        if self.proc is not None and self.proc.poll() is None:
            tree = self._descendants()
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
            deadline = time.monotonic() + timeout
            for pid in tree:
                for _ in range(int(timeout / POLL) + 1):
                    if not os.path.exists("/proc/%d" % pid) or _zombie(pid):
                        break
                    if time.monotonic() > deadline:
                        try:
                            os.kill(pid, signal.SIGKILL)
                        except OSError:
                            pass
                        break
                    time.sleep(POLL)
        if self.relay is not None:
            self.relay.stop()
        if not keep:
            shutil.rmtree(self.root, ignore_errors=True)

    # ---- waits ----
    def _wait(self, predicate, timeout, what):
        deadline = time.monotonic() + timeout
        for _ in range(int(timeout / POLL) + 2):
            if self.proc is not None and self.proc.poll() is not None:
                raise DNSError("NSD exited with %s while waiting for %s%s"
                               % (self.proc.returncode, what, self.log_tail()))
            if predicate():
                return
            if time.monotonic() >= deadline:
                break
            time.sleep(POLL)
        raise DNSError("timed out after %.1fs waiting for %s%s" % (timeout, what, self.log_tail()))

    def _served(self, zone):
        """NSD answers for zone as it is now (serial, or SERVFAIL if broken)."""
        m = query(self.nsd_port, zone.name, "SOA", timeout=0.5, rd=False)
        if m is None:
            return False
        if zone.broken:
            return m.rcode == "SERVFAIL"
        return m.rcode == "NOERROR" and any(
            r.type == "SOA" and norm(r.name) == zone.name and int(r.data.split()[2]) == zone.serial
            for r in m.answer)

    def _served_all(self, zones):
        return all(self._served(z) for z in zones)

    def _gone(self, name):
        r = self.control("zonestatus", name, check=False)
        return r.returncode != 0 or "error" in r.stdout

    def control(self, *args, check=True):
        """Run nsd-control against this server."""
        r = subprocess.run([NSD_CONTROL, "-c", self.conf_path] + list(args), capture_output=True,
                           text=True, timeout=30, stdin=subprocess.DEVNULL)
        if check and (r.returncode != 0 or r.stdout.startswith("error")):
            raise DNSError("nsd-control %s: %s%s%s" % (" ".join(args), r.stdout, r.stderr,
                                                       self.log_tail()))
        return r

    # ---- zone changes ----
    def _apply(self, new_zones, removed=()):
        """Serve new_zones (name -> Zone, replacing those of the same name) and
        stop serving the removed names, without a restart; waits until done."""
        with self.lock:
            old = dict(self.zones)
            for name in removed:
                self.zones.pop(norm(name), None)
            for z in new_zones:
                self.zones[z.name] = z
            if not self.running():  # not started yet: start() writes everything
                return
            # A zone that turns broken or back is removed first: NSD keeps a
            # zone's old data when its file fails to load.
            flips = [z for z in new_zones if z.name in old and old[z.name].broken != z.broken]
            gone = [norm(n) for n in removed if norm(n) in old] + [z.name for z in flips]
            if gone:
                self._write_conf([z for z in self.zones.values() if z.name not in gone])
                self.control("reconfig")
                self._wait(lambda: all(self._gone(n) for n in gone), CHANGE_TIMEOUT,
                           "NSD to drop zone(s) %s" % ", ".join(gone))
            for z in new_zones:
                self._write_zone(z)
            self._write_conf(self.zones.values())
            self.control("reconfig")
            for z in new_zones:
                if z.name in old and z not in flips and not z.broken:
                    self.control("reload", z.name)
            self._wait(lambda: self._served_all(new_zones), CHANGE_TIMEOUT,
                       "NSD to serve zone(s) %s" % ", ".join(z.name for z in new_zones))

    def set_zone(self, name, records, ttl=None):
        """Serve zone name with exactly these records (besides its SOA and NS).

        A record is (owner, type, data) or (owner, ttl, type, data); owner "@"
        is the apex, "mx1" is relative, "mx1.example.test." absolute (and so is
        "mx1.example.test", a name under the zone without its dot). A target
        name with a dot (MX, CNAME, NS, PTR, SRV) is taken as absolute.
        """
        self._apply([Zone(name, records, ttl=self.ttl if ttl is None else ttl)])
        return norm(name)

    def remove_zone(self, name):
        """Stop serving a zone: its names fall to the catch-all zone (NXDOMAIN)
        or, outside it, are REFUSED."""
        self._apply([], removed=[name])

    def zone_of(self, name):
        """The served zone that holds name (the most specific), or None."""
        best = None
        for z in self.zones.values():
            if under(name, z.name) and (best is None or len(z.name) > len(best.name)):
                best = z
        return best

    def records(self, zone):
        return list(self.zones[norm(zone)].records)

    def add(self, name, rtype, data, ttl=None):
        """Add one record for the full name name, in the zone that holds it."""
        zone = self.zone_of(name)
        if zone is None:
            raise DNSError("no served zone holds %s (zones: %s)" % (name, ", ".join(self.zones)))
        if zone.broken:
            raise DNSError("zone %s is set to SERVFAIL" % zone.name)
        owner = norm(name) + "."
        rec = (owner, rtype, data) if ttl is None else (owner, ttl, rtype, data)
        self._apply([Zone(zone.name, zone.records + [rec], ttl=zone.ttl)])

    def remove(self, name, rtype=None):
        """Remove the records of name (of one type, if given) from its zone."""
        zone = self.zone_of(name)
        if zone is None:
            return
        keep = []
        for rec in zone.records:
            owner, _, t, _ = _record_tuple(rec)
            full = zone.name if owner in ("@", "") else (
                norm(owner) if owner.endswith(".") else norm(owner) + "." + zone.name)
            if full == norm(name) and (rtype is None or t.upper() == rtype.upper()):
                continue
            keep.append(rec)
        self._apply([Zone(zone.name, keep, ttl=zone.ttl)])

    # ---- helpers for the cases the outbound tests need ----
    def mx(self, domain, hosts):
        """Serve domain with MX records: hosts is a list of (preference, host,
        addresses), addresses a string or a list of IPv4/IPv6 strings (may be
        empty). A and AAAA records of hosts inside domain go into its zone;
        those of other hosts into the zone that holds them."""
        records, elsewhere = [], []
        for pref, host, addrs in hosts:
            records.append(("@", "MX", "%d %s." % (pref, norm(host))))
            for a in [addrs] if isinstance(addrs, str) else addrs:
                rtype = "AAAA" if ":" in a else "A"
                if under(host, domain):
                    records.append((norm(host) + ".", rtype, a))
                else:
                    elsewhere.append((host, rtype, a))
        self.set_zone(domain, records)
        for host, rtype, a in elsewhere:
            self.add(host, rtype, a)
        return norm(domain)

    def null_mx(self, domain):
        """A domain that accepts no mail (RFC 7505): one MX "0 ."."""
        return self.set_zone(domain, [("@", "MX", "0 .")])

    def implicit_mx(self, domain, *addresses):
        """A domain with no MX but addresses of its own (RFC 5321 5.1)."""
        return self.set_zone(domain, [("@", "AAAA" if ":" in a else "A", a) for a in addresses])

    def nxdomain(self, name):
        """Make sure name does not exist (NXDOMAIN for every type); returns it.
        It must be under a served zone, such as the catch-all "test."."""
        zone = self.zone_of(name)
        if zone is None:
            raise DNSError("%s is under no served zone: it would be REFUSED" % name)
        if zone.name == norm(name):
            raise DNSError("%s is a zone apex; remove_zone() it or pick a name below" % name)
        self.remove(name)
        return norm(name)

    def servfail(self, zone):
        """Every query under zone gets SERVFAIL from NSD (its zone file does
        not load). set_zone() makes it good again."""
        self._apply([Zone(zone, [], broken=True, ttl=self.ttl)])
        return norm(zone)

    def txt(self, name, text):
        """A TXT record (quoted and split into 255-byte strings as needed)."""
        self.add(name, "TXT", text)
        return norm(name)

    def ptr(self, ip, name):
        """A PTR record for ip (reverse zone: 127.in-addr.arpa or a served one)."""
        rev = reverse_name(ip)
        self.add(rev, "PTR", norm(name) + ".")
        return rev

    def timeout(self, name, qtypes=None):
        """Queries for name and below (of these types) get no answer."""
        self._rule(Rule(name, "drop", qtypes))

    def slow(self, name, seconds, qtypes=None):
        """The answers for name and below come seconds late."""
        self._rule(Rule(name, "delay", qtypes, seconds=seconds))

    def fail(self, name, rcode="SERVFAIL", qtypes=None):
        """The relay answers queries for name and below with rcode itself."""
        self._rule(Rule(name, "rcode", qtypes, rcode=RCODES[rcode] if isinstance(rcode, str) else rcode))

    def clear_rules(self, name=None):
        with self.relay.lock:
            self.relay.rules = [r for r in self.relay.rules if name is not None and r.name != norm(name)]

    def _rule(self, rule):
        with self.relay.lock:
            self.relay.rules.append(rule)

    # ---- checks ----
    def queries(self, name=None, qtype=None):
        """The queries the relay saw (oldest first), optionally only for name
        (exactly) and type."""
        with self.relay.lock:
            log = list(self.relay.log)
        return [q for q in log if (name is None or q.name == norm(name)) and
                (qtype is None or q.type == qtype.upper())]

    def query(self, name, qtype="A", tcp=False, timeout=2.0):
        """Ask the relay (as tern would) once; a Message, or None on timeout."""
        return query(self.port, name, qtype, tcp=tcp, timeout=timeout)

    def dig(self, name, qtype="A", tcp=False, timeout=2):
        """dig against the relay; a DigResult."""
        return dig(self.port, name, qtype, tcp=tcp, timeout=timeout)

    def log_tail(self, lines=40):
        try:
            with open(self.log_path, "rb") as f:
                text = f.read().decode("utf-8", "replace").splitlines()
        except FileNotFoundError:
            text = []
        out = "\n---- %s: NSD log (last %d lines) ----\n%s" % (
            self.name, min(lines, len(text)), "\n".join(text[-lines:]))
        if self.relay is not None:
            recent = self.queries()[-20:]
            out += "\n---- %s: last %d queries at %s ----\n%s" % (
                self.name, len(recent), self.address, "\n".join(repr(q) for q in recent))
        return out


def _zombie(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True

#!/usr/bin/python3
"""matrix.py - real mail clients and libraries against tern's submission ports.

Each client is configured the way its own documentation shows (host, port,
user, password, TLS on; the client's own choice of SASL mechanism), except
that it accepts tern's self-signed certificate. The server keeps tern's
default AUTH settings, and the user is made as the README shows:
`tern user add alice@example.test --password-stdin` with the password on stdin.

tests/e2e/test_clients.py drives these functions and asserts on them. Run by
hand for the table (TERN_BIN picks the binary, build/tern by default):

    tests/clients/matrix.py [--messages N] [CLIENT...]

For each client and port it sends N messages (10 by default), each a fresh
connection and login, checks that every one is delivered, tries a wrong
password, and prints: the result, the median wall time of one login and send,
the mechanism the server logged for the successful logins, and how many
failed AUTH exchanges preceded them (each one costs the client the server's
failed-AUTH delay and counts towards its lockout).
"""

import contextlib
import email
import email.policy
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import tern_harness as th  # noqa: E402

# A domain with a dot: PHPMailer refuses addresses like alice@localhost.
DOMAIN = "example.test"
USER = "alice@" + DOMAIN
PASSWORD = "horse-Battery-staple-42"
WRONG_PASSWORD = "horse-Battery-staple-43"
RCPT = "bob@" + DOMAIN
KINDS = ("submission", "submissions")
# What each listener kind is for a client: STARTTLS (like port 587) or
# implicit TLS (like port 465).
SECURITY = {"submission": "starttls", "submissions": "tls"}
# Only the local domain; the AUTH settings stay tern's defaults.
CONFIG = {"local_domains": DOMAIN}
BODY = "Hello Bob,\n\nthis came from %s over %s.\nSee you.\n"
# One client run: connection, TLS, the failed-AUTH delays it may pay, sending.
CLIENT_TIMEOUT = 90 * th.SLOW
PHPMAILER = "/usr/share/php/libphp-phpmailer/autoload.php"
NODE_MODULES = os.path.join(HERE, "node_modules")


# ---------------------------------------------------------------- the clients
#
# Each takes a Job and returns (argv, bytes for stdin or None). The settings
# are also in the job's environment (SMTP_HOST ... MAIL_BODY), which the
# scripts in this folder read.

def _headers(job, newline):
    return newline.join(["From: %s" % job.sender, "To: %s" % job.rcpt, "Subject: %s" % job.subject,
                         "", job.body.replace("\n", newline)])


def phpmailer(job):
    return ["php", os.path.join(HERE, "phpmailer_send.php")], None


def nodemailer(job):
    return ["node", os.path.join(HERE, "nodemailer_send.js")], None


def smtplib_(job):
    return [sys.executable, os.path.join(HERE, "smtplib_send.py")], None


def net_smtp(job):
    return ["perl", os.path.join(HERE, "net_smtp_send.pl")], None


def curl(job):
    """As curl's documentation on sending mail shows: the message in a file
    (RFC 5322, so CRLF line ends), --mail-from, --mail-rcpt, --upload-file,
    --user; smtp:// with --ssl-reqd for STARTTLS, smtps:// for implicit TLS;
    -k to accept a self-signed certificate. -v only shows the dialogue."""
    path = job.write("mail.txt", _headers(job, "\r\n"))
    if job.security == "tls":
        url = ["smtps://%s:%d" % (job.host, job.port)]
    else:
        url = ["smtp://%s:%d" % (job.host, job.port), "--ssl-reqd"]
    return (["curl", "-v"] + url + ["--user", "%s:%s" % (job.user, job.password), "-k",
                                     "--mail-from", job.sender, "--mail-rcpt", job.rcpt,
                                     "--upload-file", path], None)


def swaks(job):
    """As swaks's documentation shows: --auth without a type (swaks tries the
    types the server offers), --auth-user, --auth-password, --tls for
    STARTTLS or --tlsc for TLS on connect; it does not check the
    certificate unless told to."""
    return (["swaks", "--server", "%s:%d" % (job.host, job.port),
             "--tls" if job.security == "starttls" else "--tlsc",
             "--auth", "--auth-user", job.user, "--auth-password", job.password,
             "--from", job.sender, "--to", job.rcpt,
             "--header", "Subject: %s" % job.subject, "--body", job.body], None)


def msmtp(job):
    """An account in a configuration file as msmtp's documentation shows:
    tls on, tls_starttls on or off, auth on (msmtp picks the method),
    tls_certcheck off for a self-signed certificate; the message on stdin."""
    conf = job.write("msmtprc", "\n".join([
        "account tern",
        "host %s" % job.host,
        "port %d" % job.port,
        "tls on",
        "tls_starttls %s" % ("on" if job.security == "starttls" else "off"),
        "tls_certcheck off",
        "auth on",
        "user %s" % job.user,
        "password %s" % job.password,
        "from %s" % job.sender,
        "account default : tern",
        ""]), mode=0o600)
    return ["msmtp", "-C", conf, job.rcpt], _headers(job, "\n").encode()


def s_nail(job):
    """As s-nail's manual shows for scripts: -:/ (no configuration files),
    -Sv15-compat, mta=smtps://USER@HOST:PORT, or smtp://... with
    smtp-use-starttls; the password in the variable password; smtp-auth
    left at its default; tls-verify=ignore for a self-signed certificate."""
    scheme = "smtps" if job.security == "tls" else "smtp"
    argv = ["s-nail", "-:/", "-Sv15-compat",
            "-Smta=%s://%s@%s:%d" % (scheme, job.user.replace("@", "%40"), job.host, job.port)]
    if job.security == "starttls":
        argv.append("-Ssmtp-use-starttls")
    argv += ["-Spassword=%s" % job.password, "-Sfrom=%s" % job.sender, "-Stls-verify=ignore",
             "-s", job.subject, job.rcpt]
    return argv, job.body.encode()


class Client:
    def __init__(self, name, command, programs, files=()):
        self.name = name
        self.command = command
        self.programs = programs
        self.files = files

    def problem(self):
        """Why this client cannot run here, or None."""
        for p in self.programs:
            if shutil.which(p) is None:
                return "%s is not installed (scripts/install-deps.sh test installs it)" % p
        for f in self.files:
            if not os.path.exists(f):
                return "%s is missing (scripts/install-deps.sh test, or npm ci in %s)" % (f, HERE)
        return None


CLIENTS = {c.name: c for c in (
    Client("phpmailer", phpmailer, ["php"], [PHPMAILER]),
    Client("nodemailer", nodemailer, ["node"], [os.path.join(NODE_MODULES, "nodemailer", "package.json")]),
    Client("smtplib", smtplib_, [sys.executable]),
    Client("curl", curl, ["curl"]),
    Client("swaks", swaks, ["swaks"]),
    Client("msmtp", msmtp, ["msmtp"]),
    Client("s-nail", s_nail, ["s-nail"]),
    Client("net-smtp", net_smtp, ["perl"]),
)}


def ensure_node_modules(timeout=300):
    """`npm ci` in this folder unless node_modules already holds the locked
    versions. Raises th.HarnessError when it fails."""
    import json
    with open(os.path.join(HERE, "package-lock.json")) as f:
        locked = json.load(f)["packages"]
    stale = []
    for path, meta in locked.items():
        if not path:
            continue
        try:
            with open(os.path.join(HERE, path, "package.json")) as f:
                have = json.load(f).get("version")
        except (OSError, ValueError):
            have = None
        if have != meta.get("version"):
            stale.append(path)
    if not stale:
        return
    if shutil.which("npm") is None:
        raise th.HarnessError("npm is not installed (scripts/install-deps.sh test installs it)")
    r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE, capture_output=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise th.HarnessError("npm ci in %s exited %d:\n%s" % (HERE, r.returncode,
                                                              (r.stdout + r.stderr).decode("utf-8", "replace")))


# ---------------------------------------------------------------- one run

class Job:
    """One run of a client: what it sends, where, as whom."""

    def __init__(self, srv, client, kind, workdir, subject, password=PASSWORD):
        self.client = client
        self.host = "127.0.0.1"
        self.port = srv.port_of(kind)
        self.kind = kind
        self.security = SECURITY[kind]
        self.user = USER
        self.password = password
        self.sender = USER
        self.rcpt = RCPT
        self.subject = subject
        self.body = BODY % (client, kind)
        self.workdir = workdir

    def write(self, name, text, mode=0o644):
        path = os.path.join(self.workdir, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return path

    def environment(self):
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        # The client's own configuration files (~/.msmtprc, ~/.mailrc, ...)
        # must not count: HOME is the job's folder.
        env.update(HOME=self.workdir, LC_ALL="C.UTF-8", SMTP_HOST=self.host, SMTP_PORT=str(self.port),
                   SMTP_SECURITY=self.security, SMTP_USER=self.user, SMTP_PASSWORD=self.password,
                   MAIL_FROM=self.sender, MAIL_TO=self.rcpt, MAIL_SUBJECT=self.subject, MAIL_BODY=self.body)
        return env


AUTH_FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')


def auth_events(log_text):
    """The server's event=auth lines as dicts (quotes removed)."""
    out = []
    for line in log_text.splitlines():
        if "event=auth " not in line:
            continue
        fields = {}
        for key, value in AUTH_FIELD.findall(line):
            if value.startswith('"'):
                value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            fields[key] = value
        if fields.get("event") == "auth":
            fields["line"] = line
            out.append(fields)
    return out


class Run:
    """What one client run did: exit status, output, wall time, and the
    server's AUTH log lines written meanwhile."""

    def __init__(self, client, job, rc, output, seconds, auth):
        self.client = client
        self.job = job
        self.rc = rc
        self.output = output
        self.seconds = seconds
        self.auth = auth
        self.message = None

    @property
    def ok_auth(self):
        return [a for a in self.auth if a.get("result") == "ok"]

    @property
    def failed_auth(self):
        """Every AUTH exchange that did not succeed: refused, locked out,
        cancelled or malformed."""
        return [a for a in self.auth if a.get("result") != "ok"]

    @property
    def mechanisms(self):
        return sorted({a.get("mechanism", "?") for a in self.ok_auth})

    def describe(self):
        return "%s on %s (port %d), exit %s, %.0f ms\n--- client output ---\n%s\n--- server auth log ---\n%s" % (
            self.client, self.job.kind, self.job.port, self.rc, self.seconds * 1000, self.output[-4000:],
            "\n".join(a["line"] for a in self.auth) or "(none)")


def run_client(srv, client, kind, workdir, subject, password=PASSWORD):
    """Run the client once against srv's listener of that kind."""
    job = Job(srv, client, kind, workdir, subject, password)
    argv, stdin = CLIENTS[client].command(job)
    offset = srv.log_size()
    started = time.monotonic()
    try:
        r = subprocess.run(argv, input=stdin if stdin is not None else b"", capture_output=True,
                           timeout=CLIENT_TIMEOUT, env=job.environment(), cwd=workdir)
        rc, output = r.returncode, r.stdout + r.stderr
    except subprocess.TimeoutExpired as e:
        rc, output = None, (e.stdout or b"") + (e.stderr or b"") + b"\n(killed after %ds)" % CLIENT_TIMEOUT
    seconds = time.monotonic() - started
    return Run(client, job, rc, output.decode("utf-8", "replace"), seconds, auth_events(srv.log_since(offset)))


# ---------------------------------------------------------------- delivery

def delivered(srv):
    """Subject -> parsed message for every file in RCPT's new/ folder."""
    out = {}
    for raw in srv.messages(RCPT):
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        out[str(msg["subject"])] = msg
    return out


def wait_delivered(srv, subjects, timeout=th.DELIVERY_TIMEOUT):
    """The delivered messages with these subjects, once all have arrived."""
    found = {}

    def arrived():
        found.clear()
        found.update({s: m for s, m in delivered(srv).items() if s in subjects})
        return len(found) == len(set(subjects))
    th.wait_until(arrived, timeout, "messages %r in %s/new" % (sorted(set(subjects) - set(found)),
                                                              srv.maildir(RCPT)),
                  srv.log_tail, interval=0.05)
    return found


def message_problems(msg, job):
    """How a delivered message differs from what the job sent (empty if not)."""
    problems = []
    if str(msg["subject"]) != job.subject:
        problems.append("Subject: %r, sent %r" % (str(msg["subject"]), job.subject))
    for field, want in (("from", job.sender), ("to", job.rcpt)):
        header = msg[field]
        addrs = [a.addr_spec for a in header.addresses] if header is not None else []
        if addrs != [want]:
            problems.append("%s: %r, sent %r" % (field.capitalize(), str(header), want))
    part = msg.get_body(("plain",))
    text = part.get_content() if part is not None else ""
    if text.replace("\r\n", "\n").strip() != job.body.strip():
        problems.append("body %r, sent %r" % (text, job.body))
    return problems


# ---------------------------------------------------------------- checks

def login_problems(run):
    """Why a run with the right password is not a clean success: the client
    failed, the server logged no successful AUTH, or a failed AUTH came
    first (the client paid the failure delay and counted towards the
    lockout)."""
    problems = []
    if run.rc != 0:
        problems.append("the client failed (exit %s)" % run.rc)
    if not run.ok_auth:
        problems.append("no event=auth result=ok in the server log")
    if run.failed_auth:
        problems.append("%d failed AUTH before the successful one (mechanisms %s)" % (
            len(run.failed_auth), ", ".join(a.get("mechanism", "?") for a in run.failed_auth)))
    if re.search(r"\b421\b", run.output):
        problems.append("the client saw a 421")
    return problems


def send(srv, client, kind, workdir, subjects):
    """Send one message per subject, each with its own client run (a fresh
    connection and login), back to back; then wait for every one that the
    client sent and check what arrived. Returns (runs, problems)."""
    runs = [run_client(srv, client, kind, workdir, s) for s in subjects]
    problems = []
    sent = [r for r in runs if r.rc == 0]
    try:
        arrived = wait_delivered(srv, [r.job.subject for r in sent])
        srv.wait_queue_empty()
    except th.HarnessError as e:
        arrived = delivered(srv)
        problems.append(str(e).split("\n")[0])
    files = srv.new_files(RCPT)
    if len(files) != len(sent):
        problems.append("%d message(s) in %s/new after %d sent" % (len(files), srv.maildir(RCPT), len(sent)))
    lockouts = [line for line in srv.log_text().splitlines() if "event=auth_lockout" in line]
    if lockouts:
        problems.append("the server locked the client out:\n" + "\n".join(lockouts))
    for r in runs:
        mine = login_problems(r)
        r.message = arrived.get(r.job.subject)
        if r.rc == 0 and r.message is not None:
            mine += message_problems(r.message, r.job)
        if mine:
            problems.append("%s:\n  %s\n%s" % (r.job.subject, "\n  ".join(mine), r.describe()))
    return runs, problems


def wrong_password(srv, client, kind, workdir):
    """One run with a wrong password, on a server that has seen no failure.
    Returns (run, problems): the client must fail and show the 535, the
    server must log event=auth result=fail for the user, counted as its
    first failure (failures=1), and never ok, and nothing may be
    delivered."""
    subject = "%s over %s with a wrong password" % (client, kind)
    run = run_client(srv, client, kind, workdir, subject, password=WRONG_PASSWORD)
    problems = []
    if run.rc == 0:
        problems.append("the client reported success")
    if not re.search(r"\b535\b", run.output):
        problems.append("the client's output does not show the 535")
    fails = [a for a in run.failed_auth if a.get("result") == "fail" and a.get("user", "").lower() == USER]
    if not fails:
        problems.append("no event=auth result=fail user=%s in the server log" % USER)
    # On a fresh server the first failure is the user's first from 127.0.0.1.
    counted = [a for a in fails if "failures" in a]
    if fails and not counted:
        problems.append("no failure count (failures=N) on the event=auth result=fail lines")
    elif counted and counted[0]["failures"] != "1":
        problems.append("the first failure is logged with failures=%s, want 1" % counted[0]["failures"])
    if run.ok_auth:
        problems.append("the server logged a successful AUTH")
    srv.wait_queue_empty()
    if subject in delivered(srv):
        problems.append("the message was delivered")
    return run, problems + ([run.describe()] if problems else [])


# ---------------------------------------------------------------- the table

class Cell:
    """One client on one port, as the table shows it."""

    def __init__(self, client, kind):
        self.client = client
        self.kind = kind
        self.results = {}  # check name -> "ok" or "FAIL"
        self.runs = []
        self.refused = None

    def add(self, check, runs, problems):
        self.results[check] = "FAIL" if problems else "ok"
        self.runs += [r for r in runs if r.job.password == PASSWORD]

    def row(self):
        times = [r.seconds for r in self.runs if r.rc == 0]
        mechs = sorted({m for r in self.runs for m in r.mechanisms})
        failed_first = sum(len(r.failed_auth) for r in self.runs)
        result = "ok" if self.results and all(v == "ok" for v in self.results.values()) else \
            "FAIL (%s)" % ", ".join(k for k, v in self.results.items() if v != "ok")
        return [self.client, self.kind, result,
                "%.0f" % (statistics.median(times) * 1000) if times else "-",
                ",".join(mechs) or "-",
                "%d/%d" % (failed_first, len(self.runs))]


HEADINGS = ["client", "port", "result", "ms/msg", "mechanism", "failed AUTH first/logins"]


def table(cells):
    rows = [HEADINGS] + [c.row() for c in cells]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADINGS))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def add_users(srv):
    """alice made as the README shows (`tern user add alice@example.test
    --password-stdin`, the password on stdin, nothing else) and bob, a
    mailbox."""
    srv.add_user(USER, PASSWORD)
    srv.add_user(RCPT)
    return srv


@contextlib.contextmanager
def new_server(root, name):
    """A started server with tern's default AUTH settings, both submission
    listeners, and the users; stopped by its PID at the end."""
    srv = th.Server(os.path.join(root, name), config=CONFIG, name=name, listeners=KINDS)
    try:
        srv.start()
        yield add_users(srv)
    finally:
        srv.stop()


def measure(client, kind, root, messages):
    """The whole check of one client on one port, each part on a server of
    its own; problems are printed on stderr."""
    cell = Cell(client, kind)
    work = os.path.join(root, "%s-%s" % (client, kind))
    os.makedirs(work)
    with new_server(work, "send") as srv:
        runs, problems = send(srv, client, kind, work, subjects(client, kind, messages))
    cell.add("send", runs, problems)
    with new_server(work, "wrong-password") as srv:
        run, more = wrong_password(srv, client, kind, work)
    cell.add("wrong password", [run], more)
    for p in problems + more:
        print(p, file=sys.stderr)
    return cell


def subjects(client, kind, count):
    return ["%s over %s, message %d of %d" % (client, kind, i + 1, count) for i in range(count)]


def main(argv):
    import argparse
    ap = argparse.ArgumentParser(description="Real mail clients against tern's submission ports.")
    ap.add_argument("--messages", type=int, default=10, help="messages per client and port (10)")
    ap.add_argument("clients", nargs="*", default=list(CLIENTS), help="some of: " + " ".join(CLIENTS))
    args = ap.parse_args(argv)
    problem = th.binary_problem()
    if problem:
        print(problem, file=sys.stderr)
        return 2
    if "nodemailer" in args.clients:
        ensure_node_modules()
    cells = []
    with tempfile.TemporaryDirectory(prefix="tern-matrix-") as root:
        for client in args.clients:
            why = CLIENTS[client].problem()
            if why:
                print("%s: %s" % (client, why), file=sys.stderr)
                return 2
            for kind in KINDS:
                cells.append(measure(client, kind, root, args.messages))
    print(table(cells))
    return 0 if all(c.row()[2] == "ok" for c in cells) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

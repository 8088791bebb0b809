"""dovecot_peer - a private Dovecot on loopback for tern's local delivery
over LMTP, and as the SASL server of a private Postfix.

DovecotLMTP runs Dovecot's master in the foreground as a child of the test
(`dovecot -F -c FILE`), with its own configuration, base_dir (sockets,
master.pid), state_dir, log and Maildirs in a temporary directory: nothing of
/etc/dovecot is read, and a system-wide Dovecot, running or not, is neither
used nor disturbed. Of Dovecot's protocols it serves only LMTP:

- on a Unix socket (socket_path), mode 0666 so that any client may connect;
- with inet=True, also on 127.0.0.N:24 (an address claimed with
  smtp_peers.claim_address, released at stop).

Its users are the addresses it is given, full addresses being the user names
as tern sends them over LMTP (RCPT TO:<bob@localhost>); anyone else gets
550 5.1.1 at RCPT. Mail is stored as the user nobody in one Maildir per user
(HOME/Maildir, HOME being TOP/home/DOMAIN/LOCAL). Its auth service also
listens on auth_socket_path for Postfix (smtpd_sasl_type = dovecot), checking
the users' passwords (PLAIN and LOGIN).

Every wait is bounded; the master is stopped by its PID (SIGTERM, then
SIGKILL to what is left of its own process tree); the temporary directory is
removed at stop.
"""

import grp
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile

from smtp_peers import (PeerError, _kill_leftovers, _tail, claim_address, process_tree,
                        release_address, wait_for)

DOVECOT = "/usr/sbin/dovecot"
LMTP_BIN = "/usr/lib/dovecot/lmtp"
START_TIMEOUT = 30
STOP_TIMEOUT = 20
WAIT_TIMEOUT = 30


def dovecot_problem():
    """A reason a private Dovecot cannot run here, or None."""
    for path, package in ((DOVECOT, "dovecot-core"), (LMTP_BIN, "dovecot-lmtpd")):
        if not os.access(path, os.X_OK):
            return "%s is not installed (Debian package %s; scripts/install-deps.sh test)" % (
                path, package)
    if os.geteuid() != 0:
        return "a private Dovecot instance needs root (its master runs as root)"
    for user in ("dovecot", "dovenull", "nobody"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            return "no %s user (the dovecot-core package makes dovecot and dovenull)" % user
    return None


class DovecotLMTP:
    """A private Dovecot serving LMTP for users (addresses; or a dict address
    -> password, the passwords being what its auth service checks). Options:

    inet       also listen for LMTP on host:port (host: the next free
               127.0.0.N unless given)
    name       for reports and the instance name
    """

    def __init__(self, users=(), name="dovecot", inet=False, host=None, port=24):
        self.name = name
        self.users = {}
        for address in users:
            password = users[address] if isinstance(users, dict) else None
            self.add_user(address, password)
        self.port = port
        self.host = None
        if inet:
            self.host, _ = claim_address(port, host, bind=False)
        self.top = tempfile.mkdtemp(prefix="tern-dovecot.")
        os.chmod(self.top, 0o755)  # Postfix and nobody walk into it
        self.conf = os.path.join(self.top, "dovecot.conf")
        self.base_dir = os.path.join(self.top, "run")
        self.state_dir = os.path.join(self.top, "state")
        self.home = os.path.join(self.top, "home")
        self.passwd = os.path.join(self.top, "users")
        self.logfile = os.path.join(self.top, "dovecot.log")
        self.outfile = os.path.join(self.top, "dovecot.out")
        self.socket_path = os.path.join(self.base_dir, "lmtp")
        self.auth_socket_path = os.path.join(self.base_dir, "auth-postfix")
        self.proc = None
        for d in (self.base_dir, self.state_dir, self.home):
            os.makedirs(d)
        self.nobody = pwd.getpwnam("nobody")
        os.chown(self.home, self.nobody.pw_uid, self.nobody.pw_gid)

    # ---- configuration ----

    def add_user(self, address, password=None):
        """A user (before start): the address is its name; without a
        password it gets a random one (its auth service then refuses it to
        anyone who does not know it)."""
        password = password if password is not None else secrets.token_urlsafe(12)
        assert ":" not in address and "\n" not in address, address
        assert ":" not in password and "\n" not in password, "passwd-file fields end at ':'"
        self.users[address.lower()] = password

    def _write_config(self):
        # passwd-file: USER:PASSWORD:UID:GID:GECOS:HOME:SHELL; uid, gid and
        # home come from default_fields. Plain text passwords: the test
        # wants to know them, and they are not anyone's.
        with open(self.passwd, "w") as f:
            for address, password in sorted(self.users.items()):
                f.write("%s:{PLAIN}%s::::::\n" % (address, password))
        # The auth process runs as the dovecot user and reads the file.
        try:
            os.chown(self.passwd, 0, grp.getgrnam("dovecot").gr_gid)
            os.chmod(self.passwd, 0o640)
        except KeyError:
            os.chmod(self.passwd, 0o644)
        try:
            pf = pwd.getpwnam("postfix")
            owner = "user = postfix\n    group = %s\n" % grp.getgrgid(pf.pw_gid).gr_name
        except KeyError:
            owner = ""
        inet = ""
        if self.host:
            inet = ("  inet_listener lmtp {\n    address = %s\n    port = %d\n  }\n"
                    % (self.host, self.port))
        text = """# private Dovecot instance of the tern tests
instance_name = tern-test-{name}-{tag}
base_dir = {base_dir}
state_dir = {state_dir}
log_path = {log}
hostname = {name}.dovecot.test
postmaster_address = postmaster@dovecot.test
protocols = lmtp
# Listeners without an address of their own: loopback only.
listen = {listen}
ssl = no
# Postfix hands AUTH over only after STARTTLS (smtpd_tls_auth_only).
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_verbose = yes
auth_cache_size = 0
# A failed AUTH is answered at once, not after the default 2 seconds: the
# tests' clients wait only a few seconds for a reply.
auth_failure_delay = 0
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = username_format=%Lu {passwd}
}}
userdb {{
  driver = passwd-file
  args = username_format=%Lu {passwd}
  # nobody and nogroup: above first_valid_uid and first_valid_gid.
  default_fields = uid={uid} gid={gid} home={home}/%Ld/%Ln
}}
service lmtp {{
  # tern connects as whatever user it runs as (root in the tests).
  unix_listener lmtp {{
    mode = 0666
  }}
{inet}}}
service auth {{
  unix_listener auth-postfix {{
    mode = 0660
    {owner}  }}
}}
""".format(name=self.name, tag=secrets.token_hex(4), base_dir=self.base_dir,
           state_dir=self.state_dir, log=self.logfile, listen=self.host or "127.0.0.1",
           passwd=self.passwd, uid=self.nobody.pw_uid, gid=self.nobody.pw_gid,
           home=self.home, inet=inet, owner=owner)
        with open(self.conf, "w") as f:
            f.write(text)

    @property
    def address(self):
        """host:port of the LMTP inet listener (None without one)."""
        return "%s:%d" % (self.host, self.port) if self.host else None

    # ---- process ----

    def _master_pid(self):
        try:
            with open(os.path.join(self.base_dir, "master.pid")) as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _why(self):
        return _tail(self.outfile, 20) + _tail(self.logfile)

    def start(self, timeout=START_TIMEOUT):
        self._write_config()
        with open(self.outfile, "ab") as out:
            # In the foreground: the master is our child, stopped by its PID.
            self.proc = subprocess.Popen([DOVECOT, "-F", "-c", self.conf], stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT, cwd=self.top)

        def ready():
            if self.proc.poll() is not None:
                raise PeerError("dovecot exited with %s at start%s" % (self.proc.returncode,
                                                                      self._why()))
            # Our own master (not some other instance) answers the sockets.
            if self._master_pid() != self.proc.pid:
                return False
            if not all(os.path.exists(p) for p in (self.socket_path, self.auth_socket_path)):
                return False
            return self._lmtp_greets()
        wait_for(ready, timeout, "Dovecot to accept LMTP on %s" % (self.address or self.socket_path),
                 self._why)
        return self

    def _lmtp_greets(self):
        """Every LMTP listener sends its 220 greeting."""
        targets = [(socket.AF_UNIX, self.socket_path)]
        if self.host:
            targets.append((socket.AF_INET, (self.host, self.port)))
        for family, where in targets:
            try:
                with socket.socket(family, socket.SOCK_STREAM) as s:
                    s.settimeout(2)
                    s.connect(where)
                    if not s.recv(512).startswith(b"220"):
                        return False
                    s.sendall(b"QUIT\r\n")
            except OSError:
                return False
        return True

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=STOP_TIMEOUT, keep=False):
        if self.proc is not None:
            if self.proc.poll() is None:
                tree = process_tree(self.proc.pid)
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=10)
                # The master ends its children; anything of its tree still
                # there after a while is killed (and nothing else).
                _kill_leftovers([p for p in tree if p != self.proc.pid], 5)
            self.proc = None
        if self.host:
            release_address(self.host)
        if not keep:
            shutil.rmtree(self.top, ignore_errors=True)

    # ---- mailboxes ----

    def maildir(self, user):
        local, _, domain = user.lower().rpartition("@")
        return os.path.join(self.home, domain, local, "Maildir")

    def messages(self, user):
        """The files in user's Maildir new/ (bytes, oldest first), as Dovecot
        stored them: its Return-Path:, Delivered-To: and Received: fields
        first, LF line ends."""
        d = os.path.join(self.maildir(user), "new")
        try:
            names = [n for n in os.listdir(d) if not n.startswith(".")]
        except FileNotFoundError:
            return []
        out = []
        # Dovecot's file names begin with the delivery time in seconds.
        for n in sorted(names, key=lambda n: (os.path.getmtime(os.path.join(d, n)), n)):
            with open(os.path.join(d, n), "rb") as f:
                out.append(f.read())
        return out

    def wait_messages(self, user, count, timeout=WAIT_TIMEOUT):
        """At least count messages in user's new/; returns them all."""
        return wait_for(lambda: len(self.messages(user)) >= count and self.messages(user), timeout,
                        "%d message(s) in Dovecot's Maildir of %s" % (count, user),
                        lambda: "\n(have %d)%s" % (len(self.messages(user)), self._why()))

    def all_messages(self):
        """(user directory, bytes) of every file in every user's new/."""
        out = []
        for dirpath, _, files in sorted(os.walk(self.home)):
            if os.path.basename(dirpath) == "new":
                for n in sorted(files):
                    with open(os.path.join(dirpath, n), "rb") as f:
                        out.append((os.path.relpath(os.path.dirname(os.path.dirname(dirpath)),
                                                    self.home), f.read()))
        return out

    def log_text(self):
        try:
            with open(self.logfile, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines=60):
        return _tail(self.logfile, lines) + _tail(self.outfile, 10)
